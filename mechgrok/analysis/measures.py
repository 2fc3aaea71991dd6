"""Progress measures of Nanda et al. (2023) on one checkpoint.

All inputs are the p^2 pairs (a, b) in row-major order; activations and logits are read at
the last position. Grids are [p, p, ...] tensors indexed by (a, b).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .fourier import fourier_2d, fourier_basis, frequency_fractions_2d, frequency_masks_2d, inverse_fourier_2d
from .results import Cluster

CLUSTER_THRESHOLD = 0.5


def default_min_neurons(d_mlp: int) -> int:
    """'More than a handful': at least 1% of the neurons, and never fewer than 3."""
    return max(3, math.ceil(0.01 * d_mlp))


@dataclass
class NeuronClusters:
    """Each neuron's best frequency and the fraction of its variance that frequency explains.

    A neuron joins frequency k's cluster when that fraction exceeds ``threshold`` (default 0.5:
    more than half its variance, so a neuron joins at most one cluster). A frequency is *key*
    when its cluster has at least ``min_neurons`` neurons. This differs from the paper's code,
    which gives every neuron its best frequency with no threshold, so that a single noisy
    neuron adds a spurious key frequency.
    """

    best_freq: torch.Tensor  # [n] int, frequency explaining most variance
    best_frac: torch.Tensor  # [n] float, fraction of variance it explains
    threshold: float
    min_neurons: int

    @property
    def clustered(self) -> torch.Tensor:
        return self.best_frac > self.threshold

    def cluster_sizes(self) -> dict[int, int]:
        freqs, counts = torch.unique(self.best_freq[self.clustered], return_counts=True)
        return {int(k): int(c) for k, c in zip(freqs, counts)}

    @property
    def key_frequencies(self) -> list[int]:
        return sorted(k for k, n in self.cluster_sizes().items() if n >= self.min_neurons)

    def fraction_in(self, freqs: list[int]) -> float:
        """Share of all neurons that sit in the cluster of one of ``freqs``: the one definition of fraction_clustered."""
        in_freqs = torch.isin(self.best_freq, torch.tensor(freqs, dtype=self.best_freq.dtype))
        return float((in_freqs & self.clustered).double().mean())

    @property
    def fraction_clustered(self) -> float:
        """Share of all neurons in this checkpoint's own key-frequency clusters."""
        return self.fraction_in(self.key_frequencies)

    def members(self, k: int) -> torch.Tensor:
        """[n] bool: the neurons in frequency k's cluster."""
        return (self.best_freq == k) & self.clustered

    def cleanest(self, k: int, count: int) -> list[int]:
        """Up to ``count`` neurons of k's cluster, the largest fraction explained first."""
        members = torch.nonzero(self.members(k)).flatten()
        return members[self.best_frac[members].argsort(descending=True)[:count]].tolist()

    def table(self) -> list[Cluster]:
        """One entry per key frequency: neuron count and mean fraction explained."""
        return [Cluster(k, int(self.members(k).sum()), float(self.best_frac[self.members(k)].mean()))
                for k in self.key_frequencies]


def neuron_clusters(acts: torch.Tensor, threshold: float = CLUSTER_THRESHOLD,
                    min_neurons: int | None = None) -> NeuronClusters:
    """Cluster neurons by frequency from activations ``acts`` [p, p, n] (e.g. ``hook_post``)."""
    fractions = frequency_fractions_2d(acts)
    best_frac, best_freq = fractions.max(0)
    return NeuronClusters(best_freq, best_frac, threshold,
                          default_min_neurons(acts.shape[-1]) if min_neurons is None else min_neurons)


def top_frequencies(spectrum: torch.Tensor, count: int) -> list[int]:
    """The ``count`` frequencies k >= 1 with the largest norm in a [K + 1] spectrum."""
    return sorted(int(k) + 1 for k in spectrum[1:].topk(min(count, len(spectrum) - 1)).indices)


def gini(values: torch.Tensor) -> float:
    """Gini coefficient of Hurley & Rickard (2009) of |values| (0 = all equal, -> 1 = one nonzero).

    With c_(1) <= ... <= c_(N) sorted: G = 1 - 2 * sum_i (c_(i) / ||c||_1) * (N - i + 1/2) / N.
    """
    c = values.double().abs().flatten().sort().values
    n = len(c)
    if c.sum() == 0:
        return 0.0
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(1 - 2 * ((c / c.sum()) * (n - i + 0.5) / n).sum())


def fourier_row_norms(matrix: torch.Tensor, p: int) -> torch.Tensor:
    """[p] norm of each Fourier component of ``matrix`` [p, ...] along its first axis (B @ matrix)."""
    basis, _, _ = fourier_basis(p)
    return (basis @ matrix.double().reshape(p, -1)).norm(dim=1)


def sum_directions(p: int, freqs: list[int], sign: int = 1) -> torch.Tensor:
    """[2 * len(freqs), p * p] orthonormal directions cos(w_k(a + sign*b)), sin(w_k(a + sign*b)) over the grid."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    angle_unit = (a + sign * b).double().flatten() * 2 * math.pi / p
    directions = []
    for k in freqs:
        for wave in (torch.cos(k * angle_unit), torch.sin(k * angle_unit)):
            if wave.norm() > 1e-9:  # sin vanishes at the even-p frequency p/2
                directions.append(wave / wave.norm())
    return torch.stack(directions) if directions else torch.zeros(0, p * p, dtype=torch.float64)


def key_component(logits: torch.Tensor, freqs: list[int], sign: int = 1) -> torch.Tensor:
    """The part of ``logits`` [p*p, c] along cos/sin(w_k(a + sign*b)) for k in ``freqs``, per class c."""
    p = math.isqrt(logits.shape[0])
    directions = sum_directions(p, freqs, sign).to(logits.dtype)
    return directions.T @ (directions @ logits)


def restricted_and_excluded_logits(logits: torch.Tensor, freqs: list[int],
                                   sign: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(restricted, excluded) logits for key frequencies ``freqs``, from one projection.

    restricted_c(a, b) = sum_k proj_k(l_c)(a, b) + mean_{a,b} (l_c - sum_k proj_k(l_c))
    (the key-frequency component plus each class's input-mean of what was removed: bias
    correction); excluded_c = l_c - sum_k proj_k(l_c).
    """
    kept = key_component(logits, freqs, sign)
    return kept + (logits - kept).mean(0, keepdim=True), logits - kept


def restricted_logits(logits: torch.Tensor, freqs: list[int], sign: int = 1) -> torch.Tensor:
    """Logits [p*p, c] with only the key-frequency terms cos/sin(w_k(a + sign*b)) kept (see above)."""
    return restricted_and_excluded_logits(logits, freqs, sign)[0]


def excluded_logits(logits: torch.Tensor, freqs: list[int], sign: int = 1) -> torch.Tensor:
    """Logits [p*p, c] with the key-frequency terms cos/sin(w_k(a + sign*b)) removed."""
    return restricted_and_excluded_logits(logits, freqs, sign)[1]


def mask_frequencies_2d(grid: torch.Tensor, freqs: list[int], keep: bool) -> torch.Tensor:
    """Remove (keep=False) or keep only (keep=True, plus the constant term) frequencies ``freqs``' 2D terms of ``grid`` [p, p, ...]."""
    p = grid.shape[0]
    masks = frequency_masks_2d(p)
    selected = masks[freqs].any(0) if freqs else torch.zeros(p, p, dtype=torch.bool)
    kept = (selected | masks[0]) if keep else ~selected
    coefficients = fourier_2d(grid)  # in the grid's dtype: float32 activations, float64 logits
    return inverse_fourier_2d(coefficients * kept.reshape(p, p, *([1] * (grid.dim() - 2))).to(grid.dtype))


def mask_frequencies_1d(matrix: torch.Tensor, freqs: list[int], keep: bool) -> torch.Tensor:
    """Remove or keep only frequencies ``freqs`` of ``matrix`` [p, ...] along its first axis (constant always kept)."""
    p = matrix.shape[0]
    basis, _, row_freq = fourier_basis(p)
    selected = torch.isin(row_freq, torch.tensor(freqs, dtype=row_freq.dtype))
    kept = (selected | (row_freq == 0)) if keep else ~selected
    coefficients = basis @ matrix.double().reshape(p, -1)
    return (basis.T @ (coefficients * kept[:, None].double())).reshape(matrix.shape).to(matrix.dtype)
