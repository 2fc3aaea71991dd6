"""Multi-task remainders (seeds/003, "miiii"): n = x0 + p*x1 mod every prime q < p.

Input ``[x0, x1, =]`` (``=`` is token p; the two digits of n in base p). One output head per
prime q < p, all read at the last position: the model is the package's one-layer
``Transformer`` whose unembedding has sum(q) columns, split per head. Loss, as in the study:
sum over tasks of CE_q / ln q (each task's cross-entropy relative to chance), so that uniform
logits give exactly the number of tasks. Training is full batch with AdamW, the warm-up, and
optionally Grokfast and dropout (the study used both); split, seed and optimiser settings come
from a ``TrainConfig``.

The embedding is analysed per task with a per-task basis: the digit x enters n mod q through
x mod q (x0) and p*x mod q (x1), both periodic in x with period q, whose frequencies 2 pi k/q
do not lie on the p-point DFT grid. So W_E's number rows are fitted by least squares on
[1, cos(2 pi k x / q), sin(2 pi k x / q)], k = 1..q//2, and the fraction of their variance
explained (R^2) is compared with what the same fit explains of Gaussian noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import TrainConfig
from .model import Transformer
from .tasks import is_prime, split_indices
from .train import make_grad_filter, make_optimizer, warmup_lr


def primes_below(p: int) -> list[int]:
    return [q for q in range(2, p) if is_prime(q)]


@dataclass(frozen=True)
class MiiiiData:
    """inputs [p^2, 3] ``[x0, x1, p]``; labels [p^2, T] = (x0 + p*x1) mod q for each modulus q."""

    p: int
    moduli: tuple[int, ...]
    inputs: torch.Tensor
    labels: torch.Tensor
    train_idx: torch.Tensor
    test_idx: torch.Tensor


def make_miiii_data(p: int, frac_train: float, seed: int) -> MiiiiData:
    x0, x1 = (g.reshape(-1) for g in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"))
    n = x0 + p * x1
    moduli = tuple(primes_below(p))
    labels = torch.stack([n % q for q in moduli], 1)
    train_idx, test_idx = split_indices(len(n), frac_train, seed)
    return MiiiiData(p, moduli, torch.stack([x0, x1, torch.full_like(x0, p)], 1), labels, train_idx, test_idx)


def split_heads(logits: torch.Tensor, moduli: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """[batch, sum(q)] -> one [batch, q] block per task."""
    return torch.split(logits, list(moduli), dim=-1)


def miiii_loss(logits: torch.Tensor, labels: torch.Tensor, moduli: tuple[int, ...]) -> torch.Tensor:
    """sum_q CE_q / ln q (float64)."""
    return sum(F.cross_entropy(head.double(), labels[:, i]) / math.log(q)
               for i, (head, q) in enumerate(zip(split_heads(logits, moduli), moduli)))


def head_accuracies(logits: torch.Tensor, labels: torch.Tensor, moduli: tuple[int, ...]) -> list[float]:
    return [float((head.argmax(-1) == labels[:, i]).double().mean())
            for i, head in enumerate(split_heads(logits, moduli))]


def train_miiii(cfg: TrainConfig, log_every: int = 50) -> tuple[Transformer, MiiiiData, list[dict]]:
    """Train on the miiii tasks for ``cfg.steps`` full-batch steps; rows of losses and per-task test accuracy."""
    data = make_miiii_data(cfg.p, cfg.frac_train, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = Transformer(cfg, cfg.p + 1, sum(data.moduli))
    optimizer = make_optimizer(model, cfg)
    grad_filter = make_grad_filter(model, cfg)
    x, y = data.inputs[data.train_idx], data.labels[data.train_idx]
    rows = []
    for step in range(cfg.steps + 1):
        if step % log_every == 0 or step == cfg.steps:
            model.eval()
            with torch.no_grad():
                logits = model(data.inputs)
            rows.append({"step": step,
                         "train_loss": miiii_loss(logits[data.train_idx], y, data.moduli).item(),
                         "test_loss": miiii_loss(logits[data.test_idx], data.labels[data.test_idx], data.moduli).item(),
                         **{f"test_acc_q{q}": acc for q, acc in zip(data.moduli, head_accuracies(
                             logits[data.test_idx], data.labels[data.test_idx], data.moduli))}})
            model.train()
        if step == cfg.steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = warmup_lr(cfg, step)
        optimizer.zero_grad(set_to_none=True)
        miiii_loss(model(x), y, data.moduli).backward()
        if grad_filter:
            grad_filter.apply()
        optimizer.step()
    model.eval()
    return model, data, rows


def periodic_design(p: int, q: int) -> torch.Tensor:
    """[p, 1 + 2*(q//2)] columns 1, cos(2 pi k x/q), sin(2 pi k x/q) for x = 0..p-1 (sin dropped where it vanishes)."""
    x = torch.arange(p, dtype=torch.float64)
    columns = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, q // 2 + 1):
        columns.append(torch.cos(2 * math.pi * k * x / q))
        if 2 * k != q:
            columns.append(torch.sin(2 * math.pi * k * x / q))
    return torch.stack(columns, 1)


def periodic_r2(matrix: torch.Tensor, q: int) -> float:
    """Fraction of the variance of ``matrix`` [p, d] (over its rows) explained by period-q features, least squares."""
    design = periodic_design(matrix.shape[0], q)
    target = matrix.double()
    fitted = design @ torch.linalg.lstsq(design, target).solution
    centred = target - target.mean(0)
    return float(1 - (target - fitted).pow(2).sum() / centred.pow(2).sum())


def embedding_task_spectrum(W_E: torch.Tensor, p: int, moduli: tuple[int, ...], seed: int = 0) -> list[dict]:
    """Per task q: R^2 of W_E's number rows on period-q features, and the same fit on Gaussian noise."""
    noise = torch.randn(p, W_E.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return [{"q": q, "r2": periodic_r2(W_E[:p], q), "noise_r2": periodic_r2(noise, q)} for q in moduli]
