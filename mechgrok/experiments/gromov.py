"""Gromov's two-layer quadratic MLP ("Grokking modular arithmetic", 2023): the analytic solution, and training by plain GD.

1. Analytic: ``mechgrok.gromov.analytic_mlp`` for several widths N; accuracy on all p^2 pairs
   with no training.
2. Trained: the same architecture from a random start, full-batch gradient descent on MSE,
   no regularisation, until well past grokking; accuracy curves and the first steps at which
   train and test accuracy reach 99%; then the trained weights' per-neuron Fourier features
   (dominant frequency of each map, its power share, and the phase relation chi = phi + psi)
   compared with the analytic ones and with the same network before training (the control).

The learning rate is large because of the 1/N output scale (mean-field normalisation): every
gradient carries a 1/N, so weights move O(1) only with lr ~ N * O(0.1). At p=97, N=512, lr 20
memorizes and barely moves in 2k steps; lr 100 groks (test acc 99% at step ~2.4k, after train
acc 100% at ~1.2k); lr 400 diverges. Small p needs a larger training fraction to generalise
at all (p=23 at frac 0.5 memorizes only), hence the quick mode's frac 0.8.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from plotly.subplots import make_subplots

from ..gromov import NeuronFeatures, QuadraticMLP, accuracy, analytic_mlp, neuron_features, train_gd
from ..fileio import JSONObject
from ..metrics import GROK_ACCURACY, first_step_at, grok_step
from ..presets import GROMOV, GROMOV_QUICK
from ..progress import Progress
from ..runtime import resolve_device
from ..tasks import make_dataset
from ..tables import markdown_table, write_table



def feature_summary(f: NeuronFeatures, min_share: float = 0.5) -> dict[str, float]:
    """Share of neurons whose three maps have one dominant frequency (> min_share of power), their
    median phase error |chi - phi - psi|, how many distinct frequencies they cover, and the median power share."""
    single = f.single_frequency(min_share)
    return {"single_frequency_neurons": float(single.double().mean()),
            "median_phase_error_rad": float(f.phase_error[single].median()) if single.any() else float("nan"),
            "distinct_frequencies": len(f.freq_a[single].unique()),
            "median_power_share": float(f.power_share.median())}


def run(out: Path, quick: bool = False, progress: bool = True, device: str = "auto") -> JSONObject:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c = GROMOV_QUICK if quick else GROMOV
    p, width = c["p"], c["train_width"]
    data = make_dataset("add", p, c["frac_train"], 0)
    a, b = data.inputs[:, 0], data.inputs[:, 1]
    rows = [{"model": f"analytic N={n}", "accuracy_all_pairs": accuracy(model, a, b, data.labels),
             **feature_summary(neuron_features(model))} for n in c["widths"] for model in [analytic_mlp(p, n)]]
    trained = QuadraticMLP(p, width, c["init_scale"], torch.Generator().manual_seed(0))
    untrained = copy.deepcopy(trained)
    # the initial weights are drawn on the CPU (same numbers on every device), then trained on ``device``
    on = resolve_device(device)
    bar = Progress(c["steps"], desc=f"gromov: plain GD, N={width}", enabled=progress)
    curve = train_gd(trained.to(on), a.to(on), b.to(on), data.labels.to(on), data.train_idx.to(on),
                     data.test_idx.to(on), c["lr"], c["steps"], log_every=max(1, c["steps"] // 100),
                     on_step=bar.update)
    bar.close()
    trained.cpu()
    final = curve[-1]
    features = {"trained": neuron_features(trained), "untrained": neuron_features(untrained)}
    rows.append({"model": f"untrained N={width} (control: the trained net's init)",
                 "accuracy_all_pairs": accuracy(untrained, a, b, data.labels),
                 **feature_summary(features["untrained"])})
    rows.append({"model": f"trained N={width} ({c['steps']} GD steps, lr {c['lr']:g})",
                 "accuracy_all_pairs": accuracy(trained, a, b, data.labels), **feature_summary(features["trained"]),
                 "train_acc": final["train_acc"], "test_acc": final["test_acc"],
                 "train_acc_99_step": first_step_at(curve, "train_acc", GROK_ACCURACY),
                 "grok_step": grok_step(curve)})
    write_table(out / "gromov", rows)
    write_table(out / "gromov_training_curve", curve)
    header = ["model", "accuracy (all pairs)", "single-frequency neurons", "distinct frequencies",
              "median phase error chi - phi - psi (rad)", "median power share"]
    table = markdown_table(header, [[r["model"], f"{r['accuracy_all_pairs']:.4f}", f"{r['single_frequency_neurons']:.2f}",
                                     r["distinct_frequencies"], f"{r['median_phase_error_rad']:.3g}",
                                     f"{r['median_power_share']:.3f}"] for r in rows])
    trained_row = rows[-1]
    (out / "gromov.md").write_text(
        f"# Gromov's quadratic MLP, p={p}{' (quick)' if quick else ''}\n\n{table}\n"
        f"Trained by full-batch GD on MSE, no regularisation, frac_train {c['frac_train']}: train accuracy reaches "
        f"99% at step {trained_row['train_acc_99_step']}, test accuracy at step {trained_row['grok_step']}; "
        f"final train acc {final['train_acc']:.3f}, test acc {final['test_acc']:.3f}.\n\n"
        "A neuron is single-frequency when the same frequency holds > 50% of the non-constant power of its "
        "three maps (W1's a half, W1's b half, W2's column); the phase error is wrapped to [0, pi] "
        "(random phases: median ~pi/2).\n")
    fig = make_subplots(rows=1, cols=3, subplot_titles=("trained MLP: accuracy", "trained MLP: MSE loss",
                                                        "per-neuron |chi - phi - psi|"))
    steps = [r["step"] for r in curve]
    for key in ("train_acc", "test_acc"):
        fig.add_scatter(x=steps, y=[r[key] for r in curve], name=key, row=1, col=1)
    for key in ("train_loss", "test_loss"):
        fig.add_scatter(x=steps, y=[r[key] for r in curve], name=key, row=1, col=2)
    for name, f in features.items():
        fig.add_histogram(x=f.phase_error.numpy(), name=f"{name}: phase error", nbinsx=30, opacity=0.6, row=1, col=3)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(barmode="overlay", width=1300, height=420)
    fig.write_html(out / "gromov.html", include_plotlyjs="directory")
    return {"rows": rows, "curve": curve}
