"""Gromov's two-layer quadratic MLP (seeds/002): the analytic solution, and training by plain GD.

1. Analytic: ``mechgrok.gromov.analytic_mlp`` for several widths N; accuracy on all p^2 pairs
   with no training.
2. Trained: the same architecture from a random start, full-batch gradient descent on MSE,
   no regularisation; accuracy curves; then the trained weights' per-neuron Fourier features
   (dominant frequency of each map, its power share, and the phase relation chi = phi + psi)
   compared with the analytic ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from plotly.subplots import make_subplots

from ..tasks import make_dataset
from ..gromov import QuadraticMLP, accuracy, analytic_mlp, neuron_features, train_gd
from .tables import markdown_table, write_table

FULL = dict(p=97, widths=(64, 128, 256, 512), train_width=512, frac_train=0.5, lr=20.0, init_scale=1.0, steps=20000)
QUICK = dict(p=23, widths=(16, 128), train_width=128, frac_train=0.5, lr=20.0, init_scale=1.0, steps=200)


def feature_summary(model: QuadraticMLP, min_share: float = 0.5) -> dict[str, float]:
    """Share of neurons whose three maps have one dominant frequency (> min_share of power), and their phase error."""
    f = neuron_features(model)
    single = (f.freq_a == f.freq_b) & (f.freq_b == f.freq_out) & (f.power_share > min_share)
    return {"single_frequency_neurons": float(single.double().mean()),
            "median_phase_error_rad": float(f.phase_error[single].median()) if single.any() else float("nan"),
            "median_power_share": float(f.power_share.median())}


def run(out: Path, quick: bool = False, progress: bool = True) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c = QUICK if quick else FULL
    p = c["p"]
    data = make_dataset("add", p, c["frac_train"], 0)
    a, b = data.inputs[:, 0], data.inputs[:, 1]
    analytic_rows = []
    for width in c["widths"]:
        model = analytic_mlp(p, width)
        analytic_rows.append({"model": f"analytic N={width}", "accuracy_all_pairs": accuracy(model, a, b, data.labels),
                              **feature_summary(model)})
    trained = QuadraticMLP(p, c["train_width"], c["init_scale"], torch.Generator().manual_seed(0))
    curve = train_gd(trained, a, b, data.labels, data.train_idx, data.test_idx, c["lr"], c["steps"],
                     log_every=max(1, c["steps"] // 100))
    final = curve[-1]
    trained_row = {"model": f"trained N={c['train_width']} ({c['steps']} GD steps)",
                   "accuracy_all_pairs": accuracy(trained, a, b, data.labels), **feature_summary(trained),
                   "train_acc": final["train_acc"], "test_acc": final["test_acc"]}
    rows = analytic_rows + [trained_row]
    write_table(out / "gromov", rows)
    write_table(out / "gromov_training_curve", curve)
    header = ["model", "accuracy (all pairs)", "single-frequency neurons", "median |chi - phi - psi| (rad)"]
    table = markdown_table(header, [[r["model"], f"{r['accuracy_all_pairs']:.4f}", f"{r['single_frequency_neurons']:.2f}",
                                     f"{r['median_phase_error_rad']:.3g}"] for r in rows])
    (out / "gromov.md").write_text(f"# Gromov's quadratic MLP, p={p}{' (quick)' if quick else ''}\n\n{table}\n"
                                   f"Trained: train acc {final['train_acc']:.3f}, test acc {final['test_acc']:.3f} "
                                   f"after {c['steps']} steps of GD (lr {c['lr']}).\n")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("trained MLP: accuracy", "trained MLP: MSE loss"))
    steps = [r["step"] for r in curve]
    for key in ("train_acc", "test_acc"):
        fig.add_scatter(x=steps, y=[r[key] for r in curve], name=key, row=1, col=1)
    for key in ("train_loss", "test_loss"):
        fig.add_scatter(x=steps, y=[r[key] for r in curve], name=key, row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.write_html(out / "gromov.html", include_plotlyjs="directory")
    return {"rows": rows, "curve": curve}
