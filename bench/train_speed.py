"""Training steps per second: the default model (Nanda et al.'s p=113 addition, full batch) and
the augmentation study's 2-layer model (batch 512) on one thread, on every thread,
and as two single-threaded runs side by side (what ``mechgrok experiment --jobs 2`` does).

Times ``Trainer.train_step`` alone (forward, float64 loss, backward, AdamW) after a warm-up,
on the device ``auto`` picks (the CPU here). Run: ``.venv/bin/python bench/train_speed.py``.
"""

import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor

import torch

from mechgrok import TrainConfig
from mechgrok.presets import AUGMENTATION as AUGMENTATION_PRESET
from mechgrok.train import Trainer

AUGMENTATION = dict(task="add", p=97, aug_reverse=0.15, aug_negate=0.15, **AUGMENTATION_PRESET)


def steps_per_second(settings: dict, threads: int, steps: int = 200) -> float:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        return Trainer(TrainConfig(**settings, out=f"{tmp}/run"), progress=False).time_steps(steps, warmup=20)


def main() -> None:
    cores = torch.get_num_threads()
    cfg = TrainConfig()
    rate = steps_per_second({}, cores)
    p, steps = cfg.data.p, cfg.optim.steps
    print(f"default model, p={p}, {int(cfg.data.frac_train * p**2)} training pairs, full batch, {cores} threads: "
          f"{rate:.1f} steps/s ({1000 / rate:.1f} ms/step); {steps} steps ~ {steps / rate / 60:.1f} min")
    one, every = steps_per_second(AUGMENTATION, 1), steps_per_second(AUGMENTATION, cores)
    with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
        side_by_side = sum(pool.map(steps_per_second, [AUGMENTATION] * cores, [1] * cores))
    print(f"augmentation model (2 layers, batch 512): 1 thread {one:.1f} steps/s, {cores} threads {every:.1f}, "
          f"{cores} one-thread runs side by side {side_by_side:.1f} in total ({side_by_side / every:.2f}x)")


if __name__ == "__main__":
    main()
