"""Each experiment's --quick mode runs and its output says something checkable."""

import csv
import shutil

import pytest
import torch

from mechgrok import load_run
from mechgrok.cli import main
from mechgrok.config import TrainConfig
from mechgrok.experiments.augmentation import summarise
from mechgrok.experiments.miiii import fraction_config
from mechgrok.presets import MIIII, MIIII_QUICK
from mechgrok.metrics import head_accuracies
from mechgrok.run import RESUME_FILES

from ..conftest import small_config


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_augmentation_quick(tmp_path):
    assert main(["experiment", "augmentation", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    runs = _rows(tmp_path / "augmentation_runs.csv")
    assert {(r["operation"], r["condition"]) for r in runs} == {
        (op, cond) for op in ("add", "perm") for cond in ("baseline", "combined 30%")} | {
        ("add", "negation 15%, train pairs only")}
    control = load_run(tmp_path / "runs" / "add_negation_15_train_pairs_only_seed0").config
    assert (control.data.aug_scope, control.data.aug_negate, control.data.aug_reverse) == ("train", 0.15, 0.0)
    for r in runs:
        assert 0 <= float(r["final_val_acc"]) <= 1 and float(r["final_train_loss"]) < 5
        assert r["grok_step"] == "" or 0 < int(r["grok_step"]) <= 150
    text = (tmp_path / "augmentation.md").read_text()
    assert "| Operation | baseline | combined 30% |" in text and "| add |" in text
    assert "| Operation | baseline | negation 15%, train pairs only |" in text  # the leakage control
    assert (tmp_path / "augmentation.html").stat().st_size > 1000

    # --partial: tables from the finished runs only, training nothing
    (tmp_path / "runs" / "perm_combined_30_seed0" / "summary.json").unlink()  # as if still training
    weights = {path: path.stat().st_mtime_ns for path in (tmp_path / "runs").rglob("*.safetensors")}
    assert main(["experiment", "augmentation", "--quick", "--partial", "--out", str(tmp_path)]) == 0
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "runs").rglob("*.safetensors")} == weights
    text = (tmp_path / "augmentation.md").read_text()
    assert "(partial: 4 of 5 runs finished)" in text
    assert next(line for line in text.splitlines() if line.startswith("| perm |")).endswith("| not run yet |")
    assert len(_rows(tmp_path / "augmentation_runs.csv")) == 4


def test_grokfast_quick(tmp_path):
    assert main(["experiment", "grokfast", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "grokfast_runs.csv")
    assert [r["arm"] for r in rows] == ["AdamW (paper)", "AdamW + Grokfast EMA"]
    plain, grokfast = rows
    assert plain["grok_step"] and int(plain["grok_step"]) <= 700  # the quick config groks
    assert plain["final_train_loss"] != grokfast["final_train_loss"]  # the filter changed training
    assert "Speed-up in steps" in (tmp_path / "grokfast.md").read_text()


def test_unknown_experiment(capsys):
    assert main(["experiment", "nope", "--quick"]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["gromov", "--jobs", "2"], "--jobs does not apply to experiment gromov; it applies to augmentation, grokfast"),
    (["grokfast", "--partial"], "--partial does not apply to experiment grokfast; it applies to augmentation"),
    (["augmentation", "--jobs", "0"], "--jobs must be at least 1, got 0"),
])
def test_options_an_experiment_does_not_take(capsys, tmp_path, argv, message):
    assert main(["experiment", *argv, "--quick", "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before writing anything


def test_a_device_or_out_it_cannot_use_is_refused_before_out_is_made(capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["experiment", "gromov", "--quick", "--device", "cuda:7", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda:7" in err[0] and not out.exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert main(["experiment", "gromov", "--quick", "--out", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err and a_file.read_text() == "mine"


def test_gromov_quick(tmp_path):
    assert main(["experiment", "gromov", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    rows = {r["model"]: r for r in _rows(tmp_path / "gromov.csv")}
    analytic = rows["analytic N=128"]
    assert float(analytic["accuracy_all_pairs"]) == 1.0  # no training, 100% on every pair
    assert float(analytic["single_frequency_neurons"]) == 1.0
    assert float(analytic["median_phase_error_rad"]) < 1e-3
    assert len(_rows(tmp_path / "gromov_training_curve.csv")) > 10
    # plain GD groks: train accuracy first, test accuracy much later, then every pair right
    trained = next(r for name, r in rows.items() if name.startswith("trained"))
    assert float(trained["accuracy_all_pairs"]) == 1.0
    assert 4 * int(trained["train_acc_99_step"]) < int(trained["grok_step"])
    # and it learns the analytic solution's features, which its own initialisation lacks
    control = next(r for name, r in rows.items() if name.startswith("untrained"))
    assert float(control["single_frequency_neurons"]) < 0.05
    assert float(trained["single_frequency_neurons"]) > 0.3
    assert int(trained["distinct_frequencies"]) == (23 - 1) // 2  # every frequency is used
    assert float(trained["median_phase_error_rad"]) < 0.5  # chi = phi + psi (random: ~pi/2)


def test_miiii_quick(tmp_path):
    assert main(["experiment", "miiii", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    tasks = {int(r["q"]): r for r in _rows(tmp_path / "miiii.csv")}
    assert set(tasks) == {2, 3, 5, 7}
    curves = _rows(tmp_path / "miiii_curves.csv")
    assert float(curves[-1]["train_loss"]) < float(curves[0]["train_loss"])  # it learns
    assert float(curves[0]["train_loss"]) == pytest.approx(4.0, abs=1.0)  # ~ the number of tasks at init
    assert tasks[2]["grok_step"]  # the mod-2 task generalises within the quick budget
    # the twin without Grokfast: same split, its own curves, and the third claim read from the two
    assert "grok_step_no_grokfast" in tasks[2]
    plain = _rows(tmp_path / "miiii_curves_no_grokfast.csv")
    assert [r["step"] for r in plain] == [r["step"] for r in curves] and plain[-1] != curves[-1]
    assert load_run(tmp_path / "run_no_grokfast").config.optim.grokfast == "none"
    assert "- Grokfast speeds it up: **" in (tmp_path / "miiii.md").read_text()
    # it is an ordinary run: its last checkpoint, in HookedTransformer, reproduces the logged test accuracies
    run = load_run(tmp_path / "run")
    data = run.dataset
    with torch.no_grad():
        logits = run.model()(data.inputs[data.test_idx])[:, -1]
    accuracies = head_accuracies(logits, data.labels[data.test_idx], data.heads)
    assert accuracies == pytest.approx([float(curves[-1][f"test_acc_q{q}"]) for q in data.heads])


def test_augmentation_claims_from_known_runs():
    def run(condition, step, seed):
        return {"operation": "add", "condition": condition, "seed": seed, "grok_step": step, "final_val_acc": 1.0}

    conditions = ("baseline", "negation 15%", "reversal 15%", "combined 15%")
    runs = ([run("baseline", s, i) for i, s in enumerate((1000, 1200, 1400))]
            + [run("negation 15%", s, i) for i, s in enumerate((500, 600, 700))]
            + [run("reversal 15%", s, i) for i, s in enumerate((2000, None, 2100))]
            + [run("combined 15%", 800, 0)])
    table, relative, claims = summarise(runs, ["add"], conditions, n_seeds=3)
    verdicts = {c["claim"]: c["verdict"] for c in claims}
    assert verdicts == {
        "negation speeds up addition": "holds",
        "reversal speeds up addition": "undetermined (a condition did not reach 99% in every seed)",
        "combined 15% beats negation alone on addition": "undetermined (runs not finished)",
    }
    assert "| 1200 ± 115<br>(100.00 ± 0.00%) | 600 ± 58<br>" in table  # mean ± s.e. (s.e. = 200/sqrt(3))
    assert "N/A (2/3 reached 99%)" in table and "[1/3 seeds so far]" in table
    assert relative.splitlines()[-1] == "| add | -50.0% | N/A | not finished |"  # 600 / 1200 - 1
    with_paper, relative_with_paper, _ = summarise(runs, ["add"], conditions, 3, reference=True)
    assert "| -50.0%<br>paper: -57.7% |" in relative_with_paper
    assert "(100.00 ± 0.00%)<br>paper: 2363 ± 121 (100%) | " in with_paper  # add, baseline
    assert "[1/3 seeds so far]<br>paper: 920 ± 47 (100%) |" in with_paper  # add, combined 15%
    for r in runs[3:6]:  # negation now slower than baseline
        r["grok_step"] = 5000
    assert {c["claim"]: c["verdict"] for c in summarise(runs, ["add"], conditions, 3)[2]}[
        "negation speeds up addition"] == "does not hold"


def test_augmentation_accuracy_claims():
    def run(condition, acc, seed):
        return {"operation": "perm", "condition": condition, "seed": seed, "grok_step": None, "final_val_acc": acc}

    runs = [run("baseline", 0.04, i) for i in range(3)]
    runs += [run("combined 15%", acc, i) for i, acc in enumerate((0.6, 0.7, 0.05))]
    claim = "combined 15% raises permutation's final validation accuracy"
    verdict = {c["claim"]: c["verdict"] for c in summarise(runs, ["perm"], ("baseline", "combined 15%"), 3)[2]}
    assert verdict == {claim: "holds"}  # decided by accuracy although no run reached 99%
    for r in runs[3:]:
        r["final_val_acc"] = 0.03
    assert summarise(runs, ["perm"], ("baseline", "combined 15%"), 3)[2] == [{"claim": claim,
                                                                              "verdict": "does not hold"}]


def test_miiii_quick_as_the_code_ran_it(tmp_path, capsys):
    """--as code: the study code's settings (half the numbers for training, ...) on both runs; --partial before any
    checkpoint is one line, after training it tabulates the checkpoints without training."""
    out = tmp_path / "code"
    assert main(["experiment", "miiii", "--quick", "--quiet", "--as", "code", "--partial", "--out", str(out)]) == 2
    assert "has no checkpoint yet" in capsys.readouterr().err
    assert main(["experiment", "miiii", "--quick", "--quiet", "--as", "code", "--out", str(out)]) == 0
    for sub, grokfast in (("run", "ema"), ("run_no_grokfast", "none")):
        cfg = load_run(out / sub).config
        assert (cfg.data.frac_train, cfg.model.dropout_mask, cfg.optim.task_loss, cfg.model.biases,
                cfg.model.mlp_init, cfg.optim.grokfast_start, cfg.model.dtype, cfg.optim.warmup_steps,
                cfg.optim.beta2) == (0.5, "step", "mean", "none", "tied", "zero", "float64", 0, 0.999)
        assert cfg.optim.grokfast == grokfast
    # the control that changes the fraction alone: the text's config in every field but frac_train (and the horizon)
    for quick, fraction in ((True, load_run(out / "run_fraction_only").config), (False, fraction_config(out, False))):
        alone, text = fraction.to_dict(), TrainConfig(**(MIIII_QUICK if quick else MIIII)).to_dict()
        assert {k for k in text if alone[k] != text[k]} <= {"out", "frac_train", "steps"}
        assert (alone["frac_train"], alone["steps"]) == (0.5, 300 if quick else 65536)
    assert "the text's run, fraction 0.5 alone" in (out / "miiii.md").read_text()
    assert (out / "miiii_curves_fraction_only.csv").exists()
    curves = _rows(out / "miiii_curves.csv")
    assert float(curves[0]["train_loss"]) == pytest.approx(1.0, abs=0.25)  # the mean over tasks: ~1 at init
    text = (out / "miiii.md").read_text()
    assert text.startswith("# miiii as the study's code ran it, p=11, frac_train 0.5, 300 steps (quick)")
    # read at the text's last step too (the quick presets': 300), from the logged curve
    for row in _rows(out / "miiii.csv"):
        assert float(row["test_acc_at_text_steps"]) == pytest.approx(float(curves[-1][f"test_acc_q{row['q']}"]))
    assert "| test acc at step 300 (the text's last) |" in text
    assert "Grokked by step 300 (the text's last step): " in text
    table = _rows(out / "miiii.csv")
    (out / "miiii.md").unlink()
    assert main(["experiment", "miiii", "--quick", "--quiet", "--as", "code", "--partial", "--out", str(out)]) == 0
    assert (out / "miiii.md").read_text() == text  # the same table (its fits recomputed: equal to 3 decimals)
    again = _rows(out / "miiii.csv")
    assert [(r["q"], r["grok_step"]) for r in again] == [(r["q"], r["grok_step"]) for r in table]
    assert load_run(out / "run").steps[-1] == 300  # nothing trained further
    shutil.rmtree(out / "run_fraction_only")  # stopped for good on another machine: its committed curves stand in
    assert main(["experiment", "miiii", "--quick", "--quiet", "--as", "code", "--partial", "--out", str(out)]) == 0
    assert (out / "miiii.md").read_text() == text and "The text's run with the fraction alone changed: 300" in text
    (out / "miiii_curves_fraction_only.csv").unlink()
    assert main(["experiment", "miiii", "--quick", "--quiet", "--as", "code", "--partial", "--out", str(out)]) == 0
    assert "The text's run with the fraction alone changed: not started." in (out / "miiii.md").read_text()
    assert main(["experiment", "grokfast", "--quick", "--as", "code", "--out", str(tmp_path / "g")]) == 2
    assert "--as does not apply to experiment grokfast" in capsys.readouterr().err
    carried = tmp_path / "carried" / "run"  # the run on a fresh checkout: its resume files alone, no checkpoint
    carried.mkdir(parents=True)
    for name in RESUME_FILES:
        shutil.copy(out / "run" / name, carried / name)
    assert main(["experiment", "miiii", "--quick", "--quiet", "--as", "code", "--partial", "--out",
                 str(carried.parent)]) == 2
    assert f"train it first (mechgrok train --config {carried / 'config.json'})" in capsys.readouterr().err


def test_the_code_run_beside_the_text_run_and_the_fraction_alone(tmp_path):
    """miiii_vs_text.md: each run's test accuracy read at the last logged step at or before the code run's step
    (the text run's from its committed curves), the fraction-alone column only when that run has rows."""
    from mechgrok.experiments.miiii import TEXT_CURVES, _compare_with_text

    assert TEXT_CURVES.is_file()  # committed with the text run's results
    table = [{"q": 2, "final_test_acc": 1.0, "grok_step": 300}, {"q": 109, "final_test_acc": 0.013, "grok_step": None}]
    alone = [{"step": s, "test_acc_q2": s / 1000, "test_acc_q109": 0.01} for s in (0, 500, 1000)]
    _compare_with_text(tmp_path, table, 900, alone)
    text = (tmp_path / "miiii_vs_text.md").read_text()
    assert "text with frac 0.5 alone: test acc at step 500" in text  # the last row at or before 900
    assert "| 2 | 1.000 |" in text and "| 0.500 | 300 |" in text and "not by 900" in text
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    # the text run's grok steps, from its committed curves: mod 2 at 400; mod 109 never in its 40,000 steps
    assert rows["| 2"].endswith("| 300 | 400 |") and rows["| 109"].endswith("| not by 900 | not by 40,000 |")
    _compare_with_text(tmp_path, table, 900, [])
    assert "alone" not in (tmp_path / "miiii_vs_text.md").read_text()


def test_miiii_differences_quick(tmp_path):
    """The screen of the code's settings: the code run, another seed, each reverted run, the text with the code's
    fraction and each added run train and are read at the horizon; --partial reads the finished runs without
    training, and a missing run is "not finished"."""
    import shutil

    out = tmp_path / "screen"
    assert main(["experiment", "miiii-differences", "--quick", "--quiet", "--out", str(out)]) == 0
    rows = {r["run"]: r for r in _rows(out / "miiii_differences.csv")}
    assert list(rows) == ["code", "code, another seed", "reverted beta2", "reverted biases", "text, fraction 0.5",
                          "text, fraction 0.5, another seed", "added beta2", "added biases",
                          "reverted beta2 and biases"]
    assert rows["reverted beta2"]["change"] == "beta2 0.999 -> 0.98"
    assert rows["reverted beta2 and biases"]["change"] == "biases none -> mlp, beta2 0.999 -> 0.98"
    assert rows["added biases"]["change"] == "biases mlp -> none"
    for r in rows.values():
        assert int(r["step"]) == 300 and -1 <= float(r["progress"]) <= 1
        accs = {q: float(r[f"test_acc_q{q}"]) for q in (5, 7)}
        assert float(r["progress"]) == pytest.approx(((accs[5] - 0.2) / 0.8 + (accs[7] - 1 / 7) / (6 / 7)) / 2)
    assert load_run(out / "runs" / "reverted_biases").config.model.biases == "mlp"
    assert load_run(out / "runs" / "added_biases").config.model.biases == "none"
    assert load_run(out / "runs" / "text_fraction").config.optim.grokfast == "none"  # the quick text preset's
    shutil.rmtree(out / "runs" / "reverted_biases")
    assert main(["experiment", "miiii-differences", "--quick", "--quiet", "--partial", "--out", str(out)]) == 0
    assert not (out / "runs" / "reverted_biases").exists()  # --partial trains nothing
    text = (out / "miiii_differences.md").read_text()
    assert "(partial: 8 of 9 runs finished)" in text and "| reverted biases |" in text and "not finished" in text
    assert "## Leave one out" in text and "## Add one in" in text and "## Leave two out" in text
