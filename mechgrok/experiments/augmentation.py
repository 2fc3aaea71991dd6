"""The augmentation study ("Accelerating Eureka: data augmentation's role in grokking mathematical
operations"): operand reversal and negation on add, sub, div, perm.

Protocol of the paper: Z_97 (perm: S_5, 120 elements), 50/50 split, 2-layer transformer
(d_model 128, 4 heads, d_mlp 512), AdamW lr 1e-3, betas (0.9, 0.98), weight decay 0.5,
50 warm-up steps, batch 512, 7,500 steps; five conditions x 3 seeds. Reversal and negation
are those of ``mechgrok.tasks.augment`` (labels recomputed; perm's "negation" is the inverse).

Metrics per run: the grok step (the paper's S99: first logged step with test = validation
accuracy >= 99%, ``mechgrok.metrics.grok_step``), final train
and validation loss and accuracy, and the maximum rate of validation-accuracy increase
(largest rise between consecutive logs, per 100 steps). Table 1 layout: S99 mean +- standard
error over seeds (N/A unless every seed reached 99%), final validation accuracy below, and
the paper's value for the same cell. ``partial=True`` writes the tables from the finished
runs only (safe while the sweep trains).
"""

from __future__ import annotations

import re
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..config import TrainConfig
from ..fileio import Row
from ..metrics import grok_step
from ..presets import AUGMENTATION, AUGMENTATION_QUICK
from ..run import METRICS_FILE, is_finished, read_metrics
from ..sweep import execute_all
from ..tables import markdown_table, mean_and_stderr, write_table

CONDITIONS = {
    "baseline": (0.0, 0.0),
    "reversal 15%": (0.15, 0.0),
    "negation 15%": (0.0, 0.15),
    "combined 15%": (0.15, 0.15),
    "combined 30%": (0.30, 0.30),
}
OPERATIONS = {"add": 97, "sub": 97, "div": 97, "perm": 5}
QUICK_OPERATIONS = {"add": 11, "perm": 3}
QUICK_CONDITIONS = ("baseline", "combined 30%")
# Leakage control. An augmented pair may be a held-out one (its label recomputed), so under the
# paper's protocol the model trains on validation pairs. These conditions (aug_scope "train")
# leave such examples unaugmented: what is left of a speed-up is not validation leakage.
CONTROL_CONDITIONS = {"negation 15%, train pairs only": "negation 15%"}  # control -> the condition it controls
CONTROL_OPERATIONS = ("add", "perm")  # perm: the baseline does not generalise, the augmented runs do
QUICK_CONTROL_OPERATIONS = ("add",)

# The paper's Table 1 (S99 mean ± s.e., final validation accuracy), shown beside ours in full runs.
PAPER_TABLE = {op: dict(zip(CONDITIONS, cells)) for op, cells in {
    "add": ("2363 ± 121 (100%)", "1993 ± 102 (100%)", "1000 ± 58 (100%)", "920 ± 47 (100%)", "793 ± 41 (100%)"),
    "sub": ("4720 ± 237 (100%)", "5160 ± 258 (99.85%)", "1343 ± 71 (99.97%)", "1057 ± 55 (99.85%)",
            "1367 ± 69 (100%)"),
    "div": ("4200 ± 198 (100%)", "N/A (80.74%)", "1443 ± 76 (100%)", "1767 ± 89 (100%)", "1877 ± 94 (99.98%)"),
    "perm": ("N/A (3.59 ± 0.42%)", "N/A (2.26 ± 0.31%)", "N/A (32.32 ± 2.17%)", "6925 ± 347 (68.68 ± 3.44%)",
             "N/A (12.75 ± 1.13%)"),
}.items()}

# The paper's Table 2: relative change in S99 against the baseline.
PAPER_RELATIVE = {"add": {"reversal 15%": "-15.7%", "negation 15%": "-57.7%", "combined 15%": "-61.1%"},
                  "sub": {"reversal 15%": "+9.3%", "negation 15%": "-71.5%", "combined 15%": "-77.6%"},
                  "div": {"reversal 15%": "N/A", "negation 15%": "-65.6%", "combined 15%": "-57.9%"}}

# The paper's claims (its Section 6.1), as (description, operation, the condition that should do
# better, the one it should beat, metric): "grok_step" (fewer steps is better) or "final_val_acc" (higher).
CLAIMS = [
    ("negation speeds up addition", "add", "negation 15%", "baseline", "grok_step"),
    ("negation speeds up subtraction", "sub", "negation 15%", "baseline", "grok_step"),
    ("negation speeds up division", "div", "negation 15%", "baseline", "grok_step"),
    ("reversal speeds up addition", "add", "reversal 15%", "baseline", "grok_step"),
    ("reversal slows subtraction", "sub", "baseline", "reversal 15%", "grok_step"),
    ("reversal lowers division's final validation accuracy", "div", "baseline", "reversal 15%", "final_val_acc"),
    ("combined 15% beats negation alone on addition", "add", "combined 15%", "negation 15%", "grok_step"),
    ("combined 15% beats negation alone on subtraction", "sub", "combined 15%", "negation 15%", "grok_step"),
    ("combined 15% raises permutation's final validation accuracy", "perm", "combined 15%", "baseline",
     "final_val_acc"),
]


def max_rate(rows: list[Row]) -> float:
    """Largest validation-accuracy rise between consecutive logs, per 100 steps."""
    return max(((b["test_acc"] - a["test_acc"]) * 100 / (b["step"] - a["step"]) for a, b in zip(rows, rows[1:])),
               default=0.0)


def run_config(out: Path, task: str, p: int, condition: str, seed: int, base: dict) -> TrainConfig:
    """The run of one (operation, condition, seed), in out/runs/<task>_<condition>_seed<seed>."""
    reverse, negate = CONDITIONS[CONTROL_CONDITIONS.get(condition, condition)]
    scope = "train" if condition in CONTROL_CONDITIONS else "all"
    name = re.sub(r"[^a-z0-9]+", "_", condition).strip("_")
    return TrainConfig(task=task, p=p, seed=seed, aug_reverse=reverse, aug_negate=negate, aug_scope=scope,
                       out=str(out / "runs" / f"{task}_{name}_seed{seed}"), **base)


def run_metrics(run_dir: Path, task: str, condition: str, seed: int) -> Row:
    rows = read_metrics(run_dir / METRICS_FILE)
    final = rows[-1]
    return {"operation": task, "condition": condition, "seed": seed, "grok_step": grok_step(rows),
            "final_train_loss": final["train_loss"], "final_val_loss": final["test_loss"],
            "final_train_acc": final["train_acc"], "final_val_acc": final["test_acc"],
            "max_val_acc_rate_per_100_steps": max_rate(rows), "curve": [(r["step"], r["test_acc"]) for r in rows]}


def summarise(runs: list[Row], operations, conditions, n_seeds: int,
              reference: bool = False) -> tuple[str, str, list[Row]]:
    """Table 1 and Table 2 in Markdown, and the claims, each 'holds' / 'does not hold' / 'undetermined (why)'.

    A claim compares two conditions' means over seeds (S99, or final validation accuracy); it is
    undetermined until both have every seed, and an S99 claim also when a run never reached 99%.

    Table 2 is the relative change in mean S99 against the baseline, 100 (S99_cond / S99_baseline - 1)%.
    A cell with fewer than ``n_seeds`` finished runs (a partial table) says how many it has;
    with ``reference``, each cell also shows the paper's value (PAPER_TABLE, PAPER_RELATIVE).
    """
    cell, mean_grok, mean_acc, complete = {}, {}, {}, set()
    for op in operations:
        for cond in conditions:
            group = [r for r in runs if r["operation"] == op and r["condition"] == cond]
            if not group:
                cell[op, cond] = "not run yet"
                continue
            if len(group) == n_seeds:
                complete.add((op, cond))
            mean_acc[op, cond], acc_se = mean_and_stderr([r["final_val_acc"] for r in group])
            if all(r["grok_step"] is not None for r in group):
                mean_grok[op, cond], grok_se = mean_and_stderr([r["grok_step"] for r in group])
                top = f"{mean_grok[op, cond]:.0f} ± {grok_se:.0f}"
            else:
                top = f"N/A ({sum(r['grok_step'] is not None for r in group)}/{len(group)} reached 99%)"
            seeds = "" if len(group) == n_seeds else f"<br>[{len(group)}/{n_seeds} seeds so far]"
            cell[op, cond] = f"{top}<br>({100 * mean_acc[op, cond]:.2f} ± {100 * acc_se:.2f}%){seeds}"
    if reference:
        for op in operations:
            for cond in conditions:
                cell[op, cond] += f"<br>paper: {PAPER_TABLE[op][cond]}"
    table = markdown_table(["Operation", *conditions], [[op, *(cell[op, c] for c in conditions)] for op in operations])
    claims = []
    for text, op, better, worse, metric in CLAIMS:
        if (op, better) not in cell or (op, worse) not in cell:
            continue
        if not {(op, better), (op, worse)} <= complete:
            verdict = "undetermined (runs not finished)"
        elif metric == "final_val_acc":
            verdict = "holds" if mean_acc[op, better] > mean_acc[op, worse] else "does not hold"
        elif (op, better) in mean_grok and (op, worse) in mean_grok:
            verdict = "holds" if mean_grok[op, better] < mean_grok[op, worse] else "does not hold"
        else:
            verdict = "undetermined (a condition did not reach 99% in every seed)"
        claims.append({"claim": text, "verdict": verdict})
    changed = [c for c in conditions if c != "baseline"]
    relative = markdown_table(["Operation", *changed], [
        [op, *(_relative_change(op, c, mean_grok, complete)
               + (f"<br>paper: {PAPER_RELATIVE[op][c]}" if reference and c in PAPER_RELATIVE.get(op, {}) else "")
               for c in changed)] for op in operations])
    return table, relative, claims


def _relative_change(op: str, cond: str, mean_grok: dict, complete: set) -> str:
    if not {(op, "baseline"), (op, cond)} <= complete:
        return "not finished"
    if (op, "baseline") not in mean_grok or (op, cond) not in mean_grok:
        return "N/A"
    return f"{100 * (mean_grok[op, cond] / mean_grok[op, 'baseline'] - 1):+.1f}%"


def figure(runs: list[Row], operations, conditions) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(operations), subplot_titles=list(operations))
    for column, op in enumerate(operations, start=1):
        for index, cond in enumerate(conditions):
            group = [r for r in runs if r["operation"] == op and r["condition"] == cond]
            if not group:
                continue
            steps = [s for s, _ in group[0]["curve"]]
            mean = [sum(r["curve"][i][1] for r in group) / len(group) for i in range(len(steps))]
            fig.add_scatter(x=steps, y=mean, name=cond, legendgroup=cond, showlegend=column == 1,
                            line_color=["black", "royalblue", "crimson", "seagreen", "orange"][index], row=1, col=column)
    return fig.update_layout(title="Validation accuracy (mean over seeds) by augmentation", height=420,
                             width=380 * len(operations))


def run(out: Path, quick: bool = False, progress: bool = True, jobs: int = 1, partial: bool = False,
        backend: str = "local") -> Row:
    """Train every (operation, condition, seed) run, or with ``partial`` only read the finished ones."""
    out = Path(out)
    operations = QUICK_OPERATIONS if quick else OPERATIONS
    conditions = QUICK_CONDITIONS if quick else tuple(CONDITIONS)
    seeds = (0,) if quick else (0, 1, 2)
    base = AUGMENTATION_QUICK if quick else AUGMENTATION
    keys = [(task, cond, seed) for task in operations for cond in conditions for seed in seeds]
    control_operations = QUICK_CONTROL_OPERATIONS if quick else CONTROL_OPERATIONS
    keys += [(task, cond, seed) for task in control_operations for cond in CONTROL_CONDITIONS for seed in seeds]
    configs = [run_config(out, task, operations[task], cond, seed, base) for task, cond, seed in keys]
    if not partial:
        execute_all(configs, backend, jobs, progress=progress)
    runs = [run_metrics(Path(cfg.run.out), *key) for cfg, key in zip(configs, keys)
            if is_finished(Path(cfg.run.out), cfg.optim.steps)]
    write_table(out / "augmentation_runs", [{k: v for k, v in r.items() if k != "curve"} for r in runs])
    table, relative, claims = summarise(runs, operations, conditions, len(seeds), reference=not quick)
    claims_md = "\n".join(f"- {c['claim']}: **{c['verdict']}**" for c in claims)
    control_conditions = ("baseline", *(c for c in CONTROL_CONDITIONS.values() if c in conditions), *CONTROL_CONDITIONS)
    control, control_relative, _ = summarise(runs, control_operations, control_conditions, len(seeds))
    status = f" (partial: {len(runs)} of {len(keys)} runs finished)" if len(runs) < len(keys) else ""
    (out / "augmentation.md").write_text(
        f"# Augmentation study{' (quick)' if quick else ''}{status}\n\n"
        f"S99 (the grok step: first step with validation accuracy >= 99%) mean ± s.e. over {len(seeds)} seed(s); final validation accuracy below.\n\n{table}\n"
        f"## Relative change in S99 against the baseline (Table 2)\n\n{relative}\n"
        f"## The paper's claims in our runs\n\n{claims_md}\n\n"
        f"## Leakage control: augmentation that never produces a held-out pair\n\n"
        f"Augmented pairs that fall in the validation split are left unaugmented (`aug_scope = \"train\"`).\n\n"
        f"{control}\nRelative change in S99 against the baseline:\n\n{control_relative}")
    if runs:
        figure(runs, operations, conditions).write_html(out / "augmentation.html", include_plotlyjs="directory")
    return {"runs": runs, "claims": claims, "table": table}
