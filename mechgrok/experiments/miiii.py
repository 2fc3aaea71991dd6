"""The miiii study (seeds/003): remainders of x0 + p*x1 modulo every prime q < p, one head each.

Full: p=113 (29 tasks), the study's best hyperparameters (d_model 256, 4 heads, dropout 0.1,
Grokfast lambda 0.5, weight decay 1/3, lr 3e-4, frac 0.3), 40,000 full-batch steps: hours on
this CPU, so resumable (rerun the same command after a kill). Output: per-task test-accuracy
curves, the step at which each task groks (test accuracy >= 99%), and the per-task embedding
fit of ``mechgrok.miiii``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from ..checkpoints import save_tensors
from ..config import TrainConfig
from ..miiii import embedding_task_spectrum, train_miiii
from ..run import first_step_at, weights_only
from ..train import GROK_ACCURACY, lock_run_dir
from .tables import markdown_table, write_table

FULL = dict(p=113, frac_train=0.3, d_model=256, n_heads=4, d_head=64, d_mlp=1024, dropout=0.1, lr=3e-4,
            weight_decay=1 / 3, grokfast="ema", grokfast_lamb=0.5, steps=40000, log_every=100, save_every=1000)
QUICK = dict(p=11, frac_train=0.5, d_model=64, n_heads=4, d_head=16, d_mlp=256, dropout=0.1, lr=3e-3,
             weight_decay=1.0, steps=300, log_every=10, save_every=100)
# The training state, rewritten every save_every steps: rerunning the command after a kill resumes from it,
# and once training is done rerunning it only rebuilds the tables.
STATE_FILE = "miiii_state.safetensors"


def run(out: Path, quick: bool = False, progress: bool = True) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = QUICK if quick else FULL
    cfg = TrainConfig(task="add", **settings)  # model and optimiser fields; the task is miiii's own
    with lock_run_dir(out):
        model, data, rows = train_miiii(cfg, out / STATE_FILE, progress)
    # the trained weights (HookedTransformer names), for analysis beyond this table; hours to recompute
    save_tensors(out / "miiii_final.safetensors", weights_only(model.state_dict()),
                 {"kind": "checkpoint", "step": cfg.steps, "config": cfg.to_dict(), "moduli": list(data.moduli)})
    write_table(out / "miiii_curves", rows)
    grok = {q: first_step_at(rows, f"test_acc_q{q}", GROK_ACCURACY) for q in data.moduli}
    spectrum = embedding_task_spectrum(model.embed.W_E.detach(), data.p, data.moduli)
    table_rows = [{"q": s["q"], "grok_step": grok[s["q"]], "final_test_acc": rows[-1][f"test_acc_q{s['q']}"],
                   "embedding_r2": s["r2"], "noise_r2": s["noise_r2"]} for s in spectrum]
    write_table(out / "miiii", table_rows)
    table = markdown_table(["q", "grok step (test acc >= 99%)", "final test acc", "W_E R^2 on period-q features",
                            "same fit on noise"],
                           [[r["q"], r["grok_step"], f"{r['final_test_acc']:.3f}", f"{r['embedding_r2']:.3f}",
                             f"{r['noise_r2']:.3f}"] for r in table_rows])
    (out / "miiii.md").write_text(f"# miiii, p={data.p}, {cfg.steps} steps{' (quick)' if quick else ''}\n\n{table}")
    fig = go.Figure([go.Scatter(x=[r["step"] for r in rows], y=[r[f"test_acc_q{q}"] for r in rows], name=f"mod {q}")
                     for q in data.moduli])
    fig.update_layout(title="Test accuracy per task", xaxis_title="step", yaxis_title="test accuracy")
    fig.write_html(out / "miiii.html", include_plotlyjs="directory")
    return {"rows": rows, "tasks": table_rows}
