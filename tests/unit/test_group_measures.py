"""Group-general measures on circuits built by construction from chosen irreps."""

import math

import pytest
import torch
import torch.nn.functional as F

from mechgrok.analysis.fourier import embedding_spectrum, frequency_fractions_2d
from mechgrok.analysis.group_measures import (embedding_irrep_spectrum, group_grid, neuron_irrep_clusters,
                                              neuron_irrep_fractions, restricted_and_excluded_logits)
from mechgrok.analysis.measures import neuron_clusters, restricted_logits
from mechgrok.tasks import make_dataset
from mechgrok.groups import CyclicGroup, SymmetricGroup


def test_on_z_p_the_irrep_fractions_are_the_frequency_fractions():
    acts = torch.randn(23, 23, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(neuron_irrep_fractions(CyclicGroup(23), acts), frequency_fractions_2d(acts),
                               atol=1e-6, rtol=0)


def test_on_z_p_the_restricted_logits_are_the_papers():
    p, g = 23, torch.Generator().manual_seed(1)
    logits = torch.randn(p * p, p, generator=g, dtype=torch.float64)
    a, b = (t.reshape(-1) for t in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    restricted, _ = restricted_and_excluded_logits(CyclicGroup(p), logits, (a + b) % p, [3, 8])
    torch.testing.assert_close(restricted, restricted_logits(logits, [3, 8]))


def _s_k_circuit(k, chosen, scale=3.0):
    """logit(a, b, c) = scale * sum_rho d_rho tr(rho(a o b) rho(c)^T): the trace similarity of Chughtai et al."""
    group = SymmetricGroup(k)
    products = group.table.reshape(-1)
    logits = sum(group.irreps[i].dim * torch.einsum("nij,cij->nc", group.irreps[i].matrices[products],
                                                    group.irreps[i].matrices) for i in chosen)
    return group, products, scale * logits


def test_trace_similarity_logits_restrict_to_their_irreps_and_exclude_to_chance():
    group, products, logits = _s_k_circuit(4, [1, 3])
    labels = products
    full = F.cross_entropy(logits, labels)
    restricted, excluded = restricted_and_excluded_logits(group, logits, products, [1, 3])
    assert full < 0.5  # the circuit computes the product
    assert F.cross_entropy(restricted, labels).item() == pytest.approx(full.item(), rel=1e-9)
    assert F.cross_entropy(excluded, labels).item() == pytest.approx(math.log(group.order), rel=1e-9)
    _, partial = restricted_and_excluded_logits(group, logits, products, [1])  # one of the two removed
    assert math.log(group.order) > F.cross_entropy(partial, labels).item() > full.item()


def test_neurons_built_from_one_irrep_cluster_to_it():
    s5 = SymmetricGroup(5)
    g = torch.Generator().manual_seed(2)
    columns, truth = [], []
    for index in (1, 2, 5):
        rho = s5.irreps[index].matrices.reshape(s5.order, -1)  # [|G|, d^2]
        for _ in range(6):
            u, v = torch.randn(rho.shape[1], generator=g, dtype=torch.float64), torch.randn(rho.shape[1], generator=g,
                                                                                         dtype=torch.float64)
            columns.append((rho @ u)[:, None] * (rho @ v)[None, :] + 0.5 * (rho @ u)[:, None])
            truth.append(index)
    clusters = neuron_irrep_clusters(s5, torch.stack(columns, -1), min_neurons=4)
    assert clusters.best_freq.tolist() == truth and clusters.key_frequencies == [1, 2, 5]
    assert clusters.fraction_clustered == 1.0


def test_embedding_rows_from_one_irrep_have_their_norm_there():
    s4 = SymmetricGroup(4)
    rows = s4.irreps[2].matrices.reshape(24, -1) @ torch.randn(4, 16, generator=torch.Generator().manual_seed(3),
                                                                dtype=torch.float64)
    spectrum = embedding_irrep_spectrum(s4, rows)
    assert spectrum[2] == pytest.approx(rows.norm().item()) and spectrum.pow(2).sum() == pytest.approx(
        rows.pow(2).sum().item())


def _log_frequency_neurons(group, ks, per=5, seed=4):
    """[|G|, |G|, n] neurons over (i, j) log coordinates, each a product of one chosen frequency's waves."""
    g = torch.Generator().manual_seed(seed)
    n = group.order
    x = torch.arange(n, dtype=torch.float64)
    columns, truth = [], []
    for k in ks:
        for _ in range(per):
            phase_a, phase_b = torch.rand(2, generator=g, dtype=torch.float64) * 2 * math.pi
            wave_a, wave_b = torch.cos(2 * math.pi * k * x / n + phase_a), torch.cos(2 * math.pi * k * x / n + phase_b)
            columns.append(torch.relu(wave_a[:, None] + wave_b[None, :]))
            truth.append(k)
    return torch.stack(columns, -1), truth


def test_div_in_log_coordinates_recovers_chosen_frequencies_and_z_p_does_not():
    p = 23
    data = make_dataset("div", p, 0.5, 0)
    lens = group_grid(data)
    assert lens.group.order == p - 1 and len(lens.rows) == (p - 1) ** 2
    grid, truth = _log_frequency_neurons(lens.group, [3, 7])
    flat = torch.zeros(len(data.inputs), grid.shape[-1], dtype=torch.float64)  # a = 0 rows: off the group
    flat[lens.rows] = grid.reshape(len(lens.rows), -1)
    clusters = lens.clusters(flat)
    assert clusters.key_frequencies == [3, 7] and clusters.best_freq.tolist() == truth
    assert clusters.fraction_clustered == 1.0
    # the control: the same neurons over the plain (a, b) grid of numbers, read in Z_p's Fourier basis
    numbers = torch.zeros(p, p, grid.shape[-1], dtype=torch.float64)
    numbers[data.inputs[:, 0], data.inputs[:, 1]] = flat
    assert neuron_clusters(numbers).fraction_clustered < 0.2


@pytest.mark.parametrize("task,p", [("mul", 13), ("div", 13), ("perm", 4)])
def test_group_grid_logits_built_from_key_irreps_restrict_and_exclude(task, p):
    data = make_dataset(task, p, 0.5, 0)
    lens = group_grid(data)
    group = lens.group
    key = [1, 3] if task == "perm" else [2, 5]
    rho = [group.irreps[i] for i in key]
    logits_grid = 4.0 * sum(r.dim * torch.einsum("nij,cij->nc", r.matrices[lens.products], r.matrices) for r in rho)
    logits = torch.zeros(len(data.inputs), data.n_classes, dtype=torch.float64)
    logits[lens.rows[:, None], lens.classes[None, :]] = logits_grid  # class of element e is lens.classes[e]
    # labels of the grid rows are the classes of their products: the construction predicts them
    assert torch.equal(lens.classes[lens.products], lens.labels)
    restricted, excluded = lens.restricted_and_excluded(logits, key)
    full = F.cross_entropy(logits[lens.rows], lens.labels).item()
    assert F.cross_entropy(restricted, lens.labels).item() == pytest.approx(full, rel=1e-9)
    assert F.cross_entropy(excluded, lens.labels).item() == pytest.approx(math.log(data.n_classes), rel=1e-9)


def test_group_masks_remove_and_keep_exactly_the_chosen_irreps():
    data = make_dataset("perm", 4, 0.5, 0)
    lens = group_grid(data)
    g = torch.Generator().manual_seed(5)
    neurons = torch.randn(len(data.inputs), 3, generator=g, dtype=torch.float64)
    removed = lens.masked_neurons(neurons, [2], keep=False)
    kept = lens.masked_neurons(neurons, [2], keep=True)
    assert neuron_irrep_fractions(lens.group, lens.neuron_grid(removed))[2].abs().max() < 1e-20
    fractions_kept = neuron_irrep_fractions(lens.group, lens.neuron_grid(kept))
    torch.testing.assert_close(fractions_kept[2], torch.ones(3, dtype=torch.float64))
    W_E = torch.randn(25, 8, generator=g)
    stripped = lens.masked_embedding(W_E, [2], keep=False)
    assert lens.embedding_spectrum(stripped)[2] < 1e-5 and torch.equal(stripped[24], W_E[24])  # '=' untouched


def test_the_group_path_on_addition_reproduces_the_fourier_path():
    p = 23
    data = make_dataset("add", p, 0.3, 0)
    lens = group_grid(data)
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(p * p, p, generator=g, dtype=torch.float64)
    ours = lens.restricted_and_excluded(logits, [4, 9])
    torch.testing.assert_close(ours[0], restricted_logits(logits, [4, 9]))
    W_E = torch.randn(p + 1, 16, generator=g, dtype=torch.float64)
    torch.testing.assert_close(lens.embedding_spectrum(W_E), embedding_spectrum(W_E, p))
