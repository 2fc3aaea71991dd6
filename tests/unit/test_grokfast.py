import pytest
import torch
from torch import nn

from mechgrok import load_run, train
from mechgrok.grokfast import GradientFilter

from ..conftest import small_config


def _model_with_grads(grads):
    model = nn.Linear(2, 1, bias=False)
    model.weight.grad = torch.tensor([grads], dtype=torch.float32)
    return model


def test_ema_filter_follows_the_formula():
    model = nn.Linear(2, 1, bias=False)
    f = GradientFilter(model, "ema", alpha=0.9, lamb=2.0, window=1)
    sequence = [torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 0.5]]), torch.tensor([[-1.0, 4.0]])]
    mu = None
    for g in sequence:
        model.weight.grad = g.clone()
        f.apply()
        mu = g.clone() if mu is None else 0.9 * mu + 0.1 * g
        torch.testing.assert_close(model.weight.grad, g + 2.0 * mu)


def test_ma_filter_waits_for_a_full_window_then_adds_the_mean():
    model = nn.Linear(2, 1, bias=False)
    f = GradientFilter(model, "ma", alpha=0.0, lamb=5.0, window=3)
    history = []
    for i in range(6):
        g = torch.tensor([[float(i), float(i * i)]])
        history.append(g)
        model.weight.grad = g.clone()
        f.apply()
        expected = g + 5.0 * torch.stack(history[-3:]).mean(0) if i >= 2 else g
        torch.testing.assert_close(model.weight.grad, expected)


@pytest.mark.parametrize("kind", ["ema", "ma"])
def test_grokfast_changes_training_and_resumes_exactly(tmp_path, kind):
    plain = train(small_config(tmp_path / "plain", steps=30), progress=False).summary
    cfg = dict(grokfast=kind, grokfast_window=5)
    straight = train(small_config(tmp_path / "gf", steps=30, **cfg), progress=False)
    assert straight.summary["train_loss"] != plain["train_loss"]
    train(small_config(tmp_path / "split", steps=20, **cfg), progress=False)
    resumed = train(small_config(tmp_path / "split", steps=30, **cfg), progress=False)
    for name, tensor in load_run(straight.run_dir).state_dict(30)[0].items():
        torch.testing.assert_close(load_run(resumed.run_dir).state_dict(30)[0][name], tensor, rtol=0, atol=1e-6)


def test_ema_from_zero_starts_at_one_minus_alpha_times_the_gradient():
    """start='zero' (the miiii code's zero-initialised EMAs): mu_1 = (1 - alpha) g_1, then the same recursion."""
    model = nn.Linear(2, 1, bias=False)
    f = GradientFilter(model, "ema", alpha=0.9, lamb=2.0, window=1, start="zero")
    sequence = [torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 0.5]])]
    mu = torch.zeros(1, 2)
    for g in sequence:
        model.weight.grad = g.clone()
        f.apply()
        mu = 0.9 * mu + 0.1 * g
        torch.testing.assert_close(model.weight.grad, g + 2.0 * mu)
    torch.testing.assert_close(f.state["weight"], mu)
