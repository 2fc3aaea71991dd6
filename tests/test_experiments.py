"""Each experiment's --quick mode runs and its output says something checkable."""

import csv

import pytest

from mechgrok.cli import main


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_augmentation_quick(tmp_path):
    assert main(["experiment", "augmentation", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    runs = _rows(tmp_path / "augmentation_runs.csv")
    assert {(r["operation"], r["condition"]) for r in runs} == {
        (op, cond) for op in ("add", "perm") for cond in ("baseline", "combined 30%")}
    for r in runs:
        assert 0 <= float(r["final_val_acc"]) <= 1 and float(r["final_train_loss"]) < 5
        assert r["s99"] == "" or 0 < int(r["s99"]) <= 150
    text = (tmp_path / "augmentation.md").read_text()
    assert "| Operation | baseline | combined 30% |" in text and "| add |" in text
    assert (tmp_path / "augmentation.html").stat().st_size > 1000


def test_grokfast_quick(tmp_path):
    assert main(["experiment", "grokfast", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "grokfast_runs.csv")
    assert [r["arm"] for r in rows] == ["AdamW (paper)", "AdamW + Grokfast EMA"]
    plain, grokfast = rows
    assert plain["steps_to_99"] and int(plain["steps_to_99"]) <= 700  # the quick config groks
    assert plain["final_train_loss"] != grokfast["final_train_loss"]  # the filter changed training
    assert "Speed-up in steps" in (tmp_path / "grokfast.md").read_text()


def test_unknown_experiment(capsys):
    assert main(["experiment", "nope", "--quick"]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_gromov_quick(tmp_path):
    assert main(["experiment", "gromov", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    rows = {r["model"]: r for r in _rows(tmp_path / "gromov.csv")}
    analytic = rows["analytic N=128"]
    assert float(analytic["accuracy_all_pairs"]) == 1.0  # no training, 100% on every pair
    assert float(analytic["single_frequency_neurons"]) == 1.0
    assert float(analytic["median_phase_error_rad"]) < 1e-3
    assert len(_rows(tmp_path / "gromov_training_curve.csv")) > 10


def test_miiii_quick(tmp_path):
    assert main(["experiment", "miiii", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    tasks = {int(r["q"]): r for r in _rows(tmp_path / "miiii.csv")}
    assert set(tasks) == {2, 3, 5, 7}
    curves = _rows(tmp_path / "miiii_curves.csv")
    assert float(curves[-1]["train_loss"]) < float(curves[0]["train_loss"])  # it learns
    assert float(curves[0]["train_loss"]) == pytest.approx(4.0, abs=1.0)  # ~ the number of tasks at init
    assert tasks[2]["grok_step"]  # the mod-2 task generalises within the quick budget
