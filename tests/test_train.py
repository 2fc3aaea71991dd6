import json

import pandas as pd
import pytest
import torch

from mechgrok import MechgrokError, load_run, train
from mechgrok.train import Trainer

from .conftest import small_config


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


class Killed(Exception):
    pass


@pytest.mark.parametrize("batch_size", [0, 64])
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, monkeypatch, batch_size):
    straight = train(small_config(tmp_path / "straight", steps=60, batch_size=batch_size), progress=False)

    cfg = small_config(tmp_path / "killed", steps=60, batch_size=batch_size)
    real_step = Trainer.train_step

    def dying_step(self):
        if self.step == 37:
            raise Killed
        real_step(self)

    monkeypatch.setattr(Trainer, "train_step", dying_step)
    with pytest.raises(Killed):
        train(cfg, progress=False)
    monkeypatch.setattr(Trainer, "train_step", real_step)
    assert load_run(cfg.out).steps[-1] == 30
    resumed = train(cfg, progress=False)

    a, b = load_run(straight.run_dir), load_run(resumed.run_dir)
    assert a.steps == b.steps
    for name, tensor in a.state_dict(60)[0].items():
        torch.testing.assert_close(b.state_dict(60)[0][name], tensor, rtol=0, atol=1e-6)
    rows_a, rows_b = a.metrics(), b.metrics()
    assert [r["step"] for r in rows_b] == [r["step"] for r in rows_a]
    for ra, rb in zip(rows_a, rows_b):
        assert rb["test_loss"] == pytest.approx(ra["test_loss"], rel=1e-6)


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
    batch, _ = trainer._batch()
    leaked = sum(tuple(pair) in held_out for pair in batch[:, :2].tolist())
    assert (leaked == 0) if scope == "train" else (leaked > 0.2 * len(batch))
