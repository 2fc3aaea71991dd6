"""The miiii study's per-task embedding fit (Syrkis & Søgaard, "Mechanistic interpretability of
irreducible integer identifiers").

The task itself (``miiii`` in ``mechgrok.tasks``: n = x0 + p*x1, one head per prime q < p,
predicting n mod q) trains with the package's one loop, with the loss of ``mechgrok.metrics``
(sum over heads of CE_q / ln q). What is specific to it is how its embedding is read:
the digit x enters n mod q through x mod q (x0) and p*x mod q (x1), both periodic in x with
period q, whose frequencies 2 pi k/q do not lie on the p-point DFT grid. So W_E's number
rows are fitted by least squares on [1, cos(2 pi k x / q), sin(2 pi k x / q)], k = 1..q//2,
and the fraction of their variance explained (R^2) is compared with what the same fit
explains of Gaussian noise.
"""

from __future__ import annotations

import math

import torch


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
