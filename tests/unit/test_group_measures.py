"""Group-general measures on circuits built by construction from chosen irreps."""

import math

import pytest
import torch
import torch.nn.functional as F

from mechgrok.analysis.fourier import frequency_fractions_2d
from mechgrok.analysis.group_measures import (embedding_irrep_spectrum, neuron_irrep_clusters,
                                              neuron_irrep_fractions, restricted_and_excluded_logits)
from mechgrok.analysis.measures import restricted_logits
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
