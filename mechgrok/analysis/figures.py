"""Interactive plotly figures of an analysed run (HTML; PNG copies when kaleido can render).

Every ``*_figure`` function is pure: numbers in (typed results, tensors), a
``plotly.graph_objects.Figure`` out. Nothing here runs a model, so notebooks, the CLI and the
committed-results script draw the same pictures from the same data.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots

from ..fileio import atomic_write
from ..groups import CyclicGroup, Group
from .miiii import FIRST_TASKS, TaskRow
from .results import Ablation, CheckpointMeasures, Circuit, Phases, Spectra

MAX_WIDTH = 1200  # px: a figure no wider than a laptop's page (and its PNG copy)
PLOTLY_JS = "plotly.min.js"  # the one copy of plotly.js an analysis directory's figures share
PHASE_COLOURS = {"memorization": "rgba(99,110,250,0.12)", "circuit formation": "rgba(239,85,59,0.12)",
                 "cleanup": "rgba(0,204,150,0.14)"}
KEY_COLOUR, OTHER_COLOUR = "crimson", "steelblue"
# Legends below the plot (a side legend squeezes it), log axes in powers of ten (not SI prefixes).
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0)
LOG_AXIS = dict(type="log", exponentformat="power", dtick=1)


def _column(rows: Sequence[Any], key: str) -> list[Any]:
    return [getattr(r, key) for r in rows]


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


def _axis(indices: list[int], names: list[str] | None) -> list:
    """Spectrum indices as an axis: by name (``k=3``, an irrep's) where names are known, else as numbers."""
    return [names[k] for k in indices] if names else indices


def spectrum_figure(spectra: Spectra, key_freqs: list[int], names: list[str] | None = None,
                    unit: str = "frequency") -> go.Figure:
    """Final embedding spectrum (bars) and its evolution (heatmap, step x frequency or irrep, index 0 left out)."""
    indices = list(range(1, len(spectra.final)))
    ks = _axis(indices, names)
    fig = make_subplots(rows=2, cols=1, subplot_titles=("final checkpoint", "over training"),
                        vertical_spacing=0.12)
    fig.add_bar(x=ks, y=spectra.final[1:], marker_color=[KEY_COLOUR if k in key_freqs else OTHER_COLOUR
                                                         for k in indices],
                name=f"norm of W_E's rows in each {unit}", row=1, col=1)
    fig.add_heatmap(x=ks, y=spectra.steps, z=[row[1:] for row in spectra.values],
                    colorscale="Viridis", colorbar=dict(y=0.25, len=0.45, title="norm"), row=2, col=1)
    fig.update_xaxes(title_text="frequency k" if unit == "frequency" else unit, row=2, col=1)
    if names:
        fig.update_xaxes(type="category")
    fig.update_yaxes(title_text="norm", row=1, col=1)
    fig.update_yaxes(title_text="step", row=2, col=1)
    plural = "frequencies" if unit == "frequency" else f"{unit}s"
    return fig.update_layout(title=f"Embedding spectrum (key {plural} in red)", height=800, showlegend=False)


def frequency_bars(ks: list[int], values: list[float], key_freqs: list[int], title: str, y_title: str,
                   names: list[str] | None = None, unit: str = "frequency") -> go.Figure:
    """One bar per frequency k (or irrep, named by ``names[k]``), the key ones in red."""
    fig = go.Figure(go.Bar(x=_axis(ks, names), y=values,
                           marker_color=[KEY_COLOUR if k in key_freqs else OTHER_COLOUR for k in ks]))
    return fig.update_layout(title=title, xaxis_title="frequency k" if unit == "frequency" else unit,
                             yaxis_title=y_title, xaxis_type="category" if names else None)


def spectrum_slider_figure(spectra: Spectra, key_freqs: list[int], title: str) -> go.Figure:
    """A bar chart of a frequency spectrum per checkpoint (index 0 left out), with a slider over the steps."""
    ks = list(range(1, len(spectra.final)))
    colours = [KEY_COLOUR if k in key_freqs else OTHER_COLOUR for k in ks]
    top = max(max(row[1:]) for row in spectra.values)
    frames = [go.Frame(name=str(step), data=[go.Bar(x=ks, y=row[1:], marker_color=colours)])
              for step, row in zip(spectra.steps, spectra.values)]
    fig = go.Figure(data=frames[0].data, frames=frames)
    steps = [dict(method="animate", label=f.name, args=[[f.name], dict(mode="immediate", frame=dict(duration=0))])
             for f in frames]
    return fig.update_layout(title=f"{title} (key frequencies in red)", xaxis_title="frequency k",
                             yaxis=dict(range=[0, 1.05 * top], title="norm"),
                             sliders=[dict(steps=steps, currentvalue=dict(prefix="step "))])


def logit_fourier_figure(logits: torch.Tensor) -> go.Figure:
    """Norm over output classes of the logits' 2D Fourier coefficients over (a, b): [p*p, c] -> p x p heatmap."""
    p = int(round(logits.shape[0] ** 0.5))
    group = CyclicGroup(p)
    norms = group.transform_2d(logits.double().reshape(p, p, -1)).norm(dim=-1)
    fig = go.Figure(go.Heatmap(z=norms.numpy(), x=group.basis_names, y=group.basis_names, colorscale="Blues",
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
    unit = circuit.unit
    return fig.update_layout(title=f"Neurons per {unit} cluster (> {circuit.threshold:.0%} of a neuron's "
                                   f"variance); key in red, dotted line: the key minimum, {circuit.min_neurons} "
                                   f"neurons{verdict}",
                             xaxis_title=unit, yaxis_title="neurons", xaxis_type="category")


def cluster_bars_figure(names: list[str], counts: list[int], is_key: list[bool], min_neurons: int,
                        top: float) -> go.Figure:
    """Neurons per cluster at one checkpoint on a fixed categorical axis (the units that form a cluster at some
    checkpoint, and "other" for the rest together), value axis up to ``top``; key units in red."""
    fig = go.Figure(go.Bar(x=names, y=counts, text=counts, textposition="outside",
                           marker_color=[KEY_COLOUR if k else "grey" for k in is_key]))
    fig.add_hline(y=min_neurons, line_dash="dot")
    return fig.update_layout(xaxis=dict(type="category", categoryorder="array", categoryarray=names),
                             yaxis_range=[0, top])


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
                          irreps: list[int] | None = None, group: Group | None = None) -> go.Figure:
    """|2D coefficients| B X B^T over the grid of a few neurons; ``neurons`` is [|G|, |G|, d_mlp] in ``group``'s
    basis (default Z_n, the Fourier basis).

    With ``irreps`` (key frequencies) only their basis functions (and the constant) are drawn, so the few
    terms that carry a neuron's variance fill the picture; every tick is named.
    """
    group = CyclicGroup(neurons.shape[0]) if group is None else group
    rows = torch.arange(group.order) if irreps is None else torch.nonzero(
        torch.isin(group.owner, torch.tensor([0, *irreps]))).flatten()
    coefficients = group.transform_2d(neurons[..., indices].double())[rows][:, rows]
    shown = [group.basis_names[i] for i in rows.tolist()]
    titles = [f"neuron {i}" + (f": {labels[n]}" if labels else "") for n, i in enumerate(indices)]
    return coefficients_figure(coefficients, shown, titles, isinstance(group, CyclicGroup))


def coefficients_figure(coefficients: torch.Tensor, shown: list[str], titles: list[str], fourier: bool) -> go.Figure:
    """|2D coefficients| [r, r, n] of n neurons on the basis rows named ``shown`` (row 0 the constant), one heatmap
    each; the constant term (0, 0) is left out: the mean dwarfs everything else."""
    coefficients = coefficients.double().abs()
    coefficients[0, 0] = 0
    indices = list(range(coefficients.shape[-1]))
    several = len(indices) > 1
    if several:  # one scale for neurons of very different sizes would leave the smaller ones blank
        coefficients = coefficients / coefficients.amax((0, 1)).clamp_min(1e-30)
    fig = make_subplots(rows=1, cols=len(indices), subplot_titles=titles)
    for column in range(1, len(indices) + 1):
        fig.add_heatmap(z=coefficients[..., column - 1].numpy(), x=shown, y=shown, coloraxis="coloraxis",
                        row=1, col=column)
    fig.update_xaxes(title_text="basis function of b", tickangle=-60, dtick=1)
    fig.update_yaxes(title_text="basis function of a", dtick=1, col=1)
    what = "Fourier basis (the key frequencies' terms)" if fourier else "irreps' basis (the key irreps' terms)"
    scale = "|coefficient| / the neuron's largest" if several else "|coefficient|"
    return fig.update_layout(title=f"Neurons in the 2D {what}",
                             coloraxis=dict(colorscale="Blues", colorbar=dict(title=scale)),
                             height=480, width=min(MAX_WIDTH, 420 * len(indices) + 120))


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
                             height=380, width=min(MAX_WIDTH, 300 * heads + 120))


def weight_pca_figure(coords: torch.Tensor, explained: torch.Tensor, steps: list[int], step: int) -> go.Figure:
    """The weights' path over training on their first two principal components (``instruments.weight_pca``),
    coloured by step, with ``step`` marked."""
    fig = go.Figure(go.Scatter(x=coords[:, 0].tolist(), y=coords[:, 1].tolist(), mode="lines+markers",
                               marker=dict(color=steps, colorscale="Viridis", size=6, colorbar=dict(title="step")),
                               line=dict(color="#bbb"), text=[f"step {s}" for s in steps], name="checkpoints"))
    at = steps.index(step)
    fig.add_scatter(x=[float(coords[at, 0])], y=[float(coords[at, 1])], mode="markers", name=f"step {step}",
                    marker=dict(symbol="x", size=14, color="black"))
    share = [f"{100 * float(v):.0f}%" for v in explained]
    return fig.update_layout(title=f"Weights over training, first principal components, step {step}",
                             xaxis_title=f"PC1 ({share[0]} of variance)", yaxis_title=f"PC2 ({share[1]})",
                             showlegend=False)


def dimensionality_figure(dimension: torch.Tensor, steps: list[int], phases: Phases) -> go.Figure:
    """Participation ratio over training of the MLP activations and of W_E (``instruments.effective_dimensions``)."""
    fig = go.Figure([go.Scatter(x=steps, y=dimension[:, 0].tolist(), name="MLP activations"),
                     go.Scatter(x=steps, y=dimension[:, 1].tolist(), name="W_E", yaxis="y2")])
    fig.update_layout(title="Effective dimensionality (participation ratio)", xaxis_title="step",
                      yaxis=dict(title="MLP activations", rangemode="tozero"),
                      yaxis2=dict(title="W_E", overlaying="y", side="right", rangemode="tozero", showgrid=False),
                      legend=LEGEND_BELOW)
    return shade_phases(fig, phases)


def attention_spectrum_figure(spectra: torch.Tensor, names: list[str], key: list[int], step: int) -> go.Figure:
    """Each layer-0 head's QK and OV norm per unit (``instruments.attention_spectra``, [heads, 2, n_irreps]), each
    head's row scaled to its largest non-trivial unit; key units marked on the axis."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["QK: '=' query's scores over a", "OV: W_E W_V W_O"])
    shown = list(range(1, spectra.shape[-1]))
    labels = [names[k] + (" *" if k in key else "") for k in shown]
    for column in range(2):
        values = spectra[:, column, 1:]
        values = values / values.amax(-1, keepdim=True).clamp_min(1e-30)
        fig.add_heatmap(z=values.tolist(), x=labels, y=[f"head {h}" for h in range(spectra.shape[0])],
                        coloraxis="coloraxis", row=1, col=column + 1)
    return fig.update_layout(title=f"Attention heads in the basis, step {step} (* key)",
                             coloraxis=dict(colorscale="Blues", cmin=0, cmax=1,
                                            colorbar=dict(title="norm / head's max")))


def clock_figure(points: torch.Tensor, names: list[str], key: list[int], step: int) -> go.Figure:
    """Each element's embedding on each key unit's plane (``instruments.clock``, [n_key, |G|, 2]), coloured by
    element; fixed ranges (the largest radius) so the circle's growth shows."""
    fig = make_subplots(rows=1, cols=max(1, len(key)), subplot_titles=[names[k] for k in key] or ["no key unit"])
    top = 1.1 * float(points.norm(dim=-1).max()) if points.numel() else 1.0
    for i in range(len(key)):
        fig.add_scatter(x=points[i, :, 0].tolist(), y=points[i, :, 1].tolist(), mode="markers",
                        marker=dict(color=list(range(points.shape[1])), colorscale="HSV", size=6),
                        text=[f"element {g}" for g in range(points.shape[1])], row=1, col=i + 1)
    fig.update_xaxes(range=[-top, top]).update_yaxes(range=[-top, top], scaleanchor="x")
    return fig.update_layout(title=f"Embeddings on each key unit's plane (the clock), step {step}", showlegend=False)


def neuron_dynamics_figure(commits: list[int | None], switches: list[int], steps: list[int], step: int) -> go.Figure:
    """Histogram of the steps at which neurons commit to their final unit, and of their switch counts
    (``instruments.neuron_dynamics``); the unclustered-at-the-end neurons are left out."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["commit step", "switches before committing"])
    committed = [c for c in commits if c is not None]
    fig.add_histogram(x=committed, nbinsx=min(40, len(set(committed)) or 1), row=1, col=1, marker_color=KEY_COLOUR)
    fig.add_histogram(x=[s for s, c in zip(switches, commits) if c is not None], row=1, col=2,
                      marker_color=OTHER_COLOUR)
    fig.add_vline(x=step, line_dash="dot", line_color="black", row=1, col=1)
    fig.update_xaxes(title_text="step", row=1, col=1).update_xaxes(title_text="changes of unit", row=1, col=2)
    fig.update_yaxes(title_text="neurons", col=1)
    return fig.update_layout(title=f"Neuron dynamics: {len(committed)} of {len(commits)} neurons end clustered",
                             showlegend=False)


def transients_figure(spans: Sequence[Any], names: list[str], key: list[int], step: int, last: int) -> go.Figure:
    """Every cluster span (``instruments.transient_clusters``) as a bar from its first to its last step, one row
    per unit; transient spans (dissolved before the end) in orange, key units' in red."""
    fig = go.Figure()
    for span in spans:
        colour = "#e69f00" if span.transient else (KEY_COLOUR if span.unit in key else OTHER_COLOUR)
        fig.add_bar(y=[names[span.unit]], x=[max(span.last - span.first, last / 500)], base=[span.first],
                    orientation="h", marker_color=colour, showlegend=False,
                    hovertext=f"{names[span.unit]}: steps {span.first}..{span.last}, peak {span.peak} neurons at "
                              f"step {span.peak_step}" + (" (dissolved)" if span.transient else ""))
    fig.add_vline(x=step, line_dash="dot", line_color="black")
    n = sum(s.transient for s in spans)
    return fig.update_layout(title=f"Clusters over training: {n} transient (orange), step {step}", xaxis_title="step",
                             xaxis_range=[0, last], yaxis=dict(title="unit", type="category"), barmode="overlay")


def write_plotly_js(out: Path) -> Path:
    """plotly.js beside the HTML figures (``plotly.min.js``, which they load), written atomically, and written again
    whenever the file there is not exactly this plotly's (a kill or a full disk may have cut it short): plotly's own
    writer only checks that the file exists."""
    from plotly.offline import get_plotlyjs

    path = out / PLOTLY_JS
    source = get_plotlyjs().encode()
    if not (path.is_file() and path.stat().st_size == len(source) and path.read_bytes() == source):
        atomic_write(path, lambda tmp: tmp.write_bytes(source))
    return path


def save_figures(figures: dict[str, go.Figure], out: Path, html: bool = True, png: bool = True) -> None:
    """Write each figure as ``out/NAME.html`` (plotly.js shared beside them) and/or ``.png``.

    PNGs are rendered in one batch (one Chromium session for all, via kaleido); when that is
    not possible a one-line notice says why and the PNGs are skipped.
    """
    if html:
        write_plotly_js(out)
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


def task_order_figure(table: Sequence[TaskRow], rows: Sequence[CheckpointMeasures]) -> go.Figure:
    """Multi-task runs: each task's test accuracy over the analysed checkpoints (left) and the step at which it
    groks (right, by modulus q; a missing bar has not grokked)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4],
                        subplot_titles=("test accuracy per task (markers: analysed checkpoints)",
                                        "grok step per task (test acc >= 99%)"))
    steps = _column(rows, "step")
    for r in table:
        key = f"test_acc_q{r.q}"
        if all(key in m.per_task for m in rows):
            fig.add_scatter(x=steps, y=[m.per_task[key] for m in rows], name=f"mod {r.q}",
                            mode="lines+markers", row=1, col=1)  # markers: a run with few checkpoints shows it
    fig.add_bar(x=[str(r.q) for r in table], y=[r.grok_step for r in table], showlegend=False,
                marker_color=[KEY_COLOUR if r.q in FIRST_TASKS else OTHER_COLOUR for r in table], row=1, col=2)
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_xaxes(title_text="modulus q (red: 2, 3, 5, 7)", type="category", row=1, col=2)
    return fig.update_layout(title="The order in which the tasks grok", height=480, width=1200)
