"""``mechgrok analyze``: measures on every checkpoint of a run, phases, report, figures.

Key frequencies come from the last readable checkpoint and are used for the restricted and
excluded loss of *every* checkpoint, as in the paper: the measures track the growth of the
circuit the model finally uses. That checkpoint's forward pass and clustering are computed
once and serve its circuit, its measures row, the ablations and the figures. When it has not
generalised (test accuracy < 99%), the report says so: no circuit is claimed (its clusters are
listed as candidates) and no phase boundary is placed.

The grok step is read from the run's metrics.jsonl (every logged step) with
``mechgrok.metrics.grok_step``, the same value summary.json holds; only a run without
metrics falls back to the analysed checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MechgrokError
from ..fileio import read_csv, read_json, write_csv, write_json
from ..metrics import GROK_ACCURACY, grok_step
from ..progress import Progress
from ..run import EXPLORER_ARRAYS_FILE, MEASURES_FILE, REPORT_FILE, SPECTRUM_FILE, Run, load_run, load_weights
from . import trajectory
from .circuit import final_checkpoint, fourier_ablations, group_ablations, measure, neuron_logit_spectrum
from .group_measures import task_lens
from .measures import CLUSTER_THRESHOLD
from .phases import find_phases
from .results import Ablation, CheckpointMeasures, Circuit, Phases

REPORT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: before typed results; same fields, fewer of them


@dataclass
class Report:
    """What ``analyze_run`` computed; ``report.json`` holds ``content``, the CSVs the rows."""

    run_dir: Path
    config: dict[str, Any]
    measures: list[CheckpointMeasures]
    spectra: list[dict[str, float]]
    circuit: Circuit | None
    phases: Phases
    grok_step: int | None
    ablations: list[Ablation] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    unverified: list[int] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    tasks: dict[str, Any] = field(default_factory=dict)  # multi-task runs: per-task table, grok order, claims

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
    def content(self) -> dict[str, Any]:
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
            "skipped": self.skipped,
            "unverified_checkpoints": self.unverified,
            "analysed_steps": [m.step for m in self.measures],
            "figures": self.figures,
            **({"tasks": self.tasks} if self.tasks else {}),
        }

    def summary_text(self) -> str:
        cfg, final, c, phases = self.config, self.final, self.circuit, self.phases
        lines = [f"{cfg['task']} p={cfg['p']}: analysed {len(self.measures)} checkpoints "
                 f"(steps {self.measures[0].step}..{final.step}) -> {self.path}"]
        if c is not None:
            what = "key frequencies" if not c.irrep_names else "key irreps"
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
                    f"layer {r['layer']}: {[c.name(k) for k in r['frequencies']] or 'none'}, "
                    f"{r['fraction_clustered']:.0%} clustered" for r in c.per_layer))
        else:
            lines.append(f"circuit measures: not available for task {cfg['task']} (neither the Z_p grid nor a "
                         "group): losses, accuracies and weight norm only")
        if self.tasks:
            table = self.tasks["table"]
            lines.append(f"{len(table)} tasks; grok order (test acc >= 99% per task): "
                         + ", ".join(f"mod {q}" for q in self.tasks["order"])
                         + f" ({len(table) - len(self.tasks['order'])} not grokked)")
            lines += [f"  {c['claim']}: {c['verdict']}" for c in self.tasks["claims"]]
        lines.append(f"final (step {final.step}): train loss {final.train_loss:.3g}, test loss {final.test_loss:.3g}, "
                     f"test acc {final.test_acc:.3f}, restricted {_or_nan(final.restricted_loss):.3g}, "
                     f"excluded {_or_nan(final.excluded_loss):.3g}")
        lines.append(f"grokking step (test acc >= {GROK_ACCURACY:.0%}, metrics.jsonl): {self.grok_step}")
        if phases.placed:
            if phases.cleanup_start is None:
                note = phases.evidence.get("note", "") if isinstance(phases.evidence, dict) else phases.evidence
                lines.append(f"phases: memorization ends {phases.memorization_end}; no cleanup placed ({note})")
            else:
                lines.append(f"phases: memorization ends {phases.memorization_end}, cleanup "
                             f"{phases.cleanup_start}..{phases.cleanup_end}")
        else:
            note = phases.evidence.get("note", "") if isinstance(phases.evidence, dict) else phases.evidence
            lines.append(f"phases: none placed ({note})")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable checkpoint(s): "
                         + "; ".join(f"step {s['step']}: {s['error']}" for s in self.skipped))
        if self.unverified:
            lines.append(f"{len(self.unverified)} checkpoint(s) written before checksums existed: read unverified")
        return "\n".join(lines)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def select_steps(run: Run, every: int = 1, steps: list[int] | None = None) -> list[int]:
    """The checkpoints to analyse: ``steps`` if given (each must exist), else every ``every``-th plus the last."""
    if not run.steps:
        raise MechgrokError(f"{run.path} has no checkpoints")
    if steps:
        unknown = sorted(set(steps) - set(run.steps))
        if unknown:
            raise MechgrokError(f"{run.path} has no checkpoint at step(s) {unknown}; it has {run.steps[0]}..{run.steps[-1]}")
        return sorted(set(steps))
    if every < 1:
        raise MechgrokError(f"--every must be a positive integer, got {every}")
    return sorted(set(run.steps[::every]) | {run.steps[-1]})


class _Loader:
    """Loads checkpoints into one model, recording the unreadable (skipped) and the unverified ones."""

    def __init__(self, run: Run, model):
        self.run, self.model = run, model
        self.skipped: list[dict[str, Any]] = []
        self.unverified: list[int] = []

    def load(self, step: int) -> bool:
        try:
            ckpt = self.run.checkpoint(step)
        except MechgrokError as err:
            self.skipped.append({"step": step, "error": str(err)})
            return False
        if not ckpt.verified:
            self.unverified.append(step)
        load_weights(self.model, ckpt.weights)
        return True


def analyze_run(run_dir: str | Path, every: int = 1, steps: list[int] | None = None, force: bool = False,
                figures: bool = True, progress: bool = True, png: bool = False) -> Report:
    """Measure the chosen checkpoints of a run and write ``RUN_DIR/analysis/`` (report.json once, at the end).

    Figures are HTML; ``png`` adds PNG copies (kaleido + Chromium, seconds more).
    Rows of a previous call are reused when its key frequencies came from the same final
    checkpoint (pass ``force=True`` to recompute everything); a damaged previous analysis is
    recomputed.
    """
    from ..model import build_hooked_transformer
    run = load_run(run_dir)
    chosen = select_steps(run, every, steps)
    data = run.dataset
    model = build_hooked_transformer(run.config.model, run.d_vocab, run.n_classes)
    loader = _Loader(run, model)
    final_step = next((s for s in reversed(chosen) if loader.load(s)), None)
    if final_step is None:
        raise MechgrokError(f"no checkpoint of {run.path} could be read")
    lens = task_lens(data)
    final = final_checkpoint(model, data, final_step, lens)
    key = final.clusters.key_frequencies if final.clusters else []
    final_measured = measure(model, data, final_step, key, final.grid, lens, final.layer)
    circuit = final.circuit(final_measured.row.test_acc)
    if circuit is None:
        ablations = []
    elif lens is None:
        ablations = fourier_ablations(model, data, key, circuit.control_frequency, final.grid.logits, final.layer)
    else:
        ablations = group_ablations(model, data, lens, key, circuit.control_frequency, final.grid.logits, final.layer)
    # the explorer's per-checkpoint arrays (runs with a basis), computed in the same pass as the measures
    out = run.analysis_dir
    picked = trajectory.pick_neurons(final.clusters, key) if final.clusters else []
    with_maps = set(trajectory.map_steps(chosen))
    arrays = {} if force or not picked else trajectory.previous_rows(out / EXPLORER_ARRAYS_FILE, picked, final_step)

    def add_arrays(step: int, measured) -> None:
        if measured.clusters is not None and picked:
            arrays[step] = trajectory.checkpoint_arrays(
                model, measured.clusters, neuron_logit_spectrum(model, data.p, lens, final.layer),
                measured.neurons if step in with_maps else None, picked)

    add_arrays(final_step, final_measured)
    previous = {} if force else _reusable(out, final_step, key)
    if picked:  # a row is reused only with its explorer arrays
        previous = {s: v for s, v in previous.items() if s in arrays and (s not in with_maps or "maps" in arrays[s])}
    measures, spectra = [], []
    bar = Progress(len(chosen), desc="analyse", enabled=progress)
    for step in chosen:
        bar.update(1)
        if step == final_step:
            measured = final_measured
        elif step in previous:
            measures.append(previous[step][0])
            if previous[step][1] is not None:
                spectra.append(previous[step][1])
            continue
        elif any(s["step"] == step for s in loader.skipped) or not loader.load(step):
            continue
        else:
            measured = measure(model, data, step, key, lens=lens, layer=final.layer)
            add_arrays(step, measured)
        measures.append(measured.row)
        if measured.spectrum is not None:
            spectra.append({"step": step, **{f"k{k}": float(v) for k, v in enumerate(measured.spectrum)}})
    bar.close()

    metric_rows = run.metrics()
    report = Report(run.path, run.config.to_dict(), measures, spectra, circuit, find_phases(measures),
                    grok_step(metric_rows) if metric_rows else grok_step([m.to_row() for m in measures]),
                    ablations, sorted(loader.skipped, key=lambda s: s["step"]), sorted(set(loader.unverified)))
    if len(data.heads) > 1 and metric_rows:
        report.tasks = _tasks(model if loader.load(final_step) else None, data, metric_rows)
    out.mkdir(exist_ok=True)
    if arrays:
        trajectory.save_arrays(out / EXPLORER_ARRAYS_FILE, [m.step for m in measures], arrays, picked, final_step)
    if figures:
        from .figures import write_figures

        report.figures = write_figures(report, final, png)
    elif all(step in previous or step == final_step for step in report.content["analysed_steps"]):
        report.figures = _previous_figures(out)  # nothing changed: the figures drawn before still hold
    write_csv(out / MEASURES_FILE, [m.to_row() for m in measures])
    if spectra:
        write_csv(out / SPECTRUM_FILE, spectra)
    write_json(out / REPORT_FILE, report.content)
    return report


def _tasks(model, data, metric_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A multi-task run's per-task table (``mechgrok.miiii.task_table``) with the final W_E's fits, the order in
    which the tasks grok and the study's claims on it."""
    from ..miiii import claims, embedding_task_spectrum, grok_order, task_table

    spectrum = embedding_task_spectrum(model.W_E.detach(), data.p, data.heads)
    table = task_table(metric_rows, data.heads, {s["q"]: s["r2"] for s in spectrum},
                       {s["q"]: s["noise_r2"] for s in spectrum})
    return {"table": table, "order": grok_order(table), "claims": claims(table)}


def _reusable(out: Path, final_step: int, key: list[int]) -> dict[int, tuple[CheckpointMeasures, dict | None]]:
    """Rows of a previous analysis whose key frequencies came from the same checkpoint; {} when none or damaged."""
    try:
        old = read_json(out / REPORT_FILE) if (out / REPORT_FILE).exists() else None
        if not isinstance(old, dict) or old.get("version") not in READABLE_VERSIONS:
            return {}
        circuit = old.get("key_frequencies") or {}
        if circuit.get("from_step", final_step) != final_step or circuit.get("frequencies", []) != key:
            return {}
        spectra = {int(r["step"]): r for r in read_csv(out / SPECTRUM_FILE)}
        rows = [CheckpointMeasures.from_row(r, str(out / MEASURES_FILE)) for r in read_csv(out / MEASURES_FILE)]
        return {r.step: (r, spectra.get(r.step)) for r in rows if not old.get("fourier") or r.step in spectra}
    except (MechgrokError, KeyError, TypeError, ValueError, AttributeError):
        return {}


def _previous_figures(out: Path) -> list[str]:
    try:
        names = read_json(out / REPORT_FILE).get("figures", [])
    except (MechgrokError, AttributeError):
        return []
    return [n for n in names if isinstance(n, str) and (out / f"{n}.html").is_file()]


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
        return Report(analysis_dir.parent, c["config"], measures, read_csv(analysis_dir / SPECTRUM_FILE), circuit,
                      Phases.from_dict(c["phases"]), c["grok_step"], [Ablation(**a) for a in c.get("ablations", [])],
                      c.get("skipped", []), c.get("unverified_checkpoints", []), c.get("figures", []),
                      c.get("tasks", {}))
    except (KeyError, TypeError, IndexError) as err:
        raise MechgrokError(f"{path} is incomplete ({err})") from None


def load_report(run_dir: str | Path, progress: bool = False) -> Report:
    """The run's analysis: read from RUN_DIR/analysis when it exists (never rewritten), else computed once."""
    run = load_run(run_dir)
    if (run.analysis_dir / REPORT_FILE).is_file():
        return read_report(run.analysis_dir)
    return analyze_run(run.path, progress=progress)

