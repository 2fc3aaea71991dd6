"""The figures an analysis writes: which ones, from what (the report's numbers and the final checkpoint's
activations), drawn with the pure functions of ``figures.py`` and saved under RUN_DIR/analysis."""

from __future__ import annotations

import plotly.graph_objects as go

from .circuit import FinalCheckpoint
from .figures import (ablation_figure, attention_figure, clusters_figure, gini_norm_figure, loss_figure,
                      neuron_spectra_figure, restricted_excluded_figure, save_figures, spectrum_figure,
                      task_order_figure)
from .report import Report
from .results import Circuit


def summary_figures(report: Report) -> dict[str, go.Figure]:
    """The figures drawn from an analysis's saved numbers alone (report.json, measures.csv, spectrum.csv)."""
    figures = {"losses": loss_figure(report.measures, report.phases, report.grok_step)}
    if report.tasks:
        figures["task_order"] = task_order_figure(report.tasks.table, report.measures)
    circuit = report.circuit
    if circuit is not None:
        figures.update({
            "restricted_excluded": restricted_excluded_figure(report.measures, report.phases),
            "embedding_spectrum": spectrum_figure(report.spectra, circuit.frequencies, circuit.irrep_names,
                                                  circuit.unit),
            "neuron_clusters": clusters_figure(circuit),
            "gini_weight_norm": gini_norm_figure(report.measures, report.phases),
            "ablations": ablation_figure(report.ablations),
        })
    return figures


def representative_neurons(final: FinalCheckpoint, circuit: Circuit, count: int = 4) -> tuple[list[int], list[str]]:
    """The most cleanly clustered neuron of each key frequency or irrep (up to ``count``) and a label for each."""
    chosen, labels = [], []
    clusters = final.clusters
    for k in circuit.frequencies[:count]:
        for best in clusters.cleanest(k, 1):
            chosen.append(best)
            labels.append(f"{circuit.name(k)} ({float(clusters.best_frac[best]):.0%})")
    return (chosen, labels) if chosen else ([0], ["unclustered"])


def model_figures(final: FinalCheckpoint, circuit: Circuit) -> dict[str, go.Figure]:
    """The figures of the final checkpoint's activations: a few neurons in the 2D basis of the lens's group, and
    layer 0's attention from '=' to the first operand over the grid."""
    lens = final.lens
    chosen, labels = representative_neurons(final, circuit)
    figures = {"neuron_spectra": neuron_spectra_figure(lens.grid(final.grid.neurons), chosen, labels,
                                                       circuit.frequencies or None, lens.group)}
    if final.grid.attention is not None:
        figures["attention"] = attention_figure(lens.grid(final.grid.attention), lens.axis)
    return figures


def write_figures(report: Report, final: FinalCheckpoint | None = None, png: bool = False) -> list[str]:
    """Write every figure of ``report`` under its analysis directory (HTML; PNG copies too with ``png``);
    returns the file stems."""
    figures = summary_figures(report)
    if report.circuit is not None and final is not None and final.grid.neurons is not None:
        figures.update(model_figures(final, report.circuit))
    save_figures(figures, report.path, png=png)
    return sorted(figures)
