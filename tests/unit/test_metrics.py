"""The one home of loss, accuracy, weight norm and the grok step."""

import math

import pytest
import torch

from mechgrok.metrics import GROK_ACCURACY, Objective, grok_step, loss, sum_sq_weights


def test_grok_step_is_the_first_logged_step_at_99_percent():
    rows = [{"step": s, "test_acc": a} for s, a in ((0, 0.01), (10, 0.98), (20, 0.99), (30, 0.5), (40, 1.0))]
    assert GROK_ACCURACY == 0.99 and grok_step(rows) == 20
    assert grok_step(rows[:2]) is None
    assert grok_step([{"step": 5, "test_acc_q7": 1.0}], key="test_acc_q7") == 5


def test_loss_is_float64_cross_entropy_and_saturates_no_earlier():
    logits = torch.tensor([[40.0, 0.0], [0.0, 40.0]])
    labels = torch.tensor([0, 1])
    row = Objective((2,)).scores(logits, labels, "test")
    value, accuracy = row["test_loss"], row["test_acc"]
    assert value == pytest.approx(math.exp(-40), rel=1e-6)  # float32 would return 0
    assert accuracy == 1.0


def test_multi_head_objective_scores_each_head():
    heads = (2, 3)
    logits = torch.tensor([[5.0, 0.0, 0.0, 5.0, 0.0], [5.0, 0.0, 5.0, 0.0, 0.0]])
    labels = torch.tensor([[0, 1], [1, 0]])
    row = Objective(heads).scores(logits, labels, "test")
    assert row["test_acc_q2"] == 0.5 and row["test_acc_q3"] == 1.0 and row["test_acc"] == 0.75
    assert loss(torch.zeros(2, 5), labels, heads).item() == pytest.approx(2.0)  # chance: one per head


def test_sum_of_squared_weights():
    assert sum_sq_weights([torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]) == 14.0


def test_mean_task_loss_is_the_sum_over_the_number_of_heads():
    """task_loss='mean' (the miiii code averages CE_q / ln q over the tasks): exactly sum / T; uniform logits give 1."""
    from mechgrok.metrics import Objective

    heads = (2, 3, 5)
    torch.manual_seed(0)
    logits, labels = torch.randn(40, sum(heads)), torch.stack([torch.randint(q, (40,)) for q in heads], 1)
    total, mean = Objective(heads).loss(logits, labels), Objective(heads, mean=True).loss(logits, labels)
    assert mean.item() == pytest.approx(total.item() / 3, rel=1e-15)
    assert Objective(heads, mean=True).loss(torch.zeros(40, 10), labels).item() == pytest.approx(1.0)
