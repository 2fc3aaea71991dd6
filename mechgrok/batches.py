"""The data source a trainer draws from: the split on the device, mini-batches, augmentation.

Mini-batches, when ``batch_size`` is set, are drawn afresh each step from a generator seeded
by (seed, step), and so are the augmentation draws, so a resumed run draws exactly the
batches of an uninterrupted one without saving any sampler state.
"""

from __future__ import annotations

import torch

from .config import TrainConfig
from .tasks import Dataset, augment


SEED_RANGE = 1 << 64


class Batches:
    """``batch(step)`` -> (inputs, labels) for one training step; ``train`` / ``test`` for evaluation."""

    def __init__(self, data: Dataset, cfg: TrainConfig, device: torch.device):
        self.seed, self.batch_size = cfg.data.seed, cfg.optim.batch_size
        self.reverse, self.negate = cfg.data.aug_reverse, cfg.data.aug_negate
        self.train = tuple(t.to(device) for t in data.train())
        self.test = tuple(t.to(device) for t in data.test())
        self.device = device
        if self.reverse or self.negate:
            self.label_table = data.label_table(train_only=cfg.data.aug_scope == "train")
            self.negation = data.spec.negation(data.p)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.train
        # reduced into torch's seed range (below 2^64): unchanged for every seed below ~1.8e13
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + step) % SEED_RANGE)
        if self.batch_size and self.batch_size < len(y):
            index = torch.randperm(len(y), generator=generator)[: self.batch_size].to(self.device)
            x, y = x[index], y[index]
        if self.reverse or self.negate:
            x, y = augment(x, y, self.label_table, self.negation, self.reverse, self.negate, generator)
        return x, y
