"""The screen of the miiii code's settings: each run changes one field of its base (a pair, two), and the readout
and readings on constructed rows whose answers are known."""

from pathlib import Path

import pytest

from mechgrok.config import TrainConfig
from mechgrok.experiments.miiii import fraction_config
from mechgrok.experiments.miiii_differences import (ADDED, CODE, FRACTION, FRACTION_OTHER_SEED, OTHER_SEED, SCREENED,
                                                    SEEDS, TOGETHER, configs, figure, readings, readout, run_row,
                                                    seed_counts)
from mechgrok.fileio import write_jsonl
from mechgrok.presets import MIIII, MIIII_CODE, MIIII_CODE_CHANGES, MIIII_DIFFERENCES
from mechgrok.run import METRICS_FILE


def _changed(cfg, base):
    a, b = cfg.to_dict(), base.to_dict()
    return {k for k in a if a[k] != b[k]} - {"out"}


def test_each_run_changes_one_field_of_its_base(tmp_path):
    runs = {r.name: r for r in configs(tmp_path)}
    code, text = runs[CODE].cfg.to_dict(), TrainConfig(**MIIII).to_dict()
    assert {k: v for k, v in code.items() if k in MIIII_CODE} == MIIII_DIFFERENCES
    assert {k for k in MIIII_CODE if MIIII_CODE[k] != MIIII_DIFFERENCES[k]} == {"steps", "save_every"}
    assert code["threads"] == 1  # the same numbers under any --jobs
    assert _changed(runs[OTHER_SEED].cfg, runs[CODE].cfg) == {"seed"}
    assert _changed(runs[FRACTION_OTHER_SEED].cfg, runs[FRACTION].cfg) == {"seed"}
    for k in range(2, SEEDS):  # each base's further seeds: only the seed changes
        for base, name in ((runs[CODE], "code"), (runs[FRACTION], FRACTION)):
            run = runs[f"{name}, seed {base.cfg.data.seed + k}"]
            assert _changed(run.cfg, base.cfg) == {"seed"} and run.cfg.data.seed == base.cfg.data.seed + k
    # the add-one-in base is the long fraction-alone run to the screen's horizon
    assert _changed(runs[FRACTION].cfg, fraction_config(tmp_path, False)) == {"steps", "save_every", "threads"}
    assert _changed(runs[FRACTION].cfg, TrainConfig(**MIIII)) == {"frac_train", "steps", "save_every", "threads"}
    for field in SCREENED:
        reverted = runs[f"reverted {field}"]
        assert reverted.base is runs[CODE].cfg and _changed(reverted.cfg, reverted.base) == {field}
        assert reverted.cfg.to_dict()[field] == text[field] != code[field]
        if field in ADDED:
            added = runs[f"added {field}"]
            assert added.base is runs[FRACTION].cfg and _changed(added.cfg, added.base) == {field}
            assert added.cfg.to_dict()[field] == code[field]
        else:
            assert f"added {field}" not in runs
    # every difference but the weight decay's 1% (and the step count) is screened
    assert set(SCREENED) == set(MIIII_CODE_CHANGES) - {"weight_decay"}
    assert "frac_train" not in ADDED and set(ADDED) < set(SCREENED)  # the add-one-in base has the code's fraction
    assert len({r.cfg.run.out for r in runs.values()}) == len(runs) == len(SCREENED) + len(ADDED) + 2 * SEEDS + len(
        TOGETHER)


def test_a_pair_is_set_back_together_right_after_its_later_fields_runs(tmp_path):
    runs = configs(tmp_path)
    names, text = [r.name for r in runs], TrainConfig(**MIIII).to_dict()
    for pair in TOGETHER:
        run = runs[names.index(f"reverted {' and '.join(pair)}")]
        assert run.kind == "reverted together" and run.base is runs[0].cfg
        assert _changed(run.cfg, run.base) == set(pair)
        assert all(run.cfg.to_dict()[f] == text[f] for f in pair)
        later = max(pair, key=SCREENED.index)
        assert names.index(run.name) == names.index(f"added {later}") + 1


def test_a_partial_screen_has_asked_both_questions_of_the_likeliest_fields_first(tmp_path):
    names = [r.name for r in configs(tmp_path)]
    seeds = [f"code, seed {k}" for k in range(2, SEEDS)], [f"{FRACTION}, seed {k}" for k in range(2, SEEDS)]
    assert names[:2 * SEEDS + 2] == [CODE, OTHER_SEED, *seeds[0], FRACTION, FRACTION_OTHER_SEED, *seeds[1],
                                     f"reverted {SCREENED[0]}", f"added {SCREENED[0]}"]
    for field in ADDED[1:]:
        assert names.index(f"added {field}") == names.index(f"reverted {field}") + 1


def test_readout_is_zero_at_chance_and_one_when_all_are_right():
    assert readout({5: 1 / 5, 7: 1 / 7}) == pytest.approx(0)
    assert readout({5: 1.0, 7: 1.0}) == pytest.approx(1)
    assert readout({5: 0.6, 7: 1 / 7}) == pytest.approx(0.25)  # half the way on mod 5, none on mod 7


def _row(name, progress, kind="reference"):
    return {"run": name, "progress": progress, "kind": kind}


def test_readings_needed_below_half_the_code_runs_progress_and_enough_at_half_or_more():
    rows = readings([_row(CODE, 0.6), _row(OTHER_SEED, 0.5, "code seed"), _row("reverted a", 0.12, "reverted"),
                     _row("reverted b", 0.45, "reverted"), _row(FRACTION, 0.0), _row("added a", 0.3, "added"),
                     _row("added b", 0.06, "added")])
    by = {r["run"]: r for r in rows}
    assert by["reverted a"]["kept"] == pytest.approx(0.2) and by["reverted a"]["reading"] == "needed"
    assert by["reverted b"]["kept"] == pytest.approx(0.75) and by["reverted b"]["reading"] == "not needed alone"
    assert by["added a"]["kept"] == pytest.approx(0.5) and by["added a"]["reading"] == "enough with the fraction"
    assert by["added b"]["reading"] == "not enough alone"
    assert by[CODE]["reading"] == "reference" and by[FRACTION]["reading"] == "the base of the added runs"
    together = readings([_row(CODE, 0.6), _row(OTHER_SEED, 0.5, "code seed"),
                         _row("a and b", 0.29, "reverted together"), _row("c and d", 0.3, "reverted together")])
    assert [r["reading"] for r in together[2:]] == ["needed together", "not needed, even together"]


def test_added_readings_undetermined_when_the_bases_other_seed_already_keeps_half():
    base = [_row(CODE, 0.6), _row(OTHER_SEED, 0.5, "code seed"), _row(FRACTION, 0.0), _row("added a", 0.4, "added"),
            _row("reverted a", 0.1, "reverted")]
    slow = readings(base + [_row(FRACTION_OTHER_SEED, 0.29, "base seed"), _row("base, seed 2", 0.1, "base seed")])
    lucky = readings(base + [_row(FRACTION_OTHER_SEED, 0.29, "base seed"), _row("base, seed 2", 0.3, "base seed")])
    assert slow[3]["reading"] == "enough with the fraction"
    assert lucky[3]["reading"].startswith("undetermined (the base with another seed")
    assert lucky[4]["reading"] == "needed"  # the leave-one-out rows read against the code's other seed only
    assert lucky[5]["reading"] == lucky[6]["reading"] == "chance: the base of the added runs, another seed"


def test_readings_undetermined_when_another_seed_already_loses_it():
    rows = readings([_row(CODE, 0.6), _row(OTHER_SEED, 0.2, "code seed"), _row("reverted a", 0.05, "reverted")])
    assert rows[2]["reading"].startswith("undetermined (another seed")
    # one slow seed among several is enough to leave the reading undetermined
    rows = readings([_row(CODE, 0.6), _row(OTHER_SEED, 0.6, "code seed"), _row("code, seed 2", 0.29, "code seed"),
                     _row("reverted a", 0.05, "reverted")])
    assert rows[3]["reading"].startswith("undetermined (another seed")
    at_chance = readings([_row(CODE, -0.01), _row(OTHER_SEED, 0.3, "code seed")])
    assert at_chance[0]["reading"].startswith("undetermined (the code run")
    assert readings([_row("reverted a", 0.3, "reverted")])[0]["reading"] == "waits for the code run and its other seed"


def test_figure_has_a_panel_per_table_each_run_in_its_tables_panels_with_its_progress(tmp_path):
    runs = configs(tmp_path)
    together = next(r.name for r in runs if r.kind == "reverted together")
    curve = [(100, 0.0), (200, 1.0)]  # (step, progress)
    rows = [{"run": name, "curve": curve} for name in (CODE, OTHER_SEED, FRACTION, "reverted beta2", together)]
    fig = figure(rows, runs)
    panels = {}
    for trace in fig.data:
        panels.setdefault(trace.name, []).append(trace)
        assert list(trace.y) == pytest.approx([0, 1])
    assert len(fig.layout.annotations) == 3  # one titled panel per table
    # the code's run and its seed are in the leave-one-out and leave-two-out panels, each in the legend once
    for name in (CODE, OTHER_SEED):
        assert [t.xaxis for t in panels[name]] == ["x", "x3"] and [t.showlegend for t in panels[name]] == [True, False]
    assert [t.xaxis for t in panels[FRACTION]] == ["x2"] and [t.xaxis for t in panels[together]] == ["x3"]
    assert panels[CODE][0].line.color == "black" and panels[OTHER_SEED][0].line.color == "silver"
    assert panels["reverted beta2"][0].line.color not in ("black", "silver")
    assert "added beta2" not in panels  # unfinished runs are left out


def test_seed_counts_count_each_bases_seeds_at_half_by_the_horizon():
    rows = [{"run": CODE, "kind": "reference", "half_step": 1100}, {"run": OTHER_SEED, "kind": "code seed",
                                                                     "half_step": None},
            {"run": FRACTION, "kind": "reference", "half_step": None},
            {"run": FRACTION_OTHER_SEED, "kind": "base seed", "half_step": 1000},
            {"run": "text, fraction 0.5, seed 2", "kind": "base seed", "half_step": 750},
            {"run": "added beta2", "kind": "added", "half_step": 500}]  # not a seed of either base
    assert seed_counts(rows) == ["- the code's settings: 1 of 2 seeds (at step 1,100)",
                                 "- the text's with the code's fraction: 2 of 3 seeds (at steps 750, 1,000)"]
    assert seed_counts(rows[2:3]) == ["- the text's with the code's fraction: 0 of 1 seeds"]


def test_run_row_reads_the_last_step_the_first_step_at_half_and_the_progress_curve(tmp_path):
    run = configs(tmp_path)[0]
    out = Path(run.cfg.run.out)
    out.mkdir(parents=True)
    accuracies = [(0, 1 / 5, 1 / 7), (100, 0.6, 0.4), (200, 0.5, 0.5), (300, 1.0, 1.0)]
    write_jsonl(out / METRICS_FILE, [{"step": s, "test_acc_q2": 1.0, "test_acc_q5": a, "test_acc_q7": b}
                                     for s, a, b in accuracies])
    row = run_row(run)
    assert (row["step"], row["half_step"], row["change"]) == (300, 200, "-")
    assert row["progress"] == pytest.approx(1) and row["test_acc_q2"] == 1.0 and "test_acc_q11" not in row
    assert [s for s, _ in row["curve"]] == [0, 100, 200, 300]
    assert [v for _, v in row["curve"]] == pytest.approx([0, ((0.6 - 0.2) / 0.8 + (0.4 - 1 / 7) / (6 / 7)) / 2,
                                                          ((0.5 - 0.2) / 0.8 + (0.5 - 1 / 7) / (6 / 7)) / 2, 1])
