import math

import pytest
import torch

from mechgrok.config import TrainConfig
from mechgrok.errors import MechgrokError
from mechgrok.miiii import (embedding_task_spectrum, head_accuracies, make_miiii_data, miiii_loss, periodic_r2,
                            primes_below, train_miiii)


def test_labels_are_remainders_of_the_base_p_number():
    data = make_miiii_data(11, 0.5, 0)
    assert data.moduli == (2, 3, 5, 7)
    for (x0, x1, eq), row in zip(data.inputs.tolist(), data.labels.tolist()):
        assert eq == 11 and row == [(x0 + 11 * x1) % q for q in data.moduli]
    assert primes_below(113)[-1] == 109 and len(primes_below(113)) == 29


def test_loss_is_the_number_of_tasks_at_chance_and_zero_when_perfect():
    data = make_miiii_data(11, 0.5, 0)
    uniform = torch.zeros(len(data.labels), sum(data.moduli))
    assert miiii_loss(uniform, data.labels, data.moduli).item() == pytest.approx(len(data.moduli))
    perfect = torch.cat([100 * torch.nn.functional.one_hot(data.labels[:, i], q) for i, q in enumerate(data.moduli)], 1)
    assert miiii_loss(perfect.float(), data.labels, data.moduli).item() < 1e-6
    assert head_accuracies(perfect, data.labels, data.moduli) == [1.0] * 4


def test_periodic_fit_finds_the_right_period():
    p = 113
    x = torch.arange(p, dtype=torch.float64)
    W_E = torch.stack([torch.cos(2 * math.pi * 3 * x / 7), torch.sin(2 * math.pi * x / 7)], 1)
    assert periodic_r2(W_E, 7) == pytest.approx(1.0)
    assert periodic_r2(W_E, 11) < 0.2
    rows = {r["q"]: r for r in embedding_task_spectrum(W_E, p, (7, 11))}
    assert rows[7]["r2"] > rows[7]["noise_r2"] + 0.8


def _small_config(**changes):
    values = dict(p=11, frac_train=0.5, d_model=32, n_heads=2, d_head=16, d_mlp=64, dropout=0.1, lr=3e-3,
                  weight_decay=1.0, grokfast="ema", grokfast_lamb=0.5, steps=60, log_every=10, save_every=20)
    return TrainConfig(**{**values, **changes})


def test_resumed_training_matches_uninterrupted(tmp_path):
    # dropout and the Grokfast filter make this fail unless the RNG and filter state are saved too
    straight, _, straight_rows = train_miiii(_small_config())
    state = tmp_path / "state.safetensors"
    train_miiii(_small_config(steps=40), state)  # as if killed after step 40
    resumed, _, resumed_rows = train_miiii(_small_config(), state)
    assert [r["step"] for r in resumed_rows] == list(range(0, 61, 10))
    assert resumed_rows == straight_rows
    for name, weight in straight.state_dict().items():
        assert torch.equal(weight, resumed.state_dict()[name]), name
    # finished: running again trains nothing and returns the same rows
    assert train_miiii(_small_config(), state)[2] == straight_rows


def test_state_of_another_config_is_refused(tmp_path):
    state = tmp_path / "state.safetensors"
    train_miiii(_small_config(steps=20), state)
    with pytest.raises(MechgrokError, match="lr: 0.003 there vs 0.001 now"):
        train_miiii(_small_config(lr=1e-3), state)
