"""Lenses: a task's dataset on its group's grid, and logits restricted to / stripped of chosen irreps, on
circuits built by construction."""

import math

import pytest
import torch
import torch.nn.functional as F

from mechgrok.analysis.measures import lens_clusters, neuron_clusters
from mechgrok.groups import SymmetricGroup
from mechgrok.tasks import TASKS, make_dataset

P = 23
FREQS = [3, 8, 11]


def add_logits(freqs=FREQS, scale=4.0, sign=1):
    """logits[a, b, c] = scale * sum_k cos(w_k (a + sign*b - c)): the paper's circuit, written out."""
    a, b = (t.flatten() for t in torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij"))
    angle = (a[:, None] + sign * b[:, None] - torch.arange(P)[None, :]).double() * 2 * math.pi / P
    return scale * sum(torch.cos(k * angle) for k in freqs)


def papers_restricted(logits, freqs, sign=1):
    """The paper's restricted logits, from its closed form: projection on cos/sin(w_k(a + sign*b)) per class,
    plus the class mean of the rest."""
    a, b = (t.flatten() for t in torch.meshgrid(torch.arange(P), torch.arange(P), indexing="ij"))
    angle = (a + sign * b).double() * 2 * math.pi / P
    waves = torch.stack([f(k * angle) for k in freqs for f in (torch.cos, torch.sin)])
    directions = waves / waves.norm(dim=1, keepdim=True)
    kept = directions.T @ (directions @ logits)
    return kept + (logits - kept).mean(0, keepdim=True)


@pytest.mark.parametrize("task,sign", [("add", 1), ("sub", -1)])
def test_on_z_p_the_lens_gives_the_papers_restricted_logits(task, sign):
    lens = make_dataset(task, P, 0.3, 0).lens
    logits = torch.randn(P * P, P, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    restricted, excluded = lens.restricted_and_excluded(logits, [4, 9])
    torch.testing.assert_close(restricted, papers_restricted(logits, [4, 9], sign))
    torch.testing.assert_close(restricted + excluded, logits + excluded.mean(0, keepdim=True))


def test_restricted_loss_equals_full_loss_and_excluded_loss_is_chance():
    data = make_dataset("add", P, 0.3, 0)
    logits = add_logits()
    full = F.cross_entropy(logits, data.labels)
    restricted, excluded = data.lens.restricted_and_excluded(logits, FREQS)
    assert full < 0.1
    assert F.cross_entropy(restricted, data.labels).item() == pytest.approx(full.item(), rel=1e-9)
    assert F.cross_entropy(excluded, data.labels).item() == pytest.approx(math.log(P), rel=1e-9)


def test_restricted_logits_keep_per_class_constants_and_partial_keys_leave_the_rest():
    lens = make_dataset("add", P, 0.3, 0).lens
    bias = torch.linspace(-1, 1, P, dtype=torch.float64)
    restricted, excluded = lens.restricted_and_excluded(add_logits() + bias, FREQS)
    torch.testing.assert_close(restricted, add_logits() + bias)
    torch.testing.assert_close(excluded, bias.expand_as(excluded))
    torch.testing.assert_close(lens.restricted_and_excluded(add_logits(), FREQS[:1])[1], add_logits(FREQS[1:]))


def test_tasks_without_a_group_law_read_logits_through_2d_input_terms():
    lens = make_dataset("x2xyy2", P, 0.3, 0).lens
    assert lens.products is None and lens.unit == "frequency"
    logits = torch.randn(P * P, P, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    restricted, excluded = lens.restricted_and_excluded(logits, [2, 5])
    grid = logits.reshape(P, P, P)
    mean = grid.mean((0, 1)).expand(P * P, P)
    torch.testing.assert_close(restricted + excluded - mean, logits)  # keep + remove = all, the constant once
    assert lens.group.term_fractions(excluded.reshape(P, P, P))[[2, 5]].abs().max() < 1e-12


def _trace_logits(lens, key, scale=4.0):
    """logit(a, b, c) = scale * sum_rho d_rho tr(rho(a o b) rho(c)^T) over the grid: Chughtai et al.'s circuit."""
    rho = [lens.group.irreps[i] for i in key]
    return scale * sum(r.dim * torch.einsum("nij,cij->nc", r.matrices[lens.products], r.matrices) for r in rho)


@pytest.mark.parametrize("task,p", [("mul", 13), ("div", 13), ("perm", 4)])
def test_group_logits_built_from_key_irreps_restrict_and_exclude(task, p):
    data = make_dataset(task, p, 0.5, 0)
    lens = data.lens
    key = [1, 3] if task == "perm" else [2, 5]
    logits = torch.zeros(len(data.inputs), data.n_classes, dtype=torch.float64)
    logits[lens.rows[:, None], lens.classes[None, :]] = _trace_logits(lens, key)  # class of element e: classes[e]
    assert torch.equal(lens.classes[lens.products], lens.labels)  # the construction predicts the labels
    restricted, excluded = lens.restricted_and_excluded(logits, key)
    full = F.cross_entropy(logits[lens.rows], lens.labels).item()
    assert F.cross_entropy(restricted, lens.labels).item() == pytest.approx(full, rel=1e-9)
    assert F.cross_entropy(excluded, lens.labels).item() == pytest.approx(math.log(data.n_classes), rel=1e-9)
    _, partial = lens.restricted_and_excluded(logits, key[:1])  # one of the two removed
    assert math.log(data.n_classes) > F.cross_entropy(partial, lens.labels).item() > full


def test_div_grid_reads_discrete_logs_and_leaves_a_zero_off_it():
    data = make_dataset("div", P, 0.5, 0)
    lens = data.lens
    group = lens.group
    assert group.order == P - 1 and len(lens.rows) == (P - 1) ** 2 and lens.axis == ("log_g a", "log_g b")
    a, b = data.inputs[lens.rows, 0], data.inputs[lens.rows, 1]
    x, y = (t.flatten() for t in torch.meshgrid(torch.arange(P - 1), torch.arange(P - 1), indexing="ij"))
    assert torch.equal(a, group.exp[x]) and torch.equal(b, group.exp[y])  # pair (x, y) is (g^x, g^y)
    assert torch.equal(lens.products, (x - y) % (P - 1))  # g^x / g^y = g^(x - y)
    assert not (data.inputs[lens.rows, 0] == 0).any()
    assert lens.in_train.sum() == torch.isin(lens.rows, data.train_idx).sum()


def _log_frequency_neurons(n, ks, per=5, seed=4):
    """[n, n, m] neurons over (i, j) log coordinates, each a product of one chosen frequency's waves."""
    g = torch.Generator().manual_seed(seed)
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
    data = make_dataset("div", P, 0.5, 0)
    lens = data.lens
    grid, truth = _log_frequency_neurons(lens.order, [3, 7])
    flat = lens.scatter(torch.zeros(len(data.inputs), grid.shape[-1], dtype=torch.float64), grid)
    clusters = lens_clusters(lens, flat)
    assert clusters.key_frequencies == [3, 7] and clusters.best_freq.tolist() == truth
    assert clusters.fraction_clustered == 1.0
    # the control: the same neurons over the plain (a, b) grid of numbers, read in Z_p's Fourier basis
    numbers = torch.zeros(P, P, grid.shape[-1], dtype=torch.float64)
    numbers[data.inputs[:, 0], data.inputs[:, 1]] = flat
    assert neuron_clusters(numbers).fraction_clustered < 0.2


def test_masked_embedding_strips_exactly_the_chosen_irreps_and_leaves_other_tokens():
    lens = make_dataset("perm", 4, 0.5, 0).lens
    W_E = torch.randn(25, 8, generator=torch.Generator().manual_seed(5))
    stripped = lens.masked_embedding(W_E, [2], keep=False)
    assert lens.group.spectrum(stripped[lens.tokens])[2] < 1e-5 and torch.equal(stripped[24], W_E[24])  # '='
    kept = lens.masked_embedding(W_E, [2], keep=True)
    spectrum = lens.group.spectrum(kept[lens.tokens])
    assert spectrum[[1, 3, 4]].max() < 1e-5 and spectrum[2] > 1


def test_every_task_but_miiii_has_a_lens_whose_grid_is_in_its_dataset():
    for name, task in TASKS.items():
        data = make_dataset(name, 3 if name == "perm" else 7, 0.5, 0)
        lens = data.lens
        if name == "miiii":
            assert lens is None
            continue
        assert len(lens.rows.unique()) == lens.order ** 2 and torch.equal(lens.labels, data.labels[lens.rows])
        assert lens.unit in ("frequency", "irrep") and len(lens.unit_names) == lens.group.n_irreps


def test_s_k_lens_numbers_elements_as_the_task_does():
    lens = make_dataset("perm", 4, 0.5, 0).lens
    assert torch.equal(lens.products, SymmetricGroup(4).table.reshape(-1)) and lens.basis_label == "irreps of S_4"
