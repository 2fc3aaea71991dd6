"""Sweep for the fast-grokking recipe: steps and seconds to 99% test accuracy, p=113 addition.

Every row is the default one-layer model and split (frac_train 0.3, seed 0) with some of the
optimisation settings changed, trained until test accuracy first reaches 99% (checked every
10 steps) or ``--max-steps``. Writes results/experiments/fast_recipe/fast_recipe_sweep.{csv,md}.
Run: ``.venv/bin/python scripts/fast_recipe_sweep.py`` (about 20 minutes on 2 cores).
"""

import argparse
import csv
import tempfile
from pathlib import Path

from mechgrok import TrainConfig, train
from mechgrok.tables import markdown_table, write_table

RESULTS = Path(__file__).parent.parent / "results" / "experiments" / "fast_recipe"

# name -> (overrides, where the idea comes from)
SWEEP = {
    "paper": ({}, "Nanda et al. 2023 (lr 1e-3, wd 1)"),
    "lr 3e-3": ({"lr": 3e-3}, "larger steps"),
    "lr 1e-2": ({"lr": 1e-2}, "larger steps"),
    "lr 3e-3, wd 3": ({"lr": 3e-3, "weight_decay": 3.0}, "stronger decay: Nanda et al. / Power et al. tie grokking speed to weight decay"),
    "lr 1e-2, wd 3": ({"lr": 1e-2, "weight_decay": 3.0}, "both"),
    "grokfast": ({"grokfast": "ema"}, "Lee et al. 2024, EMA alpha 0.98, lambda 2"),
    "grokfast, lr 3e-3": ({"grokfast": "ema", "lr": 3e-3}, "Grokfast + larger steps"),
    "grokfast, lr 3e-3, wd 3": ({"grokfast": "ema", "lr": 3e-3, "weight_decay": 3.0}, "Grokfast + both"),
    "init 0.5, lr 3e-3": ({"init_scale": 0.5, "lr": 3e-3}, "smaller init: Liu et al. 2023 (Omnigrok)"),
    "grokfast, lr 1e-2": ({"grokfast": "ema", "lr": 1e-2}, "Grokfast + larger steps"),
    "lr 1e-2, wd 5": ({"lr": 1e-2, "weight_decay": 5.0}, "stronger decay still"),
    "lr 2e-2, wd 3": ({"lr": 2e-2, "weight_decay": 3.0}, "larger steps still"),
    "lr 1e-2, wd 3, init 0.5": ({"lr": 1e-2, "weight_decay": 3.0, "init_scale": 0.5}, "smaller init on top"),
    "lr 1e-2, wd 3, warm-up 50": ({"lr": 1e-2, "weight_decay": 3.0, "warmup_steps": 50}, "gentler start"),
}


def measure(name: str, overrides: dict, max_steps: int, seed: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(**{**overrides, "steps": max_steps, "seed": seed, "stop_at_test_acc": 0.99,
                             "save_every": max_steps, "out": f"{tmp}/run"})
        s = train(cfg, progress=False).summary
    reached = s["grok_step"] is not None
    return {"config": name, "grok_step": s["grok_step"] if reached else f">{max_steps}",
            "seconds_to_99": round(s["wall_seconds"], 1) if reached else f">{s['wall_seconds']:.0f}",
            "steps_per_second": round(s["steps_per_second"], 1), "final_test_acc": round(s["test_acc"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--only", nargs="*", help="sweep only these names")
    args = parser.parse_args()
    table = RESULTS / "fast_recipe_sweep.csv"
    measured = {}  # rows measured before are kept: --only re-measures some
    if table.exists():
        with open(table, newline="") as handle:
            measured = {row["config"]: row for row in csv.DictReader(handle)}
    for name, (overrides, source) in SWEEP.items():
        if args.only and name not in args.only:
            continue
        measured[name] = {**measure(name, overrides, args.max_steps), "source": source}
        print(measured[name], flush=True)
    rows = [measured[name] for name in SWEEP if name in measured]
    write_table(RESULTS / "fast_recipe_sweep", rows)
    (RESULTS / "fast_recipe_sweep.md").write_text(markdown_table(list(rows[0]), [list(r.values()) for r in rows]))


if __name__ == "__main__":
    main()
