"""The miiii study (Syrkis & Søgaard, "Mechanistic interpretability of irreducible integer
identifiers"): remainders of x0 + p*x1 modulo every prime q < p, one head each.

Full: p=113 (29 tasks), the study's best hyperparameters (``mechgrok.presets.MIIII``: d_model
256, 4 heads, dropout 0.1, Grokfast lambda 0.5, weight decay 1/3, lr 3e-4, frac 0.3), 40,000
full-batch steps: hours on this CPU. It is an ordinary run directory (``OUT/run``) trained by
the package's one loop, so rerunning the command after a kill resumes it, ``--device cuda``
applies. It is then analysed (``mechgrok analyze OUT/run``): per-task test accuracy and
embedding fit (``mechgrok.analysis.miiii``) at every checkpoint, the step at which each task groks (test
accuracy >= 99%), the order they grok in and the study's order claims, tabulated in miiii.md.
The same config without Grokfast trains beside it (``OUT/run_no_grokfast``), and the step by
which every task has grokked in each run decides the study's third claim, that Grokfast speeds
it up (``mechgrok.analysis.miiii.grokfast_claim``).

Two readings of the study (``variant``): ``text``, the paper's text (30% of the numbers for
training; ``presets.MIIII``), and ``code``, the study's code as it ran (50%, one dropout mask per
step, the task losses averaged, no biases, W_out from W_in's draws, the Grokfast EMA from zero, no
warm-up, float64, 65,536 steps; ``presets.MIIII_CODE``). Once the code's run passes the text's 40,000 steps, its
table also reads every task's test accuracy there and which tasks had grokked by then. ``partial=True`` tabulates the
checkpoints written so far and trains nothing, so a run that takes several sessions reports where it stands.

The code's reading also trains a third run, ``OUT/run_fraction_only``: the text's settings with the code's training
fraction alone (0.5), and the code's step count (a horizon only: the rate is constant after the text's 10 warm-up
steps). Where the code run groks earlier than the text run, this run says whether the fraction did it. Its columns
read its metrics alone (grok steps are read from them, as in every task table), so a run stopped for good whose
directory did not travel to this checkout is read from its committed curves, ``OUT/miiii_curves_fraction_only.csv``.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..analysis.miiii import grokfast_claim
from ..analysis.pipeline import analyze_run
from ..analysis.report import Report
from ..config import TrainConfig
from ..errors import MechgrokError
from ..presets import MIIII, MIIII_CODE, MIIII_CODE_QUICK, MIIII_QUICK
from ..fileio import read_csv
from ..metrics import grok_step
from ..run import CONFIG_FILE, METRICS_FILE, load_run
from ..train import train
from ..tables import markdown_table, write_table

RUN_SUBDIR = "run"
BASELINE_SUBDIR = "run_no_grokfast"  # the same config without the filter: the Grokfast claim's control
FRACTION_SUBDIR = "run_fraction_only"  # the text's settings but the code's fraction: which difference did it
FRACTION_CURVES = "miiii_curves_fraction_only"  # its metrics, kept beside the tables (its run directory is not)
VARIANTS = {"text": (MIIII, MIIII_QUICK), "code": (MIIII_CODE, MIIII_CODE_QUICK)}
TITLES = {"text": "as the paper's text describes it", "code": "as the study's code ran it"}


def configs(out: Path, quick: bool, variant: str, device: str = "auto") -> tuple[TrainConfig, TrainConfig]:
    """The run (with Grokfast) and its twin without the filter, under ``out``."""
    if variant not in VARIANTS:
        raise MechgrokError(f"unknown miiii variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    full, small = VARIANTS[variant]
    cfg = TrainConfig(**(small if quick else full), device=device, out=str(out / RUN_SUBDIR))
    return cfg, cfg.replace(grokfast="none", out=str(out / BASELINE_SUBDIR))


def fraction_config(out: Path, quick: bool, device: str = "auto") -> TrainConfig:
    """The text's run with the code's training fraction alone (and the code's steps), under ``out``."""
    text, code = (VARIANTS[v][1 if quick else 0] for v in ("text", "code"))
    return TrainConfig(**{**text, "frac_train": code["frac_train"], "steps": code["steps"]}, device=device,
                       out=str(out / FRACTION_SUBDIR))


def _fraction_curves(out: Path, cfg: TrainConfig) -> tuple[list[dict], bool]:
    """The fraction-alone run's metrics rows and whether they came from its run directory; where that directory is
    absent (a run stopped for good, its directory left on another machine), its committed curves; [] before it has
    started."""
    if (Path(cfg.run.out) / METRICS_FILE).is_file():
        rows = load_run(cfg.run.out).metrics()
        if rows:
            return rows, True
    return read_csv(out / f"{FRACTION_CURVES}.csv"), False


def _analysed(cfg: TrainConfig, partial: bool, progress: bool) -> Report | None:
    """The run's report; with ``partial``, None for a run with no checkpoint yet (it has not started)."""
    if partial and not (Path(cfg.run.out) / "checkpoints").is_dir():
        return None
    if partial and not load_run(cfg.run.out).steps:
        return None
    return analyze_run(cfg.run.out, progress=progress)


def run(out: Path, quick: bool = False, progress: bool = True, device: str = "auto", variant: str = "text",
        partial: bool = False) -> dict[str, list]:
    """Train (or resume) the run, its twin without Grokfast and, for the code's reading, the fraction-alone run;
    analyse them (``mechgrok analyze``); tabulate.

    ``partial``: train nothing; tabulate the checkpoints each run has so far."""
    out = Path(out)
    cfg, plain = configs(out, quick, variant, device)
    runs = (cfg, plain, fraction_config(out, quick, device)) if variant == "code" else (cfg, plain)
    out.mkdir(parents=True, exist_ok=True)
    if not partial:
        for config in runs:
            train(config, progress=progress)
    report, baseline, *_ = (_analysed(c, partial, progress) for c in runs)  # the third: its figures only
    alone, alone_here = _fraction_curves(out, runs[2]) if variant == "code" else ([], False)
    if report is None:
        config = Path(cfg.run.out) / CONFIG_FILE  # a run carried here by its resume files alone has its config
        first = f"mechgrok train --config {config}" if config.is_file() else "the command without --partial"
        raise MechgrokError(f"{cfg.run.out} has no checkpoint yet; train it first ({first})")
    plain_steps = {r.q: r.grok_step for r in baseline.tasks.table} if baseline else {}
    table = [{**vars(r), "grok_step_no_grokfast": plain_steps.get(r.q)} for r in report.tasks.table]
    curves = load_run(cfg.run.out).metrics()
    if variant == "code":
        horizon = text_steps(quick)
        at = _row_at(curves, horizon) if report.final.step >= horizon else {}
        for row in table:
            row["grok_step_fraction_only"] = grok_step(alone, f"test_acc_q{row['q']}") if alone else None
            if at:
                row["test_acc_at_text_steps"] = at[f"test_acc_q{row['q']}"]
    claims = list(report.tasks.claims)
    if baseline is not None:
        claims.append(grokfast_claim(report.tasks.table, baseline.tasks.table, report.final.step,
                                     baseline.final.step))
    write_table(out / "miiii", table)
    write_table(out / "miiii_curves", curves)
    if baseline is not None:
        write_table(out / "miiii_curves_no_grokfast", load_run(plain.run.out).metrics())
    if alone_here:
        write_table(out / FRACTION_CURVES, alone)
    (out / "miiii.md").write_text(_markdown(cfg, plain, report, baseline, table, claims, variant, quick, alone))
    if variant == "code" and not quick:
        _compare_with_text(out, table, report.final.step, alone)
    return {"tasks": table, "claims": [vars(c) for c in claims], "order": report.tasks.order}


TEXT_CURVES = Path("results/experiments/miiii/miiii_curves.csv")  # the text run's committed per-task curves


def _compare_with_text(out: Path, table: list[dict], step: int, alone: list[dict]) -> None:
    """miiii_vs_text.md: per task, this (code) run's test accuracy at its last step beside the text run's at the
    same step and its grok step, read from the text run's committed curves (nothing when they are absent), and the
    fraction-alone run's (``alone``: its metrics rows; columns left out when it has none)."""
    curves = read_csv(TEXT_CURVES)
    if not curves:
        return
    at = _row_at(curves, step)
    text_grok = {row["q"]: grok_step(curves, f"test_acc_q{row['q']}") for row in table}
    alone_at = _row_at(alone, step) if alone else None
    rows = [[row["q"], f"{row['final_test_acc']:.3f}", f"{at.get('test_acc_q' + str(row['q']), math.nan):.3f}"]
            + ([f"{alone_at.get('test_acc_q' + str(row['q']), math.nan):.3f}"] if alone_at else [])
            + [_grok(row["grok_step"], step), _grok(text_grok.get(row["q"]), curves[-1]["step"])] for row in table]
    header = (["q", f"code (frac 0.5): test acc at step {step}", f"text (frac 0.3): test acc at step {at['step']}"]
              + ([f"text with frac 0.5 alone: test acc at step {alone_at['step']}"] if alone_at else [])
              + ["code: grok step", "text: grok step (of 40,000; 69,000 extended)"])
    also = ", and the text's settings with frac 0.5 alone" if alone_at else ""
    (out / "miiii_vs_text.md").write_text(f"# miiii at step {step}: the study's code (frac 0.5) beside the paper's "
                                          f"text (frac 0.3){also}\n\n{markdown_table(header, rows)}\n")


def text_steps(quick: bool) -> int:
    """The text run's step count (40,000; the quick preset's): the code's run is also read there."""
    return VARIANTS["text"][1 if quick else 0]["steps"]


def _by_step(table: list[dict], key: str, step: int) -> str:
    """The tasks grokked by ``step`` (grok steps under ``key``), in the order they grokked."""
    grokked = sorted((r[key], r["q"]) for r in table if r.get(key) is not None and r[key] <= step)
    return ", ".join(str(q) for _, q in grokked) or "no task"


def _row_at(rows: list[dict], step: int) -> dict:
    """The last metrics row at or before ``step`` (the first row when every row is later)."""
    return max((r for r in rows if r["step"] <= step), key=lambda r: r["step"], default=rows[0])


def _grok(step: int | None, reached: int) -> str:
    """A grok step, or that the task has not grokked by the last step tabulated."""
    return f"{step:,}" if step is not None else f"not by {reached:,}"


def _markdown(cfg: TrainConfig, plain: TrainConfig, report: Report, baseline: Report | None, table: list[dict],
              claims: list, variant: str, quick: bool, fraction: list[dict] | None = None) -> str:
    """miiii.md; ``fraction``: the fraction-alone run's metrics rows ([] or None: not started)."""
    reached = report.final.step
    target = cfg.optim.steps
    with_fraction = variant == "code"
    horizon = text_steps(quick)
    at_text = with_fraction and "test_acc_at_text_steps" in table[0]
    rows = [[r["q"], _grok(r["grok_step"], reached),
             "not started" if baseline is None else _grok(r["grok_step_no_grokfast"], baseline.final.step)]
            + ([_grok(r["grok_step_fraction_only"], fraction[-1]["step"]) if fraction else "not started"]
               if with_fraction else [])
            + ([f"{r['test_acc_at_text_steps']:.3f}"] if at_text else [])
            + [f"{r['final_test_acc']:.3f}", f"{r['fit_r2']:.3f}", f"{r['noise_r2']:.3f}"] for r in table]
    header = (["q", "grok step (test acc >= 99%)", "without Grokfast"]
              + (["the text's run, fraction 0.5 alone"] if with_fraction else [])
              + ([f"test acc at step {horizon:,} (the text's last)"] if at_text else [])
              + ["test acc at the last step", "W_E R^2 on period-q features", "same fit on noise"])
    markdown = markdown_table(header, rows)
    order = ", ".join(str(q) for q in report.tasks.order)
    if baseline is None:
        plain_line = "Without Grokfast: not started."
    else:
        plain_order = ", ".join(str(q) for q in baseline.tasks.order)
        plain_line = (f"Without Grokfast ({baseline.final.step} of {plain.optim.steps} steps): "
                      f"{plain_order or 'no task has grokked'}")
    if with_fraction:
        plain_line += ("\n\nThe text's run with the fraction alone changed: " +
                       (f"{fraction[-1]['step']} steps: "
                        f"{_by_step(table, 'grok_step_fraction_only', fraction[-1]['step'])}" if fraction
                        else "not started."))
    if at_text:
        plain_line += (f"\n\nGrokked by step {horizon:,} (the text's last step): "
                       f"{_by_step(table, 'grok_step', horizon)}"
                       + ("" if baseline is None or baseline.final.step < horizon else
                          f"; without Grokfast: {_by_step(table, 'grok_step_no_grokfast', horizon)}"))
    claim_lines = "\n".join(f"- {c.claim}: **{c.verdict}**" for c in claims)
    progress = "" if reached >= target else f" (in progress: {reached} of {target} steps)"
    return (f"# miiii {TITLES[variant]}, p={cfg.data.p}, frac_train {cfg.data.frac_train}, {reached} steps"
            f"{progress}{' (quick)' if quick else ''}\n\n{markdown}\n"
            f"Grok order: {order or 'no task has grokked'}\n\n{plain_line}\n\n"
            f"## The study's claims in this run\n\n{claim_lines}\n\n"
            f"Figures: `{cfg.run.out}/analysis/task_order.html`, `losses.html` (and the same under "
            f"`{plain.run.out}`).\n")
