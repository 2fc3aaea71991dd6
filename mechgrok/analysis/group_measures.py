"""The progress measures for any finite group (``mechgrok.groups``): irreps play the frequencies' part.

Nanda et al.'s measures are defined on Z_p with the Fourier basis; Chughtai, Chan & Nanda (2023,
"A toy model of universality") read networks trained on other groups through their irreducible
representations. With B the group's orthonormal basis (``Group.fourier_basis``, rows grouped by
irrep; for Z_p it is the Fourier basis of ``fourier.py``, in the same order):

- **neuron fractions**: a neuron's activations f(a, b) over G x G in the basis B f B^T; irrep rho
  owns the terms (rho, trivial), (trivial, rho) and (rho, rho) (for Z_p: frequency k's linear and
  product terms); its fraction is their energy over all non-constant energy. Clusters and key
  irreps then follow the frequencies' rule (``NeuronClusters``: > 50%, at least max(3, 1% of d_mlp)).
- **restricted / excluded logits**: for the product x = a o b (the label of the composition
  task), the directions are the entries rho(x)_ij over the inputs, for the key irreps, made
  orthonormal; per class, the logits' projection on them plus the class's mean of the rest
  (restricted) or the logits minus it (excluded). For Z_p this is the paper's cos/sin(w_k(a+b)).
- **embedding spectrum**: the norm of W_E's group-element rows in each irrep's rows of B.
"""

from __future__ import annotations

import torch

from ..groups import Group
from .measures import NeuronClusters, default_min_neurons, CLUSTER_THRESHOLD


def neuron_irrep_fractions(group: Group, acts: torch.Tensor) -> torch.Tensor:
    """[n_irreps, n] share of each neuron's variance over (a, b) in each irrep's terms; ``acts`` [|G|, |G|, n]."""
    basis, owner = group.fourier_basis
    order = group.order
    flat = acts.double().reshape(order, order, -1)
    coefficients = torch.einsum("ia,abn,jb->ijn", basis, flat, basis)
    energy = coefficients.pow(2)
    owner_t = torch.tensor(owner)
    trivial = owner_t == 0
    fractions = torch.zeros(len(group.irreps), energy.shape[-1], dtype=torch.float64)
    for index in range(1, len(group.irreps)):
        mine = owner_t == index
        terms = (mine[:, None] & trivial[None, :]) | (trivial[:, None] & mine[None, :]) | (mine[:, None] & mine[None, :])
        fractions[index] = energy[terms].sum(0)
    total = energy.sum((0, 1)) - energy[0, 0]
    return fractions / total.clamp_min(1e-300)


def neuron_irrep_clusters(group: Group, acts: torch.Tensor, threshold: float = CLUSTER_THRESHOLD,
                          min_neurons: int | None = None) -> NeuronClusters:
    """Neurons clustered by irrep (the frequencies' rule, irrep indices in place of k)."""
    best_frac, best_irrep = neuron_irrep_fractions(group, acts).max(0)
    return NeuronClusters(best_irrep, best_frac, threshold,
                          default_min_neurons(acts.shape[-1]) if min_neurons is None else min_neurons)


def product_directions(group: Group, products: torch.Tensor, irreps: list[int]) -> torch.Tensor:
    """[m, N] orthonormal directions over N inputs spanned by rho(x)_ij, x = ``products`` [N], rho in ``irreps``."""
    if not irreps:
        return torch.zeros(0, len(products), dtype=torch.float64)
    columns = torch.cat([group.irreps[i].matrices[products].reshape(len(products), -1) for i in irreps], 1)
    u, singular, _ = torch.linalg.svd(columns.double(), full_matrices=False)
    keep = singular > 1e-9 * singular.max()  # a rotation's four entries span two directions
    return u[:, keep].T


def restricted_and_excluded_logits(group: Group, logits: torch.Tensor, products: torch.Tensor,
                                   irreps: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(restricted, excluded) logits [N, c]: kept to / stripped of the key irreps' directions of a o b."""
    directions = product_directions(group, products, irreps)
    kept = directions.T @ (directions @ logits.double())
    return kept + (logits - kept).mean(0, keepdim=True), logits - kept


def embedding_irrep_spectrum(group: Group, rows: torch.Tensor) -> torch.Tensor:
    """[n_irreps] norm of the embedding rows of the group's elements (``rows`` [|G|, d]) in each irrep."""
    basis, owner = group.fourier_basis
    energy = (basis @ rows.double()).pow(2).sum(-1)
    return torch.zeros(len(group.irreps), dtype=torch.float64).index_add_(0, torch.tensor(owner), energy).sqrt()
