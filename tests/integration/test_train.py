import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from mechgrok import MechgrokError, load_run, train
from mechgrok.run import RESUME_FILES
from mechgrok.train import Trainer

from ..conftest import small_config


def test_run_dir_has_checkpoints_metrics_and_split(tmp_path):
    cfg = small_config(tmp_path, steps=40, save_every=20, dense_save_every=5, dense_save_until=10)
    result = train(cfg, progress=False)
    run = load_run(result.run_dir)
    assert run.steps == [0, 5, 10, 20, 40]
    metrics = pd.read_json(result.run_dir / "metrics.jsonl", lines=True)
    assert list(metrics["step"]) == [0, 5, 10, 20, 30, 40]  # every log step and every checkpoint
    assert {"train_loss", "test_loss", "train_acc", "test_acc", "sum_sq_weights"} <= set(metrics.columns)
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]
    assert len(run.dataset.train_idx) == int(0.6 * 23 * 23)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["train_loss"] == pytest.approx(metrics["train_loss"].iloc[-1], rel=1e-12)


def test_same_config_and_seed_give_the_same_numbers(tmp_path):
    first = train(small_config(tmp_path / "a"), progress=False).summary
    second = train(small_config(tmp_path / "b"), progress=False).summary
    assert first["test_loss"] == second["test_loss"] and first["train_loss"] == second["train_loss"]


def _without_wall_clock(rows: list[dict]) -> list[dict]:
    """Metrics rows without the one column that differs between identical runs."""
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rows]


class Killed(Exception):
    pass


RESUME_CASES = {
    "full batch": {},
    "mini-batch": {"batch_size": 64},
    # dropout draws from the torch RNG: bit-identical only if its state is saved and restored
    "dropout": {"dropout": 0.3},
    # the multi-head task with dropout and the Grokfast filter, as the miiii study trains
    "miiii, dropout, grokfast": {"task": "miiii", "p": 11, "dropout": 0.1, "grokfast": "ema", "grokfast_lamb": 0.5},
    # the lr cut is read back from metrics.jsonl on resume (chance is 1/23, so it triggers at the first log)
    "lr cut": {"decay_at_test_acc": 0.01, "decay_factor": 0.2},
}


def test_lr_cut_starts_after_the_first_log_that_reaches_the_threshold(tmp_path):
    plain = train(small_config(tmp_path / "plain", steps=300), progress=False)
    rows = load_run(plain.run_dir).metrics()
    trigger = next(r["step"] for r in rows if r["test_acc"] >= 0.2)
    assert 0 < trigger < 290
    cut = train(small_config(tmp_path / "cut", steps=300, decay_at_test_acc=0.2, decay_factor=0.1), progress=False)
    cut_rows = load_run(cut.run_dir).metrics()
    upto = [r for r in rows if r["step"] <= trigger]
    assert _without_wall_clock(cut_rows[:len(upto)]) == _without_wall_clock(upto)  # the same run until the trigger ...
    assert cut_rows[len(upto)]["train_loss"] != rows[len(upto)]["train_loss"]  # ... a smaller step after it


def _assert_same_end(a, b, step: int) -> None:
    """Runs ``a`` and ``b`` hold the same weights at ``step`` and logged the same numbers (the wall clock aside)."""
    want, got = a.state_dict(step)[0], b.state_dict(step)[0]
    assert got.keys() == want.keys()
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), name
    assert _without_wall_clock(b.metrics()) == _without_wall_clock(a.metrics())


@pytest.mark.parametrize("changes", RESUME_CASES.values(), ids=RESUME_CASES.keys())
def test_resume_after_kill_matches_uninterrupted_run_bit_for_bit(tmp_path, monkeypatch, changes):
    straight = train(small_config(tmp_path / "straight", steps=60, **changes), progress=False)

    cfg = small_config(tmp_path / "killed", steps=60, **changes)
    real_step = Trainer.train_step

    def dying_step(self):
        if self.step == 37:
            raise Killed
        real_step(self)

    monkeypatch.setattr(Trainer, "train_step", dying_step)
    with pytest.raises(Killed):
        train(cfg, progress=False)
    monkeypatch.setattr(Trainer, "train_step", real_step)
    assert load_run(cfg.run.out).steps[-1] == 30
    resumed = train(cfg, progress=False)

    a, b = load_run(straight.run_dir), load_run(resumed.run_dir)
    assert a.steps == b.steps
    _assert_same_end(a, b, 60)


def test_a_run_carried_by_its_resume_files_alone_continues_bit_for_bit(tmp_path):
    """What the code's miiii runs do between sessions, each on a fresh checkout: only RESUME_FILES travel."""
    changes = RESUME_CASES["miiii, dropout, grokfast"]
    straight = train(small_config(tmp_path / "straight", steps=60, **changes), progress=False)
    half = train(small_config(tmp_path / "half", steps=30, **changes), progress=False)
    carried = small_config(tmp_path / "carried", steps=60, **changes)
    Path(carried.run.out).mkdir(parents=True)
    for name in RESUME_FILES:
        shutil.copy(half.run_dir / name, Path(carried.run.out) / name)
    resumed = train(carried, progress=False)
    a, b = load_run(straight.run_dir), load_run(resumed.run_dir)
    assert b.steps == [40, 50, 60]  # the checkpoints up to the carry stayed behind
    _assert_same_end(a, b, 60)


def test_extending_a_finished_run_continues_it(tmp_path):
    train(small_config(tmp_path, steps=20), progress=False)
    result = train(small_config(tmp_path, steps=40), progress=False)
    assert load_run(result.run_dir).steps == [0, 10, 20, 30, 40] and result.summary["steps"] == 40


def test_rerunning_a_finished_run_changes_nothing(tmp_path):
    cfg = small_config(tmp_path, steps=20)
    run_dir = train(cfg, progress=False).run_dir
    before = {p: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir()}
    train(cfg, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir()} == before


def test_run_of_another_config_is_refused(tmp_path):
    train(small_config(tmp_path, steps=10), progress=False)
    with pytest.raises(MechgrokError, match=r"another config \(lr: 0.003 there vs 0.01 now"):
        train(small_config(tmp_path, steps=10, lr=0.01), progress=False)


def test_non_empty_foreign_directory_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "precious.txt").write_text("keep me")
    with pytest.raises(MechgrokError, match="not empty and is not a mechgrok run"):
        train(small_config(tmp_path), progress=False)
    assert (tmp_path / "run" / "precious.txt").read_text() == "keep me"


def test_second_trainer_on_a_run_in_progress_is_refused(tmp_path):
    first = Trainer(small_config(tmp_path, steps=10), progress=False)
    with pytest.raises(MechgrokError, match="being trained by another process"):
        Trainer(small_config(tmp_path, steps=10), progress=False)
    first.run()  # finishing releases the run for the next trainer
    assert Trainer(small_config(tmp_path, steps=20), progress=False).run().summary["steps"] == 20


@pytest.mark.parametrize("scope", ["all", "train"])
def test_augmented_batches_respect_aug_scope(tmp_path, scope):
    trainer = Trainer(small_config(tmp_path, aug_negate=0.5, aug_scope=scope), progress=False)
    held_out = {tuple(pair) for pair in trainer.data.test()[0][:, :2].tolist()}
    batch, _ = trainer.batches.batch(0)
    leaked = sum(tuple(pair) in held_out for pair in batch[:, :2].tolist())
    assert (leaked == 0) if scope == "train" else (leaked > 0.2 * len(batch))


def test_evaluation_with_dropout_is_deterministic(tmp_path):
    trainer = Trainer(small_config(tmp_path, dropout=0.5), progress=False)
    for _ in range(5):
        trainer.train_step()
    first, second = trainer.evaluate(), trainer.evaluate()
    assert first == second
    assert trainer.model.training  # evaluation hands the model back in training mode
    # and the logged numbers are the dropout-free function's (what HookedTransformer computes)
    trainer.model.eval()
    with torch.no_grad():
        logits = trainer.model(trainer.batches.test[0])
    assert first["test_loss"] == pytest.approx(trainer.objective.loss(logits, trainer.batches.test[1]).item(), rel=1e-12)


@pytest.mark.parametrize("changes", [{"d_model": 10**6}, {"grokfast": "ma", "grokfast_window": 10**7}])
def test_impossible_sizes_are_refused_before_anything_is_created(tmp_path, changes):
    with pytest.raises(MechgrokError, match=r"needs about .* GiB of memory and cpu has .* free"):
        train(small_config(tmp_path, **changes), progress=False)
    assert not (tmp_path / "run").exists()


def test_a_start_that_fails_leaves_nothing_that_blocks_the_rerun(tmp_path, monkeypatch):
    import importlib

    train_module = importlib.import_module("mechgrok.train")  # the attribute mechgrok.train is the function

    def boom(*args, **kwargs):
        raise MechgrokError("simulated failure while building the data")

    monkeypatch.setattr(train_module, "make_dataset", boom)
    with pytest.raises(MechgrokError, match="simulated failure"):
        train(small_config(tmp_path, steps=10), progress=False)
    assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)  # the scaffolding an older release left behind
    (tmp_path / "run" / ".lock").write_text("")
    assert train(small_config(tmp_path, steps=10), progress=False).summary["steps"] == 10


def test_a_start_that_fails_after_writing_its_dataset_leaves_nothing_either(tmp_path, monkeypatch):
    from mechgrok.run import RunWriter

    def full_disk(*args, **kwargs):
        raise MechgrokError("cannot write config.json (No space left on device)")

    monkeypatch.setattr(RunWriter, "write_config", full_disk)
    with pytest.raises(MechgrokError, match="No space left"):
        train(small_config(tmp_path, steps=10), progress=False)
    assert not (tmp_path / "run").exists()  # its dataset.safetensors would have blocked the rerun
    monkeypatch.undo()
    assert train(small_config(tmp_path, steps=10), progress=False).summary["steps"] == 10


def test_resume_removes_stale_temporaries_and_nothing_else(tmp_path):
    cfg = small_config(tmp_path, steps=20)
    run_dir = train(cfg.replace(steps=10), progress=False).run_dir
    stale = [run_dir / ".resume.safetensors.mechgrok-abcd1234.tmp",
             run_dir / "checkpoints" / ".step_0000020.safetensors.mechgrok-x_y_z123.tmp"]
    # a user's files, the second one shaped like a temporary of ours but not named by this package
    keep = [run_dir / "notes.tmp", run_dir / "checkpoints" / "README", run_dir / ".backup.20240101.tmp"]
    for path in stale + keep:
        path.write_text("debris")
    train(cfg, progress=False)
    assert not any(path.exists() for path in stale) and all(path.exists() for path in keep)


def test_a_resume_at_step_0_logs_step_0_once(tmp_path):
    from mechgrok.run import load_run

    cfg = small_config(tmp_path, steps=20, save_every=10)
    first = Trainer(cfg, progress=False)
    first._save(first._log())  # step 0 logged and saved, then the process dies
    first.writer.close()
    run_dir = first.path
    assert [r["step"] for r in load_run(run_dir).metrics()] == [0]
    train(cfg, progress=False)
    steps = [r["step"] for r in load_run(run_dir).metrics()]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 20


def test_a_diverging_run_stops_at_the_first_non_finite_loss_in_one_line(tmp_path, capsys):
    from mechgrok.cli import main
    from mechgrok.run import load_run

    out = tmp_path / "run"
    code = main(["train", "--task", "add", "--p", "23", "--steps", "40", "--save-every", "10", "--lr", "1e30",
                 "--warmup-steps", "0", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not finite" in err[0], err
    run = load_run(out)
    assert all(math.isfinite(r["train_loss"]) for r in run.metrics())  # no row of a diverged step
    assert run.steps and all(torch.isfinite(t).all() for t in run.checkpoint(run.steps[-1]).weights.values())


def _kill_campaign(tmp_path, kills, seed):
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).parent / "kill_worker.py"
    result = subprocess.run([sys.executable, str(worker), str(tmp_path), str(kills), str(seed)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _assert_resumed_equals_straight(report):
    from mechgrok.fileio import TEMPORARY_RE

    killed, straight = load_run(report["killed"]), load_run(report["straight"])
    assert killed.steps == straight.steps
    for step in (killed.steps[len(killed.steps) // 2], killed.steps[-1]):
        for name, tensor in straight.checkpoint(step).weights.items():
            assert torch.equal(killed.checkpoint(step).weights[name], tensor), (step, name)
    assert _without_wall_clock(killed.metrics()) == _without_wall_clock(straight.metrics())
    leftovers = [p for d in (killed.path, killed.checkpoint_dir) for p in d.iterdir() if TEMPORARY_RE.fullmatch(p.name)]
    assert leftovers == []
    import fcntl

    with open(killed.path / ".lock") as handle:  # the lock is free
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    report = _kill_campaign(tmp_path, kills=20, seed=0)
    assert report["kills"] == 20
    assert report["kills_leaving_temporaries"] >= 1  # some kills landed in the middle of a write
    _assert_resumed_equals_straight(report)


@pytest.mark.slow
def test_sigkill_campaign_long(tmp_path):
    report = _kill_campaign(tmp_path, kills=100, seed=1)
    assert report["kills"] == 100 and report["kills_leaving_temporaries"] >= 5
    _assert_resumed_equals_straight(report)


def _mount_tmpfs(path, size):
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" if not any(path.samefile(m) for m in _mounts()) else f"remount,size={size}"
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode == 0


def _mounts():
    from pathlib import Path

    with open("/proc/mounts") as handle:
        return [Path(line.split()[1]) for line in handle if Path(line.split()[1]).exists()]


def test_disk_full_fails_with_one_line_keeps_the_last_checkpoint_and_resumes(tmp_path, monkeypatch, capsys):
    import subprocess

    from mechgrok.cli import main

    disk = tmp_path / "disk"
    real_disk = _mount_tmpfs(disk, "400k")  # root on Linux: a real full disk; elsewhere ENOSPC is simulated
    try:
        argv = ["train", "--p", "23", "--d-model", "32", "--d-head", "8", "--d-mlp", "64", "--steps", "400",
                "--save-every", "10", "--quiet", "--out", str(disk / "run")]
        if not real_disk:
            import errno

            import mechgrok.fileio as fileio

            real_save, calls = fileio.save_file, []

            def filling(*args, **kwargs):
                calls.append(1)
                if len(calls) > 9:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real_save(*args, **kwargs)
            monkeypatch.setattr(fileio, "save_file", filling)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "No space left on device" in err and err.count("\n") == 1 and "Traceback" not in err
        run = load_run(disk / "run")
        last = run.steps[-1]
        assert 0 < last < 400 and run.checkpoint(last).verified  # the last good checkpoint survives, intact
        if real_disk:
            assert _mount_tmpfs(disk, "16m")  # space freed
        else:
            monkeypatch.undo()
        assert main(argv) == 0
        assert load_run(disk / "run").steps[-1] == 400
    finally:
        if real_disk:
            subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_resume_file_of_another_model_or_without_its_step_is_one_line(tmp_path):
    import shutil

    cfg = small_config(tmp_path, steps=20, save_every=10)
    run_dir = train(cfg.replace(steps=10), progress=False).run_dir
    other = train(small_config(tmp_path, steps=10, d_mlp=32, out=str(tmp_path / "other")), progress=False).run_dir
    mine = (run_dir / "resume.safetensors").read_bytes()
    shutil.copy(other / "resume.safetensors", run_dir / "resume.safetensors")
    with pytest.raises(MechgrokError, match="does not fit this run's model"):
        train(cfg, progress=False)
    from mechgrok.fileio import load_tensors, save_tensors

    (run_dir / "resume.safetensors").write_bytes(mine)
    loaded = load_tensors(run_dir / "resume.safetensors", "resume")
    save_tensors(run_dir / "resume.safetensors", loaded.tensors, {"kind": "resume", "elapsed": 1.0})
    with pytest.raises(MechgrokError, match="does not say at which step"):
        train(cfg, progress=False)


def test_progress_lines_carry_the_run_directory_name_and_end_done(tmp_path, capsys):
    train(small_config(tmp_path, steps=20, out=str(tmp_path / "add_p23_seed0_fast")), progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("add_p23_seed0_fast: 20/20") and lines[-1].endswith("done")


def test_step_flops_counts_at_least_the_mlps_products(tmp_path):
    """One full-batch step's FLOPs: the MLP's two products forward and four backward are 12 n d_model d_mlp, most
    of the step; the rest (unembedding, attention tables, the loss) adds a fraction of that. The step is taken."""
    trainer = Trainer(small_config(tmp_path), progress=False)
    n = len(trainer.batches.train[0])
    mlp = 12 * n * trainer.cfg.model.d_model * trainer.cfg.model.d_mlp
    assert mlp <= trainer.step_flops() <= 1.5 * mlp
    assert trainer.step == 1
    trainer.writer.close()
