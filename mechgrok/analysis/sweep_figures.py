"""Cross-run figures of a sweep, from its table rows (``mechgrok.sweep.run_row``): pure, rows in, figure out.

- ``seed_spread_figure``: each run's grok step and phase boundaries, one point per run, with
  the mean; how far seeds of one configuration fall apart.
- ``seed_frequencies_figure``: the key frequencies of each run, marker area by cluster size.
- ``phase_diagram_figure``: a two-field grid in the manner of Omnigrok (Liu et al. 2023): cells
  coloured by outcome (generalises / memorises only / fails to fit, the majority over the
  cell's runs, ties to the worse), labelled with the median steps to 99% test accuracy.
"""

from __future__ import annotations

import statistics
from typing import Sequence

import plotly.graph_objects as go

from ..fileio import Row

OUTCOME_COLOURS = {"generalises": "#2ca02c", "memorises only": "#ff7f0e", "fails to fit": "#7f7f7f"}
SPREAD_QUANTITIES = {"memorization_end": "memorization ends", "grok_step": "grok step (test acc >= 99%)",
                     "cleanup_start": "cleanup starts", "cleanup_end": "cleanup ends"}


def seed_spread_figure(rows: Sequence[Row]) -> go.Figure:
    """One row of points per quantity (x = step), a point per run (hover: its name), a line at the mean."""
    fig = go.Figure()
    for label_index, (key, label) in enumerate(SPREAD_QUANTITIES.items()):
        points = [(r[key], r["run"]) for r in rows if isinstance(r.get(key), (int, float))]
        if not points:
            continue
        fig.add_scatter(x=[x for x, _ in points], y=[label] * len(points), mode="markers", name=label,
                        text=[name for _, name in points], marker=dict(size=11, opacity=0.75),
                        hovertemplate="%{text}: %{x}<extra></extra>", showlegend=False)
        mean = statistics.fmean(x for x, _ in points)
        fig.add_scatter(x=[mean, mean], y=[label, label], mode="markers", marker=dict(symbol="line-ns-open", size=26,
                        color="black", line_width=2), name="mean", showlegend=label_index == 0,
                        hovertemplate=f"mean {mean:.0f}<extra></extra>")
    return fig.update_layout(title=f"Phase boundaries and grok step over {len(rows)} runs", xaxis_title="step",
                             height=360, width=900, margin=dict(l=200))


def seed_frequencies_figure(rows: Sequence[Row]) -> go.Figure:
    """Key frequency k (y) of each run (x); marker area grows with the number of neurons in k's cluster."""
    xs, ys, sizes = [], [], []
    for r in rows:
        ks, counts = str(r.get("key_frequencies") or "").split(), str(r.get("cluster_sizes") or "").split()
        for k, n in zip(ks, counts):
            xs.append(r["run"])
            ys.append(int(k))
            sizes.append(int(n))
    biggest = max(sizes, default=1)
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="markers+text", text=[f"{n}" for n in sizes],
                               textposition="middle right", marker=dict(size=[8 + 22 * s / biggest for s in sizes]),
                               hovertemplate="%{x}: k=%{y}, %{text} neurons<extra></extra>"))
    return fig.update_layout(title="Key frequencies per run (label: neurons in the cluster)", xaxis_title="run",
                             yaxis_title="frequency k", height=420, width=max(500, 140 * len(rows)))


def phase_diagram_figure(rows: Sequence[Row], x_field: str, y_field: str) -> go.Figure:
    """Omnigrok-style diagram over (x_field, y_field): outcome colour per cell, median steps to 99% as text."""
    xs = sorted({r[x_field] for r in rows})
    ys = sorted({r[y_field] for r in rows})
    order = list(OUTCOME_COLOURS)
    z, text = [], []
    for y in ys:
        z_row, text_row = [], []
        for x in xs:
            cell = [r for r in rows if r[x_field] == x and r[y_field] == y]
            if not cell:
                z_row.append(None)
                text_row.append("")
                continue
            counts = [sum(r["outcome"] == o for r in cell) for o in order]
            worst_majority = max(range(len(order)), key=lambda i: (counts[i], i))
            z_row.append(worst_majority)
            steps = [r["grok_step"] for r in cell if r.get("grok_step") is not None]
            label = f"{statistics.median(steps):.0f}" if steps else "—"
            text_row.append(f"{label}<br>{counts[0]}/{len(cell)}")
        z.append(z_row)
        text.append(text_row)
    n = len(order)
    scale = []
    for i, colour in enumerate(OUTCOME_COLOURS.values()):
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    fig = go.Figure(go.Heatmap(
        x=[str(v) for v in xs], y=[str(v) for v in ys], z=z, text=text, texttemplate="%{text}", zmin=-0.5,
        zmax=n - 0.5, colorscale=scale, xgap=2, ygap=2,
        colorbar=dict(tickvals=list(range(n)), ticktext=order, title="outcome"),
        hovertemplate=f"{x_field}=%{{x}}, {y_field}=%{{y}}<br>%{{text}}<extra></extra>"))
    return fig.update_layout(title=f"Phase diagram: median steps to 99% test accuracy (runs generalising / runs)",
                             xaxis_title=x_field, yaxis_title=y_field, xaxis_type="category", yaxis_type="category",
                             height=520, width=700)


def sweep_figure_set(rows: Sequence[Row], grid: dict[str, list]) -> dict[str, go.Figure]:
    """The figures a sweep's grid calls for: spread and frequencies over seeds; a phase diagram for two fields."""
    figures: dict[str, go.Figure] = {}
    if not rows:
        return figures
    if "seed" in grid and any(k in rows[0] for k in SPREAD_QUANTITIES):
        figures["seed_spread"] = seed_spread_figure(rows)
    if any(r.get("key_frequencies") for r in rows):
        figures["key_frequencies"] = seed_frequencies_figure(rows)
    fields = [k for k in grid if k != "seed"]
    if len(fields) == 2:
        figures["phase_diagram"] = phase_diagram_figure(rows, *fields)
    return figures
