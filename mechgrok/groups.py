"""Finite groups behind the tasks, with real orthogonal irreducible representations and their bases.

- ``CyclicGroup(n)``: Z_n, x o y = x + y mod n. Real irreps: the trivial one, a 2D rotation by
  2 pi k x / n for each k = 1..(n-1)//2, and the sign x -> (-1)^x for even n. Its basis is the
  Fourier basis of Nanda et al. (``fourier_basis``): irrep index k is frequency k.
- ``MultiplicativeGroup(p)``: Z_p^* (p prime) in discrete-log coordinates: with g the smallest
  primitive root, a = g^i, and a * b = g^(i + j), so it is Z_(p-1) on the exponents (division:
  i - j). ``log`` and ``exp`` map between the two.
- ``SymmetricGroup(k)``: S_k (k <= 6), its k! permutations numbered in lexicographic order as in
  ``mechgrok.tasks`` (x o y is the permutation i -> x[y[i]]). Irreps: one per partition of k, in
  Young's orthogonal form (the basis indexed by standard Young tableaux; an adjacent transposition
  (i, i+1) acts by 1/r on a tableau and sqrt(1 - 1/r^2) towards the one with i and i+1 swapped,
  r the axial distance), the form Chughtai, Chan & Nanda (2023) analyse networks with.

Every group owns an orthonormal basis B [|G|, |G|] of functions on it, rows grouped by irrep
(``basis``, ``owner``): for an absolutely irreducible rho of dimension d (every irrep of S_k, and
Z_n's 1D ones) the d^2 functions sqrt(d/|G|) rho_ij(g) (Peter-Weyl); for Z_n's 2D rotations, whose
entries span only cos and sin, those two. The trivial irrep is always index 0 and owns row 0 alone.
On that basis the group does the arithmetic every measure shares, once:

- ``transform_2d`` / ``inverse_2d``: B X B^T and B^T C B over the first two axes (functions of (a, b));
- ``term_owner``: the irrep owning each 2D term (i, j): rho owns (rho, trivial), (trivial, rho) and
  (rho, rho) (for Z_p: frequency k's linear terms in a and in b and its products); cross terms
  (rho, sigma), rho != sigma, belong to no irrep;
- ``term_fractions``: each irrep's share of a function's variance over (a, b);
- ``spectrum``, ``row_norms``, ``mask_rows``: the same along one axis (the embedding's rows);
- ``mask_2d``: remove, or keep only, some irreps' 2D terms;
- ``product_directions``: the basis functions of some irreps evaluated at the products a o b.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import torch

from .errors import MechgrokError


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


@lru_cache(maxsize=8)
def fourier_basis(p: int) -> tuple[torch.Tensor, tuple[str, ...], torch.Tensor]:
    """(B [p, p] float64 orthonormal, row names, frequency of each row [p] with 0 for the constant).

    Rows, in the paper's code's order: the constant 1/sqrt(p), then for k = 1 .. (p-1)//2 the pair
    cos(w_k x), sin(w_k x) with w_k = 2 pi k / p, each scaled to unit norm; for even p one more row,
    cos(pi x) (frequency p/2, which has no sine) **(ours: the paper only uses odd p)**.
    Coefficients are ``B @ f`` and ``f = B.T @ coefficients``.
    """
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


@dataclass(frozen=True)
class Irrep:
    """A real orthogonal irreducible representation: ``matrices`` [|G|, d, d], rho(x) for each element x."""

    name: str
    matrices: torch.Tensor
    basis_rows: int  # functions it contributes to the basis: d^2, or 2 for a rotation of Z_n

    @property
    def dim(self) -> int:
        return self.matrices.shape[-1]

    @property
    def character(self) -> torch.Tensor:
        """[|G|] chi(x) = trace rho(x)."""
        return self.matrices.diagonal(dim1=-2, dim2=-1).sum(-1)


class Group:
    """A finite group on elements 0..order-1 with ``table`` [order, order] of products and its ``irreps``."""

    name: str = ""

    @cached_property
    def table(self) -> torch.Tensor:
        raise NotImplementedError

    @cached_property
    def irreps(self) -> list[Irrep]:
        raise NotImplementedError

    @property
    def order(self) -> int:
        return self.table.shape[0]

    @cached_property
    def irrep_names(self) -> list[str]:
        return [irrep.name for irrep in self.irreps]

    @property
    def n_irreps(self) -> int:
        return len(self.irrep_names)

    @cached_property
    def _basis_and_owner(self) -> tuple[torch.Tensor, torch.Tensor]:
        rows, owner = [], []
        for index, irrep in enumerate(self.irreps):
            scale = math.sqrt(irrep.dim / self.order)
            if irrep.basis_rows == irrep.dim**2:
                entries = irrep.matrices.reshape(self.order, -1).T * scale
            else:  # a rotation [[cos, -sin], [sin, cos]]: its entries span cos and sin only
                entries = torch.stack([irrep.matrices[:, 0, 0], irrep.matrices[:, 1, 0]]) * math.sqrt(2 / self.order)
            rows.append(entries)
            owner += [index] * len(entries)
        return torch.cat(rows).double(), torch.tensor(owner)

    @property
    def basis(self) -> torch.Tensor:
        """[|G|, |G|] float64 orthonormal rows: functions on G in the irreps' basis (rows grouped by irrep)."""
        return self._basis_and_owner[0]

    @property
    def owner(self) -> torch.Tensor:
        """[|G|] int64: the irrep index of each basis row (0, the trivial irrep, owns row 0 alone)."""
        return self._basis_and_owner[1]

    @cached_property
    def basis_names(self) -> list[str]:
        """A name for each basis row: its irrep's name and the row's number within the irrep."""
        names, seen = [], {}
        for index in self.owner.tolist():
            seen[index] = seen.get(index, 0) + 1
            names.append(f"{self.irrep_names[index]}:{seen[index]}")
        return names

    # -- one axis: functions on G (rows of a matrix indexed by elements) ---------------------------
    def coefficients(self, values: torch.Tensor) -> torch.Tensor:
        """[|G|, m] B @ values, ``values`` [|G|, ...] flattened past the first axis, in float64."""
        return self.basis @ values.double().reshape(self.order, -1)

    def row_norms(self, values: torch.Tensor) -> torch.Tensor:
        """[|G|] ||(B @ values)_i|| for each basis row i: Gini's input."""
        return self.coefficients(values).norm(dim=1)

    def spectrum(self, values: torch.Tensor) -> torch.Tensor:
        """[n_irreps] sqrt(sum over rho's rows i of ||(B @ values)_i||^2): the norm of ``values`` in each irrep."""
        energy = self.coefficients(values).pow(2).sum(-1)
        return torch.zeros(self.n_irreps, dtype=torch.float64).index_add_(0, self.owner, energy).sqrt()

    def irrep_fractions(self, values: torch.Tensor) -> torch.Tensor:
        """[n_irreps, ...] share of the variance (over the group, first axis of ``values``) in each irrep.

        The trivial irrep (index 0, the mean) gets 0; the others sum to 1 (Parseval: B is orthonormal).
        """
        coefficients = self.coefficients(values)
        energy = torch.zeros(self.n_irreps, coefficients.shape[1], dtype=torch.float64)
        energy.index_add_(0, self.owner, coefficients.pow(2))
        energy[0] = 0
        return (energy / energy.sum(0).clamp_min(1e-300)).reshape(self.n_irreps, *values.shape[1:])

    def mask_rows(self, values: torch.Tensor, irreps: list[int], keep: bool) -> torch.Tensor:
        """B^T (m * B values) along the first axis, m removing ``irreps``' rows (or keeping only them and the
        trivial row), in ``values``' dtype."""
        selected = torch.isin(self.owner, torch.tensor(irreps, dtype=self.owner.dtype))
        kept = (selected | (self.owner == 0)) if keep else ~selected
        masked = self.basis.T @ (self.coefficients(values) * kept[:, None].double())
        return masked.reshape(values.shape).to(values.dtype)

    # -- two axes: functions of (a, b) --------------------------------------------------------------
    def _two_sided(self, matrix: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """M @ X @ M.T over the first two axes of ``grid`` [n, n, ...], as two matrix products in grid's dtype."""
        n = grid.shape[0]
        m = matrix.to(grid.dtype)
        over_a = (m @ grid.reshape(n, -1)).reshape(n, n, -1)  # [i, b, rest]
        return torch.matmul(m, over_a).reshape(grid.shape)  # [i, j, rest]: over b, batched over i

    def transform_2d(self, grid: torch.Tensor) -> torch.Tensor:
        """B @ X @ B.T over the first two axes of ``grid`` [|G|, |G|, ...] (the inputs a and b)."""
        return self._two_sided(self.basis, grid)

    def inverse_2d(self, coefficients: torch.Tensor) -> torch.Tensor:
        """B.T @ C @ B over the first two axes: the inverse of ``transform_2d``."""
        return self._two_sided(self.basis.T, coefficients)

    @cached_property
    def term_owner(self) -> torch.Tensor:
        """[|G|, |G|] int64: the irrep owning 2D term (i, j) (row i in a, row j in b), -1 for a cross term.

        rho owns (rho, trivial), (trivial, rho) and (rho, rho); the constant term (0, 0) is the trivial
        irrep's (0); (rho, sigma) with rho != sigma, both non-trivial, is no irrep's.
        """
        oa, ob = self.owner[:, None], self.owner[None, :]
        return torch.where((ob == 0) | (oa == ob), oa, torch.where(oa == 0, ob, -1))

    def term_fractions(self, grid: torch.Tensor) -> torch.Tensor:
        """[n_irreps, m] share of each column's variance over (a, b) owned by each irrep (``term_owner``).

        ``grid`` is [|G|, |G|, m] (e.g. neuron activations at every input pair). The variance is the
        energy of every 2D coefficient but the constant one (Parseval), so row 0 is 0 and the rest sum
        to at most 1 (cross terms are no irrep's). In float32, as the paper's measures: these are
        shares, not losses, and float32 halves the time of the largest product of the analysis.
        """
        n, owner = grid.shape[0], self.owner
        energy = self.transform_2d(grid.float().reshape(n, n, -1)).pow(2)
        shares = torch.zeros(self.n_irreps, energy.shape[-1])
        shares.index_add_(0, owner[1:], energy[1:, 0])  # linear in a
        shares.index_add_(0, owner[1:], energy[0, 1:])  # linear in b
        rows, cols = torch.nonzero((owner[:, None] == owner[None, :]) & (owner[:, None] > 0), as_tuple=True)
        shares.index_add_(0, owner[rows], energy[rows, cols])  # products within one irrep
        total = energy.sum((0, 1)) - energy[0, 0]
        return (shares / total.clamp_min(1e-30)).double()

    def mask_2d(self, grid: torch.Tensor, irreps: list[int], keep: bool) -> torch.Tensor:
        """``grid`` [|G|, |G|, ...] with ``irreps``' 2D terms removed (``keep=False``) or alone kept with the
        constant term (``keep=True``), in grid's dtype. A cross term between two of ``irreps`` is neither's:
        removing them leaves it, keeping only them drops it."""
        selected = torch.isin(self.term_owner, torch.tensor(irreps, dtype=torch.int64))
        kept = (selected | (self.term_owner == 0)) if keep else ~selected
        coefficients = self.transform_2d(grid)
        return self.inverse_2d(coefficients * kept.reshape(*kept.shape, *([1] * (grid.dim() - 2))).to(grid.dtype))

    def product_directions(self, products: torch.Tensor, irreps: list[int]) -> torch.Tensor:
        """[m, N] orthonormal directions over N input pairs: the basis rows of ``irreps`` at x = ``products`` [N].

        For rho these span the entries rho(a o b)_ij; for Z_p, cos/sin(w_k (a + b)), the paper's logit
        directions. Over the full grid G x G every element is the product of |G| pairs, so rows of an
        orthonormal B stay orthogonal; each is scaled to unit norm.
        """
        rows = self.basis[torch.isin(self.owner, torch.tensor(irreps, dtype=torch.int64))][:, products]
        return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-300)


class CyclicGroup(Group):
    def __init__(self, n: int):
        self.n, self.name = n, f"Z_{n}"

    @cached_property
    def table(self) -> torch.Tensor:
        x = torch.arange(self.n)
        return (x[:, None] + x[None, :]) % self.n

    @cached_property
    def _basis_and_owner(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Z_n's basis is the Fourier basis (``fourier_basis``, the same rows in the same order): irrep index k
        is frequency k, so key irreps of Z_p are the paper's key frequencies."""
        basis, _, freqs = fourier_basis(self.n)
        return basis, freqs

    @cached_property
    def basis_names(self) -> list[str]:
        return list(fourier_basis(self.n)[1])

    @cached_property
    def irrep_names(self) -> list[str]:
        return ["trivial"] + [f"k={k}" for k in range(1, self.n // 2 + 1)]

    @cached_property
    def irreps(self) -> list[Irrep]:
        x = torch.arange(self.n, dtype=torch.float64)
        irreps = [Irrep("trivial", torch.ones(self.n, 1, 1, dtype=torch.float64), 1)]
        for k in range(1, (self.n - 1) // 2 + 1):
            angle = 2 * math.pi * k * x / self.n
            c, s = torch.cos(angle), torch.sin(angle)
            irreps.append(Irrep(f"k={k}", torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2), 2))
        if self.n % 2 == 0:
            irreps.append(Irrep(f"k={self.n // 2}", torch.cos(math.pi * x).reshape(-1, 1, 1), 1))
        return irreps


def primitive_root(p: int) -> int:
    """The smallest generator g of Z_p^* (p prime)."""
    factors = {q for q in range(2, p) if (p - 1) % q == 0 and is_prime(q)}
    return next(g for g in range(2, p) if all(pow(g, (p - 1) // q, p) != 1 for q in factors)) if p > 2 else 1


class MultiplicativeGroup(CyclicGroup):
    """Z_p^* as Z_(p-1) on discrete logs: element i is g^i; ``log[a]`` = i for a = g^i (a != 0)."""

    def __init__(self, p: int):
        if not is_prime(p):
            raise MechgrokError(f"Z_p^* needs a prime p, got {p}")
        super().__init__(p - 1)
        self.p, self.generator, self.name = p, primitive_root(p), f"Z_{p}^*"

    @cached_property
    def exp(self) -> torch.Tensor:
        """[p-1] g^i mod p for i = 0..p-2."""
        return torch.tensor([pow(self.generator, i, self.p) for i in range(self.p - 1)])

    @cached_property
    def log(self) -> torch.Tensor:
        """[p] the discrete log of a (entry 0, which has none, is -1)."""
        table = torch.full((self.p,), -1, dtype=torch.long)
        table[self.exp] = torch.arange(self.p - 1)
        return table


def partitions(n: int, largest: int | None = None) -> list[tuple[int, ...]]:
    """The partitions of n, rows in decreasing order, largest first."""
    largest = n if largest is None else largest
    if n == 0:
        return [()]
    return [(first, *rest) for first in range(min(n, largest), 0, -1) for rest in partitions(n - first, first)]


def standard_tableaux(shape: tuple[int, ...]) -> list[tuple[tuple[int, int], ...]]:
    """Standard Young tableaux of ``shape`` as the (row, column) of each number 0..n-1."""
    n = sum(shape)
    found = []

    def fill(positions: list[tuple[int, int]], lengths: list[int]) -> None:
        if len(positions) == n:
            found.append(tuple(positions))
            return
        for row, length in enumerate(lengths):
            if length < shape[row] and (row == 0 or lengths[row - 1] > length):
                lengths[row] += 1
                fill(positions + [(row, length)], lengths)
                lengths[row] -= 1

    fill([], [0] * len(shape))
    return found


def young_orthogonal_generators(shape: tuple[int, ...]) -> list[torch.Tensor]:
    """rho(s_i) for the adjacent transpositions s_i = (i, i+1), i = 0..n-2, in Young's orthogonal form."""
    tableaux = standard_tableaux(shape)
    index = {t: j for j, t in enumerate(tableaux)}
    n = sum(shape)
    generators = []
    for i in range(n - 1):
        m = torch.zeros(len(tableaux), len(tableaux), dtype=torch.float64)
        for j, t in enumerate(tableaux):
            (r1, c1), (r2, c2) = t[i], t[i + 1]
            axial = (c2 - r2) - (c1 - r1)  # content of i+1 minus content of i
            m[j, j] = 1 / axial
            if abs(axial) > 1:  # i and i+1 in neither one row nor one column: swapping them gives a tableau
                swapped = list(t)
                swapped[i], swapped[i + 1] = t[i + 1], t[i]
                m[index[tuple(swapped)], j] = math.sqrt(1 - 1 / axial**2)
        generators.append(m)
    return generators


def adjacent_word(perm: tuple[int, ...]) -> list[int]:
    """i_1 .. i_m with perm = s_(i_m) o ... o s_(i_1) (bubble sort of its one-line notation)."""
    h, word = list(perm), []
    changed = True
    while changed:
        changed = False
        for i in range(len(h) - 1):
            if h[i] > h[i + 1]:
                h[i], h[i + 1] = h[i + 1], h[i]
                word.append(i)
                changed = True
    return word


class SymmetricGroup(Group):
    def __init__(self, k: int):
        if not 1 <= k <= 6:
            raise MechgrokError(f"S_k is supported for k = 1..6, got {k}")
        self.k, self.name = k, f"S_{k}"
        self.perms = list(itertools.permutations(range(k)))

    @cached_property
    def table(self) -> torch.Tensor:
        number = {p: i for i, p in enumerate(self.perms)}
        return torch.tensor([[number[tuple(x[y[i]] for i in range(self.k))] for y in self.perms] for x in self.perms])

    @cached_property
    def irreps(self) -> list[Irrep]:
        irreps = []
        for shape in partitions(self.k):  # (k) first: the trivial irrep
            generators = young_orthogonal_generators(shape)
            d = len(standard_tableaux(shape))
            matrices = []
            for perm in self.perms:
                m = torch.eye(d, dtype=torch.float64)
                for i in adjacent_word(perm):  # perm = s_(i_m) o ... o s_(i_1): rho(perm) = rho(s_(i_m)) ... rho(s_(i_1))
                    m = generators[i] @ m
                matrices.append(m)
            irreps.append(Irrep("(" + ",".join(map(str, shape)) + ")", torch.stack(matrices), d * d))
        return irreps
