"""The instruments beyond the paper's measures, each on a case whose answer is known by construction."""

import math
from types import SimpleNamespace

import pytest
import torch

from mechgrok.analysis import instruments
from mechgrok.tasks import make_dataset

P = 23


@pytest.mark.parametrize("k", [1, 3, 7])
def test_participation_ratio_counts_equal_orthogonal_directions(k):
    # variance 2.5^2/k along k axes, 0 elsewhere (2k rows: k=1, 3 have fewer rows than columns, k=7 more)
    rows = torch.cat([torch.eye(10)[:k], -torch.eye(10)[:k]]) * 2.5
    rotation = torch.linalg.qr(torch.randn(10, 10, generator=torch.Generator().manual_seed(k)))[0]
    assert instruments.participation_ratio(rows @ rotation) == pytest.approx(k, rel=1e-9)


def test_participation_ratio_of_unequal_variances_and_of_constant_rows():
    rows = torch.cat([torch.diag(torch.tensor([3.0, 1.0])), -torch.diag(torch.tensor([3.0, 1.0]))])
    assert instruments.participation_ratio(rows) == pytest.approx((9 + 1) ** 2 / (81 + 1))
    assert instruments.participation_ratio(torch.ones(5, 4)) == 0.0


def test_the_clock_of_an_embedding_made_of_one_frequency_is_a_circle_in_rotation_order():
    lens = make_dataset("add", P, 0.3, 0).lens
    k, d = 5, 16
    a = torch.arange(P, dtype=torch.float64)
    u, v = torch.linalg.qr(torch.randn(d, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0].T
    W_E = torch.zeros(P + 1, d, dtype=torch.float64)
    W_E[:P] = 3 * (torch.cos(2 * math.pi * k * a / P)[:, None] * u + torch.sin(2 * math.pi * k * a / P)[:, None] * v)
    points = instruments.clock(W_E, lens, [k, 2])
    radius = points[0].double().norm(dim=-1)
    torch.testing.assert_close(radius, torch.full((P,), 3.0, dtype=torch.float64), atol=1e-5, rtol=0)
    angle = torch.atan2(points[0, :, 1], points[0, :, 0]).double()
    step = torch.remainder(angle.diff(), 2 * math.pi)  # one element to the next: a fixed turn of 2 pi k / p
    torch.testing.assert_close(step, torch.full_like(step, 2 * math.pi * k / P), atol=1e-5, rtol=0)
    assert points[1].abs().max() < 1e-5  # frequency 2 is absent: every point at the centre of its plane


def test_weight_pca_of_checkpoints_on_a_line_has_one_component():
    direction = torch.randn(50, generator=torch.Generator().manual_seed(1))
    t = [0.0, 1.0, 3.0, 4.0, 7.0]
    run = SimpleNamespace(checkpoint=lambda s: SimpleNamespace(weights={"w": (t[s] * direction).reshape(5, 10),
                                                                       "b": torch.ones(3)}))
    coords, explained = instruments.weight_pca(run, list(range(5)))
    torch.testing.assert_close(explained, torch.tensor([1.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    first = coords[:, 0].double()
    centred = torch.tensor(t, dtype=torch.float64) - sum(t) / 5
    scale = direction.double().norm()
    torch.testing.assert_close(first.abs(), (centred * scale).abs(), rtol=1e-5, atol=1e-5)  # a sign is arbitrary
    assert coords[:, 1:].abs().max() < 1e-4


def _frac(labels):
    """frac 0.9 where a label is given, 0.1 (unclustered) where it is -1."""
    labels = torch.tensor(labels)
    return labels.clamp_min(0), torch.where(labels >= 0, 0.9, 0.1)


def test_neuron_dynamics_commit_steps_and_switches():
    # neurons (columns): settled from the start; wandering 1 -> 2 -> (unclustered) -> 2 -> 3; unclustered at the end;
    # leaving and rejoining the same unit
    freq, frac = _frac([[4, 1, 5, 6],
                        [4, 2, 5, -1],
                        [4, -1, 5, 6],
                        [4, 2, 3, 6],
                        [4, 3, -1, 6]])
    steps = [0, 10, 20, 30, 40]
    found = instruments.neuron_dynamics(freq, frac, 0.5, steps)
    assert found.final == [4, 3, -1, 6]
    assert found.commit == [0, 40, None, 20]
    assert found.switches == [0, 2, 1, 0]


def test_transient_clusters_are_the_spans_that_end_before_the_last_checkpoint():
    n_units, min_neurons, steps = 6, 2, [0, 100, 200, 300, 400]
    rows = [[1, 1, 1, 0, 0, 0],  # 3 neurons on unit 1 (0: the trivial unit), nothing else
            [1, 1, 1, 2, 2, 0],
            [2, 2, 1, 2, 2, 2],  # unit 1 dips to 1 neuron, unit 2 peaks at 5
            [1, 1, 3, 3, 2, 2],
            [1, 1, 3, 3, 3, 5]]
    freq = torch.tensor(rows)
    frac = torch.full(freq.shape, 0.9)
    spans = instruments.transient_clusters(freq, frac, 0.5, min_neurons, steps, n_units)
    got = [(s.unit, s.first, s.last, s.peak, s.peak_step, s.transient) for s in spans]
    assert got == [(1, 0, 100, 3, 0, True), (2, 100, 300, 5, 200, True), (1, 300, 400, 2, 300, False),
                   (3, 300, 400, 3, 400, False)]
    sizes = instruments.cluster_sizes(freq, frac, 0.5, n_units)
    assert sizes[2].tolist() == [0, 1, 5, 0, 0, 0]
