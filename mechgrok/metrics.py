"""The numbers every part reports, defined once: loss, accuracy, weight norm, the grok step.

- loss: cross-entropy in float64, as in Nanda et al.'s code (float32 saturates near 1e-7,
  where grokking curves live). A multi-head output (miiii) sums each head's cross-entropy
  divided by ln q, its value at chance, so uniform logits give the number of heads.
- accuracy: fraction of inputs whose argmax is the label; for several heads, the mean of the
  heads' accuracies (each head's own is reported as ``test_acc_q<q>``).
- sum_sq_weights: sum over all parameters of theta^2.
- grok step (``grok_step``): the first logged step whose test accuracy is >= GROK_ACCURACY (99%).
  Everything that reports it (summary.json, report.json, the experiments' tables) reads it from
  the run's metrics.jsonl with ``grok_step``, so it has one value per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F

GROK_ACCURACY = 0.99
MetricsRow = dict[str, float | int | None]  # one line of metrics.jsonl: step, losses, accuracies, weight norm, ...


def split_heads(logits: torch.Tensor, heads: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """[batch, sum(heads)] -> one [batch, q] block per head."""
    return torch.split(logits, list(heads), dim=-1)


def loss(logits: torch.Tensor, labels: torch.Tensor, heads: tuple[int, ...] | None = None,
         mean: bool = False) -> torch.Tensor:
    """Float64 cross-entropy; with T heads sum_q CE_q / ln q (labels [batch, T]), or that sum / T if ``mean``
    (the miiii code: syrkis/miiii ``miiii/train.py``, ``grad_fn``'s ``losses.mean()``)."""
    if labels.dim() == 1:
        return F.cross_entropy(logits.double(), labels)
    total = sum(F.cross_entropy(head.double(), labels[:, i]) / math.log(q)
                for i, (head, q) in enumerate(zip(split_heads(logits, heads), heads)))
    return total / len(heads) if mean else total


def head_accuracies(logits: torch.Tensor, labels: torch.Tensor, heads: tuple[int, ...]) -> list[float]:
    """Per head: fraction of inputs whose argmax in that head is its label."""
    if labels.dim() == 1:
        return [float((logits.argmax(-1) == labels).double().mean())]
    return [float((head.argmax(-1) == labels[:, i]).double().mean())
            for i, head in enumerate(split_heads(logits, heads))]


def sum_sq_weights(parameters: Iterable[torch.Tensor]) -> float:
    """sum over all parameters theta^2 (float64)."""
    with torch.no_grad():
        return float(sum(p.detach().double().pow(2).sum() for p in parameters))


def first_step_at(rows: list[MetricsRow], key: str, threshold: float) -> int | None:
    """The step of the first row with row[key] >= threshold, or None."""
    return next((int(r["step"]) for r in rows if r.get(key) is not None and r[key] >= threshold), None)


def grok_step(rows: list[MetricsRow], key: str = "test_acc") -> int | None:
    """The first logged step with ``key`` (test accuracy) >= GROK_ACCURACY, or None."""
    return first_step_at(rows, key, GROK_ACCURACY)


@dataclass(frozen=True)
class Objective:
    """What a trainer minimises and logs for a task with these output ``heads`` (classes per head)."""

    heads: tuple[int, ...]
    mean: bool = False  # several heads: the mean of CE_q / ln q over the heads instead of the sum

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return loss(logits, labels, self.heads, self.mean)

    def scores(self, logits: torch.Tensor, labels: torch.Tensor, split: str) -> dict[str, float]:
        """{split}_loss, {split}_acc and, for several heads, {split}_acc_q<q> per head."""
        accuracies = head_accuracies(logits, labels, self.heads)
        row = {f"{split}_loss": self.loss(logits, labels).item(), f"{split}_acc": sum(accuracies) / len(accuracies)}
        if len(self.heads) > 1:
            row.update({f"{split}_acc_q{q}": acc for q, acc in zip(self.heads, accuracies)})
        return row
