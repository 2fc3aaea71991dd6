"""The data source: full batch, seeded mini-batches that a resume redraws, augmentation through the task."""

import torch

from mechgrok import TrainConfig
from mechgrok.batches import Batches
from mechgrok.tasks import make_dataset


def _batches(**values):
    cfg = TrainConfig(task=values.pop("task", "add"), p=11, frac_train=0.5, **values)
    return Batches(make_dataset(cfg.data.task, 11, 0.5, cfg.data.seed), cfg, torch.device("cpu")), cfg


def test_full_batch_is_the_training_set_every_step():
    batches, _ = _batches()
    for step in (0, 7):
        x, y = batches.batch(step)
        assert torch.equal(x, batches.train[0]) and torch.equal(y, batches.train[1])


def test_mini_batches_are_drawn_afresh_per_step_and_again_identically():
    batches, _ = _batches(batch_size=8)
    first, again, other = batches.batch(3), batches.batch(3), batches.batch(4)
    assert len(first[1]) == 8 and torch.equal(first[0], again[0]) and not torch.equal(first[0], other[0])
    train = {tuple(r) for r in batches.train[0].tolist()}
    assert all(tuple(r) in train for r in first[0].tolist())


def test_augmentation_uses_the_tasks_negation_and_keeps_labels_true():
    batches, _ = _batches(aug_negate=1.0)
    x, y = batches.batch(0)
    assert torch.equal(batches.negation, (-torch.arange(11)) % 11)
    assert torch.equal(y, (x[:, 0] + x[:, 1]) % 11)
    assert not torch.equal(x, batches.train[0])  # every operand negated


def test_the_largest_seed_draws_batches_and_augmentation_without_overflow():
    batches, _ = _batches(seed=2**63 - 1, batch_size=8, aug_reverse=0.5)
    x, y = batches.batch(12)
    assert len(y) == 8 and torch.equal(y, (x[:, 0] + x[:, 1]) % 11)
