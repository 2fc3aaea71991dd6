"""Many runs in one process: one stacked forward and backward for runs that share the model's shapes.

Runs that agree on every field that shapes a tensor or the forward's code (``SHAPE_FIELDS``: the task, p and
training fraction, the model, the batch size, the objective, the dropout, the Grokfast kind and window, the
device) train together. Each run is an ordinary ``Trainer`` (its own split, batches seeded as when it trains
alone, AdamW state, Grokfast state, learning-rate schedule, early stop, checkpoints, metrics and resume file, in
the standalone format); only the gradient is computed for all of them at once:

    grads = vmap(grad(loss))(stacked parameters, stacked buffers, stacked inputs, stacked labels)

(``torch.func``: the parameters stacked on a leading run axis, ``functional_call`` of one run's module), after
which each run's gradients are handed to its own Grokfast filter and AdamW, so the update is exactly the
standalone update of that gradient. Evaluation, checkpoints and resume are each run's own. A run that finishes
(its steps, or its early stop) or fails (a non-finite loss) leaves the batch; the others go on.

Numbers: a batched run equals its standalone run up to float order. On this CPU a stacked product (bmm) rounds
exactly as the single one (mm), and step 0's gradients are bit-identical; the first difference is the MLP biases
(zero at step 0): the standalone step adds them inside the product (``addmm``), vmap's rule for ``addmm`` adds
them after it, so from step 1 the last bits differ and, grokking being chaotic, the trajectories drift apart
slowly: ``tests/integration/test_batched.py`` checks the first 100 steps' losses within 1e-5 relative and
the same grok step on a small grokking config. Dropout draws come from one generator for the whole batch (vmap's
``randomness="different"``), so a run with dropout sees other masks than it would alone (the same distribution);
its resume is exact only when it resumes in the same batch. Runs are not bit-identical to standalone runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.func import functional_call, grad, vmap

from .config import TrainConfig
from .errors import MechgrokError
from .train import Trainer, TrainResult

SHAPE_FIELDS = ("task", "p", "frac_train", "n_layers", "d_model", "n_heads", "d_head", "d_mlp", "act_fn", "dropout",
                "dropout_on", "dropout_mask", "biases", "dtype", "batch_size", "grokfast", "grokfast_window",
                "grokfast_start", "task_loss", "device")


def batch_key(cfg: TrainConfig) -> tuple:
    """Runs with equal keys may train in one batch."""
    values = cfg.to_dict()
    return tuple(values[name] for name in SHAPE_FIELDS)


def batch_groups(configs: list[TrainConfig], size: int) -> list[list[TrainConfig]]:
    """``configs`` in groups of at most ``size`` that share a batch key, in their order of first appearance."""
    if size < 1:
        raise MechgrokError(f"--batch must be at least 1, got {size}")
    by_key: dict[tuple, list[TrainConfig]] = {}
    for cfg in configs:
        by_key.setdefault(batch_key(cfg), []).append(cfg)
    return [group[i:i + size] for group in by_key.values() for i in range(0, len(group), size)]


@dataclass
class Outcome:
    """What became of one run of a batch: its result, or the one-line error that stopped it."""

    cfg: TrainConfig
    result: TrainResult | None = None
    error: MechgrokError | None = None


class BatchedTrainer:
    """Trains ``configs`` (one batch key) together; ``run()`` returns each run's ``Outcome``, in their order."""

    def __init__(self, configs: list[TrainConfig], progress: bool = False):
        if not configs:
            raise MechgrokError("a batch needs at least one run")
        keys = {batch_key(c) for c in configs}
        if len(keys) > 1:
            raise MechgrokError("these runs differ in a field that shapes the model or its data "
                                f"({', '.join(SHAPE_FIELDS)}); they cannot train in one batch")
        outs = [c.run.out for c in configs]
        if len(set(outs)) != len(outs) or "" in outs:
            raise MechgrokError("every run of a batch needs its own --out")
        self.outcomes = [Outcome(cfg) for cfg in configs]
        self.trainers: list[tuple[int, Trainer]] = []
        try:
            for index, cfg in enumerate(configs):
                self.trainers.append((index, Trainer(cfg, progress)))
        except BaseException:
            for _, trainer in self.trainers:
                trainer.writer.close()
            raise
        self.module = self.trainers[0][1].model
        self.module.single_query = True
        self._buffers: tuple[tuple, dict[str, torch.Tensor]] = ((), {})
        self.objective = self.trainers[0][1].objective

    def _run_loss(self, params, buffers, x, y):
        return self.objective.loss(functional_call(self.module, (params, buffers), (x,)), y)

    def _gradients(self, active: list[Trainer]) -> list[dict[str, torch.Tensor]]:
        """One vmap'd gradient for every active run: [{name: grad}] in ``active``'s order."""
        batches = [t.next_batch() for t in active]
        names = [name for name, p in self.module.named_parameters() if p.requires_grad]
        own = [dict(t.model.named_parameters()) for t in active]
        params = {n: torch.stack([run[n].detach() for run in own]) for n in names}
        members = tuple(id(t) for t in active)
        if self._buffers[0] != members:  # the fixed biases never change: stacked again only when the batch does
            owned = [dict(t.model.named_buffers()) for t in active]
            self._buffers = (members, {n: torch.stack([run[n] for run in owned]) for n in owned[0]})
        buffers = self._buffers[1]
        x = torch.stack([b[0] for b in batches])
        y = torch.stack([b[1] for b in batches])
        grads = vmap(grad(self._run_loss), randomness="different")(params, buffers, x, y)
        return [{n: grads[n][i] for n in names} for i in range(len(active))]

    def step(self, active: list[Trainer]) -> None:
        """One training step of every run in ``active``: the stacked gradient, then each run's own update."""
        self.module.train()
        for trainer, grads in zip(active, self._gradients(active)):
            for name, p in trainer.model.named_parameters():
                if name in grads:
                    p.grad = grads[name]
            trainer.update()

    def time_steps(self, steps: int, warmup: int = 3) -> float:
        """Total steps/s of every run's ``step`` alone (no logging, no saving), after ``warmup`` untimed steps: runs
        x steps / seconds."""
        live = [t for _, t in self.trainers]
        for _ in range(warmup):
            self.step(live)
        start = time.perf_counter()
        for _ in range(steps):
            self.step(live)
        return len(live) * steps / (time.perf_counter() - start)

    def close(self) -> None:
        for _, trainer in self.trainers:
            trainer.writer.close()

    def run(self) -> list[Outcome]:
        live: list[tuple[int, Trainer]] = []
        try:
            for index, trainer in self.trainers:
                self._guard(index, trainer, trainer.start)
                if self.outcomes[index].error is None:
                    live.append((index, trainer))
            live = self._retire(live)
            while live:
                self.step([t for _, t in live])
                for index, trainer in live:
                    self._guard(index, trainer, trainer.after_step)
                live = self._retire([(i, t) for i, t in live if self.outcomes[i].error is None])
        finally:
            self.close()
        return self.outcomes

    def _guard(self, index: int, trainer: Trainer, action) -> None:
        """Run ``action``; a one-line failure (a non-finite loss, a full disk) stops this run only."""
        try:
            action()
        except MechgrokError as err:
            self.outcomes[index].error = err
            trainer.writer.close()

    def _retire(self, live: list[tuple[int, Trainer]]) -> list[tuple[int, Trainer]]:
        """Finish the runs that reached their steps or their early stop; the rest stay."""
        staying = []
        for index, trainer in live:
            if trainer.finished:
                try:
                    self.outcomes[index].result = trainer.finish()
                except MechgrokError as err:
                    self.outcomes[index].error = err
                trainer.writer.close()
            else:
                staying.append((index, trainer))
        return staying


def train_batch(configs: list[TrainConfig], progress: bool = False) -> list[Outcome]:
    """Train (or resume) ``configs`` as one batch; each run's outcome, in order."""
    return BatchedTrainer(configs, progress).run()
