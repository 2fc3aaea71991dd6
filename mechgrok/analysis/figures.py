"""Interactive plotly figures of an analysed run (HTML; PNG copies when kaleido can render).

Each ``*_figure`` function takes plain data (a Report's rows, a model) and returns a
``plotly.graph_objects.Figure``, so notebooks can show the same pictures.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots

from .circuit import run_grid
from .fourier import fourier_2d, fourier_basis

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

    from ..run import Run
    from ..tasks import Dataset
    from .report import Report

PHASE_COLOURS = {"memorization": "rgba(99,110,250,0.10)", "circuit formation": "rgba(239,85,59,0.10)",
                 "cleanup": "rgba(0,204,150,0.12)"}


def _column(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in rows]


def shade_phases(fig: go.Figure, phases: dict[str, Any]) -> go.Figure:
    """Shade memorization / circuit formation / cleanup as vertical bands."""
    bounds = [("memorization", 0, phases.get("memorization_end")),
              ("circuit formation", phases.get("memorization_end"), phases.get("cleanup_start")),
              ("cleanup", phases.get("cleanup_start"), phases.get("cleanup_end"))]
    for name, start, end in bounds:
        if start is not None and end is not None and end > start:
            fig.add_vrect(x0=start, x1=end, fillcolor=PHASE_COLOURS[name], line_width=0, annotation_text=name,
                          annotation_position="inside top left", annotation_textangle=-90,
                          annotation_font_size=11)
    return fig


def loss_figure(rows: list[dict[str, Any]], phases: dict[str, Any], grok_step: int | None = None) -> go.Figure:
    steps = _column(rows, "step")
    fig = go.Figure([go.Scatter(x=steps, y=_column(rows, "train_loss"), name="train loss"),
                     go.Scatter(x=steps, y=_column(rows, "test_loss"), name="test loss")])
    shade_phases(fig, phases)
    if grok_step is not None:
        fig.add_vline(x=grok_step, line_dash="dot", annotation_text="test acc 99%")
    return fig.update_layout(title="Train and test loss with the phases", xaxis_title="step",
                             yaxis_title="cross-entropy", yaxis_type="log")


def restricted_excluded_figure(rows: list[dict[str, Any]], phases: dict[str, Any]) -> go.Figure:
    steps = _column(rows, "step")
    fig = go.Figure([go.Scatter(x=steps, y=_column(rows, key), name=name) for key, name in (
        ("train_loss", "train loss"), ("test_loss", "test loss"),
        ("restricted_loss", "restricted loss (key frequencies only, all pairs)"),
        ("excluded_loss", "excluded loss (key frequencies removed, train pairs)"))])
    shade_phases(fig, phases)
    return fig.update_layout(title="Restricted and excluded loss", xaxis_title="step", yaxis_type="log",
                             yaxis_title="cross-entropy")


def spectrum_figure(spectra: list[dict[str, Any]], key_freqs: list[int]) -> go.Figure:
    """Final embedding spectrum (bars) and its evolution (heatmap, step x frequency)."""
    ks = sorted(int(name[1:]) for name in spectra[0] if name.startswith("k") and name != "k0")
    final = [spectra[-1][f"k{k}"] for k in ks]
    fig = make_subplots(rows=2, cols=1, subplot_titles=("final checkpoint", "over training"),
                        vertical_spacing=0.12)
    fig.add_bar(x=ks, y=final, marker_color=["crimson" if k in key_freqs else "steelblue" for k in ks],
                name="||W_E in basis, freq k||", row=1, col=1)
    fig.add_heatmap(x=ks, y=[s["step"] for s in spectra], z=[[s[f"k{k}"] for k in ks] for s in spectra],
                    colorscale="Viridis", colorbar=dict(y=0.25, len=0.45), row=2, col=1)
    fig.update_xaxes(title_text="frequency k", row=2, col=1)
    fig.update_yaxes(title_text="step", row=2, col=1)
    return fig.update_layout(title="Embedding spectrum (key frequencies in red)", height=800, showlegend=False)


def spectrum_slider_figure(spectra: list[dict[str, Any]], key_freqs: list[int], title: str) -> go.Figure:
    """A bar chart of a [K + 1] frequency spectrum per checkpoint, with a slider over the steps.

    ``spectra`` rows are {"step": s, "k0": .., "k1": .., ...} (as in spectrum.csv).
    """
    ks = sorted(int(name[1:]) for name in spectra[0] if name.startswith("k") and name != "k0")
    colours = ["crimson" if k in key_freqs else "steelblue" for k in ks]
    top = max(max(s[f"k{k}"] for k in ks) for s in spectra)
    frames = [go.Frame(name=str(s["step"]), data=[go.Bar(x=ks, y=[s[f"k{k}"] for k in ks], marker_color=colours)])
              for s in spectra]
    fig = go.Figure(data=frames[0].data, frames=frames)
    steps = [dict(method="animate", label=f.name, args=[[f.name], dict(mode="immediate", frame=dict(duration=0))])
             for f in frames]
    return fig.update_layout(title=f"{title} (key frequencies in red)", xaxis_title="frequency k",
                             yaxis=dict(range=[0, 1.05 * top]),
                             sliders=[dict(steps=steps, currentvalue=dict(prefix="step "))])


def logit_fourier_figure(logits: torch.Tensor) -> go.Figure:
    """Norm over output classes of the logits' 2D Fourier coefficients over (a, b): [p*p, c] -> p x p heatmap."""
    p = int(round(logits.shape[0] ** 0.5))
    _, names, _ = fourier_basis(p)
    norms = fourier_2d(logits.double().reshape(p, p, -1)).norm(dim=-1)
    fig = go.Figure(go.Heatmap(z=norms.numpy(), x=list(names), y=list(names), colorscale="Blues"))
    return fig.update_layout(title="Logits in the 2D Fourier basis (rows: a, columns: b; norm over classes)",
                             height=650, width=700)


def clusters_figure(key_info: dict[str, Any]) -> go.Figure:
    sizes = {int(k): v for k, v in key_info["cluster_sizes_all"].items()}
    ks = sorted(sizes)
    key = set(key_info["frequencies"])
    fig = go.Figure(go.Bar(x=ks, y=[sizes[k] for k in ks],
                           marker_color=["crimson" if k in key else "grey" for k in ks]))
    fig.add_hline(y=key_info["min_neurons"], line_dash="dot", annotation_text="key-frequency minimum")
    return fig.update_layout(title=f"Neurons per frequency cluster (> {key_info['threshold']:.0%} of variance)",
                             xaxis_title="frequency k", yaxis_title="neurons")


def gini_norm_figure(rows: list[dict[str, Any]], phases: dict[str, Any]) -> go.Figure:
    steps = _column(rows, "step")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=steps, y=_column(rows, "gini_embed"), name="Gini: W_E Fourier norms")
    fig.add_scatter(x=steps, y=_column(rows, "gini_neuron_logit"), name="Gini: W_out W_U Fourier norms")
    fig.add_scatter(x=steps, y=_column(rows, "sum_sq_weights"), name="sum of squared weights", secondary_y=True,
                    line_dash="dash")
    shade_phases(fig, phases)
    fig.update_yaxes(title_text="Gini", secondary_y=False)
    fig.update_yaxes(title_text="sum of squared weights", secondary_y=True)
    return fig.update_layout(title="Sparsity in the Fourier basis and weight norm", xaxis_title="step")


def ablation_figure(ablations: list[dict[str, Any]]) -> go.Figure:
    header = ["site", "ablation", "train loss", "test loss", "train acc", "test acc"]
    cells = [[r["site"] for r in ablations], [r["ablation"] for r in ablations]] + [
        [f"{r[key]:.3g}" if "loss" in key else f"{r[key]:.3f}" for r in ablations]
        for key in ("train_loss", "test_loss", "train_acc", "test_acc")]
    fig = go.Figure(go.Table(header=dict(values=header), cells=dict(values=cells)))
    return fig.update_layout(title="Fourier-space ablations of the final checkpoint",
                             height=120 + 24 * len(ablations))


def neuron_spectra_figure(neurons: torch.Tensor, indices: list[int]) -> go.Figure:
    """|2D Fourier coefficients| over (a, b) of a few neurons; ``neurons`` is [p, p, d_mlp]."""
    p = neurons.shape[0]
    _, names, _ = fourier_basis(p)
    coefficients = fourier_2d(neurons[..., indices].double()).abs()
    coefficients[0, 0] = 0  # the mean dwarfs everything else
    fig = make_subplots(rows=1, cols=len(indices), subplot_titles=[f"neuron {i}" for i in indices])
    for column, i in enumerate(indices, start=1):
        fig.add_heatmap(z=coefficients[..., column - 1].numpy(), x=list(names), y=list(names),
                        coloraxis="coloraxis", row=1, col=column)
    return fig.update_layout(title="Neurons in the 2D Fourier basis (rows: a, columns: b)",
                             coloraxis=dict(colorscale="Blues"), height=450, width=420 * len(indices))


def attention_figure(model: HookedTransformer, data: Dataset) -> go.Figure:
    """Attention from the '=' position to token a, for each head, over all (a, b)."""
    name = "blocks.0.attn.hook_pattern"
    with torch.no_grad():
        _, cache = model.run_with_cache(data.inputs, names_filter=name)
    pattern = cache[name][:, :, -1, 0].reshape(data.p, data.p, -1)  # [a, b, head]
    heads = pattern.shape[-1]
    fig = make_subplots(rows=1, cols=heads, subplot_titles=[f"head {h}" for h in range(heads)])
    for h in range(heads):
        fig.add_heatmap(z=pattern[..., h].numpy(), coloraxis="coloraxis", row=1, col=h + 1)
    fig.update_xaxes(title_text="b")
    fig.update_yaxes(title_text="a", col=1)
    return fig.update_layout(title="Attention of '=' to the first operand a (layer 0)",
                             coloraxis=dict(colorscale="RdBu", cmin=0, cmax=1), height=380, width=300 * heads)


def representative_neurons(best_freq: torch.Tensor, clustered: torch.Tensor, key_freqs: list[int], count: int = 4) -> list[int]:
    """The first clustered neuron of each key frequency (up to ``count``)."""
    chosen = []
    for k in key_freqs[:count]:
        members = torch.nonzero((best_freq == k) & clustered).flatten()
        if len(members):
            chosen.append(int(members[0]))
    return chosen or [0]


def save_figures(figures: dict[str, go.Figure], out: Path, html: bool = True, png: bool = True) -> None:
    """Write each figure as ``out/NAME.html`` (plotly.js shared beside them) and/or ``.png``.

    PNGs are rendered in one batch (one Chromium session for all, via kaleido); when that is
    not possible a one-line notice says why and the PNGs are skipped.
    """
    if html:
        for name, fig in figures.items():
            fig.write_html(out / f"{name}.html", include_plotlyjs="directory")
    if not png:
        return
    if importlib.util.find_spec("kaleido") is None:
        print("PNG copies skipped: kaleido is not installed (pip install kaleido; it renders with Chromium)")
        return
    try:
        pio.write_images(list(figures.values()), [out / f"{name}.png" for name in figures],
                         width=[fig.layout.width or 1000 for fig in figures.values()],
                         height=[fig.layout.height or 550 for fig in figures.values()])
    except Exception as err:  # no Chromium, or a renderer failure: either way only the PNGs are skipped
        print(f"PNG copies skipped ({type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else ''})")


def summary_figures(content: dict[str, Any], measures: list[dict[str, Any]],
                    spectra: list[dict[str, Any]]) -> dict[str, go.Figure]:
    """The figures drawn from an analysis's saved numbers alone (report.json, measures.csv, spectrum.csv)."""
    figures = {"losses": loss_figure(measures, content["phases"], content["grok_step"])}
    if content["fourier"]:
        key = content["key_frequencies"]
        figures.update({
            "restricted_excluded": restricted_excluded_figure(measures, content["phases"]),
            "embedding_spectrum": spectrum_figure(spectra, key["frequencies"]),
            "neuron_clusters": clusters_figure(key),
            "gini_weight_norm": gini_norm_figure(measures, content["phases"]),
            "ablations": ablation_figure(content["ablations"]),
        })
    return figures


def model_figures(run: Run, content: dict[str, Any]) -> dict[str, go.Figure]:
    """The figures that need the final checkpoint: a few neurons in 2D Fourier space, the attention pattern."""
    from .measures import neuron_clusters

    model = run.model(content["key_frequencies"]["from_step"])
    neurons = run_grid(model, run.dataset).neurons
    clusters = neuron_clusters(neurons)
    chosen = representative_neurons(clusters.best_freq, clusters.clustered, content["key_frequencies"]["frequencies"])
    return {"neuron_spectra": neuron_spectra_figure(neurons, chosen), "attention": attention_figure(model, run.dataset)}


def write_figures(report: Report, png: bool = True) -> list[str]:
    """Write every figure of ``report`` under its analysis directory; returns the file stems."""
    c = report.content
    figures = summary_figures(c, report.measures, report.spectra)
    if c["fourier"]:
        figures.update(model_figures(report.run, c))
    save_figures(figures, report.path, png=png)
    return sorted(figures)
