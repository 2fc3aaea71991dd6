"""Sweeps: one base config, a grid over any config fields, every point trained (and analysed) as one task.

A spec is a TOML file::

    name = "seeds_p113"                 # optional; default: the file's stem
    out = "results/sweeps/seeds_p113"   # optional; default: checkpoints/sweep_<name>
    analyze = true                      # run `mechgrok analyze` (no figures) on each run
    [base]                              # any config fields, flat or in [base.optim]-style tables
    task = "add"
    p = 113
    [grid]                              # field -> list of values; the grid is their product
    seed = [0, 1, 2, 3, 4]

The sweep directory holds ``sweep.json`` (the spec that owns it), ``runs/<point>/`` (ordinary
run directories, named ``field-value_field-value``), ``sweep.csv`` / ``sweep.md`` (one row per
run) and the cross-run figures of ``mechgrok.sweep_figures``. Re-running the command reuses
finished runs and resumes interrupted ones (each run directory resumes on its own), so a
killed sweep continues where it stopped.

Backends: ``local`` (worker processes, one torch thread each: on these small models two
single-threaded runs side by side make more steps per second than one run on two threads)
and ``ray`` (a local Ray cluster, or an existing one with ``address``; the optional extra
``mechgrok[ray]``). Every run trains with ``threads = 1`` unless the spec says otherwise, so a
run's numbers are the same bit for bit whichever backend, and however many workers, ran it.
On a multi-node Ray cluster the sweep directory must be on a filesystem every node sees.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .config import FIELD_SECTION, ConfigValues, FieldValue, TrainConfig
from .errors import MechgrokError
from .fileio import JSONObject, Row, read_document, read_json, write_json
from .metrics import GROK_ACCURACY
from .progress import Progress
from .run import ANALYSIS_DIR, REPORT_FILE, SUMMARY_FILE, read_summary
from .runtime import check_memory, resolve_device

Grid = dict[str, list[FieldValue]]  # a sweep's axes: field -> the values it takes

SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
TABLE_NAME = "sweep"  # sweep.csv and sweep.md
SWEEP_FORMAT = "mechgrok.sweep"
SPEC_KEYS = ("name", "out", "analyze", "batch", "base", "grid")
BACKENDS = ("local", "ray")
MAX_BATCH = 4096
# Omnigrok's outcomes (Liu et al. 2023), from the last logged metrics of a run.
OUTCOMES = ("generalises", "memorises only", "fails to fit")


@dataclass(frozen=True)
class SweepSpec:
    """A validated spec: ``points`` holds every grid point's config, built (and so checked) up front."""

    name: str
    out: Path
    analyze: bool
    base: ConfigValues
    grid: dict[str, list[Any]]
    points: list[tuple[str, TrainConfig]] = field(repr=False)
    batch: int = 1  # runs trained together in one process (mechgrok.batched); not part of the identity

    @property
    def identity(self) -> JSONObject:
        """What the sweep computes: two specs with the same identity may share a directory."""
        return {"format": SWEEP_FORMAT, "base": self.base, "grid": self.grid, "analyze": self.analyze}


def point_name(values: ConfigValues) -> str:
    """``field-value_field-value``: a run directory name, one per grid point."""
    return "_".join(f"{k}-{re.sub(r'[^A-Za-z0-9.+-]', '', str(v))}" for k, v in values.items())


def load_spec(path: str | Path, out: str | Path | None = None) -> SweepSpec:
    """Read and check a spec; every grid point's config is built here, before anything is created."""
    path = Path(path)
    doc = read_document(path, "sweep spec")
    where = f"sweep spec {path}"
    if not isinstance(doc, dict):
        raise MechgrokError(f"{where}: expected a TOML table")
    unknown = sorted(set(doc) - set(SPEC_KEYS))
    if unknown:
        raise MechgrokError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; a spec has "
                            f"{', '.join(SPEC_KEYS)}")
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise MechgrokError(f"{where}: name must be letters, digits, '_', '.' or '-', got {name!r}")
    analyze = doc.get("analyze", False)
    if not isinstance(analyze, bool):
        raise MechgrokError(f"{where}: analyze must be true or false, got {analyze!r}")
    batch = doc.get("batch", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise MechgrokError(f"{where}: batch must be an integer from 1 to {MAX_BATCH}, got {batch!r}")
    base = TrainConfig.checked_values(doc.get("base", {}), f"{where} [base]")
    grid = doc.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise MechgrokError(f"{where}: the grid is empty; give [grid] at least one field with a list of values")
    for key, values in grid.items():
        if key not in FIELD_SECTION:
            raise MechgrokError(f"{where}: unknown field {key!r} in [grid]")
        if key == "out":
            raise MechgrokError(f"{where}: 'out' cannot be swept; each run's directory is named by its grid point")
        if not isinstance(values, list) or not values:
            raise MechgrokError(f"{where}: grid field {key} needs a non-empty list of values, got {values!r}")
        if len({repr(v) for v in values}) < len(values):
            raise MechgrokError(f"{where}: grid field {key} repeats a value")
        if key in base:
            raise MechgrokError(f"{where}: field {key} is both in [base] and in [grid]")
    if not isinstance(doc.get("out", ""), str):
        raise MechgrokError(f"{where}: out must be a directory path (a string), got {doc['out']!r}")
    out = Path(out or doc.get("out") or Path("checkpoints") / f"sweep_{name}")
    runs = out / RUNS_DIR
    base = {"threads": 1, **base}  # one thread per run: the same bits on every backend (module docstring)
    points = []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        run_name = point_name(values)
        checked = TrainConfig.checked_values(values, f"{where} [grid] point {run_name}")
        try:
            cfg = TrainConfig(**{**base, **checked, "out": str(runs / run_name)})
        except MechgrokError as err:
            raise MechgrokError(f"{where}: grid point {run_name}: {str(err).removeprefix('config: ')}") from None
        same = next((name for name, _ in points if name == run_name), None)
        if same is not None:
            raise MechgrokError(f"{where}: two grid points map to the run directory {run_name} (values that differ "
                                "only in characters a directory name leaves out); make them differ")
        points.append((run_name, cfg))
    return SweepSpec(name, out, analyze, base, {k: list(v) for k, v in grid.items()}, points, batch)


def claim_directory(spec: SweepSpec) -> None:
    """Create ``spec.out`` with its ``sweep.json``, or accept it when it already holds this same sweep."""
    marker = spec.out / SWEEP_FILE
    if marker.is_file():
        theirs = read_json(marker)
        if theirs != spec.identity:
            raise MechgrokError(f"{spec.out} holds another sweep (its {SWEEP_FILE} has a different base, grid or "
                                f"analyze); give this one its own out")
        return
    if spec.out.exists() and (not spec.out.is_dir() or any(spec.out.iterdir())):
        raise MechgrokError(f"{spec.out} exists and is not a sweep directory; give the sweep an empty or new out")
    try:
        (spec.out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MechgrokError(f"cannot create {spec.out} ({err.strerror or err})") from None
    write_json(marker, spec.identity)


# -- running ---------------------------------------------------------------------------------------
def is_done(cfg: TrainConfig) -> bool:
    """Whether ``cfg``'s run directory holds a finished run: its summary reached ``steps`` or the early stop."""
    path = Path(cfg.run.out) / SUMMARY_FILE
    if not path.is_file():
        return False
    try:
        summary = read_summary(path)
    except MechgrokError:  # damaged: the run is trained (resumed) again, which rewrites it
        return False
    steps, test_acc = summary["steps"], summary["test_acc"]
    stop = cfg.run.stop_at_test_acc
    return steps >= cfg.optim.steps or (bool(stop) and test_acc >= stop)


def run_task(cfg: TrainConfig, analyze: bool = False) -> str:
    """One sweep task: train (or resume, or skip when finished) and optionally analyse; returns the run dir."""
    from .train import train

    if not is_done(cfg):
        train(cfg, progress=False)
    if analyze and not (Path(cfg.run.out) / ANALYSIS_DIR / REPORT_FILE).is_file():
        from .analysis.pipeline import analyze_run

        analyze_run(cfg.run.out, figures=False, progress=False)
    return cfg.run.out


def run_unit(unit: list[TrainConfig], analyze: bool = False) -> list[str | MechgrokError]:
    """One worker's task: a run, or a batch of runs trained together (``mechgrok.batched``), each then analysed
    when asked; per run, its directory or the one-line error that stopped it."""
    if len(unit) == 1:
        try:
            return [run_task(unit[0], analyze)]
        except MechgrokError as err:
            return [err]
    from .batched import train_batch

    todo = [cfg for cfg in unit if not is_done(cfg)]
    trained = {o.cfg.run.out: o for o in train_batch(todo)} if todo else {}
    results: list[str | MechgrokError] = []
    for cfg in unit:
        outcome = trained.get(cfg.run.out)
        if outcome is not None and outcome.error is not None:
            results.append(outcome.error)
            continue
        try:
            results.append(run_task(cfg, analyze))  # trained: only the analysis is left
        except MechgrokError as err:
            results.append(err)
    return results


def worker_unit(unit: list[TrainConfig], analyze: bool = False) -> list[str | MechgrokError]:
    """``run_unit`` in a worker process of ours (a pool's or Ray's), which trains with the training allocator policy
    (``runtime.large_buffer_policy``)."""
    from .runtime import large_buffer_policy

    large_buffer_policy("reuse")
    return run_unit(unit, analyze)


WORKER_STOPPED = ("a worker process stopped abruptly (killed by a signal, or out of memory); the runs finished "
                  "are kept: re-run the same command to resume the others from their last checkpoints")


def _local(units: list[list[TrainConfig]], analyze: bool, jobs: int,
           address: str | None) -> Iterator[tuple[int, Any]]:
    """Yield (index, per-run outcomes or an exception) as units finish, from ``jobs`` worker processes (in-process
    for 1)."""
    if jobs <= 1:
        for index, unit in enumerate(units):
            yield index, run_unit(unit, analyze)
        return
    # spawn, not fork: a forked child inherits the parent's OpenMP thread pool in an unusable state
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(worker_unit, unit, analyze): index for index, unit in enumerate(units)}
        for future in as_completed(futures):
            error = future.exception()
            if isinstance(error, BrokenProcessPool):  # a worker died: the pool stops every run in it
                raise MechgrokError(WORKER_STOPPED) from None
            yield futures[future], error if error is not None else future.result()


def _ray(units: list[list[TrainConfig]], analyze: bool, jobs: int, address: str | None) -> Iterator[tuple[int, Any]]:
    """The same, as Ray tasks of one CPU each on a local cluster of ``jobs`` CPUs, or on the cluster at ``address``."""
    try:
        import ray
    except ImportError:
        raise MechgrokError("--backend ray needs Ray: pip install 'mechgrok[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, num_cpus=None if address else jobs, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise MechgrokError(f"cannot start or reach a Ray cluster{f' at {address}' if address else ''}: "
                                f"{str(err).splitlines()[0]}") from None
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(worker_unit)
        pending = {remote.remote(unit, analyze): index for index, unit in enumerate(units)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            try:
                yield index, ray.get(done[0])
            except ray.exceptions.RayTaskError as err:
                yield index, err.cause if isinstance(err.cause, Exception) else MechgrokError(str(err))
            except ray.exceptions.RayError:  # the worker died (killed, out of memory) or its node left
                raise MechgrokError(WORKER_STOPPED) from None
    finally:
        if started_here:
            ray.shutdown()


BACKEND_RUNNERS: dict[str, Callable[..., Iterator[tuple[int, Any]]]] = {"local": _local, "ray": _ray}


def execute(configs: list[TrainConfig], backend: str = "local", jobs: int = 1, address: str | None = None,
            analyze: bool = False, progress: bool = True, desc: str = "runs", batch: int = 1) -> dict[str, str]:
    """Train (and optionally analyse) every config not yet finished; returns {run dir: error} for the failed ones.

    ``batch`` > 1: runs that share the model's shapes train together, up to ``batch`` per worker
    (``mechgrok.batched``). Paths are made absolute first, since a Ray worker's working directory is not the
    caller's.
    """
    from .batched import batch_groups

    if backend not in BACKENDS:
        raise MechgrokError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if jobs < 1:
        raise MechgrokError(f"--jobs must be at least 1, got {jobs}")
    side_by_side = jobs > 1 or backend == "ray"  # then torch's default of every core per run oversubscribes
    configs = [cfg.replace(out=str(Path(cfg.run.out).resolve()),
                           threads=1 if side_by_side and not cfg.run.threads else cfg.run.threads) for cfg in configs]
    todo = [cfg for cfg in configs if not (is_done(cfg) and (not analyze or (
        Path(cfg.run.out) / ANALYSIS_DIR / REPORT_FILE).is_file()))]
    units = batch_groups(todo, batch) if batch > 1 else [[cfg] for cfg in todo]
    bar = Progress(len(configs), len(configs) - len(todo), desc, progress, interval=10.0)
    failures = {}
    for index, outcomes in BACKEND_RUNNERS[backend](units, analyze, jobs, address):
        if isinstance(outcomes, BaseException):  # the worker itself failed: a bug, not a run's one-line error
            raise outcomes
        for cfg, outcome in zip(units[index], outcomes):
            if isinstance(outcome, MechgrokError):
                failures[cfg.run.out] = str(outcome)
            bar.update(1)
    bar.close()
    return failures


def execute_all(configs: list[TrainConfig], backend: str = "local", jobs: int = 1, progress: bool = True) -> None:
    """``execute``, with any failed run raised as one MechgrokError (the experiments need every run)."""
    failures = execute(configs, backend, jobs, progress=progress)
    if failures:
        raise MechgrokError(f"{len(failures)} run(s) failed: "
                            + "; ".join(f"{Path(k).name}: {v}" for k, v in failures.items()))


# -- results ------------------------------------------------------------------------------------------
def outcome(train_acc: float, test_acc: float) -> str:
    """Omnigrok's cell label from the last logged accuracies: test >= 99% generalises; train >= 99% memorises."""
    if test_acc >= GROK_ACCURACY:
        return OUTCOMES[0]
    return OUTCOMES[1] if train_acc >= GROK_ACCURACY else OUTCOMES[2]


def run_row(run_name: str, cfg: TrainConfig, grid: Grid) -> Row | None:
    """One table row read from the run directory (None while the run is unfinished; a damaged summary.json is one
    line naming it: a sweep without --partial trains the run again first, which rewrites it)."""
    summary = Path(cfg.run.out) / SUMMARY_FILE
    if summary.is_file():
        read_summary(summary)
    if not is_done(cfg):
        return None
    run_dir = Path(cfg.run.out)
    try:
        return _row(run_name, cfg, grid, run_dir)
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise MechgrokError(f"{run_dir}: its {SUMMARY_FILE} or {ANALYSIS_DIR}/{REPORT_FILE} is damaged "
                            f"({type(err).__name__}: {err}); train or analyse that run again") from None


def _row(run_name: str, cfg: TrainConfig, grid: Grid, run_dir: Path) -> Row:
    summary = read_summary(run_dir / SUMMARY_FILE)
    values = cfg.to_dict()
    row = {"run": run_name, **{k: values[k] for k in grid}, "outcome": outcome(summary["train_acc"],
                                                                               summary["test_acc"]),
           "grok_step": summary["grok_step"]}
    report_path = run_dir / ANALYSIS_DIR / REPORT_FILE
    if report_path.is_file():
        report = read_json(report_path)
        phases, final = report.get("phases", {}), report.get("final", {})
        circuit = report.get("key_frequencies") or {}
        if not circuit.get("claimed", True):  # an ungeneralised checkpoint's clusters are candidates, not a circuit
            circuit = {}
        row.update({k: phases.get(k) for k in ("memorization_end", "cleanup_start", "cleanup_end")})
        row["key_frequencies"] = " ".join(str(c["k"]) for c in circuit.get("clusters", []))
        row["cluster_sizes"] = " ".join(str(c["neurons"]) for c in circuit.get("clusters", []))
        row["restricted_loss"], row["excluded_loss"] = final.get("restricted_loss"), final.get("excluded_loss")
    row.update({"steps": summary["steps"], "final_train_loss": summary["train_loss"],
                "final_test_loss": summary["test_loss"], "final_test_acc": summary["test_acc"],
                "wall_seconds": round(summary["wall_seconds"], 1)})
    return row


def sweep_rows(spec: SweepSpec) -> list[Row]:
    """The finished runs' rows, in grid order."""
    rows = (run_row(name, cfg, spec.grid) for name, cfg in spec.points)
    return [row for row in rows if row is not None]


def spread(values: list[float]) -> dict[str, float]:
    """mean, sample standard deviation (0 for one value), min and max."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(values), "max": max(values)}


SPREAD_COLUMNS = ("grok_step", "memorization_end", "cleanup_start", "cleanup_end", "wall_seconds")


def seed_spread(rows: list[Row], grid: Grid) -> list[Row]:
    """Per group of the non-seed grid fields: mean, sd, min, max over seeds of each SPREAD_COLUMNS value."""
    others = [k for k in grid if k != "seed"]
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in others), []).append(row)
    out = []
    for key, group in groups.items():
        for column in SPREAD_COLUMNS:
            values = [r[column] for r in group if isinstance(r.get(column), (int, float))]
            if values:
                out.append({**dict(zip(others, key)), "quantity": column, "runs": f"{len(values)}/{len(group)}",
                            **{k: round(v, 1) for k, v in spread(values).items()}})
    return out


def write_results(spec: SweepSpec, rows: list[Row], elapsed: float | None = None,
                  png: bool = False) -> list[Path]:
    """sweep.csv, sweep.md and the cross-run figures (HTML; PNG too with ``png``); returns the paths written."""
    from .analysis.figures import save_figures
    from .analysis.sweep_figures import sweep_figure_set
    from .tables import markdown_table, write_table

    write_table(spec.out / TABLE_NAME, rows)
    lines = [f"# Sweep {spec.name}: {len(rows)} of {len(spec.points)} runs finished", "",
             "Grid: " + "; ".join(f"{k} = {v}" for k, v in spec.grid.items()), "",
             "Base: " + (", ".join(f"{k} = {v}" for k, v in spec.base.items()) or "the paper's defaults"), ""]
    if elapsed is not None:
        lines += [f"This invocation: {elapsed:.0f} s wall.", ""]
    if rows:
        header = list(rows[0])
        lines.append(markdown_table(header, [[_cell(r.get(k)) for k in header] for r in rows]))
    if "seed" in spec.grid and rows:
        stats = seed_spread(rows, spec.grid)
        if stats:
            lines += ["## Spread over seeds", "", markdown_table(list(stats[0]), [list(s.values()) for s in stats])]
    (spec.out / f"{TABLE_NAME}.md").write_text("\n".join(lines))
    figures = sweep_figure_set(rows, spec.grid)
    save_figures(figures, spec.out, png=png)
    return [spec.out / f"{TABLE_NAME}.csv", spec.out / f"{TABLE_NAME}.md",
            *(spec.out / f"{name}.html" for name in figures)]


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def run_sweep(path: str | Path, backend: str = "local", jobs: int | None = None, address: str | None = None,
              out: str | Path | None = None, partial: bool = False, progress: bool = True,
              png: bool = False, batch: int | None = None) -> tuple[SweepSpec, list[dict]]:
    """Check the spec, claim the directory, run what is not finished (unless ``partial``) and write the results.

    ``batch`` (default: the spec's ``batch``, else 1): runs trained together per worker."""
    spec = load_spec(path, out)
    if batch is not None and not 1 <= batch <= MAX_BATCH:
        raise MechgrokError(f"--batch must be from 1 to {MAX_BATCH}, got {batch}")
    if backend not in BACKENDS:
        raise MechgrokError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "ray":  # fail before creating anything
        try:
            import ray  # noqa: F401
        except ImportError:
            raise MechgrokError("--backend ray needs Ray: pip install 'mechgrok[ray]'") from None
    if jobs is not None and jobs < 1:
        raise MechgrokError(f"--jobs must be at least 1, got {jobs}")
    for _, cfg in spec.points:  # every run's device and memory, as train checks them, before the directory is made
        check_memory(cfg, resolve_device(cfg.run.device))
    claim_directory(spec)
    start = time.perf_counter()
    failures = {}
    if not partial:
        failures = execute([cfg for _, cfg in spec.points], backend, jobs or os.cpu_count() or 1, address,
                           spec.analyze, progress, desc=spec.name, batch=batch or spec.batch)
    rows = sweep_rows(spec)
    write_results(spec, rows, None if partial else time.perf_counter() - start, png)
    if failures:
        raise MechgrokError(f"{len(failures)} run(s) failed (the table has the others): "
                            + "; ".join(f"{Path(k).name}: {v}" for k, v in failures.items()))
    return spec, rows
