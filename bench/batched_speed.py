"""Many runs in one process: total training steps per second of one run at a time against batches of 8, 16 and 32
(``mechgrok.batched``), on p=47 (the phase diagram's model) and p=113 (the paper's), full batch, printed side by
side. The last line is ``speedup=X.XX``: p=47, batch 16, against one run at a time.

    .venv/bin/python bench/batched_speed.py [--threads N] [--steps S]

Both sides run the trainer's own step (no evaluation, no saving) on the same thread count, after a warm-up.

The last column is the ceiling no implementation, batched or not, can pass on this machine: the step's floating-point
operations (counted by ``torch.utils.flop_counter``) all run at the rate of a large square matmul on the same threads
(the best of 512, 1024 and 2048), ceiling = peak FLOP/s / FLOPs per step, as a speed-up over one at a time.
"""

import argparse
import tempfile
import time

import torch

from mechgrok import TrainConfig
from mechgrok.batched import BatchedTrainer
from mechgrok.runtime import large_buffer_policy
from mechgrok.train import Trainer

SIZES = (8, 16, 32)


def config(p: int, seed: int, out: str, threads: int) -> TrainConfig:
    return TrainConfig(task="add", p=p, seed=seed, steps=10**6, log_every=10**6, save_every=10**6, threads=threads,
                       out=out)


def one_at_a_time(p: int, steps: int, threads: int) -> tuple[float, float]:
    """Steps/s of one run, and the floating-point operations of one of its steps."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config(p, 0, f"{tmp}/run", threads), progress=False)
        rate = trainer.time_steps(steps, warmup=5)
        return rate, trainer.step_flops()


def matmul_peak() -> float:
    """FLOP/s of this machine's best large square float32 matmul (2 n^3 per product) on the current threads."""
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        for _ in range(2):
            a @ b
        repeats = max(3, 2 ** 31 // n ** 3)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n ** 3 * repeats / (time.perf_counter() - start))
    return best


def batched(p: int, n: int, steps: int, threads: int) -> float:
    """Total steps/s of ``n`` runs trained as one batch."""
    with tempfile.TemporaryDirectory() as tmp:
        batch = BatchedTrainer([config(p, seed, f"{tmp}/{seed}", threads) for seed in range(n)])
        try:
            return batch.time_steps(steps)
        finally:
            batch.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    large_buffer_policy("reuse")  # as `mechgrok sweep` trains (bench/allocator.py measures the difference)
    peak = matmul_peak()
    print(f"threads {args.threads}, {args.steps} timed steps each; total steps/s (speed-up over one at a time); "
          f"matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"{'p':>4} {'GFLOP/step':>10} {'one at a time':>14} " + " ".join(f"{'batch ' + str(n):>18}" for n in SIZES)
          + f" {'ceiling':>18}")
    speedup = None
    for p in (47, 113):
        alone, flops = one_at_a_time(p, args.steps * 3, args.threads)
        rates = {n: batched(p, n, max(2, args.steps // (n // 8)), args.threads) for n in SIZES}
        ceiling = peak / flops
        print(f"{p:>4} {flops / 1e9:>10.3f} {alone:>14.1f} "
              + " ".join(f"{rates[n]:>10.1f} ({rates[n] / alone:.2f}x)" for n in SIZES)
              + f" {ceiling:>10.1f} ({ceiling / alone:.2f}x)")
        if p == 47:
            speedup = rates[16] / alone
    print(f"speedup={speedup:.2f}")


if __name__ == "__main__":
    main()
