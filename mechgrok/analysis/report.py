"""``mechgrok analyze``: measures on every checkpoint of a run, phases, report, figures.

Key frequencies come from the last readable checkpoint and are used for the restricted and
excluded loss of *every* checkpoint, as in the paper: the measures track the growth of the
circuit the model finally uses.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..checkpoints import atomic_write, read_json, write_json
from ..errors import MechgrokError
from ..model import build_hooked_transformer
from ..run import Run, load_run, load_weights
from ..train import GROK_ACCURACY, first_grok_step
from .circuit import fourier_ablations, measure, run_grid
from .fourier import embedding_spectrum
from .measures import CLUSTER_THRESHOLD, neuron_clusters, top_frequencies
from .phases import find_phases

REPORT_VERSION = 1


@dataclass
class Report:
    """What ``analyze_run`` computed; ``report.json`` holds the same content."""

    run: Run
    content: dict[str, Any]
    measures: list[dict[str, Any]] = field(default_factory=list)
    spectra: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.run.path / "analysis"

    def summary_text(self) -> str:
        c = self.content
        key = c["key_frequencies"]
        phases = c["phases"]
        lines = [
            f"{c['config']['task']} p={c['config']['p']}: analysed {len(self.measures)} checkpoints "
            f"(steps {self.measures[0]['step']}..{self.measures[-1]['step']}) -> {self.path}",
        ]
        if c["fourier"]:
            lines += [
                f"key frequencies (neuron clusters > {CLUSTER_THRESHOLD:.0%} variance, >= {key['min_neurons']} neurons): "
                + (", ".join(f"k={r['k']} ({r['neurons']} neurons, {r['mean_frac_explained']:.0%})" for r in key["clusters"])
                   or "none"),
                f"  {key['fraction_clustered']:.0%} of neurons clustered; embedding's top frequencies: "
                f"{key['embedding_top']} ({'agree' if key['agree_with_embedding'] else 'DISAGREE'})",
            ]
        final = c["final"]
        lines.append(f"final (step {final['step']}): train loss {final['train_loss']:.3g}, test loss {final['test_loss']:.3g}, "
                     f"test acc {final['test_acc']:.3f}, restricted {final.get('restricted_loss', math.nan):.3g}, "
                     f"excluded {final.get('excluded_loss', math.nan):.3g}")
        lines.append(f"grokking step (test acc >= {GROK_ACCURACY:.0%}): {c['grok_step']}")
        lines.append("phases: memorization ends {memorization_end}, cleanup {cleanup_start}..{cleanup_end}".format(**phases))
        if c["skipped"]:
            lines.append(f"skipped {len(c['skipped'])} unreadable checkpoint(s): "
                         + "; ".join(f"step {s['step']}: {s['error']}" for s in c["skipped"]))
        return "\n".join(lines)


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


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically write ``rows`` with every column any row has (blank where a row lacks it)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
    atomic_write(path, write)


def read_csv(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [{k: float(v) if k != "step" else int(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _final_circuit(run: Run, model, candidates: list[int], skipped: list[dict]) -> tuple[int, dict[str, Any], list[dict]]:
    """Key frequencies and ablations of the last readable checkpoint among ``candidates``."""
    data = run.dataset
    for step in reversed(candidates):
        try:
            load_weights(model, run.state_dict(step)[0])
        except MechgrokError as err:
            skipped.append({"step": step, "error": str(err)})
            continue
        if not data.is_full_grid:
            return step, {}, []
        clusters = neuron_clusters(run_grid(model, data).neurons)
        spectrum = embedding_spectrum(model.W_E.detach(), data.p)
        key = clusters.key_frequencies
        embedding_top = top_frequencies(spectrum, max(len(key), 1))
        control = max((k for k in range(1, len(spectrum)) if k not in key), key=lambda k: float(spectrum[k]),
                      default=None)
        info = {
            "frequencies": key,
            "clusters": clusters.table(),
            "cluster_sizes_all": clusters.cluster_sizes(),
            "fraction_clustered": clusters.fraction_clustered,
            "threshold": clusters.threshold,
            "min_neurons": clusters.min_neurons,
            "embedding_top": embedding_top,
            "agree_with_embedding": sorted(embedding_top) == key,
            "from_step": step,
        }
        return step, info, fourier_ablations(model, data, key, control)
    raise MechgrokError(f"no checkpoint of {run.path} could be read")


def analyze_run(run_dir: str | Path, every: int = 1, steps: list[int] | None = None, force: bool = False,
                figures: bool = True, progress: bool = True) -> Report:
    """Measure the chosen checkpoints of a run and write ``RUN_DIR/analysis/``.

    Rows of a previous call are reused when the key frequencies came from the same final
    checkpoint (pass ``force=True`` to recompute everything).
    """
    run = load_run(run_dir)
    chosen = select_steps(run, every, steps)
    data = run.dataset
    out = run.path / "analysis"
    out.mkdir(exist_ok=True)
    model = build_hooked_transformer(run.config, run.d_vocab, run.n_classes)
    skipped: list[dict] = []
    final_step, key_info, ablations = _final_circuit(run, model, chosen, skipped)
    key = key_info.get("frequencies", [])

    previous = {} if force else _reusable(out, final_step, key)
    measures, spectra = [], []
    for step in tqdm(chosen, disable=not progress or None, desc="analyse", dynamic_ncols=True):
        if step in previous:
            row, spectrum_row = previous[step]
            measures.append(row)
            if spectrum_row is not None:
                spectra.append(spectrum_row)
            continue
        if any(s["step"] == step for s in skipped):
            continue
        try:
            load_weights(model, run.state_dict(step)[0])
        except MechgrokError as err:
            skipped.append({"step": step, "error": str(err)})
            continue
        row, spectrum = measure(model, data, key)
        measures.append({"step": step, **row})
        if spectrum is not None:
            spectra.append({"step": step, **{f"k{k}": float(v) for k, v in enumerate(spectrum)}})

    phases = find_phases(measures)
    content = {
        "version": REPORT_VERSION,
        "run_dir": str(run.path),
        "config": run.config.to_dict(),
        "fourier": data.is_full_grid,
        "key_frequencies": key_info,
        "grok_step": first_grok_step(measures),
        "phases": phases,
        "final": measures[-1],
        "ablations": ablations,
        "skipped": sorted(skipped, key=lambda s: s["step"]),
        "analysed_steps": [m["step"] for m in measures],
    }
    write_csv(out / "measures.csv", measures)
    if spectra:
        write_csv(out / "spectrum.csv", spectra)
    write_json(out / "report.json", content)
    report = Report(run, content, measures, spectra)
    if figures:
        from .figures import write_figures
        content["figures"] = write_figures(report)
        write_json(out / "report.json", content)
    return report


def _reusable(out: Path, final_step: int, key: list[int]) -> dict[int, tuple[dict, dict]]:
    """Rows of a previous analysis whose key frequencies came from the same checkpoint."""
    report_path = out / "report.json"
    if not report_path.exists():
        return {}
    old = read_json(report_path)
    if old.get("version") != REPORT_VERSION or old.get("key_frequencies", {}).get("from_step", final_step) != final_step \
            or old.get("key_frequencies", {}).get("frequencies", []) != key:
        return {}
    spectra = {int(r["step"]): r for r in read_csv(out / "spectrum.csv")}
    return {r["step"]: (r, spectra.get(r["step"])) for r in read_csv(out / "measures.csv")
            if not old["fourier"] or r["step"] in spectra}
