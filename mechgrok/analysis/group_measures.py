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

from dataclasses import dataclass

import torch

from ..groups import Group, MultiplicativeGroup, group_of_task
from .measures import CLUSTER_THRESHOLD, NeuronClusters, default_min_neurons


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


def _masked_2d(group: Group, grid: torch.Tensor, irreps: list[int], keep: bool) -> torch.Tensor:
    """Remove (or keep only, with the constant term) the 2D terms of ``irreps`` in ``grid`` [|G|, |G|, ...]."""
    basis, owner = group.fourier_basis
    owner_t = torch.tensor(owner)
    mine = torch.isin(owner_t, torch.tensor(irreps, dtype=owner_t.dtype))
    trivial = owner_t == 0
    terms = (mine[:, None] & trivial[None, :]) | (trivial[:, None] & mine[None, :]) | (mine[:, None] & mine[None, :])
    kept = (terms | (trivial[:, None] & trivial[None, :])) if keep else ~terms
    b = basis.to(grid.dtype)
    coefficients = torch.einsum("ia,ab...,jb->ij...", b, grid, b)
    coefficients = coefficients * kept.reshape(*kept.shape, *([1] * (grid.dim() - 2))).to(grid.dtype)
    return torch.einsum("ia,ij...,jb->ab...", b, coefficients, b)


@dataclass(frozen=True)
class GroupGrid:
    """A task's inputs read as the pairs (x, y) of a group's elements, numbered as the group numbers them.

    rows [|G|^2]: the dataset row of the pair (x, y), row-major in (x, y); products [|G|^2]: the
    group element of each pair's label; tokens / classes [|G|]: the input token and the output
    class of each element; in_train [|G|^2]: whether the pair is a training example. For div and
    mul, element i is the number g^i (discrete-log coordinates) and the pairs with a = 0, which
    lie outside Z_p^*, are not on the grid: every measure here is taken over the grid's pairs.
    """

    group: Group
    rows: torch.Tensor
    products: torch.Tensor
    tokens: torch.Tensor
    classes: torch.Tensor
    in_train: torch.Tensor
    labels: torch.Tensor

    def neuron_grid(self, neurons: torch.Tensor) -> torch.Tensor:
        """[|G|, |G|, n] the activations ``neurons`` [N, n] (one row per dataset input) over the grid."""
        order = self.group.order
        return neurons[self.rows].reshape(order, order, -1)

    def clusters(self, neurons: torch.Tensor) -> NeuronClusters:
        return neuron_irrep_clusters(self.group, self.neuron_grid(neurons))

    def restricted_and_excluded(self, logits: torch.Tensor, irreps: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(restricted, excluded) logits [|G|^2, c] over the grid's pairs (``restricted_and_excluded_logits``)."""
        return restricted_and_excluded_logits(self.group, logits[self.rows], self.products, irreps)

    def embedding_rows(self, W_E: torch.Tensor) -> torch.Tensor:
        return W_E[self.tokens]

    def embedding_spectrum(self, W_E: torch.Tensor) -> torch.Tensor:
        """[n_irreps] ``embedding_irrep_spectrum`` of the elements' embedding rows."""
        return embedding_irrep_spectrum(self.group, self.embedding_rows(W_E))

    def class_spectrum(self, matrix: torch.Tensor) -> torch.Tensor:
        """[n_irreps] ``embedding_irrep_spectrum`` of ``matrix`` [c, ...]'s rows of the elements' classes
        (for W_L^T: the neuron-to-logit map by output irrep)."""
        return embedding_irrep_spectrum(self.group, matrix[self.classes].reshape(self.group.order, -1))

    def basis_names(self) -> list[str]:
        """A name for each row of the group's basis: its irrep's name and the row's number within the irrep."""
        _, owner = self.group.fourier_basis
        names, seen = [], {}
        for index in owner:
            seen[index] = seen.get(index, 0) + 1
            names.append(f"{self.irrep_name(index)}:{seen[index]}")
        return names

    def basis_row_norms(self, matrix: torch.Tensor) -> torch.Tensor:
        """[|G|] norm of each basis function's coefficient of ``matrix`` [|G|, ...] (rows: elements): Gini's input."""
        basis, _ = self.group.fourier_basis
        return (basis @ matrix.double().reshape(self.group.order, -1)).norm(dim=1)

    def masked_embedding(self, W_E: torch.Tensor, irreps: list[int], keep: bool) -> torch.Tensor:
        """W_E with its element rows stripped of (or kept to, with the trivial irrep) ``irreps``' basis rows."""
        basis, owner = self.group.fourier_basis
        owner_t = torch.tensor(owner)
        selected = torch.isin(owner_t, torch.tensor(irreps, dtype=owner_t.dtype))
        kept = (selected | (owner_t == 0)) if keep else ~selected
        coefficients = basis @ self.embedding_rows(W_E).double()
        patched = W_E.clone()
        patched[self.tokens] = (basis.T @ (coefficients * kept[:, None].double())).to(W_E.dtype)
        return patched

    def masked_neurons(self, neurons: torch.Tensor, irreps: list[int], keep: bool) -> torch.Tensor:
        """``neurons`` [N, n] with the grid pairs' activations stripped of (or kept to) ``irreps``' 2D terms."""
        patched = neurons.clone()
        masked = _masked_2d(self.group, self.neuron_grid(neurons).double(), irreps, keep)
        patched[self.rows] = masked.reshape(len(self.rows), -1).to(neurons.dtype)
        return patched

    def irrep_name(self, index: int) -> str:
        return self.group.irreps[index].name


def task_lens(data) -> GroupGrid | None:
    """The group the measures read a task in: None on the Z_p grid (add and sub, and the grid tasks with no
    group, keep the paper's Fourier basis over (a, b)), else ``group_grid`` (div, mul, perm; None for miiii)."""
    return None if data.is_full_grid else group_grid(data)


def group_grid(data) -> GroupGrid | None:
    """The group grid of a dataset (``mechgrok.tasks.Dataset``): div/mul on Z_p^*, perm on S_k, add/sub on Z_p."""
    group = group_of_task(data.task, data.p)
    if group is None:
        return None
    n_inputs = data.inputs.shape[0]
    in_train = torch.zeros(n_inputs, dtype=torch.bool)
    in_train[data.train_idx] = True
    order = group.order
    x, y = (g.reshape(-1) for g in torch.meshgrid(torch.arange(order), torch.arange(order), indexing="ij"))
    if isinstance(group, MultiplicativeGroup):  # numbers g^i; the dataset is row-major over a, then b = 1..p-1
        tokens = group.exp
        rows = tokens[x] * (data.p - 1) + tokens[y] - 1
        products = group.log[data.labels[rows]]
    else:
        tokens = torch.arange(order)
        rows = x * order + y
        products = data.labels[rows]
    return GroupGrid(group, rows, products, tokens, tokens, in_train[rows], data.labels[rows])
