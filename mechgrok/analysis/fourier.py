"""The Fourier basis of Z_p and the transforms the measures are built from.

Basis rows (named, in this order, the paper's code's order): the constant 1/sqrt(p), then for
k = 1 .. (p-1)//2 the pair cos(w_k x), sin(w_k x) with w_k = 2*pi*k/p, each scaled to unit
norm; for even p one more row, cos(pi x) (frequency p/2, which has no sine). The matrix is
orthonormal, so coefficients are ``B @ f`` and ``f = B.T @ coefficients``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


@lru_cache(maxsize=8)
def fourier_basis(p: int) -> tuple[torch.Tensor, tuple[str, ...], torch.Tensor]:
    """(B [p, p] float64 orthonormal, row names, frequency of each row [p] with 0 for the constant)."""
    x = torch.arange(p, dtype=torch.float64)
    rows, names, freqs = [torch.ones(p, dtype=torch.float64)], ["const"], [0]
    for k in range(1, p // 2 + 1):
        angle = 2 * math.pi * k * x / p
        rows.append(torch.cos(angle)), names.append(f"cos {k}"), freqs.append(k)
        if 2 * k != p:
            rows.append(torch.sin(angle)), names.append(f"sin {k}"), freqs.append(k)
    basis = torch.stack(rows)
    basis = basis / basis.norm(dim=1, keepdim=True)
    return basis, tuple(names), torch.tensor(freqs)


def n_frequencies(p: int) -> int:
    """Number of non-constant frequencies, K = p // 2 (k = 1 .. K)."""
    return p // 2


def frequency_norms(coefficients: torch.Tensor, p: int) -> torch.Tensor:
    """[K + 1] norm of each frequency's rows (cos and sin together) of ``coefficients`` [p, ...]; index 0 = constant."""
    _, _, freqs = fourier_basis(p)
    energy = coefficients.double().pow(2).reshape(p, -1).sum(-1)
    return torch.zeros(n_frequencies(p) + 1, dtype=torch.float64).index_add_(0, freqs, energy).sqrt()


def embedding_spectrum(W_E: torch.Tensor, p: int) -> torch.Tensor:
    """[K + 1] ||(B @ W_E[:p])[rows of k]|| for each frequency k: W_E restricted to the p number tokens."""
    basis, _, _ = fourier_basis(p)
    return frequency_norms(basis @ W_E[:p].double(), p)


def _transform_first_two_axes(matrix: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """M @ X @ M.T over the first two axes of ``grid`` [p, p, ...], as two matrix products."""
    p = grid.shape[0]
    m = matrix.to(grid.dtype)
    over_a = (m @ grid.reshape(p, -1)).reshape(p, p, -1)  # [i, b, n]
    return torch.matmul(m, over_a).reshape(grid.shape)  # [i, j, n]: over b, batched over i


def fourier_2d(grid: torch.Tensor) -> torch.Tensor:
    """B @ X @ B.T over the first two axes of ``grid`` [p, p, ...] (the inputs a and b)."""
    basis, _, _ = fourier_basis(grid.shape[0])
    return _transform_first_two_axes(basis, grid)


def inverse_fourier_2d(coefficients: torch.Tensor) -> torch.Tensor:
    """B.T @ C @ B over the first two axes: the inverse of ``fourier_2d``."""
    basis, _, _ = fourier_basis(coefficients.shape[0])
    return _transform_first_two_axes(basis.T, coefficients)


@lru_cache(maxsize=8)
def frequency_masks_2d(p: int) -> torch.Tensor:
    """[K + 1, p, p] bool: the 2D Fourier terms of each frequency k over (a, b).

    Term (i, j) pairs basis row i in a with row j in b. Frequency k owns the linear terms
    (row k in a, constant in b), (constant in a, row k in b) and the products (row k, row k):
    everything a neuron computing a function of cos/sin(w_k a), cos/sin(w_k b) can use.
    Index 0 is the constant term (0, 0) alone.
    """
    _, _, freqs = fourier_basis(p)
    fa, fb = freqs[:, None], freqs[None, :]
    ks = torch.arange(n_frequencies(p) + 1)[:, None, None]
    masks = ((fa == ks) & (fb == 0)) | ((fa == 0) & (fb == ks)) | ((fa == ks) & (fb == ks))
    masks[0] = (fa == 0) & (fb == 0)
    return masks


def frequency_fractions_2d(grid: torch.Tensor) -> torch.Tensor:
    """[K + 1, n] fraction of each column's variance over (a, b) in each frequency's 2D terms.

    ``grid`` is [p, p, n] (e.g. neuron activations at every input pair). The variance is the
    energy of every 2D Fourier coefficient except the constant one (Parseval: the basis is
    orthonormal), so row 0 is 0 and rows 1..K sum to at most 1. Computed in float32: these
    are fractions, not losses.
    """
    p = grid.shape[0]
    _, _, freqs = fourier_basis(p)
    energy = fourier_2d(grid.float().reshape(p, p, -1)).pow(2)
    per_freq = torch.zeros(n_frequencies(p) + 1, energy.shape[-1])
    per_freq.index_add_(0, freqs[1:], energy[1:, 0])  # linear in a
    per_freq.index_add_(0, freqs[1:], energy[0, 1:])  # linear in b
    rows, cols = torch.nonzero((freqs[:, None] == freqs[None, :]) & (freqs[:, None] > 0), as_tuple=True)
    per_freq.index_add_(0, freqs[rows], energy[rows, cols])  # products of the same frequency
    total = energy.sum((0, 1)) - energy[0, 0]
    return (per_freq / total.clamp_min(1e-30)).double()
