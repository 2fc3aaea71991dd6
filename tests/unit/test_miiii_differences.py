"""The screen of the miiii code's settings: its configs revert one field each, and its readout and readings on
constructed rows whose answers are known."""

from pathlib import Path

import pytest

from mechgrok.config import TrainConfig
from mechgrok.experiments.miiii_differences import CODE, OTHER_SEED, SCREENED, configs, readings, readout
from mechgrok.presets import MIIII, MIIII_CODE, MIIII_CODE_CHANGES, MIIII_DIFFERENCES


def test_each_run_differs_from_the_code_run_in_one_field_set_to_the_texts_value(tmp_path):
    runs = configs(tmp_path)
    code, text = runs[CODE].to_dict(), TrainConfig(**MIIII).to_dict()
    assert {k: v for k, v in code.items() if k in MIIII_CODE} == MIIII_DIFFERENCES
    assert {k for k in MIIII_CODE if MIIII_CODE[k] != MIIII_DIFFERENCES[k]} == {"steps", "save_every"}
    assert code["threads"] == 1  # the same numbers under any --jobs
    assert {k for k, v in runs[OTHER_SEED].to_dict().items() if v != code[k]} == {"seed", "out"}
    for field in SCREENED:
        run = runs[f"reverted {field}"].to_dict()
        assert {k for k, v in run.items() if v != code[k]} == {field, "out"}
        assert run[field] == text[field] != code[field]
    # every difference but the weight decay's 1% and the step count is screened
    assert set(SCREENED) == set(MIIII_CODE_CHANGES) - {"weight_decay"}
    assert len({cfg.run.out for cfg in runs.values()}) == len(runs) == len(SCREENED) + 2


def test_readout_is_zero_at_chance_and_one_when_all_are_right():
    assert readout({5: 1 / 5, 7: 1 / 7}) == pytest.approx(0)
    assert readout({5: 1.0, 7: 1.0}) == pytest.approx(1)
    assert readout({5: 0.6, 7: 1 / 7}) == pytest.approx(0.25)  # half the way on mod 5, none on mod 7


def _row(name, progress):
    return {"run": name, "progress": progress}


def test_readings_needed_below_half_the_code_runs_progress():
    rows = readings([_row(CODE, 0.6), _row(OTHER_SEED, 0.5), _row("reverted a", 0.12), _row("reverted b", 0.45)])
    by = {r["run"]: r for r in rows}
    assert by["reverted a"]["kept"] == pytest.approx(0.2) and by["reverted a"]["reading"] == "needed"
    assert by["reverted b"]["kept"] == pytest.approx(0.75) and by["reverted b"]["reading"] == "not needed alone"
    assert by[CODE]["reading"] == "reference"


def test_readings_undetermined_when_another_seed_already_loses_it():
    rows = readings([_row(CODE, 0.6), _row(OTHER_SEED, 0.2), _row("reverted a", 0.05)])
    assert rows[2]["reading"].startswith("undetermined (another seed")
    assert readings([_row(CODE, -0.01), _row(OTHER_SEED, 0.3)])[0]["reading"].startswith("undetermined (the code run")
    assert readings([_row("reverted a", 0.3)])[0]["reading"] == "waits for the code run and its other seed"
