"""Which figures an analysis draws, from what."""

import math
from pathlib import Path

import torch

from mechgrok.analysis.circuit import FinalCheckpoint, GridRun
from mechgrok.analysis.figure_set import model_figures, representative_neurons, summary_figures
from mechgrok.analysis.measures import lens_clusters
from mechgrok.analysis.report import read_report
from mechgrok.tasks import make_dataset

HEADLINE = Path(__file__).parent.parent.parent / "results" / "add_p113_seed0"


def test_a_report_with_a_circuit_gets_every_summary_figure():
    figures = summary_figures(read_report(HEADLINE))
    assert set(figures) == {"losses", "restricted_excluded", "embedding_spectrum", "neuron_clusters",
                            "gini_weight_norm", "ablations"}


def _final_with_built_neurons():
    """A final checkpoint whose neurons are built from frequencies 2 (4 neurons) and 4 (3 neurons)."""
    data = make_dataset("add", 11, 0.5, 0)
    a, b = (t.flatten().double() for t in torch.meshgrid(torch.arange(11), torch.arange(11), indexing="ij"))
    columns = [torch.cos(2 * math.pi * k * (a + s) / 11) * torch.cos(2 * math.pi * k * b / 11)
               for k, n in ((2, 4), (4, 3)) for s in range(n)]
    neurons = torch.stack(columns, 1)
    clusters = lens_clusters(data.lens, neurons)
    grid = GridRun(torch.zeros(121, 11, dtype=torch.float64), neurons, torch.rand(121, 2))
    spectrum = torch.tensor([0.0, 0.1, 3.0, 0.2, 2.0, 0.1], dtype=torch.float64)
    return FinalCheckpoint(100, grid, data.lens, clusters, spectrum)


def test_model_figures_show_the_cleanest_neuron_of_each_key_frequency_and_the_attention():
    final = _final_with_built_neurons()
    circuit = final.circuit(1.0)
    assert circuit.frequencies == [2, 4] and circuit.agree_with_embedding
    chosen, labels = representative_neurons(final, circuit)
    assert [final.clusters.best_freq[n].item() for n in chosen] == [2, 4] and labels[0].startswith("k=2 (")
    figures = model_figures(final, circuit)
    assert set(figures) == {"neuron_spectra", "attention"}
    assert len(figures["attention"].data) == 2 and figures["attention"].data[0].z.shape == (11, 11)
