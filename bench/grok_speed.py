"""Wall time to 99% test accuracy of ``--recipe fast`` on p=113 addition (target: median < 60 s, 5 seeds).

For each seed, times the whole ``train()`` call (data, model, training, evaluation every 10
steps, checkpoints) until test accuracy first reaches 99%. Then, in the same process, the
full-batch step rate of the plain paper configuration on mechgrok's trainer and of a plain
``HookedTransformer`` training step (what a notebook would run), and the ratios. Finally the
recipe's last checkpoint of seed 0 goes through the analysis: key frequencies and restricted
loss. Run: ``.venv/bin/python bench/grok_speed.py``.
"""

import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from mechgrok import TrainConfig, train
from mechgrok.analysis import analyze_run
from mechgrok.presets import RECIPES
from mechgrok.model import build_hooked_transformer
from mechgrok.tasks import make_dataset
from mechgrok.optim import make_optimizer
from mechgrok.train import Trainer

SEEDS = range(5)


def hooked_transformer_rate(cfg: TrainConfig, steps: int = 30) -> float:
    """Steps/s of full-batch AdamW on transformer_lens.HookedTransformer itself (float64 loss)."""
    data = make_dataset(cfg.data.task, cfg.data.p, cfg.data.frac_train, cfg.data.seed)
    model = build_hooked_transformer(cfg.model, data.d_vocab, data.n_classes)
    optimizer = make_optimizer(model, cfg.optim)
    x, y = data.train()

    def step():
        loss = F.cross_entropy(model(x)[:, -1].double(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    recipe = RECIPES["fast"]
    print(f"recipe 'fast': {recipe}")
    times, steps = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in SEEDS:
            cfg = TrainConfig(**recipe, seed=seed, out=f"{tmp}/seed{seed}")
            start = time.perf_counter()
            summary = train(cfg, progress=False).summary
            seconds = time.perf_counter() - start
            reached = summary["grok_step"] is not None
            print(f"seed {seed}: {'reached' if reached else 'did NOT reach'} 99% test accuracy at step "
                  f"{summary['grok_step']} in {seconds:.1f} s wall")
            times.append(seconds if reached else float("inf"))
            steps.append(summary["grok_step"])
        print(f"median over {len(times)} seeds: {statistics.median(times):.1f} s wall; "
              f"{sum(t != float('inf') for t in times)}/{len(times)} seeds generalised")

        report = analyze_run(f"{tmp}/seed0", every=1000, figures=False, progress=False)
        key = report.content["key_frequencies"]
        print(f"seed 0 last checkpoint: key frequencies {key['frequencies']} ({key['fraction_clustered']:.0%} of neurons), "
              f"restricted loss {report.measures[-1]['restricted_loss']:.3g}, test loss {report.measures[-1]['test_loss']:.3g}")

        fast_rate = Trainer(TrainConfig(**recipe, out=f"{tmp}/rate_fast"), progress=False).time_steps(100)
        paper_rate = Trainer(TrainConfig(out=f"{tmp}/rate_paper"), progress=False).time_steps(100)
    hooked_rate = hooked_transformer_rate(TrainConfig())
    print(f"full-batch steps/s: recipe {fast_rate:.1f}, paper config on mechgrok's trainer {paper_rate:.1f}, "
          f"paper config on HookedTransformer {hooked_rate:.1f}")
    print(f"ratios: recipe / paper-config = {fast_rate / paper_rate:.2f}; "
          f"mechgrok trainer / HookedTransformer = {paper_rate / hooked_rate:.2f}")


if __name__ == "__main__":
    main()
