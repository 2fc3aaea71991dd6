"""``mechgrok analyze``: measure the chosen checkpoints of a run, place the phases, write RUN_DIR/analysis.

Key irreps (frequencies) come from the last readable checkpoint and are used for the restricted and
excluded loss of *every* checkpoint, as in the paper: the measures track the growth of the circuit
the model finally uses. That checkpoint's forward pass and clustering are computed once and serve
its circuit, its measures row, the ablations and the figures. When it has not generalised (test
accuracy < 99%), the report says so: no circuit is claimed (its clusters are listed as candidates)
and no phase boundary is placed.

The grok step is read from the run's metrics.jsonl (every logged step) with
``mechgrok.metrics.grok_step``, the same value summary.json holds; only a run without metrics falls
back to the analysed checkpoints. A second call reuses the rows (and explorer arrays) of the first
when its key irreps came from the same final checkpoint (``--force`` recomputes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import MechgrokError
from ..fileio import read_csv, read_json, write_csv, write_json
from ..metrics import Objective, grok_step
from ..progress import Progress
from ..hooked import build_model, load_checkpoint
from ..run import EXPLORER_ARRAYS_FILE, MEASURES_FILE, REPORT_FILE, SPECTRUM_FILE, Run, load_run
from ..tasks import Dataset
from . import instruments, trajectory
from .circuit import FinalCheckpoint, Measured, ablations, final_checkpoint, measure, neuron_logit_spectrum
from .miiii import task_study
from .phases import find_phases
from .report import READABLE_VERSIONS, Report, read_report
from .results import CheckpointMeasures, Skipped, Spectra

ArrayRows = dict[int, dict[str, torch.Tensor]]  # the explorer's per-checkpoint arrays, by step


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


class Loader:
    """Loads checkpoints into one model, recording the unreadable (skipped) and the unverified ones."""

    def __init__(self, run: Run, model):
        self.run, self.model = run, model
        self.skipped: dict[int, Skipped] = {}
        self.unverified: set[int] = set()

    def load(self, step: int) -> bool:
        if step in self.skipped:
            return False
        try:
            ckpt = self.run.checkpoint(step)
        except MechgrokError as err:
            self.skipped[step] = Skipped(step, str(err))
            return False
        if not ckpt.verified:
            self.unverified.add(step)
        load_checkpoint(self.model, ckpt.weights)
        return True


@dataclass
class Previous:
    """What an earlier analysis left that still holds: its rows and spectra, and its explorer arrays."""

    rows: dict[int, tuple[CheckpointMeasures, list[float] | None]]
    arrays: ArrayRows


def reusable(out: Path, final_step: int, key: list[int], picked: list[int], with_maps: set[int]) -> Previous:
    """Rows of a previous analysis whose key irreps came from the same checkpoint, each with its explorer arrays
    when the run has them; nothing when there is none or it is damaged."""
    arrays = trajectory.previous_rows(out / EXPLORER_ARRAYS_FILE, picked, final_step) if picked else {}
    try:
        old = read_json(out / REPORT_FILE) if (out / REPORT_FILE).exists() else None
        if not isinstance(old, dict) or old.get("version") not in READABLE_VERSIONS:
            return Previous({}, arrays)
        circuit = old.get("key_frequencies") or {}
        if circuit.get("from_step", final_step) != final_step or circuit.get("frequencies", []) != key:
            return Previous({}, arrays)
        spectra = Spectra.from_rows(read_csv(out / SPECTRUM_FILE))
        rows = [CheckpointMeasures.from_row(r, str(out / MEASURES_FILE)) for r in read_csv(out / MEASURES_FILE)]
    except (MechgrokError, KeyError, TypeError, ValueError, AttributeError):
        return Previous({}, arrays)
    found = {r.step: (r, spectra.at(r.step) if r.step in spectra.steps else None) for r in rows
             if not old.get("fourier") or r.step in spectra.steps}
    if picked:  # a row is reused only with its explorer arrays
        found = {s: v for s, v in found.items() if s in arrays and (s not in with_maps or "maps" in arrays[s])}
    return Previous(found, arrays)


def _fitting(previous: Previous, fresh: dict[str, torch.Tensor] | None) -> Previous:
    """``previous`` without the rows whose explorer arrays are not shaped as this analysis's (a stale file)."""
    if fresh is None:
        return previous
    fits = {s for s, arrays in previous.arrays.items()
            if all(name not in fresh or arrays[name].shape == fresh[name].shape for name in arrays)}
    return Previous({s: v for s, v in previous.rows.items() if s in fits},
                    {s: a for s, a in previous.arrays.items() if s in fits})


def previous_figures(out: Path) -> list[str]:
    """The figures an earlier analysis drew that are still on disk."""
    try:
        names = read_json(out / REPORT_FILE).get("figures", [])
    except (MechgrokError, AttributeError):
        return []
    return [n for n in names if isinstance(n, str) and (out / f"{n}.html").is_file()]


class Measurer:
    """Measures checkpoints against the final checkpoint's key irreps, gathering rows, spectra and arrays."""

    def __init__(self, model, data: Dataset, final: FinalCheckpoint, key: list[int], chosen: list[int],
                 objective: Objective | None = None):
        self.model, self.data, self.final, self.key, self.objective = model, data, final, key, objective
        self.picked = trajectory.pick_neurons(final.clusters, key) if final.clusters else []
        self.with_maps = set(trajectory.map_steps(chosen))
        self.arrays: ArrayRows = {}
        self.rows: list[CheckpointMeasures] = []
        self.spectra = Spectra()

    def measure(self, step: int, grid=None) -> Measured:
        measured = measure(self.model, self.data, step, self.key, grid, self.final.layer, self.objective)
        if measured.clusters is not None and self.picked:
            self.arrays[step] = trajectory.checkpoint_arrays(
                self.model, self.data.lens, measured.clusters,
                neuron_logit_spectrum(self.model, self.data.lens, self.final.layer), measured.neurons, self.picked,
                self.key, step in self.with_maps)
        return measured

    def add(self, row: CheckpointMeasures, spectrum: list[float] | None) -> None:
        self.rows.append(row)
        if spectrum is not None:
            self.spectra.append(row.step, spectrum)


def analyze_run(run_dir: str | Path, every: int = 1, steps: list[int] | None = None, force: bool = False,
                figures: bool = True, progress: bool = True, png: bool = False) -> Report:
    """Measure the chosen checkpoints of a run and write ``RUN_DIR/analysis/`` (report.json once, at the end).

    Figures are HTML; ``png`` adds PNG copies (kaleido + Chromium, seconds more). Rows of a previous call
    are reused when its key irreps came from the same final checkpoint (``force=True`` recomputes
    everything); a damaged previous analysis is recomputed.
    """
    run = load_run(run_dir)
    chosen = select_steps(run, every, steps)
    metric_rows = run.metrics()  # read (and checked) before any work
    data = run.dataset
    model = build_model(run.config.model, run.d_vocab, run.n_classes)
    loader = Loader(run, model)
    final_step = next((s for s in reversed(chosen) if loader.load(s)), None)
    if final_step is None:
        raise MechgrokError(f"no checkpoint of {run.path} could be read")
    final = final_checkpoint(model, data, final_step)
    key = final.clusters.key_frequencies if final.clusters else []
    out = run.analysis_dir
    objective = Objective(data.heads, mean=run.config.optim.task_loss == "mean")  # the loss the run minimised
    measurer = Measurer(model, data, final, key, chosen, objective)
    previous = Previous({}, {}) if force else reusable(out, final_step, key, measurer.picked, measurer.with_maps)
    final_measured = measurer.measure(final_step, final.grid)
    previous = _fitting(previous, measurer.arrays.get(final_step))
    measurer.arrays.update({s: a for s, a in previous.arrays.items() if s != final_step})
    circuit = final.circuit(final_measured.row.test_acc)
    table = [] if circuit is None else ablations(model, data, key, circuit.control_frequency, final.grid.logits,
                                                 final.layer)
    _measure_all(measurer, loader, chosen, final_measured, previous, progress)

    report = Report(run.path, run.config.to_dict(), measurer.rows, measurer.spectra, circuit,
                    find_phases(measurer.rows),
                    grok_step(metric_rows) if metric_rows else grok_step([m.to_row() for m in measurer.rows]),
                    table, sorted(loader.skipped.values(), key=lambda s: s.step), sorted(loader.unverified))
    if len(data.heads) > 1 and metric_rows and loader.load(final_step):
        report.tasks = task_study(model.W_E.detach(), data.p, data.heads, metric_rows)
    pca = instruments.weight_pca(run, trajectory.present_steps([m.step for m in report.measures], measurer.arrays)) \
        if measurer.arrays else None
    _write(report, out, measurer, final, figures, png, previous, pca)
    return report


def _measure_all(measurer: Measurer, loader: Loader, chosen: list[int], final: Measured, previous: Previous,
                 progress: bool) -> None:
    """Every chosen checkpoint's row, in step order: the final one's as measured, earlier ones reused or measured."""
    bar = Progress(len(chosen), desc="analyse", enabled=progress)
    for step in chosen:
        bar.update(1)
        if step == final.row.step:
            measurer.add(final.row, _values(final.spectrum))
        elif step in previous.rows:
            measurer.add(*previous.rows[step])
        elif loader.load(step):
            measured = measurer.measure(step)
            measurer.add(measured.row, _values(measured.spectrum))
    bar.close()


def _values(spectrum: torch.Tensor | None) -> list[float] | None:
    return None if spectrum is None else [float(v) for v in spectrum]


def _write(report: Report, out: Path, measurer: Measurer, final: FinalCheckpoint, figures: bool, png: bool,
           previous: Previous, pca: tuple[torch.Tensor, torch.Tensor] | None) -> None:
    """The analysis directory: explorer arrays, figures, measures.csv, spectrum.csv, and report.json last."""
    out.mkdir(exist_ok=True)
    if measurer.arrays:
        trajectory.save_arrays(out / EXPLORER_ARRAYS_FILE, [m.step for m in report.measures], measurer.arrays,
                               measurer.picked, final.step, pca)
    if figures:
        from .figure_set import write_figures

        report.figures = write_figures(report, final, png)
    elif all(m.step in previous.rows or m.step == final.step for m in report.measures):
        report.figures = previous_figures(out)  # nothing changed: the figures drawn before still hold
    write_csv(out / MEASURES_FILE, [m.to_row() for m in report.measures])
    if report.spectra:
        write_csv(out / SPECTRUM_FILE, report.spectra.to_rows())
    write_json(out / REPORT_FILE, report.content)


def load_report(run_dir: str | Path, progress: bool = False) -> Report:
    """The run's analysis: read from RUN_DIR/analysis when it exists (never rewritten), else computed once."""
    run = load_run(run_dir)
    if (run.analysis_dir / REPORT_FILE).is_file():
        return read_report(run.analysis_dir)
    return analyze_run(run.path, progress=progress)
