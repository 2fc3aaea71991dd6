"""A task read through a group: which inputs form the group's grid, and what its logits should be made of.

Every task with structure has one ``Lens`` (``mechgrok.tasks``: ``TASKS[name].lens(dataset)``), and
every circuit measure takes one, so the analysis is one path whatever the group:

- ``add``/``sub``: Z_p (``CyclicGroup``, the Fourier basis), elements = tokens = classes; the logit
  directions are the basis functions at the label: cos/sin(w_k (a +- b)), the paper's;
- ``div``/``mul``: Z_p^* in discrete logs (``MultiplicativeGroup``): element i is the number g^i as
  token and as class, and the pairs with a = 0 lie off the grid (every measure is taken over the grid,
  and ablations leave the off-grid inputs as they are);
- ``perm``: S_k (``SymmetricGroup``), Young's orthogonal irreps;
- ``x2xyy2``/``x3xy2y``/``rand``: Z_p with no group law behind the label, so the logits are read through
  the 2D input terms of each frequency (linear in a, linear in b, their products), the constant kept as
  the bias correction: a documented extension of the paper's definition.

``miiii`` has no lens: its analysis is per-head probes (``mechgrok.analysis.miiii``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from .errors import MechgrokError
from .groups import Group


@dataclass(frozen=True)
class Lens:
    """A group and how a task's dataset sits on its grid G x G.

    rows [|G|^2]: the dataset row of each pair (x, y), row-major; tokens / classes [|G|]: the input token
    and output class of each element; products [|G|^2]: the element of each pair's label, or None where
    logits are read through 2D input terms; in_train / labels [|G|^2]: split and label of each pair.
    ``unit`` names a spectrum's index ("frequency" on Z_p's number line, else "irrep"); ``basis_label``
    is what the report calls the basis; ``axis`` names the grid's two axes.
    """

    group: Group
    rows: torch.Tensor
    tokens: torch.Tensor
    classes: torch.Tensor
    products: torch.Tensor | None
    in_train: torch.Tensor
    labels: torch.Tensor
    unit: str
    basis_label: str
    axis: tuple[str, str] = ("a", "b")

    @classmethod
    def build(cls, group: Group, inputs: torch.Tensor, labels: torch.Tensor, train_idx: torch.Tensor,
              tokens: torch.Tensor, by_products: bool, unit: str, basis_label: str,
              axis: tuple[str, str] = ("a", "b")) -> "Lens":
        """The lens of a dataset (``inputs`` [N, 3], ``labels`` [N], ``train_idx``) whose element x is token
        ``tokens[x]`` and class ``tokens[x]``; ``by_products``: logits read through the products a o b."""
        size = max(int(inputs[:, :2].max()), int(tokens.max())) + 1
        row_of = torch.full((size, size), -1, dtype=torch.long)  # the dataset row of each token pair, -1 if none
        row_of[inputs[:, 0], inputs[:, 1]] = torch.arange(len(inputs))
        x, y = (g.reshape(-1) for g in torch.meshgrid(tokens, tokens, indexing="ij"))
        rows = row_of[x, y]
        if (rows < 0).any():
            raise MechgrokError(f"the dataset lacks pairs of the {group.name} grid: is it the task's?")
        in_train = torch.zeros(len(inputs), dtype=torch.bool)
        in_train[train_idx] = True
        grid_labels = labels[rows]
        products = None
        if by_products:
            element_of = torch.full((size,), -1, dtype=torch.long)  # classes are tokens: the element of each
            element_of[tokens] = torch.arange(len(tokens))
            products = element_of[grid_labels]
        return cls(group, rows, tokens, tokens, products, in_train[rows], grid_labels, unit, basis_label, axis)

    @property
    def order(self) -> int:
        return self.group.order

    @cached_property
    def _in_order(self) -> bool:
        """Whether the grid is the whole dataset in its own order (Z_p tasks): then a grid is a view, not a copy."""
        return bool(torch.equal(self.rows, torch.arange(len(self.rows))))

    @property
    def unit_names(self) -> list[str]:
        """The name of each spectrum index: ``k=3``, or an irrep's name (a partition of k for S_k)."""
        return self.group.irrep_names

    def grid(self, values: torch.Tensor) -> torch.Tensor:
        """[|G|, |G|, ...] the per-input ``values`` [N, ...] (one row per dataset input) over the grid."""
        on_grid = values if self._in_order and len(values) == len(self.rows) else values[self.rows]
        return on_grid.reshape(self.order, self.order, *values.shape[1:])

    def scatter(self, values: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """``values`` [N, ...] with the grid pairs' rows replaced by ``grid`` [|G|, |G|, ...]; the rest unchanged."""
        patched = values.clone()
        patched[self.rows] = grid.reshape(len(self.rows), *values.shape[1:]).to(values.dtype)
        return patched

    def restricted_and_excluded(self, logits: torch.Tensor, irreps: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(restricted, excluded) logits [|G|^2, c] over the grid's pairs, from one projection.

        With products: kept = P^T P l_c over the orthonormal directions P (``Group.product_directions``),
        restricted_c = kept + mean_(a,b)(l_c - kept) (the bias correction), excluded_c = l_c - kept. With 2D
        terms: restricted keeps ``irreps``' 2D terms and the constant, excluded removes them.
        """
        on_grid = self.grid(logits).reshape(len(self.rows), -1)
        if self.products is None:
            grid = on_grid.reshape(self.order, self.order, -1)
            return (self.group.mask_2d(grid, irreps, True).reshape(on_grid.shape),
                    self.group.mask_2d(grid, irreps, False).reshape(on_grid.shape))
        directions = self.group.product_directions(self.products, irreps).to(on_grid.dtype)
        kept = directions.T @ (directions @ on_grid)
        return kept + (on_grid - kept).mean(0, keepdim=True), on_grid - kept

    def masked_embedding(self, W_E: torch.Tensor, irreps: list[int], keep: bool) -> torch.Tensor:
        """W_E with its element rows stripped of (or kept to, with the trivial irrep) ``irreps``' basis rows."""
        patched = W_E.clone()
        patched[self.tokens] = self.group.mask_rows(W_E[self.tokens], irreps, keep)
        return patched
