"""Grokfast vs plain AdamW: steps to 99% test accuracy on p=113 addition (the paper's model).

Both arms use Nanda et al.'s configuration (lr 1e-3, weight decay 1, frac 0.3, full batch);
the Grokfast arm adds the EMA filter (alpha 0.98, lambda 2). Each run stops at 99% test
accuracy or at the preset's ``steps`` (``mechgrok.presets.GROKFAST``). Table: steps and seconds to 99% per seed, mean, and the speed-up.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from ..config import TrainConfig
from ..fileio import JSONObject, read_json
from ..presets import GROKFAST, GROKFAST_QUICK
from ..run import METRICS_FILE, SUMMARY_FILE, read_metrics
from ..sweep import execute_all
from ..tables import markdown_table, mean_and_stderr, write_table

ARMS = {"AdamW (paper)": {}, "AdamW + Grokfast EMA": {"grokfast": "ema"}}


def run(out: Path, quick: bool = False, progress: bool = True, jobs: int = 1, backend: str = "local") -> JSONObject:
    """With ``jobs`` > 1 runs share the CPU, so seconds to 99% are not comparable to a lone run's."""
    out = Path(out)
    base = GROKFAST_QUICK if quick else GROKFAST
    seeds = (0,) if quick else (0, 1, 2)
    keys = [(arm, seed) for arm in ARMS for seed in seeds]
    configs = [TrainConfig(**base, **ARMS[arm], seed=seed,
                           out=str(out / "runs" / f"{'grokfast' if ARMS[arm] else 'plain'}_seed{seed}"))
               for arm, seed in keys]
    rows, curves = [], {}
    execute_all(configs, backend, jobs, progress=progress)
    for (arm, seed), cfg in zip(keys, configs):
        s = read_json(Path(cfg.run.out) / SUMMARY_FILE)
        rows.append({"arm": arm, "seed": seed, "grok_step": s["grok_step"],
                     "seconds_to_99": round(s["wall_seconds"], 1) if s["grok_step"] else None,
                     "final_test_acc": s["test_acc"], "final_train_loss": s["train_loss"]})
        metrics = read_metrics(Path(cfg.run.out) / METRICS_FILE)
        curves[arm, seed] = ([r["step"] for r in metrics], [r["test_acc"] for r in metrics])
    write_table(out / "grokfast_runs", rows)
    summary = []
    for arm in ARMS:
        steps = [r["grok_step"] for r in rows if r["arm"] == arm]
        reached = [s for s in steps if s is not None]
        mean, se = mean_and_stderr(reached) if reached else (float("nan"), float("nan"))
        summary.append([arm, f"{len(reached)}/{len(steps)}", f"{mean:.0f} ± {se:.0f}",
                        " ".join(str(s) for s in steps)])
    plain, fast = (float(s[2].split(" ")[0]) for s in summary)  # nan when an arm never reached 99%
    table = markdown_table(["arm", "seeds reaching 99%", "steps to 99% (mean ± s.e.)", "per seed"], summary)
    (out / "grokfast.md").write_text(f"# Grokfast on {base['task']} p={base['p']}{' (quick)' if quick else ''}\n\n"
                                     f"{table}\nSpeed-up in steps (mean plain / mean Grokfast): {plain / fast:.2f}x"
                                     + (f" (nan: an arm never reached 99% within {base['steps']} steps)"
                                        if plain != plain or fast != fast else "") + "\n")
    fig = go.Figure([go.Scatter(x=x, y=y, name=f"{arm}, seed {seed}") for (arm, seed), (x, y) in curves.items()])
    fig.update_layout(title="Test accuracy with and without Grokfast", xaxis_title="step", yaxis_title="test accuracy")
    fig.write_html(out / "grokfast.html", include_plotlyjs="directory")
    return {"rows": rows, "speedup": plain / fast}
