import math

import pytest
import torch

from mechgrok.gromov import QuadraticMLP, accuracy, analytic_mlp, mse_loss, neuron_features
from mechgrok.tasks import make_dataset


@pytest.mark.parametrize("p,width", [(23, 128), (31, 256)])
def test_analytic_solution_is_exact_with_no_training(p, width):
    data = make_dataset("add", p, 0.5, 0)
    model = analytic_mlp(p, width)
    assert accuracy(model, data.inputs[:, 0], data.inputs[:, 1], data.labels) == 1.0


def test_analytic_outputs_are_one_hot_on_average():
    p = 23
    data = make_dataset("add", p, 0.5, 0)
    with torch.no_grad():
        out = analytic_mlp(p, 2048)(data.inputs[:, 0], data.inputs[:, 1])
    correct = out.gather(1, data.labels[:, None])
    assert correct.mean() == pytest.approx(1.0, abs=0.1)
    assert out.mean() == pytest.approx(1 / p, abs=0.05)


def test_feature_extraction_recovers_the_construction():
    features = neuron_features(analytic_mlp(31, 64, seed=3))
    expected = torch.arange(64) % 15 + 1
    assert torch.equal(features.freq_a, expected) and torch.equal(features.freq_out, expected)
    assert features.power_share.min() > 0.999
    assert features.phase_error.max() < 1e-4


def test_random_mlp_has_no_such_features():
    features = neuron_features(QuadraticMLP(31, 64, generator=torch.Generator().manual_seed(0)))
    single = (features.freq_a == features.freq_b) & (features.freq_b == features.freq_out)
    assert single.double().mean() < 0.1
    assert features.phase_error.median() > 0.5  # random phases: |error| ~ uniform on [0, pi]


def test_mse_loss_is_one_for_a_zero_output_and_the_mean_squared_distance_otherwise():
    p = 5
    model = QuadraticMLP(p, 1)
    with torch.no_grad():
        model.W1.zero_()
    labels = torch.tensor([0, 3])
    assert mse_loss(model, torch.tensor([0, 1]), torch.tensor([0, 2]), labels).item() == pytest.approx(1.0)
    # a random model: by hand, f(a, b) = (1/N) W2 (W1[:, a] + W1[:, p + b])^2, then mean ||f - onehot||^2
    model = QuadraticMLP(p, 8, generator=torch.Generator().manual_seed(1))
    a, b = torch.tensor([0, 4, 2]), torch.tensor([1, 1, 3])
    with torch.no_grad():
        hidden = (model.W1[:, a] + model.W1[:, p + b]).pow(2)  # [N, batch]
        f = (model.W2 @ hidden / 8).T
        expected = (f - torch.eye(p)[labels.new_tensor([0, 3, 1])]).pow(2).sum(-1).mean()
    assert mse_loss(model, a, b, torch.tensor([0, 3, 1])).item() == pytest.approx(expected.item(), rel=1e-5)


def test_plain_gd_reports_every_step_to_its_progress_display():
    from mechgrok.gromov import train_gd

    p, seen = 7, []
    a, b = (g.flatten() for g in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    model = QuadraticMLP(p, 8, 1.0, torch.Generator().manual_seed(0))
    index = torch.arange(p * p)
    rows = train_gd(model, a, b, (a + b) % p, index[:30], index[30:], 0.1, 12, log_every=4,
                    on_step=lambda: seen.append(1))
    assert len(seen) == 12 and [r["step"] for r in rows] == [0, 4, 8, 12]
