"""Interactive plotly figures of an analysed run (HTML; PNG copies when kaleido can render).

Every ``*_figure`` function is pure: numbers in (typed results, tensors), a
``plotly.graph_objects.Figure`` out. Nothing here runs a model, so notebooks, the CLI and the
committed-results script draw the same pictures from the same data.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots

from .fourier import fourier_2d, fourier_basis
from .results import Ablation, Circuit, Phases

if TYPE_CHECKING:
    from .circuit import FinalCheckpoint
    from .report import Report
    from .trajectory import PanelBasis

PHASE_COLOURS = {"memorization": "rgba(99,110,250,0.12)", "circuit formation": "rgba(239,85,59,0.12)",
                 "cleanup": "rgba(0,204,150,0.14)"}
KEY_COLOUR, OTHER_COLOUR = "crimson", "steelblue"
# Legends below the plot (a side legend squeezes it), log axes in powers of ten (not SI prefixes).
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0)
LOG_AXIS = dict(type="log", exponentformat="power", dtick=1)


def _column(rows: Sequence[Any], key: str) -> list[Any]:
    return [r[key] for r in rows]


def shade_phases(fig: go.Figure, phases: Phases) -> go.Figure:
    """Shade memorization / circuit formation / cleanup as vertical bands, named above the plot."""
    bounds = [("memorization", 0, phases.memorization_end),
              ("circuit formation", phases.memorization_end, phases.cleanup_start),
              ("cleanup", phases.cleanup_start, phases.cleanup_end)]
    for name, start, end in bounds:
        if start is not None and end is not None and end > start:
            fig.add_vrect(x0=start, x1=end, fillcolor=PHASE_COLOURS[name], line_width=0)
            fig.add_annotation(x=(start + end) / 2, y=1.0, yref="paper", yanchor="bottom", text=name,
                               showarrow=False, font=dict(size=12))
    return fig


def loss_figure(rows: Sequence[Any], phases: Phases, grok_step: int | None = None) -> go.Figure:
    steps = _column(rows, "step")
    fig = go.Figure([go.Scatter(x=steps, y=_column(rows, "train_loss"), name="train loss"),
                     go.Scatter(x=steps, y=_column(rows, "test_loss"), name="test loss")])
    shade_phases(fig, phases)
    if grok_step is not None:
        fig.add_vline(x=grok_step, line_dash="dot")
        fig.add_annotation(x=grok_step, y=0.02, yref="paper", text=f"test acc 99% (step {grok_step})",
                           showarrow=False, xanchor="left", font=dict(size=11))
    return fig.update_layout(title=dict(text="Train and test loss, with the phases", y=0.97), xaxis_title="step",
                             yaxis=dict(title="cross-entropy", **LOG_AXIS), legend=LEGEND_BELOW,
                             margin=dict(t=90))


def restricted_excluded_figure(rows: Sequence[Any], phases: Phases) -> go.Figure:
    steps = _column(rows, "step")
    fig = go.Figure([go.Scatter(x=steps, y=_column(rows, key), name=name) for key, name in (
        ("train_loss", "train loss"), ("test_loss", "test loss"),
        ("restricted_loss", "restricted loss (key frequencies only, all pairs)"),
        ("excluded_loss", "excluded loss (key frequencies removed, train pairs)"))])
    shade_phases(fig, phases)
    return fig.update_layout(title=dict(text="Restricted and excluded loss", y=0.97), xaxis_title="step",
                             yaxis=dict(title="cross-entropy", **LOG_AXIS), legend=LEGEND_BELOW,
                             margin=dict(t=90))


def _frequencies(spectra: Sequence[dict[str, Any]]) -> list[int]:
    return sorted(int(name[1:]) for name in spectra[0] if name.startswith("k") and name != "k0")


def spectrum_figure(spectra: Sequence[dict[str, Any]], key_freqs: list[int], names: list[str] | None = None) -> go.Figure:
    """Final embedding spectrum (bars) and its evolution (heatmap, step x frequency); ``names``: a group's
    irreps by index (the x axis then names them)."""
    indices = _frequencies(spectra)
    ks = [names[k] for k in indices] if names else indices
    final = [spectra[-1][f"k{k}"] for k in indices]
    fig = make_subplots(rows=2, cols=1, subplot_titles=("final checkpoint", "over training"),
                        vertical_spacing=0.12)
    unit = "irrep" if names else "frequency k"
    fig.add_bar(x=ks, y=final, marker_color=[KEY_COLOUR if k in key_freqs else OTHER_COLOUR for k in indices],
                name=f"norm of W_E's rows in each {unit}", row=1, col=1)
    fig.add_heatmap(x=ks, y=[s["step"] for s in spectra], z=[[s[f"k{k}"] for k in indices] for s in spectra],
                    colorscale="Viridis", colorbar=dict(y=0.25, len=0.45, title="norm"), row=2, col=1)
    fig.update_xaxes(title_text=unit, row=2, col=1)
    if names:
        fig.update_xaxes(type="category")
    fig.update_yaxes(title_text="norm", row=1, col=1)
    fig.update_yaxes(title_text="step", row=2, col=1)
    return fig.update_layout(title=f"Embedding spectrum (key {'irreps' if names else 'frequencies'} in red)",
                             height=800, showlegend=False)


def frequency_bars(ks: list[int], values: list[float], key_freqs: list[int], title: str, y_title: str,
                   names: list[str] | None = None) -> go.Figure:
    """One bar per frequency k (or irrep, named by ``names[k]``), the key ones in red."""
    fig = go.Figure(go.Bar(x=[names[k] for k in ks] if names else ks, y=values,
                           marker_color=[KEY_COLOUR if k in key_freqs else OTHER_COLOUR for k in ks]))
    return fig.update_layout(title=title, xaxis_title="irrep" if names else "frequency k", yaxis_title=y_title,
                             xaxis_type="category" if names else None)


def spectrum_slider_figure(spectra: Sequence[dict[str, Any]], key_freqs: list[int], title: str) -> go.Figure:
    """A bar chart of a [K + 1] frequency spectrum per checkpoint, with a slider over the steps.

    ``spectra`` rows are {"step": s, "k0": .., "k1": .., ...} (as in spectrum.csv).
    """
    ks = _frequencies(spectra)
    colours = [KEY_COLOUR if k in key_freqs else OTHER_COLOUR for k in ks]
    top = max(max(s[f"k{k}"] for k in ks) for s in spectra)
    frames = [go.Frame(name=str(s["step"]), data=[go.Bar(x=ks, y=[s[f"k{k}"] for k in ks], marker_color=colours)])
              for s in spectra]
    fig = go.Figure(data=frames[0].data, frames=frames)
    steps = [dict(method="animate", label=f.name, args=[[f.name], dict(mode="immediate", frame=dict(duration=0))])
             for f in frames]
    return fig.update_layout(title=f"{title} (key frequencies in red)", xaxis_title="frequency k",
                             yaxis=dict(range=[0, 1.05 * top], title="norm"),
                             sliders=[dict(steps=steps, currentvalue=dict(prefix="step "))])


def logit_fourier_figure(logits: torch.Tensor) -> go.Figure:
    """Norm over output classes of the logits' 2D Fourier coefficients over (a, b): [p*p, c] -> p x p heatmap."""
    p = int(round(logits.shape[0] ** 0.5))
    _, names, _ = fourier_basis(p)
    norms = fourier_2d(logits.double().reshape(p, p, -1)).norm(dim=-1)
    fig = go.Figure(go.Heatmap(z=norms.numpy(), x=list(names), y=list(names), colorscale="Blues",
                               colorbar=dict(title="norm")))
    return fig.update_layout(title="Logits in the 2D Fourier basis (norm over classes)", height=650, width=720,
                             xaxis_title="basis function of b", yaxis_title="basis function of a")


def clusters_figure(circuit: Circuit) -> go.Figure:
    """Neurons per frequency cluster: one bar per frequency that has any, on a categorical axis."""
    sizes = circuit.cluster_sizes_all
    ks = sorted(sizes)
    key = set(circuit.frequencies)
    fig = go.Figure(go.Bar(x=[circuit.name(k) for k in ks], y=[sizes[k] for k in ks], text=[sizes[k] for k in ks],
                           textposition="outside",
                           marker_color=[KEY_COLOUR if k in key else "grey" for k in ks]))
    fig.add_hline(y=circuit.min_neurons, line_dash="dot")
    verdict = "<br>the run has not generalised: candidates, not a circuit" if not circuit.claimed else ""
    unit = "irrep" if circuit.irrep_names else "frequency"
    return fig.update_layout(title=f"Neurons per {unit} cluster (> {circuit.threshold:.0%} of a neuron's "
                                   f"variance); key in red, dotted line: the key minimum, {circuit.min_neurons} "
                                   f"neurons{verdict}",
                             xaxis_title=unit, yaxis_title="neurons", xaxis_type="category")


def _round_step(top: float, ticks: int = 5) -> float:
    """A tick step of 1, 2 or 5 times a power of ten giving about ``ticks`` ticks up to ``top``."""
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def gini_norm_figure(rows: Sequence[Any], phases: Phases) -> go.Figure:
    steps = _column(rows, "step")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=steps, y=_column(rows, "gini_embed"), name="Gini: W_E Fourier norms")
    fig.add_scatter(x=steps, y=_column(rows, "gini_neuron_logit"), name="Gini: W_out W_U Fourier norms")
    fig.add_scatter(x=steps, y=_column(rows, "sum_sq_weights"), name="sum of squared weights", secondary_y=True,
                    line_dash="dash")
    shade_phases(fig, phases)
    fig.update_yaxes(title_text="Gini coefficient", range=[0, 1], dtick=0.2, secondary_y=False)
    top = max(_column(rows, "sum_sq_weights"))
    fig.update_yaxes(title_text="sum of squared weights", tickformat=",.0f", range=[0, 1.05 * top],
                     dtick=_round_step(top), showgrid=False, secondary_y=True)
    return fig.update_layout(title=dict(text="Sparsity in the Fourier basis and weight norm", y=0.97),
                             xaxis_title="step", legend=LEGEND_BELOW, margin=dict(t=90))


def ablation_figure(ablations: Sequence[Ablation]) -> go.Figure:
    header = ["site", "ablation", "train loss", "test loss", "train acc", "test acc"]
    cells = [[a.site for a in ablations], [a.ablation for a in ablations]] + [
        [f"{getattr(a, key):.3g}" if "loss" in key else f"{getattr(a, key):.3f}" for a in ablations]
        for key in ("train_loss", "test_loss", "train_acc", "test_acc")]
    row_height = 26
    fig = go.Figure(go.Table(header=dict(values=header, height=row_height),
                             cells=dict(values=cells, height=row_height)))
    return fig.update_layout(title="Fourier-space ablations of the final checkpoint",
                             height=140 + row_height * (len(ablations) + 2), margin=dict(t=60, b=20))


def neuron_spectra_figure(neurons: torch.Tensor, indices: list[int], labels: list[str] | None = None,
                          frequencies: list[int] | None = None, basis: PanelBasis | None = None) -> go.Figure:
    """|2D coefficients| B X B^T over (a, b) of a few neurons; ``neurons`` is [p, p, d_mlp] (Z_p's Fourier
    basis) or [|G|, |G|, d_mlp] with a group's ``basis`` (``trajectory.panel_basis``).

    With ``frequencies`` (or irreps) only their basis functions (and the constant) are drawn, so
    the few terms that carry a neuron's variance fill the picture; every tick is named.
    """
    p = neurons.shape[0]
    if basis is None:
        B, names, freqs = fourier_basis(p)
    else:
        B, names, freqs = basis.basis, basis.names, torch.tensor(basis.owner)
    rows = torch.arange(p) if frequencies is None else torch.nonzero(
        torch.isin(freqs, torch.tensor([0, *frequencies]))).flatten()
    X = neurons[..., indices].double()
    coefficients = torch.einsum("ia,abn,jb->ijn", B, X, B).abs()[rows][:, rows]
    coefficients[0, 0] = 0  # the mean dwarfs everything else
    shown = [names[i] for i in rows.tolist()]
    titles = [f"neuron {i}" + (f": {labels[n]}" if labels else "") for n, i in enumerate(indices)]
    fig = make_subplots(rows=1, cols=len(indices), subplot_titles=titles)
    for column in range(1, len(indices) + 1):
        fig.add_heatmap(z=coefficients[..., column - 1].numpy(), x=shown, y=shown, coloraxis="coloraxis",
                        row=1, col=column)
    fig.update_xaxes(title_text="basis function of b", tickangle=-60, dtick=1)
    fig.update_yaxes(title_text="basis function of a", dtick=1, col=1)
    fourier = basis is None or basis.unit == "frequency"
    what = "Fourier basis (the key frequencies' terms)" if fourier else "irreps' basis (the key irreps' terms)"
    return fig.update_layout(title=f"Neurons in the 2D {what}",
                             coloraxis=dict(colorscale="Blues", colorbar=dict(title="|coefficient|")),
                             height=480, width=420 * len(indices) + 120)


def attention_figure(pattern: torch.Tensor, axis: tuple[str, str] = ("a", "b")) -> go.Figure:
    """Attention from the '=' position to token a, per head, over all (a, b); ``pattern`` is [p, p, heads]
    (or over a group's grid, its axes named by ``axis``)."""
    heads = pattern.shape[-1]
    fig = make_subplots(rows=1, cols=heads, subplot_titles=[f"head {h}" for h in range(heads)])
    for h in range(heads):
        fig.add_heatmap(z=pattern[..., h].numpy(), coloraxis="coloraxis", row=1, col=h + 1)
    fig.update_xaxes(title_text=axis[1])
    fig.update_yaxes(title_text=axis[0], col=1)
    return fig.update_layout(title="Attention of '=' to the first operand a (layer 0)",
                             coloraxis=dict(colorscale="RdBu", cmin=0, cmax=1, colorbar=dict(title="attention")),
                             height=380, width=300 * heads + 120)


def representative_neurons(final: FinalCheckpoint, key_freqs: list[int], circuit: Circuit | None = None,
                           count: int = 4) -> tuple[list[int], list[str]]:
    """The most cleanly clustered neuron of each key frequency or irrep (up to ``count``) and a label for each."""
    chosen, labels = [], []
    clusters = final.clusters
    for k in key_freqs[:count]:
        for best in clusters.cleanest(k, 1):
            chosen.append(best)
            labels.append(f"{circuit.name(k) if circuit else f'k={k}'} ({float(clusters.best_frac[best]):.0%})")
    return (chosen, labels) if chosen else ([0], ["unclustered"])


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


def task_order_figure(table: Sequence[dict[str, Any]], rows: Sequence[Any]) -> go.Figure:
    """Multi-task runs: each task's test accuracy over the analysed checkpoints (left) and the step at which it
    groks (right, by modulus q; a missing bar has not grokked)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4],
                        subplot_titles=("test accuracy per task (markers: analysed checkpoints)",
                                        "grok step per task (test acc >= 99%)"))
    steps = _column(rows, "step")
    for r in table:
        key = f"test_acc_q{r['q']}"
        if all(key in m.per_task for m in rows):
            fig.add_scatter(x=steps, y=[m.per_task[key] for m in rows], name=f"mod {r['q']}",
                            mode="lines+markers", row=1, col=1)  # markers: a run with few checkpoints shows it
    fig.add_bar(x=[str(r["q"]) for r in table], y=[r["grok_step"] for r in table], showlegend=False,
                marker_color=[KEY_COLOUR if r["q"] in (2, 3, 5, 7) else OTHER_COLOUR for r in table], row=1, col=2)
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_xaxes(title_text="modulus q (red: 2, 3, 5, 7)", type="category", row=1, col=2)
    return fig.update_layout(title="The order in which the tasks grok", height=480, width=1200)


def summary_figures(report: Report) -> dict[str, go.Figure]:
    """The figures drawn from an analysis's saved numbers alone (report.json, measures.csv, spectrum.csv)."""
    figures = {"losses": loss_figure(report.measures, report.phases, report.grok_step)}
    if report.tasks:
        figures["task_order"] = task_order_figure(report.tasks["table"], report.measures)
    circuit = report.circuit
    if circuit is not None:
        figures.update({
            "restricted_excluded": restricted_excluded_figure(report.measures, report.phases),
            "embedding_spectrum": spectrum_figure(report.spectra, circuit.frequencies, circuit.irrep_names or None),
            "neuron_clusters": clusters_figure(circuit),
            "gini_weight_norm": gini_norm_figure(report.measures, report.phases),
            "ablations": ablation_figure(report.ablations),
        })
    return figures


def model_figures(final: FinalCheckpoint, circuit: Circuit) -> dict[str, go.Figure]:
    """The figures of the final checkpoint's activations: a few neurons in the 2D Fourier (or irreps') basis,
    and on the Z_p grid the attention."""
    from .trajectory import panel_basis

    chosen, labels = representative_neurons(final, circuit.frequencies, circuit)
    if final.lens is None:
        return {"neuron_spectra": neuron_spectra_figure(final.grid.neurons, chosen, labels,
                                                        circuit.frequencies or None),
                "attention": attention_figure(final.grid.attention)}
    neurons = final.lens.neuron_grid(final.grid.flat)
    return {"neuron_spectra": neuron_spectra_figure(neurons, chosen, labels, circuit.frequencies or None,
                                                    panel_basis(0, final.lens))}


def write_figures(report: Report, final: FinalCheckpoint | None = None, png: bool = False) -> list[str]:
    """Write every figure of ``report`` under its analysis directory (HTML; PNG copies too with ``png``);
    returns the file stems."""
    figures = summary_figures(report)
    if report.circuit is not None and final is not None and final.grid.flat is not None:
        figures.update(model_figures(final, report.circuit))
    save_figures(figures, report.path, png=png)
    return sorted(figures)
