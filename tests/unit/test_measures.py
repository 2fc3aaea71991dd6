"""Measures on cases whose answer is known by construction."""

import math

import pytest
import torch

from mechgrok.analysis.measures import default_min_neurons, gini, neuron_clusters, top_frequencies
from mechgrok.groups import CyclicGroup

P = 23
FREQS = [3, 8, 11]


def _grid():
    return torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")


def synthetic_neurons(freqs=FREQS, per_freq=12, noise=0.05, seed=0):
    """Neurons each computing one frequency: cos(w_k a + phi) * cos(w_k b + psi) + linear terms + noise."""
    g = torch.Generator().manual_seed(seed)
    a, b = (t.double() for t in _grid())
    columns, truth = [], []
    for k in freqs:
        w = 2 * math.pi * k / P
        for _ in range(per_freq):
            phi, psi, alpha = torch.rand(3, generator=g, dtype=torch.float64) * 2 * math.pi
            columns.append(torch.cos(w * a + phi) * torch.cos(w * b + psi) + 0.3 * torch.cos(w * a + alpha) + 1.0)
            truth.append(k)
    grid = torch.stack(columns, -1)
    return grid + noise * torch.randn(grid.shape, generator=g, dtype=torch.float64), truth


def test_synthetic_neurons_cluster_to_their_frequency():
    neurons, truth = synthetic_neurons()
    clusters = neuron_clusters(neurons, min_neurons=5)
    assert clusters.best_freq.tolist() == truth
    assert clusters.key_frequencies == FREQS
    assert clusters.fraction_clustered == 1.0
    assert all(row.neurons == 12 and row.mean_frac_explained > 0.9 for row in clusters.table())
    assert clusters.fraction_in(FREQS[:1]) == pytest.approx(1 / 3)  # the one definition, for any set


def test_one_noisy_neuron_adds_no_spurious_frequency():
    neurons, _ = synthetic_neurons()
    spike = torch.zeros(P, P, 1, dtype=torch.float64)
    spike[5, 7] = 10.0  # a memorizing neuron: one input only
    clusters = neuron_clusters(torch.cat([neurons, spike], -1), min_neurons=5)
    assert clusters.key_frequencies == FREQS
    # The paper's rule (every neuron's argmax, no threshold) would count the spike's frequency too.
    spike_freq = int(clusters.best_freq[-1])
    assert spike_freq not in FREQS and not bool(clusters.clustered[-1])


def test_clusters_read_through_a_group_default_to_z_n():
    neurons, _ = synthetic_neurons()
    ours = neuron_clusters(neurons, CyclicGroup(P), min_neurons=5)
    assert torch.equal(ours.best_freq, neuron_clusters(neurons, min_neurons=5).best_freq)
    assert ours.cleanest(FREQS[0], 2) == sorted(ours.cleanest(FREQS[0], 2), key=lambda n: -float(ours.best_frac[n]))


def test_gini_known_values():
    assert gini(torch.ones(50)) == pytest.approx(0.0)
    one_hot = torch.zeros(50)
    one_hot[7] = 3.0
    assert gini(one_hot) == pytest.approx(1 - 1 / 50)
    assert gini(torch.tensor([0.0, 0.0, 1.0, 1.0])) == pytest.approx(0.5)
    assert gini(-one_hot) == gini(one_hot)


def test_top_frequencies_and_the_key_minimum():
    spectrum = torch.tensor([9.0, 1.0, 5.0, 0.5, 4.0])  # index 0 (the constant) never counts
    assert top_frequencies(spectrum, 2) == [2, 4]
    assert default_min_neurons(100) == 3 and default_min_neurons(512) == 6
