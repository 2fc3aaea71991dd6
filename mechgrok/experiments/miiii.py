"""The miiii study (Syrkis & Søgaard, "Mechanistic interpretability of irreducible integer
identifiers"): remainders of x0 + p*x1 modulo every prime q < p, one head each.

Full: p=113 (29 tasks), the study's best hyperparameters (``mechgrok.presets.MIIII``: d_model
256, 4 heads, dropout 0.1, Grokfast lambda 0.5, weight decay 1/3, lr 3e-4, frac 0.3), 40,000
full-batch steps: hours on this CPU. It is an ordinary run directory (``OUT/run``) trained by
the package's one loop, so rerunning the command after a kill resumes it, ``--device cuda``
applies, and ``mechgrok analyze OUT/run`` opens it. Output: per-task test-accuracy curves,
the step at which each task groks (test accuracy >= 99%), and the per-task embedding fit of
``mechgrok.miiii``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from ..config import TrainConfig
from ..metrics import grok_step
from ..miiii import embedding_task_spectrum
from ..presets import MIIII, MIIII_QUICK
from ..run import load_run
from ..train import train
from .tables import markdown_table, write_table

RUN_SUBDIR = "run"


def run(out: Path, quick: bool = False, progress: bool = True, device: str = "auto") -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(**(MIIII_QUICK if quick else MIIII), device=device, out=str(out / RUN_SUBDIR))
    train(cfg, progress=progress)
    run_dir = load_run(cfg.run.out)
    rows = run_dir.metrics()
    moduli = run_dir.dataset.heads
    W_E = run_dir.checkpoint(run_dir.steps[-1]).weights["embed.W_E"]
    write_table(out / "miiii_curves", rows)
    spectrum = embedding_task_spectrum(W_E, cfg.data.p, moduli)
    table_rows = [{"q": s["q"], "grok_step": grok_step(rows, f"test_acc_q{s['q']}"),
                   "final_test_acc": rows[-1][f"test_acc_q{s['q']}"], "embedding_r2": s["r2"],
                   "noise_r2": s["noise_r2"]} for s in spectrum]
    write_table(out / "miiii", table_rows)
    table = markdown_table(["q", "grok step (test acc >= 99%)", "final test acc", "W_E R^2 on period-q features",
                            "same fit on noise"],
                           [[r["q"], r["grok_step"], f"{r['final_test_acc']:.3f}", f"{r['embedding_r2']:.3f}",
                             f"{r['noise_r2']:.3f}"] for r in table_rows])
    (out / "miiii.md").write_text(f"# miiii, p={cfg.data.p}, {run_dir.steps[-1]} steps{' (quick)' if quick else ''}"
                                  f"\n\n{table}")
    fig = go.Figure([go.Scatter(x=[r["step"] for r in rows], y=[r[f"test_acc_q{q}"] for r in rows], name=f"mod {q}")
                     for q in moduli])
    fig.update_layout(title="Test accuracy per task", xaxis_title="step", yaxis_title="test accuracy")
    fig.write_html(out / "miiii.html", include_plotlyjs="directory")
    return {"rows": rows, "tasks": table_rows}
