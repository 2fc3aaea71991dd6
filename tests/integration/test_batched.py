"""Batched training (mechgrok.batched): each member of a batch is an ordinary run, with its standalone run's numbers
up to float order; runs leave the batch on their own; resume works; sweeps train in batches."""

import math

import pytest
import torch

from mechgrok import TrainConfig, load_run, train
from mechgrok.batched import BatchedTrainer, batch_groups, train_batch
from mechgrok.cli import main
from mechgrok.errors import MechgrokError
from mechgrok.fileio import load_tensors
from mechgrok.metrics import grok_step
from mechgrok.presets import SMALL_GROK


def _configs(tmp_path, n=3, **overrides):
    return [TrainConfig(**{**SMALL_GROK, "steps": 30, "save_every": 10, "threads": 1, "seed": seed,
                           "out": str(tmp_path / f"b{seed}"), **overrides}) for seed in range(n)]


def _alone(cfg):
    return train(cfg.replace(out=cfg.run.out + "_alone"), progress=False).run_dir


def test_members_start_as_their_standalone_runs_and_are_ordinary_run_directories(tmp_path):
    """Same split and initial weights; the early losses agree to float rounding (vmap adds the MLP biases after the
    product, the standalone step inside it, so not bit for bit); checkpoints, resume files and summaries have the
    standalone format."""
    configs = _configs(tmp_path, lr=1e-3)
    outcomes = train_batch(configs)
    assert all(o.error is None and o.result is not None for o in outcomes)
    for cfg in configs:
        batched, alone = load_run(cfg.run.out), load_run(_alone(cfg))
        assert torch.equal(batched.dataset.train_idx, alone.dataset.train_idx)
        assert batched.steps == alone.steps == [0, 10, 20, 30]
        for name, value in alone.state_dict(0)[0].items():
            assert torch.equal(batched.state_dict(0)[0][name], value), name
        rows, reference = batched.metrics(), alone.metrics()
        assert [r["step"] for r in rows] == [r["step"] for r in reference]
        for r, e in zip(rows, reference):
            assert math.isclose(r["train_loss"], e["train_loss"], rel_tol=1e-6), (r, e)
        assert set(load_tensors(batched.path / "resume.safetensors", "resume").tensors) == \
            set(load_tensors(alone.path / "resume.safetensors", "resume").tensors)
        assert batched.summary()["steps"] == 30


def test_the_first_stacked_gradient_is_the_standalone_one_bit_for_bit(tmp_path):
    """At step 0 the trained biases are zero, so the one difference (where the bias is added) cannot show: every
    run's stacked gradient equals its standalone gradient bit for bit. ``time_steps`` steps every run."""
    from mechgrok.train import Trainer

    configs = _configs(tmp_path, n=2)
    batch = BatchedTrainer(configs)
    live = [t for _, t in batch.trainers]
    for cfg, grads in zip(configs, batch._gradients(live)):
        alone = Trainer(cfg.replace(out=cfg.run.out + "_alone"), progress=False)
        x, y = alone.next_batch()
        alone.objective.loss(alone.model(x), y).backward()
        for name, p in alone.model.named_parameters():
            assert torch.equal(grads[name], p.grad), name
        alone.writer.close()
    assert batch.time_steps(2, warmup=1) > 0
    assert [t.step for t in live] == [3, 3]
    batch.close()


@pytest.mark.slow
def test_batched_runs_grok_as_their_standalone_runs(tmp_path):
    """1,500 steps of three seeds: the same grok step within 10% (measured: 450/450, 490/490, 560/600; the
    trajectories are chaotic, a 1-ulp change of one weight grows to ~3e-4 in the loss by step 100 on this config)."""
    configs = _configs(tmp_path, steps=1500, save_every=500)
    train_batch(configs)
    for cfg in configs:
        batched, alone = grok_step(load_run(cfg.run.out).metrics()), grok_step(load_run(_alone(cfg)).metrics())
        assert batched is not None and alone is not None and abs(batched - alone) <= 0.1 * alone, (batched, alone)


def test_a_run_that_finishes_or_fails_leaves_the_batch_and_the_others_go_on(tmp_path):
    short, long_, broken = _configs(tmp_path)
    short = short.replace(steps=10)
    broken = broken.replace(lr=1e30, init_scale=1e3)  # diverges: the loss is not finite within a few steps
    outcomes = train_batch([short, long_, broken])
    assert outcomes[0].error is None and load_run(short.run.out).summary()["steps"] == 10
    assert outcomes[1].error is None and load_run(long_.run.out).summary()["steps"] == 30
    assert outcomes[2].error is not None and "not finite" in str(outcomes[2].error)
    failed = load_run(broken.run.out)
    weights = failed.state_dict(failed.steps[-1])[0]
    assert all(torch.isfinite(v).all() for v in weights.values())  # the last checkpoint is the last finite one


def test_a_batch_resumes_where_it_stopped_with_the_numbers_of_an_unbroken_batch(tmp_path):
    straight = _configs(tmp_path / "straight", steps=40)
    train_batch(straight)
    stopped = _configs(tmp_path / "stopped", steps=20)
    train_batch(stopped)
    train_batch([c.replace(steps=40) for c in stopped])  # steps may grow on resume
    for a, b in zip(straight, stopped):
        rows_a, rows_b = load_run(a.run.out).metrics(), load_run(b.run.out).metrics()
        assert [(r["step"], r["train_loss"]) for r in rows_a] == [(r["step"], r["train_loss"]) for r in rows_b]


def test_only_runs_that_share_the_models_shapes_are_batched(tmp_path):
    configs = _configs(tmp_path, n=4)
    wide = configs[3].replace(d_mlp=128)
    groups = batch_groups([*configs[:3], wide, configs[0].replace(lr=1e-2, out=str(tmp_path / "lr"))], 2)
    assert [len(g) for g in groups] == [2, 2, 1] and groups[2][0].model.d_mlp == 128
    with pytest.raises(MechgrokError, match="cannot train in one batch"):
        BatchedTrainer([configs[0], wide])
    with pytest.raises(MechgrokError, match="--batch must be at least 1"):
        batch_groups(configs, 0)


def test_sweep_batch_trains_the_grid_in_batches_and_writes_the_same_table(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(f'out = "{tmp_path / "sweep"}"\nbatch = 3\n[base]\ntask = "add"\np = 23\nd_model = 32\n'
                    'd_head = 8\nd_mlp = 64\nsteps = 20\nsave_every = 10\n[grid]\nseed = [0, 1]\nlr = [1e-3, 3e-3]\n')
    assert main(["sweep", str(spec), "--jobs", "1", "--quiet"]) == 0
    assert "4 of 4 runs finished" in capsys.readouterr().out
    runs = sorted((tmp_path / "sweep" / "runs").iterdir())
    assert len(runs) == 4 and all(load_run(r).summary()["steps"] == 20 for r in runs)
    assert main(["sweep", str(spec), "--batch", "0", "--quiet"]) == 2
    assert "--batch must be from 1" in capsys.readouterr().err
