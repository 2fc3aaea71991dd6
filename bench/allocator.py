"""The training allocator policy (``runtime.large_buffer_policy("reuse")``, which ``mechgrok train``, ``sweep`` and
``experiment`` set) against glibc's default, side by side: training steps/s and peak RSS, each measured in a fresh
process on one thread (the policy is process-wide), for the paper's model at p=47 and p=113, a batch of 8 p=113
runs (``mechgrok.batched``), and the miiii run as the study's code ran it (float64, 29 heads).

    .venv/bin/python bench/allocator.py [--steps S] [--repeats R]

Each cell is the median of R fresh processes (default 3), the two policies alternating, since this machine's speed
drifts by several percent from one minute to the next.

The numbers trained are the same either way (only where memory comes from changes); the last line is
``speedup=X.XX``, the p=113 paper model's steps/s with the policy over without.
"""

import argparse
import multiprocessing
import resource
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor

CASES = {
    "p=47, paper": dict(task="add", p=47),
    "p=113, paper": dict(task="add", p=113),
    "p=113, batch of 8": dict(task="add", p=113, batch=8),
    "miiii, the code's": dict(preset="MIIII_CODE"),
}


def measure(settings: dict, policy: str | None, steps: int) -> tuple[float, float]:
    """(steps/s, peak RSS in MB) of ``steps`` training steps after 2 of warm-up, in this (fresh) process."""
    import torch

    from mechgrok import TrainConfig, presets
    from mechgrok.batched import BatchedTrainer
    from mechgrok.runtime import large_buffer_policy
    from mechgrok.train import Trainer

    if policy:
        assert large_buffer_policy(policy)
    torch.set_num_threads(1)
    settings = dict(settings)
    batch = settings.pop("batch", 1)
    if "preset" in settings:
        settings = dict(getattr(presets, settings.pop("preset")))
    fixed = dict(steps=10**6, log_every=10**6, save_every=10**6, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        configs = [TrainConfig(**{**settings, **fixed, "seed": seed, "out": f"{tmp}/{seed}"}) for seed in range(batch)]
        if batch == 1:
            rate = Trainer(configs[0], progress=False).time_steps(steps, warmup=2)
        else:
            trainer = BatchedTrainer(configs)
            rate = trainer.time_steps(steps, warmup=2)
            trainer.close()
    return rate, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(settings: dict, policy: str | None, steps: int) -> tuple[float, float]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, settings, policy, steps).result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"one thread, a fresh process per measurement, the median of {args.repeats}; steps/s (peak RSS)")
    print(f"{'case':<20} {'glibc default':>22} {'reuse (train)':>22} {'speed-up':>9}")
    speedup = None
    for name, settings in CASES.items():
        steps = max(3, args.steps // (10 if "miiii" in name else 2 if "batch" in name else 1))
        runs = {None: [], "reuse": []}
        for _ in range(args.repeats):
            for policy in runs:
                runs[policy].append(in_fresh_process(settings, policy, steps))
        (base, base_rss), (ours, ours_rss) = (tuple(statistics.median(v) for v in zip(*runs[policy]))
                                              for policy in (None, "reuse"))
        print(f"{name:<20} {base:>10.2f} ({base_rss:>6.0f} MB) {ours:>10.2f} ({ours_rss:>6.0f} MB) "
              f"{ours / base:>8.2f}x")
        if name == "p=113, paper":
            speedup = ours / base
    print(f"speedup={speedup:.2f}")


if __name__ == "__main__":
    main()
