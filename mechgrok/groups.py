"""Finite groups behind the tasks, with real orthogonal irreducible representations.

- ``CyclicGroup(n)``: Z_n, x o y = x + y mod n. Real irreps: the trivial one, a 2D rotation by
  2 pi k x / n for each k = 1..(n-1)//2, and the sign x -> (-1)^x for even n.
- ``MultiplicativeGroup(p)``: Z_p^* (p prime) in discrete-log coordinates: with g the smallest
  primitive root, a = g^i, and a * b = g^(i + j), so it is Z_(p-1) on the exponents (division:
  i - j). ``log`` and ``exp`` map between the two.
- ``SymmetricGroup(k)``: S_k (k <= 6), its k! permutations numbered in lexicographic order as in
  ``mechgrok.tasks`` (x o y is the permutation i -> x[y[i]]). Irreps: one per partition of k, in
  Young's orthogonal form (the basis indexed by standard Young tableaux; an adjacent transposition
  (i, i+1) acts by 1/r on a tableau and sqrt(1 - 1/r^2) towards the one with i and i+1 swapped,
  r the axial distance), the form Chughtai, Chan & Nanda (2023) analyse networks with.

``fourier_basis`` gives an orthonormal basis of functions on the group, rows grouped by irrep
(for Z_n, the Fourier basis of ``mechgrok.analysis.fourier`` itself):
for an absolutely irreducible rho of dimension d (every irrep of S_k, and Z_n's 1D ones) the d^2
functions sqrt(d/|G|) rho_ij(g) (Peter-Weyl); for Z_n's 2D rotations, whose entries span only
cos and sin, those two. ``irrep_fractions`` is the share of a function's variance in each irrep.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import torch

from .errors import MechgrokError
from .tasks import is_prime


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
    def fourier_basis(self) -> tuple[torch.Tensor, list[int]]:
        """(B [|G|, |G|] orthonormal rows, the irrep index of each row): functions on G in the irreps' basis."""
        rows, owner = [], []
        for index, irrep in enumerate(self.irreps):
            scale = math.sqrt(irrep.dim / self.order)
            if irrep.basis_rows == irrep.dim**2:
                entries = irrep.matrices.reshape(self.order, -1).T * scale
            else:  # a rotation [[cos, -sin], [sin, cos]]: its entries span cos and sin only
                entries = torch.stack([irrep.matrices[:, 0, 0], irrep.matrices[:, 1, 0]]) * math.sqrt(2 / self.order)
            rows.append(entries)
            owner += [index] * len(entries)
        return torch.cat(rows).double(), owner

    def irrep_fractions(self, values: torch.Tensor) -> torch.Tensor:
        """[n_irreps, ...] share of the variance (over the group, first axis of ``values``) in each irrep.

        The trivial irrep (index 0, the mean) gets 0; the others sum to 1 (Parseval: B is orthonormal).
        """
        basis, owner = self.fourier_basis
        coefficients = basis @ values.double().reshape(self.order, -1)
        energy = torch.zeros(len(self.irreps), coefficients.shape[1], dtype=torch.float64)
        energy.index_add_(0, torch.tensor(owner), coefficients.pow(2))
        energy[0] = 0
        return (energy / energy.sum(0).clamp_min(1e-300)).reshape(len(self.irreps), *values.shape[1:])


class CyclicGroup(Group):
    def __init__(self, n: int):
        self.n, self.name = n, f"Z_{n}"

    @cached_property
    def table(self) -> torch.Tensor:
        x = torch.arange(self.n)
        return (x[:, None] + x[None, :]) % self.n

    @cached_property
    def fourier_basis(self) -> tuple[torch.Tensor, list[int]]:
        """Z_n's basis is the one Fourier basis of ``mechgrok.analysis.fourier`` (same rows, same order):
        irrep index k is frequency k, so key irreps of Z_p are the paper's key frequencies."""
        from .analysis.fourier import fourier_basis  # here, not at the top: the analysis package imports groups

        basis, _, freqs = fourier_basis(self.n)
        return basis, freqs.tolist()

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


def group_of_task(task: str, p: int) -> Group | None:
    """The group behind a task: Z_p for add/sub, Z_p^* (discrete logs) for div and mul, S_k for perm; None otherwise."""
    if task in ("add", "sub"):
        return CyclicGroup(p)
    if task in ("div", "mul"):
        return MultiplicativeGroup(p)
    if task == "perm":
        return SymmetricGroup(p)
    return None
