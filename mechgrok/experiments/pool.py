"""Train many runs at once: ``jobs`` single-threaded worker processes (one per core is best).

On this project's small models a matmul is too small to split well across threads: two
single-threaded runs side by side make 16-31% more steps per second in total than one
run on two threads (augmentation model, 2 cores, three runs of ``bench/train_speed.py``). Thread count can change
the last bits of a matmul, so a run's numbers are reproducible for a given ``jobs`` setting.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..train import TrainResult, train


def _train_single_threaded(cfg: TrainConfig) -> TrainResult:
    torch.set_num_threads(1)
    return train(cfg, progress=False)


def train_many(configs: list[TrainConfig], jobs: int = 1, progress: bool = True) -> list[TrainResult]:
    """Train (or resume) every config, in order; with ``jobs`` > 1 in that many worker processes."""
    if jobs <= 1:
        return [train(cfg, progress=progress) for cfg in configs]
    # spawn, not fork: a forked child inherits the parent's OpenMP thread pool in an unusable state
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_train_single_threaded, cfg) for cfg in configs]
        for _ in tqdm(as_completed(futures), total=len(futures), desc="runs", disable=not progress or None):
            pass
        return [future.result() for future in futures]
