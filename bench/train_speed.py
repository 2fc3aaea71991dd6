"""Full-batch training steps per second of the default model (Nanda et al.'s p=113 addition).

Times ``Trainer.train_step`` alone (forward, float64 loss, backward, AdamW) after a warm-up,
on the device ``auto`` picks (the CPU here). Run: ``.venv/bin/python bench/train_speed.py``.
"""

import tempfile

import torch

from mechgrok import TrainConfig
from mechgrok.train import Trainer


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(out=f"{tmp}/run")
        rate = Trainer(cfg, progress=False).time_steps(200, warmup=20)
    n_train = int(cfg.frac_train * cfg.p**2)
    print(f"default model, p={cfg.p}, {n_train} training pairs, full batch, {torch.get_num_threads()} threads: "
          f"{rate:.1f} steps/s ({1000 / rate:.1f} ms/step); {cfg.steps} steps ~ {cfg.steps / rate / 60:.1f} min")


if __name__ == "__main__":
    main()
