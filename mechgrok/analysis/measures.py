"""Progress measures of Nanda et al. (2023) on one checkpoint, for any group (``mechgrok.lens``).

Activations and logits are read at the last position; a grid is a [|G|, |G|, ...] tensor indexed by the
pair of group elements (for Z_p, the numbers (a, b)). The basis arithmetic is the group's
(``mechgrok.groups.Group``); what the measures make of it is here:

- **neuron clusters**: a neuron's share of variance owned by each irrep (``Group.term_fractions``: for
  Z_p, frequency k's linear and product terms); it joins the cluster of the best irrep when that share
  exceeds 0.5, and an irrep is *key* when its cluster has at least max(3, 1% of d_mlp) neurons. Chughtai,
  Chan & Nanda (2023) read networks on other groups through their irreps the same way;
- **Gini** of the basis-row norms (Hurley & Rickard);
- restricted / excluded logits live on the lens (``Lens.restricted_and_excluded``), the embedding and
  neuron-to-logit spectra on the group (``Group.spectrum``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..groups import CyclicGroup, Group
from ..lens import Lens
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


def neuron_clusters(acts: torch.Tensor, group: Group | None = None, threshold: float = CLUSTER_THRESHOLD,
                    min_neurons: int | None = None) -> NeuronClusters:
    """Cluster neurons by irrep (frequency) from activations ``acts`` [|G|, |G|, n] (e.g. ``hook_post`` over the
    grid); ``group`` defaults to Z_n with n = acts.shape[0] (the Fourier basis)."""
    group = CyclicGroup(acts.shape[0]) if group is None else group
    fractions = group.term_fractions(acts)
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


def lens_clusters(lens: Lens, neurons: torch.Tensor) -> NeuronClusters:
    """``neuron_clusters`` of per-input activations ``neurons`` [N, n] over the lens's grid."""
    return neuron_clusters(lens.grid(neurons), lens.group)
