"""The report of an analysis (``Report``): what ``mechgrok analyze`` found, its JSON form, its text summary,
and reading it back from RUN_DIR/analysis without recomputing (``read_report``). Computing it is
``pipeline.py``'s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import MechgrokError
from ..fileio import read_csv, read_json
from ..metrics import GROK_ACCURACY
from ..run import MEASURES_FILE, REPORT_FILE, SPECTRUM_FILE
from .measures import CLUSTER_THRESHOLD
from .miiii import TaskStudy
from .results import JSON, Ablation, CheckpointMeasures, Circuit, Phases, Skipped, Spectra

REPORT_VERSION = 3
# version 1: before typed results, same fields, fewer of them; 2: Z_p's frequencies unnamed (irrep_names empty)
READABLE_VERSIONS = (1, 2, 3)


@dataclass
class Report:
    """What ``analyze_run`` computed; ``report.json`` holds ``content``, the CSVs the rows."""

    run_dir: Path
    config: JSON  # the run's config.json fields
    measures: list[CheckpointMeasures]
    spectra: Spectra
    circuit: Circuit | None
    phases: Phases
    grok_step: int | None
    ablations: list[Ablation] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    unverified: list[int] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    tasks: TaskStudy = field(default_factory=TaskStudy)  # multi-task runs: per-task table, grok order, claims

    @property
    def path(self) -> Path:
        """The analysis directory."""
        return self.run_dir / "analysis"

    @property
    def final(self) -> CheckpointMeasures:
        return self.measures[-1]

    @property
    def generalised(self) -> bool:
        return self.final.test_acc >= GROK_ACCURACY

    @property
    def content(self) -> JSON:
        """The JSON form (report.json)."""
        return {
            "version": REPORT_VERSION,
            "run_dir": str(self.run_dir),
            "config": self.config,
            "fourier": self.circuit is not None,
            "generalised": self.generalised,
            "key_frequencies": self.circuit.to_dict() if self.circuit else {},
            "grok_step": self.grok_step,
            "phases": self.phases.to_dict(),
            "final": self.final.to_row(),
            "ablations": [asdict(a) for a in self.ablations],
            "skipped": [asdict(s) for s in self.skipped],
            "unverified_checkpoints": self.unverified,
            "analysed_steps": [m.step for m in self.measures],
            "figures": self.figures,
            **({"tasks": self.tasks.to_dict()} if self.tasks else {}),
        }

    def summary_text(self) -> str:
        cfg, final, c, phases = self.config, self.final, self.circuit, self.phases
        lines = [f"{cfg['task']} p={cfg['p']}: analysed {len(self.measures)} checkpoints "
                 f"(steps {self.measures[0].step}..{final.step}) -> {self.path}"]
        if c is not None:
            what = f"key {c.units}"
            clusters = ", ".join(f"{c.name(r.k)} ({r.neurons} neurons, {r.mean_frac_explained:.0%})"
                                 for r in c.clusters)
            if c.claimed:
                lines.append(f"{what} in the {c.basis} (neuron clusters > {CLUSTER_THRESHOLD:.0%} variance, "
                             f">= {c.min_neurons} neurons): {clusters or 'none'}")
            else:
                lines.append(f"no circuit claimed: the last checkpoint's test accuracy is {final.test_acc:.3f} < "
                             f"{GROK_ACCURACY} (candidate clusters: {clusters or 'none'})")
            lines.append(f"  {c.fraction_clustered:.0%} of neurons clustered; embedding's top: "
                         f"{[c.name(k) for k in c.embedding_top]} ({'agree' if c.agree_with_embedding else 'DISAGREE'})")
            if len(c.per_layer) > 1:
                lines.append(f"  circuit in layer {c.layer}'s MLP; per layer: " + "; ".join(
                    f"layer {r.layer}: {[c.name(k) for k in r.frequencies] or 'none'}, "
                    f"{r.fraction_clustered:.0%} clustered" for r in c.per_layer))
        else:
            lines.append(f"circuit measures: not available for task {cfg['task']} (neither the Z_p grid nor a "
                         "group): losses, accuracies and weight norm only")
        if self.tasks:
            table, order = self.tasks.table, self.tasks.order
            lines.append(f"{len(table)} tasks; grok order (test acc >= 99% per task): "
                         + ", ".join(f"mod {q}" for q in order) + f" ({len(table) - len(order)} not grokked)")
            lines += [f"  {c.claim}: {c.verdict}" for c in self.tasks.claims]
        lines.append(f"final (step {final.step}): train loss {final.train_loss:.3g}, test loss {final.test_loss:.3g}, "
                     f"test acc {final.test_acc:.3f}, restricted {_or_nan(final.restricted_loss):.3g}, "
                     f"excluded {_or_nan(final.excluded_loss):.3g}")
        lines.append(f"grokking step (test acc >= {GROK_ACCURACY:.0%}, metrics.jsonl): {self.grok_step}")
        if not phases.placed:
            lines.append(f"phases: none placed ({phases.note})")
        elif phases.cleanup_start is None:
            lines.append(f"phases: memorization ends {phases.memorization_end}; no cleanup placed ({phases.note})")
        else:
            lines.append(f"phases: memorization ends {phases.memorization_end}, cleanup "
                         f"{phases.cleanup_start}..{phases.cleanup_end}")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable checkpoint(s): "
                         + "; ".join(f"step {s.step}: {s.error}" for s in self.skipped))
        if self.unverified:
            lines.append(f"{len(self.unverified)} checkpoint(s) written before checksums existed: read unverified")
        return "\n".join(lines)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def read_report(analysis_dir: str | Path) -> Report:
    """A finished analysis (report.json, measures.csv, spectrum.csv) read back, without recomputing or writing."""
    analysis_dir = Path(analysis_dir)
    path = analysis_dir / REPORT_FILE
    if not path.is_file():
        raise MechgrokError(f"{analysis_dir} holds no {REPORT_FILE}; run `mechgrok analyze RUN_DIR` first")
    c = read_json(path)
    if not isinstance(c, dict) or c.get("version") not in READABLE_VERSIONS:
        raise MechgrokError(f"{path} is not a mechgrok report of a version this release reads")
    try:
        measures = [CheckpointMeasures.from_row(r, str(analysis_dir / MEASURES_FILE))
                    for r in read_csv(analysis_dir / MEASURES_FILE)]
        circuit = Circuit.from_dict(c["key_frequencies"]) if c.get("key_frequencies") else None
        if circuit is not None and "claimed" not in c["key_frequencies"]:
            circuit.claimed = measures[-1].test_acc >= GROK_ACCURACY
        spectra = Spectra.from_rows(read_csv(analysis_dir / SPECTRUM_FILE), str(analysis_dir / SPECTRUM_FILE))
        return Report(analysis_dir.parent, c["config"], measures, spectra, circuit, Phases.from_dict(c["phases"]),
                      c["grok_step"], [Ablation(**a) for a in c.get("ablations", [])],
                      [Skipped(**s) for s in c.get("skipped", [])], c.get("unverified_checkpoints", []),
                      c.get("figures", []), TaskStudy.from_dict(c.get("tasks", {})))
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as err:
        raise MechgrokError(f"{path} is incomplete ({err})") from None
