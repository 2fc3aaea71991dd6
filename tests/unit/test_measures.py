"""Measures on cases whose answer is known by construction."""

import math

import pytest
import torch
import torch.nn.functional as F

from mechgrok import train
from mechgrok.analysis.circuit import run_model
from mechgrok.analysis.measures import excluded_logits, neuron_clusters, restricted_logits
from mechgrok.run import load_run
from mechgrok.tasks import all_pairs

from ..conftest import small_config

P = 23
FREQS = [3, 8, 11]


def _grid():
    return torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij")


def synthetic_logits(freqs=FREQS, scale=4.0):
    """logits[a, b, c] = scale * sum_k cos(w_k (a + b - c)): the paper's circuit, written out."""
    a, b = _grid()
    c = torch.arange(P)
    angle = (a.flatten()[:, None] + b.flatten()[:, None] - c[None, :]).double() * 2 * math.pi / P
    return scale * sum(torch.cos(k * angle) for k in freqs)


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


def test_restricted_loss_equals_full_loss_and_excluded_loss_is_chance():
    labels = all_pairs("add", P)[1]
    logits = synthetic_logits()
    full = F.cross_entropy(logits, labels)
    restricted = F.cross_entropy(restricted_logits(logits, FREQS), labels)
    excluded = F.cross_entropy(excluded_logits(logits, FREQS), labels)
    assert full < 0.1
    assert restricted.item() == pytest.approx(full.item(), rel=1e-9)
    assert excluded.item() == pytest.approx(math.log(P), rel=1e-9)


def test_restricted_logits_keep_per_class_constants():
    labels = all_pairs("add", P)[1]
    bias = torch.linspace(-1, 1, P, dtype=torch.float64)
    logits = synthetic_logits() + bias
    torch.testing.assert_close(restricted_logits(logits, FREQS), logits)
    torch.testing.assert_close(excluded_logits(logits, FREQS), bias.expand_as(logits))


def test_partial_frequencies_leave_the_rest_in_the_excluded_logits():
    logits = synthetic_logits()
    torch.testing.assert_close(excluded_logits(logits, FREQS[:1]), synthetic_logits(FREQS[1:]))


def test_rand_control_task_grows_no_fourier_circuit(tmp_path):
    result = train(small_config(tmp_path, task="rand", steps=300, save_every=300), progress=False)
    assert result.summary["train_acc"] == 1.0  # it memorized its table
    run = load_run(result.run_dir)
    clusters = neuron_clusters(run_model(run.model(), run.dataset).neurons)
    assert clusters.key_frequencies == []
    assert clusters.fraction_clustered == 0.0
