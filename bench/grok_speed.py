"""``--recipe fast`` on p=113 addition, 5 seeds: time to 99% test accuracy, then whether it stays there.

Targets: median < 5 s to 99% test accuracy, every seed generalising; trained on to 3,000 steps,
no logged test accuracy below 99% after the first at or above it, and a final test loss < 1e-3.

For each seed: the whole ``train()`` call of the recipe (data, model, training, evaluation
every 10 steps, checkpoints) until it stops at 99%, timed; then the same run resumed with the
early stop off up to 3,000 steps (``--stop-at-test-acc 0 --steps 3000``): the dips below 99%
after grokking, the largest test loss after grokking, the final test loss. Then, in the same
process, the full-batch step rate of the recipe, of the paper configuration on mechgrok's
trainer and on a plain ``HookedTransformer``. Run: ``.venv/bin/python bench/grok_speed.py``.
"""

import statistics
import tempfile
import time

from train_speed import hooked_transformer_rate

from mechgrok import TrainConfig, load_run, train
from mechgrok.metrics import GROK_ACCURACY
from mechgrok.presets import RECIPES
from mechgrok.train import Trainer

SEEDS = range(5)
LONG = 3000


def after_grokking(rows: list[dict]) -> tuple[int, float]:
    """(logged steps below 99% test accuracy after the first at or above it, the largest test loss after it)."""
    first = next(i for i, r in enumerate(rows) if r["test_acc"] >= GROK_ACCURACY)
    later = rows[first + 1:]
    return sum(r["test_acc"] < GROK_ACCURACY for r in later), max((r["test_loss"] for r in later), default=0.0)


def main() -> None:
    recipe = RECIPES["fast"]
    print(f"recipe 'fast': {recipe}")
    times, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in SEEDS:
            cfg = TrainConfig(**recipe, seed=seed, out=f"{tmp}/seed{seed}")
            start = time.perf_counter()
            summary = train(cfg, progress=False).summary
            seconds = time.perf_counter() - start
            grokked = summary["grok_step"] is not None
            times.append(seconds if grokked else float("inf"))
            if grokked:
                train(cfg.replace(stop_at_test_acc=0.0, steps=LONG), progress=False)
                rows = load_run(cfg.run.out).metrics()
                dips, worst = after_grokking(rows)
                results.append((dips, rows[-1]["test_loss"]))
                print(f"seed {seed}: 99% test accuracy at step {summary['grok_step']} in {seconds:.1f} s wall; "
                      f"trained on to {LONG}: {dips} logged steps below 99% after it, largest test loss after it "
                      f"{worst:.3g}, final test loss {rows[-1]['test_loss']:.2e}")
            else:
                print(f"seed {seed}: did NOT reach 99% test accuracy in {recipe['steps']} steps ({seconds:.1f} s)")
        stays = sum(d == 0 and loss < 1e-3 for d, loss in results)
        print(f"median over {len(times)} seeds: {statistics.median(times):.1f} s wall to 99% (target < 5 s); "
              f"{len(results)}/{len(times)} generalised; {stays}/{len(times)} stayed above 99% with final test loss "
              f"< 1e-3 at step {LONG}")
        fast_rate = Trainer(TrainConfig(**recipe, out=f"{tmp}/rate_fast"), progress=False).time_steps(100)
        paper_rate = Trainer(TrainConfig(out=f"{tmp}/rate_paper"), progress=False).time_steps(100)
    hooked_rate = hooked_transformer_rate(TrainConfig())
    print(f"full-batch steps/s: recipe {fast_rate:.1f}, paper config on mechgrok's trainer {paper_rate:.1f}, "
          f"paper config on HookedTransformer {hooked_rate:.1f} (ratio {paper_rate / hooked_rate:.1f}x)")


if __name__ == "__main__":
    main()
