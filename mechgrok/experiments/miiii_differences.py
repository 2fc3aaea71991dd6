"""Which of the study's code settings makes miiii learn fast: the code's run with one setting reverted at a time.

The study's code (``experiments.miiii``, ``--as code``) has mod 5 and mod 7 at 0.79 and 0.48 test accuracy by step
1,000, where the paper's text has 0.21 and 0.17 and the text with the code's training fraction alone 0.14 and 0.10
(``results/experiments/miiii-code``): the fraction is not what does it, or not alone. This screen trains the code's
settings (``presets.MIIII_CODE``) to a short horizon (``presets.MIIII_DIFFERENCES``: 1,000 steps), the same with another seed
(how far chance moves the readout), and the same with each difference from the text (``presets.MIIII_CODE_CHANGES``)
set back to the text's value, one at a time (leave one out). A difference whose reversal loses the progress is
needed for it, given the others; one whose reversal keeps it is not needed alone (another difference may do the
same work).

The readout of a run is its progress on mod 5 and 7 at the horizon,

    progress = mean over q in {5, 7} of (acc_q - 1/q) / (1 - 1/q),

0 at chance and 1 when every held-out number's remainder is right (mod 2 and 3 are learnt within a few hundred
steps in every run so far, the larger moduli by none by step 1,000), and ``kept`` = progress / the code run's.
The reading is "needed" below half the code's progress, "not needed alone" above, and "undetermined" for every
row when the other seed's run itself keeps less than half (the readout is then chance's). The half is our
threshold, not the study's, and each row is one seed: the table gives the numbers.

Not screened: the weight decay (0.33 against 1/3, a 1% change) and the step count (a horizon).
Rows come in the order of ``SCREENED`` (likeliest first, so a partial screen answers those first);
``partial=True`` tabulates the finished runs and trains nothing.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from ..config import TrainConfig
from ..fileio import Row
from ..metrics import first_step_at
from ..presets import MIIII, MIIII_CODE_QUICK, MIIII_DIFFERENCES, MIIII_QUICK
from ..run import METRICS_FILE, is_finished, read_metrics
from ..sweep import execute_all
from ..tables import markdown_table, write_table

# The code's settings a run reverts to the text's, likeliest first (Adam's beta2 changes every update's scale).
SCREENED = ("beta2", "dropout_mask", "biases", "mlp_init", "frac_train", "dtype", "grokfast_start", "warmup_steps",
            "task_loss")
QUICK_SCREENED = ("beta2", "biases")
READOUT_MODULI = (5, 7)
SHOWN_MODULI = (2, 3, 5, 7, 11, 13)
NEEDED_BELOW = 0.5  # kept (progress / the code run's) below which a reverted setting is read as needed
CODE, OTHER_SEED = "code", "code, another seed"
RUNS_DIR = "runs"


def configs(out: Path, quick: bool = False, device: str = "auto") -> dict[str, TrainConfig]:
    """The screen's runs by name: the code's settings, another seed, and ``reverted <field>`` for each screened
    field whose text value differs (one thread each, so every run's numbers are the same under any --jobs)."""
    code_values, text_values = (MIIII_CODE_QUICK, MIIII_QUICK) if quick else (MIIII_DIFFERENCES, MIIII)
    base = TrainConfig(**code_values, threads=1, device=device, out=str(out / RUNS_DIR / "code"))
    text = TrainConfig(**text_values).to_dict()
    code = base.to_dict()
    runs = {CODE: base, OTHER_SEED: base.replace(seed=base.data.seed + 1, out=str(out / RUNS_DIR / "code_seed1"))}
    for field in QUICK_SCREENED if quick else SCREENED:
        if text[field] != code[field]:
            runs[f"reverted {field}"] = base.replace(**{field: text[field]}, out=str(out / RUNS_DIR / f"reverted_{field}"))
    return runs


def readout(accuracies: dict[int, float]) -> float:
    """mean over q in READOUT_MODULI of (acc_q - 1/q) / (1 - 1/q): 0 at chance, 1 when all are right."""
    return sum((accuracies[q] - 1 / q) / (1 - 1 / q) for q in READOUT_MODULI) / len(READOUT_MODULI)


def run_row(name: str, cfg: TrainConfig, code: TrainConfig) -> Row:
    """One finished run's readout: test accuracy per shown modulus at its last logged step, the first step mod 5
    reaches 0.5, and its progress."""
    rows = read_metrics(Path(cfg.run.out) / METRICS_FILE)
    last = rows[-1]
    accuracies = {q: last[f"test_acc_q{q}"] for q in SHOWN_MODULI if f"test_acc_q{q}" in last}
    changed = {k: (v, cfg.to_dict()[k]) for k, v in code.to_dict().items() if cfg.to_dict()[k] != v and k != "out"}
    return {"run": name, "differs": ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()) or "-",
            "step": last["step"], **{f"test_acc_q{q}": a for q, a in accuracies.items()},
            "mod5_half_step": first_step_at(rows, "test_acc_q5", 0.5), "progress": readout(accuracies),
            "curve": [(r["step"], r.get("test_acc_q5"), r.get("test_acc_q7")) for r in rows if "test_acc_q5" in r]}


def readings(rows: list[Row]) -> list[Row]:
    """``rows`` with ``kept`` (progress / the code run's) and ``reading``; both blank until the code run and the
    other seed's have finished."""
    by_name = {r["run"]: r for r in rows}
    if CODE not in by_name or OTHER_SEED not in by_name:
        return [{**r, "kept": None, "reading": "waits for the code run and its other seed"} for r in rows]
    if by_name[CODE]["progress"] <= 0:
        return [{**r, "kept": None, "reading": "undetermined (the code run is at chance on mod 5 and 7)"} for r in rows]
    reference = by_name[CODE]["progress"]
    noisy = by_name[OTHER_SEED]["progress"] / reference < NEEDED_BELOW
    out = []
    for r in rows:
        kept = r["progress"] / reference
        if r["run"] in (CODE, OTHER_SEED):
            reading = "reference" if r["run"] == CODE else "chance: the same settings, another seed"
        elif noisy:
            reading = "undetermined (another seed already keeps less than half)"
        else:
            reading = "needed" if kept < NEEDED_BELOW else "not needed alone"
        out.append({**r, "kept": kept, "reading": reading})
    return out


def _cell(value: float | int | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def markdown(rows: list[Row], names: list[str], steps: int, quick: bool) -> str:
    finished = {r["run"]: r for r in rows}
    header = ["run", "differs from the code's run", *(f"mod {q}" for q in SHOWN_MODULI), "mod 5 >= 0.5 at step",
              "progress (mod 5, 7)", "kept", "reading"]
    table = []
    for name in names:
        r = finished.get(name)
        if r is None:
            table.append([name, "", *([""] * len(SHOWN_MODULI)), "", "", "", "not finished"])
            continue
        table.append([name, r["differs"], *(_cell(r.get(f"test_acc_q{q}")) for q in SHOWN_MODULI),
                      _cell(r["mod5_half_step"]), _cell(r["progress"]), _cell(r["kept"]), r["reading"]])
    status = f" (partial: {len(rows)} of {len(names)} runs finished)" if len(rows) < len(names) else ""
    return (f"# miiii: which of the code's settings does it{' (quick)' if quick else ''}{status}\n\n"
            f"The study's code's settings, trained {steps:,} steps; each other row sets one of them back to the "
            f"paper's text. Test accuracy per modulus at step {steps:,}; progress = mean over q in 5, 7 of "
            f"(acc_q - 1/q) / (1 - 1/q); kept = progress / the code run's; a reverted setting is read as needed "
            f"when kept < {NEEDED_BELOW} (our threshold; one seed per row).\n\n{markdown_table(header, table)}")


def figure(rows: list[Row]) -> go.Figure:
    fig = go.Figure()
    for r in rows:
        steps = [s for s, _, _ in r["curve"]]
        fig.add_scatter(x=steps, y=[a for _, a, _ in r["curve"]], name=f"{r['run']}: mod 5", legendgroup=r["run"])
        fig.add_scatter(x=steps, y=[b for _, _, b in r["curve"]], name=f"{r['run']}: mod 7", legendgroup=r["run"],
                        line_dash="dot")
    return fig.update_layout(title="miiii: test accuracy on mod 5 (solid) and mod 7 (dotted), the code's settings "
                                   "and each reverted", xaxis_title="step", yaxis_title="test accuracy", height=520)


def run(out: Path, quick: bool = False, progress: bool = True, jobs: int = 1, partial: bool = False,
        backend: str = "local", device: str = "auto") -> Row:
    """Train every run of the screen (or with ``partial`` read the finished ones) and tabulate them."""
    out = Path(out)
    runs = configs(out, quick, device)
    if not partial:
        execute_all(list(runs.values()), backend, jobs, progress=progress)
    code = runs[CODE]
    rows = readings([run_row(name, cfg, code) for name, cfg in runs.items()
                     if is_finished(Path(cfg.run.out), cfg.optim.steps)])
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "miiii_differences", [{k: v for k, v in r.items() if k != "curve"} for r in rows])
    (out / "miiii_differences.md").write_text(markdown(rows, list(runs), code.optim.steps, quick))
    if rows:
        figure(rows).write_html(out / "miiii_differences.html", include_plotlyjs="directory")
    return {"runs": [{k: v for k, v in r.items() if k != "curve"} for r in rows]}
