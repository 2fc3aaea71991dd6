"""Many runs in one process: total training steps per second of one run at a time against batches of 8, 16 and 32
(``mechgrok.batched``), on p=47 (the phase diagram's model) and p=113 (the paper's), full batch, printed side by
side. The last line is ``speedup=X.XX``: p=47, batch 16, against one run at a time.

    .venv/bin/python bench/batched_speed.py [--threads N] [--steps S]

Both sides run the trainer's own step (no evaluation, no saving) on the same thread count, after a warm-up.
"""

import argparse
import tempfile
import time

import torch

from mechgrok import TrainConfig
from mechgrok.batched import BatchedTrainer
from mechgrok.train import Trainer

SIZES = (8, 16, 32)


def config(p: int, seed: int, out: str, threads: int) -> TrainConfig:
    return TrainConfig(task="add", p=p, seed=seed, steps=10**6, log_every=10**6, save_every=10**6, threads=threads,
                       out=out)


def one_at_a_time(p: int, steps: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return Trainer(config(p, 0, f"{tmp}/run", threads), progress=False).time_steps(steps, warmup=5)


def batched(p: int, n: int, steps: int, threads: int) -> float:
    """Total steps/s of ``n`` runs trained as one batch."""
    with tempfile.TemporaryDirectory() as tmp:
        batch = BatchedTrainer([config(p, seed, f"{tmp}/{seed}", threads) for seed in range(n)])
        live = [t for _, t in batch.trainers]
        for _ in range(3):
            batch.step(live)
        start = time.perf_counter()
        for _ in range(steps):
            batch.step(live)
        rate = n * steps / (time.perf_counter() - start)
        batch.close()
        return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, {args.steps} timed steps each; total steps/s (speed-up over one at a time)")
    print(f"{'p':>4} {'one at a time':>14} " + " ".join(f"{'batch ' + str(n):>18}" for n in SIZES))
    speedup = None
    for p in (47, 113):
        alone = one_at_a_time(p, args.steps * 3, args.threads)
        rates = {n: batched(p, n, max(2, args.steps // (n // 8)), args.threads) for n in SIZES}
        print(f"{p:>4} {alone:>14.1f} " + " ".join(f"{rates[n]:>10.1f} ({rates[n] / alone:.2f}x)" for n in SIZES))
        if p == 47:
            speedup = rates[16] / alone
    print(f"speedup={speedup:.2f}")


if __name__ == "__main__":
    main()
