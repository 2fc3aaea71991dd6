import math

import pytest
import torch

from mechgrok.metrics import head_accuracies, loss
from mechgrok.miiii import embedding_task_spectrum, periodic_r2
from mechgrok.tasks import make_dataset, primes_below


def test_labels_are_remainders_of_the_base_p_number():
    data = make_dataset("miiii", 11, 0.5, 0)
    assert data.heads == (2, 3, 5, 7) and data.d_vocab == 12 and data.n_classes == 17
    for (x0, x1, eq), row in zip(data.inputs.tolist(), data.labels.tolist()):
        assert eq == 11 and row == [(x0 + 11 * x1) % q for q in data.heads]
    assert primes_below(113)[-1] == 109 and len(primes_below(113)) == 29


def test_loss_is_the_number_of_tasks_at_chance_and_zero_when_perfect():
    data = make_dataset("miiii", 11, 0.5, 0)
    uniform = torch.zeros(len(data.labels), data.n_classes)
    assert loss(uniform, data.labels, data.heads).item() == pytest.approx(len(data.heads))
    perfect = torch.cat([100 * torch.nn.functional.one_hot(data.labels[:, i], q) for i, q in enumerate(data.heads)], 1)
    assert loss(perfect.float(), data.labels, data.heads).item() < 1e-6
    assert head_accuracies(perfect, data.labels, data.heads) == [1.0] * 4


def test_periodic_fit_finds_the_right_period():
    p = 113
    x = torch.arange(p, dtype=torch.float64)
    W_E = torch.stack([torch.cos(2 * math.pi * 3 * x / 7), torch.sin(2 * math.pi * x / 7)], 1)
    assert periodic_r2(W_E, 7) == pytest.approx(1.0)
    assert periodic_r2(W_E, 11) < 0.2
    rows = {r["q"]: r for r in embedding_task_spectrum(W_E, p, (7, 11))}
    assert rows[7]["r2"] > rows[7]["noise_r2"] + 0.8
