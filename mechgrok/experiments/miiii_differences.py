"""Which of the study's code settings makes miiii learn fast: each set back in turn, and each added in turn.

The study's code (``experiments.miiii``, ``--as code``) has mod 5 and mod 7 at 0.90 and 0.80 test accuracy by step
2,000, where the paper's text has 0.24 and 0.21 and the text with the code's training fraction alone 0.19 and 0.19
(``results/experiments/miiii-code``, each one seed): read alone, the fraction is not what does it, or not
alone (another seed of that last run, trained here, is as fast as the code's). This screen trains, to a short
horizon (``presets.MIIII_DIFFERENCES``: the code's settings, 2,000 steps):

- **leave one out**: the code's settings; the same with other seeds (how far chance moves the readout); the same
  with each difference from the text (``presets.MIIII_CODE_CHANGES``) set back to the text's value, one at a time.
  A difference whose reversal loses the progress is needed for it, given the others; one whose reversal keeps it
  is not needed alone (another may do the same work);
- **add one in**: the text's settings with the code's fraction (the long fraction-alone run's first 2,000 steps),
  the same with other seeds (added on 2026-12-01: how far chance moves the base), and the same with each other
  difference set to the code's value, one at a time (the five likeliest, ``ADDED``: once the base's seeds disagreed,
  a one-seed addition could not be read). A difference whose addition brings the progress is enough for it, with the
  fraction;
- **leave two out** (``TOGETHER``): the code's settings with two differences set back together. Added on
  2026-12-01 after the first 12 runs: the shared dropout mask and the tied MLP init are each enough with the
  fraction and neither is needed alone, which is what two settings that stand in for each other would show; if
  they do, the code's run without both loses the progress.

The readout of a run is its progress on mod 5 and 7 at the horizon,

    progress = mean over q in {5, 7} of (acc_q - 1/q) / (1 - 1/q),

0 at chance and 1 when every held-out number's remainder is right (mod 2 and 3 are learnt within a few hundred
steps by the code's runs, the larger moduli barely by step 2,000), and ``kept`` = progress / the code run's. At
1,000 steps the readout was chance's: another seed of the code's run had mod 5 at 0.25 where the first had 0.79.
The reading is "needed" when a reversal keeps less than half, "enough with the fraction" when an addition keeps half
or more, and "undetermined" for every row while the other seed's run itself keeps less than half (the readout is
then chance's). The half is our threshold, not the study's, and each row is one seed: the table gives the numbers,
and the first step at which mod 5 and 7 are both at 0.5 or more tells a delay from a loss.

Not screened: the weight decay (0.33 against 1/3, a 1% change) and the step count (a horizon).
Runs train in the order of ``configs`` (the references, then each difference's two runs, likeliest first, so a partial
screen answers those first; until 2026-12-01 every reversal came before any addition);
``partial=True`` tabulates the finished runs and trains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..config import TrainConfig
from ..fileio import Row
from ..presets import MIIII, MIIII_CODE_QUICK, MIIII_DIFFERENCES, MIIII_QUICK
from ..run import METRICS_FILE, is_finished, read_metrics
from ..sweep import execute_all
from ..tables import markdown_table, write_table

# The code's settings a run sets back to the text's (or adds to it), likeliest first (Adam's beta2 changes every
# update's scale), so a partial screen answers those first.
SCREENED = ("beta2", "dropout_mask", "biases", "mlp_init", "frac_train", "dtype", "grokfast_start", "warmup_steps",
            "task_loss")
QUICK_SCREENED = ("beta2", "biases")
# The fields with an add-one-in run. After 16 runs (2026-12-01) the add-one-in base's own seeds disagreed (they kept
# 0.02 and 1.07), so a one-seed added run reads chance as much as its setting: the later fields are only left out.
ADDED = ("beta2", "dropout_mask", "biases", "mlp_init", "dtype")
# Pairs set back together, each trained as soon as both of its fields have had their own two runs.
TOGETHER = (("dropout_mask", "mlp_init"),)
QUICK_TOGETHER = (("beta2", "biases"),)
READOUT_MODULI = (5, 7)
SHOWN_MODULI = (2, 3, 5, 7, 11, 13)
HALF = 0.5  # kept (progress / the code run's) below which a setting is read as needed, at or above which as enough
CODE, OTHER_SEED, FRACTION = "code", "code, another seed", "text, fraction 0.5"
FRACTION_OTHER_SEED = "text, fraction 0.5, another seed"
CODE_SEED, BASE_SEED = "code seed", "base seed"  # the kinds of the two bases' other seeds


class Base(NamedTuple):
    """One of the two configs the screen changes: its reference run, its other seeds' kind, what each reads as."""

    label: str
    run: str
    reading: str
    seed_kind: str
    seed_reading: str


BASES = (Base("the code's settings", CODE, "reference", CODE_SEED, "chance: the same settings, another seed"),
         Base("the text's with the code's fraction", FRACTION, "the base of the added runs", BASE_SEED,
              "chance: the base of the added runs, another seed"))
REFERENCE_READINGS = {b.run: b.reading for b in BASES}
SEED_READINGS = {b.seed_kind: b.seed_reading for b in BASES}
# Seeds of each base (the code's settings; the text's with the code's fraction): a row's reading is undetermined
# while the base's own seeds disagree about it (2026-12-01: the base's seeds 0 and 1 kept 0.02 and 1.07).
SEEDS, QUICK_SEEDS = 4, 2
RUNS_DIR = "runs"


@dataclass(frozen=True)
class ScreenRun:
    """One run of the screen: ``kind`` "reference" (the code's settings, the text with the code's fraction), "code
    seed" or "base seed" (another seed of either), "reverted" (the code's settings, one set back to the text's),
    "added" (the text with the code's fraction, one more of the code's settings added) or "reverted together" (the
    code's settings, two set back); ``base``: the config whose fields it changes."""

    name: str
    cfg: TrainConfig
    base: TrainConfig
    kind: str


def seed_runs(base: TrainConfig, name: str, first: str, kind: str, quick: bool) -> list[ScreenRun]:
    """``base`` with seeds base + 1 ... base + SEEDS - 1, named ``first`` and then "<name>, seed <seed>"."""
    out = Path(base.run.out)
    return [ScreenRun(first if k == 1 else f"{name}, seed {base.data.seed + k}",
                      base.replace(seed=base.data.seed + k, out=str(out.with_name(f"{out.name}_seed{k}"))), base, kind)
            for k in range(1, QUICK_SEEDS if quick else SEEDS)]


def configs(out: Path, quick: bool = False, device: str = "auto") -> list[ScreenRun]:
    """The screen's runs in training order: the code's settings and its other seeds, the text's settings with the
    code's fraction and its other seeds, then for each screened field, likeliest first, ``reverted <field>`` and
    ``added <field>`` (the fields of ADDED only), so a partial screen asks both questions of the likeliest fields
    first, and each pair of TOGETHER right after the later of its fields (one thread each, so every run's numbers
    are the same under any --jobs)."""
    code_values, text_values = (MIIII_CODE_QUICK, MIIII_QUICK) if quick else (MIIII_DIFFERENCES, MIIII)
    code = TrainConfig(**code_values, threads=1, device=device, out=str(out / RUNS_DIR / "code"))
    horizon = {k: code_values[k] for k in ("steps", "save_every")}
    text = TrainConfig(**{**text_values, **horizon}, threads=1, device=device)
    fraction = text.replace(frac_train=code.data.frac_train, out=str(out / RUNS_DIR / "text_fraction"))
    text_values, code_values = text.to_dict(), code.to_dict()
    screened = [f for f in (QUICK_SCREENED if quick else SCREENED) if text_values[f] != code_values[f]]
    runs = [ScreenRun(CODE, code, code, "reference"), *seed_runs(code, CODE, OTHER_SEED, CODE_SEED, quick),
            ScreenRun(FRACTION, fraction, text, "reference"),
            *seed_runs(fraction, FRACTION, FRACTION_OTHER_SEED, BASE_SEED, quick)]
    for f in screened:
        for kind, base, value in (("reverted", code, text_values[f]), ("added", fraction, code_values[f])):
            if kind == "reverted" or f in ADDED:  # ADDED has no fraction: the add-one-in base has the code's
                changed = base.replace(**{f: value}, out=str(out / RUNS_DIR / f"{kind}_{f}"))
                runs.append(ScreenRun(f"{kind} {f}", changed, base, kind))
        for pair in QUICK_TOGETHER if quick else TOGETHER:
            if set(pair) <= set(screened) and f == max(pair, key=screened.index):
                changed = code.replace(**{g: text_values[g] for g in pair},
                                       out=str(out / RUNS_DIR / f"reverted_{'_and_'.join(pair)}"))
                runs.append(ScreenRun(f"reverted {' and '.join(pair)}", changed, code, "reverted together"))
    return runs


def readout(accuracies: dict[int, float]) -> float:
    """mean over q in READOUT_MODULI of (acc_q - 1/q) / (1 - 1/q): 0 at chance, 1 when all are right."""
    return sum((accuracies[q] - 1 / q) / (1 - 1 / q) for q in READOUT_MODULI) / len(READOUT_MODULI)


def run_row(run: ScreenRun) -> Row:
    """One finished run's readout: test accuracy per shown modulus at its last logged step, the first step at which
    every readout modulus is at 0.5 or more, its progress (and ``curve``: (step, progress) at each logged step), and
    the one field it changes of its base."""
    rows = read_metrics(Path(run.cfg.run.out) / METRICS_FILE)
    last = rows[-1]
    accuracies = {q: last[f"test_acc_q{q}"] for q in SHOWN_MODULI if f"test_acc_q{q}" in last}
    values, base = run.cfg.to_dict(), run.base.to_dict()
    changed = [f"{k} {base[k]} -> {v}" for k, v in values.items() if base[k] != v and k != "out"]
    return {"run": run.name, "kind": run.kind, "change": ", ".join(changed) or "-", "step": last["step"],
            **{f"test_acc_q{q}": a for q, a in accuracies.items()},
            "half_step": next((r["step"] for r in rows if all(r.get(f"test_acc_q{q}", 0) >= 0.5
                                                              for q in READOUT_MODULI)), None),
            "progress": readout(accuracies),
            "curve": [(r["step"], readout({q: r[f"test_acc_q{q}"] for q in READOUT_MODULI})) for r in rows
                      if all(f"test_acc_q{q}" in r for q in READOUT_MODULI)]}


def readings(rows: list[Row]) -> list[Row]:
    """``rows`` with ``kept`` (progress / the code run's) and ``reading``: a reverted setting is "needed" when its
    run keeps less than HALF, an added one "enough with the fraction" when its run keeps HALF or more, a pair
    reverted together "needed together" when its run keeps less than HALF; every reading is "undetermined" while
    one of the code's other seeds itself keeps less than HALF, and an added one's while one of the base's other
    seeds itself keeps HALF or more."""
    by_name = {r["run"]: r for r in rows}
    if CODE not in by_name or not any(r["kind"] == CODE_SEED for r in rows):
        return [{**r, "kept": None, "reading": "waits for the code run and its other seed"} for r in rows]
    if by_name[CODE]["progress"] <= 0:
        return [{**r, "kept": None, "reading": "undetermined (the code run is at chance on mod 5 and 7)"} for r in rows]
    reference = by_name[CODE]["progress"]
    noisy = any(r["progress"] / reference < HALF for r in rows if r["kind"] == CODE_SEED)
    lucky_base = any(r["progress"] / reference >= HALF for r in rows if r["kind"] == BASE_SEED)
    out = []
    for r in rows:
        kept = r["progress"] / reference
        if r["run"] in REFERENCE_READINGS:
            reading = REFERENCE_READINGS[r["run"]]
        elif r["kind"] in SEED_READINGS:
            reading = SEED_READINGS[r["kind"]]
        elif noisy:
            reading = "undetermined (another seed already keeps less than half)"
        elif r["kind"] == "reverted":
            reading = "needed" if kept < HALF else "not needed alone"
        elif r["kind"] == "reverted together":
            reading = "needed together" if kept < HALF else "not needed, even together"
        elif lucky_base:
            reading = "undetermined (the base with another seed already keeps half)"
        else:
            reading = "enough with the fraction" if kept >= HALF else "not enough alone"
        out.append({**r, "kept": kept, "reading": reading})
    return out


def _cell(value: float | int | None) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.2f}"


# Each table: its title, the kinds of run it shows, and the reference runs among them.
TABLES = (("Leave one out: the code's settings, one set back to the text's", ("reference", CODE_SEED, "reverted"),
           (CODE,)),
          ("Add one in: the text's settings with the code's fraction, one more of the code's added",
           ("reference", BASE_SEED, "added"), (FRACTION,)),
          ("Leave two out: the code's settings, two set back together",
           ("reference", CODE_SEED, "reverted together"), (CODE,)))


def table_runs(runs: list[ScreenRun], kinds: tuple[str, ...], references: tuple[str, ...]) -> list[ScreenRun]:
    """The runs one of TABLES shows, in training order."""
    return [r for r in runs if r.kind in kinds and (r.kind != "reference" or r.name in references)]


def seed_counts(rows: list[Row]) -> list[str]:
    """For each base of BASES, how many of its finished seeds have mod 5 and 7 both at 0.5 or more by the horizon, and
    at which steps: a count that needs no reference run."""
    lines = []
    for base in BASES:
        seeds = [r for r in rows if r["run"] == base.run or r["kind"] == base.seed_kind]
        if seeds:
            reached = sorted(r["half_step"] for r in seeds if r["half_step"] is not None)
            at = f" (at step{'s' * (len(reached) > 1)} {', '.join(f'{s:,}' for s in reached)})" if reached else ""
            lines.append(f"- {base.label}: {len(reached)} of {len(seeds)} seeds{at}")
    return lines


def markdown(rows: list[Row], runs: list[ScreenRun], quick: bool) -> str:
    finished = {r["run"]: r for r in rows}
    steps = runs[0].cfg.optim.steps
    header = ["run", "change", *(f"mod {q}" for q in SHOWN_MODULI), "mod 5 and 7 >= 0.5 at step", "progress (mod 5, 7)",
              "kept", "reading"]
    sections = []
    for title, kinds, references in TABLES:
        table = []
        for run in table_runs(runs, kinds, references):
            r = finished.get(run.name)
            if r is None:
                table.append([run.name, "", *([""] * len(SHOWN_MODULI)), "", "", "", "not finished"])
                continue
            table.append([run.name, r["change"], *(_cell(r.get(f"test_acc_q{q}")) for q in SHOWN_MODULI),
                          _cell(r["half_step"]), _cell(r["progress"]), _cell(r["kept"]), r["reading"]])
        sections.append(f"## {title}\n\n{markdown_table(header, table)}")
    status = f" (partial: {len(rows)} of {len(runs)} runs finished)" if len(rows) < len(runs) else ""
    return (f"# miiii: which of the code's settings does it{' (quick)' if quick else ''}{status}\n\n"
            f"Test accuracy per modulus at step {steps:,}; progress = mean over q in 5, 7 of (acc_q - 1/q) / "
            f"(1 - 1/q); kept = progress / the code run's. A setting whose reversal keeps less than {HALF} is read "
            f"as needed (a pair's, as needed together); one whose addition keeps {HALF} or more, as enough with the "
            f"fraction (our threshold; one seed per row, and each base's other seeds show how far chance moves "
            f"it).\n\nMod 5 and 7 both at 0.5 or more by step {steps:,}, seeds of each base:\n\n"
            + "\n".join(seed_counts(rows)) + "\n\n" + "\n".join(sections))


def figure(rows: list[Row], runs: list[ScreenRun]) -> go.Figure:
    """One panel per table of TABLES: each finished run's progress (``readout`` of mod 5 and 7) over its steps; the
    reference black, the base's other seeds grey (the band chance spans), each changed run in its own colour."""
    finished = {r["run"]: r for r in rows}
    fig = make_subplots(rows=len(TABLES), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[title for title, _, _ in TABLES])
    # a run keeps its colour in every panel; Dark24's near-black would read as a reference
    palette, colours, legend = [c for c in px.colors.qualitative.Dark24 if c != "#222A2A"], {}, set()
    for panel, (_, kinds, references) in enumerate(TABLES, start=1):
        for run in table_runs(runs, kinds, references):
            r = finished.get(run.name)
            if r is None:
                continue
            seed = run.kind in SEED_READINGS
            colour = "black" if run.kind == "reference" else "silver" if seed else colours.setdefault(
                run.name, palette[len(colours) % len(palette)])
            fig.add_scatter(x=[s for s, _ in r["curve"]], y=[v for _, v in r["curve"]], name=run.name,
                            legendgroup=run.name, showlegend=run.name not in legend, line_color=colour,
                            line_width=1 if seed else 2, row=panel, col=1)
            legend.add(run.name)
        fig.update_yaxes(title_text="progress (mod 5, 7)", row=panel, col=1)
    fig.update_xaxes(title_text="step", row=len(TABLES), col=1)
    return fig.update_layout(title="miiii: progress on mod 5 and 7 (0 chance, 1 all right), each run of the screen",
                             height=300 * len(TABLES) + 120)


def run(out: Path, quick: bool = False, progress: bool = True, jobs: int = 1, partial: bool = False,
        backend: str = "local", device: str = "auto") -> Row:
    """Train every run of the screen (or with ``partial`` read the finished ones) and tabulate them."""
    out = Path(out)
    runs = configs(out, quick, device)
    if not partial:
        execute_all([r.cfg for r in runs], backend, jobs, progress=progress)
    # the tables' order, each run once (the leave-two-out table shows the code's seeds again)
    shown = list({r.name: r for _, kinds, references in TABLES for r in table_runs(runs, kinds, references)}.values())
    rows = readings([run_row(r) for r in shown if is_finished(Path(r.cfg.run.out), r.cfg.optim.steps)])
    out.mkdir(parents=True, exist_ok=True)
    table = [{k: v for k, v in r.items() if k != "curve"} for r in rows]
    write_table(out / "miiii_differences", table)
    (out / "miiii_differences.md").write_text(markdown(rows, runs, quick))
    if rows:
        figure(rows, shown).write_html(out / "miiii_differences.html", include_plotlyjs="directory")
    return {"runs": table}
