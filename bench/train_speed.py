"""Full-batch training steps per second of the default model (Nanda et al.'s p=113 addition).

Times ``Trainer.train_step`` alone (forward, float64 loss, backward, AdamW) after a warm-up,
on the device ``auto`` picks (the CPU here). Run: ``.venv/bin/python bench/train_speed.py``.
"""

import tempfile
import time

import torch

from mechgrok import TrainConfig
from mechgrok.train import Trainer


def steps_per_second(cfg: TrainConfig, steps: int = 200, warmup: int = 20) -> float:
    trainer = Trainer(cfg, progress=False)
    for _ in range(warmup):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(out=f"{tmp}/run")
        rate = steps_per_second(cfg)
    n_train = int(cfg.frac_train * cfg.p**2)
    print(f"default model, p={cfg.p}, {n_train} training pairs, full batch, {torch.get_num_threads()} threads: "
          f"{rate:.1f} steps/s ({1000 / rate:.1f} ms/step); {cfg.steps} steps ~ {cfg.steps / rate / 60:.1f} min")


if __name__ == "__main__":
    main()
