"""Algorithmic tasks: every valid input pair, its label, and the seeded train/test split.

Every task is a binary operation ``a o b`` on ``n`` elements. Its input sequence is
``[a, b, =]`` where ``=`` is the token ``n`` (so the vocabulary has ``n + 1`` tokens and the
model predicts one of ``n`` classes at the last position).

Z_p tasks (``n = p``):

- ``add``     a + b mod p
- ``sub``     a - b mod p
- ``div``     a * b^-1 mod p, b != 0 (p must be prime so every b != 0 has an inverse)
- ``mul``     a * b mod p over the same pairs as div (b != 0, p prime): Z_p^* in disguise
- ``x2xyy2``  a^2 + ab + b^2 mod p
- ``x3xy2y``  a^3 + a*b^2 + b mod p (the "hard" task of the grokking forum thread)
- ``rand``    a fixed uniformly random table drawn from the run's seed: a memorization-only
  control with no structure to generalise.

``perm`` is composition in the symmetric group S_k, with ``p`` read as the degree ``k``
(3 <= k <= 6). The ``n = k!`` permutations of ``(0, ..., k-1)`` are numbered in
lexicographic order (``itertools.permutations``), and the label of ``[a, b, =]`` is the
number of ``a o b`` with ``(a o b)(i) = a[b[i]]`` (apply b first, then a).

``miiii`` (Syrkis & Søgaard, "Mechanistic interpretability of irreducible integer
identifiers") is a multi-task problem: ``[x0, x1, =]`` are the base-p digits of n = x0 + p*x1 and the model has one output
head per prime q < p, predicting n mod q. Its labels are [N, T], one column per head.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch

from .errors import MechgrokError
from .groups import CyclicGroup, MultiplicativeGroup, SymmetricGroup, is_prime
from .lens import Lens


@dataclass(frozen=True)
class Dataset:
    """All valid inputs of a task and their labels, plus the split.

    inputs: [N, 3] int64 tokens ``[a, b, =]`` with ``=`` the token ``n_tokens``; labels: [N]
    int64 (one head) or [N, T] (one column per head, miiii); heads: the number of classes of
    each head; train_idx / test_idx: indices into ``inputs`` (disjoint, covering all N).
    """

    task: str
    p: int
    n_tokens: int
    heads: tuple[int, ...]
    inputs: torch.Tensor
    labels: torch.Tensor
    train_idx: torch.Tensor
    test_idx: torch.Tensor

    @property
    def spec(self) -> Task:
        return TASKS[self.task]

    @cached_property
    def lens(self) -> Lens | None:
        """How the circuit measures read this dataset (``Task.lens``); None for a task with no structure to read."""
        return self.spec.lens(self)

    @property
    def d_vocab(self) -> int:
        return self.n_tokens + 1

    @property
    def n_classes(self) -> int:
        """Width of the output: the sum of the heads' classes (d_vocab_out)."""
        return sum(self.heads)

    def label_table(self, train_only: bool = False) -> torch.Tensor:
        """[n, n] label of (a, b), -1 where the pair is not valid (b = 0 for div) or, with ``train_only``, held out."""
        rows = self.train_idx if train_only else slice(None)
        table = torch.full((self.n_tokens, self.n_tokens), -1, dtype=torch.long)
        table[self.inputs[rows, 0], self.inputs[rows, 1]] = self.labels[rows]
        return table

    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[self.train_idx], self.labels[self.train_idx]

    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[self.test_idx], self.labels[self.test_idx]


MAX_P = 3_000_000_000  # p^2 stays below 2^63; memory is checked separately, from the config
MAX_MIIII_P = 2_000
PERM_DEGREES = range(3, 7)


class Task:
    """One task: its sizes, its checks, its labels, its negation (for augmentation) and its lens.

    The base is a binary operation on the p numbers of Z_p, every pair (a, b) an input.
    """

    name: str = ""

    def check(self, p: int) -> None:
        """Raise MechgrokError when this task cannot use ``p``."""
        if p < 3:
            raise MechgrokError(f"p must be at least 3, got {p}")
        if p > MAX_P:
            raise MechgrokError(f"p must be at most {MAX_P} (p^2 pairs must fit an int64 index and memory), got {p}")

    def sizes(self, p: int) -> tuple[int, tuple[int, ...]]:
        """(n_tokens, heads): the elements a and b range over, and the classes of each output head."""
        return p, (p,)

    def n_examples(self, p: int) -> int:
        """Number of valid input pairs (without building them)."""
        n, _ = self.sizes(p)
        return n * n

    def pairs(self, p: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a [N], b [N], labels [N] or [N, T]) of every valid pair, row-major in (a, b)."""
        raise NotImplementedError

    def negation(self, p: int) -> torch.Tensor:
        """[n] the element 'negation' maps each element to (the augmentation study's a -> -a): -x mod p."""
        return (-torch.arange(p)) % p

    def lens(self, data: Dataset) -> Lens | None:
        """How the circuit measures read this task's dataset; None when there is nothing to read it through."""
        return None


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(g.reshape(-1) for g in torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"))


class ZpTask(Task):
    """``label(a, b, p, seed)`` on Z_p. ``group_law``: the label is the group product of a and b (add, sub), so
    logits are read through it; otherwise through the 2D input terms of each frequency."""

    def __init__(self, name: str, label: Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor],
                 group_law: bool = False):
        self.name, self.label, self.group_law = name, label, group_law

    def pairs(self, p: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, b = _grid(p)
        return a, b, self.label(a, b, p, seed)

    def lens(self, data: Dataset) -> Lens:
        p = data.p
        return Lens.build(CyclicGroup(p), data.inputs, data.labels, data.train_idx, torch.arange(p),
                          by_products=self.group_law, unit="frequency", basis_label="Fourier basis of Z_p")


class UnitsTask(ZpTask):
    """A task on Z_p^* (b != 0, p prime), read in discrete-log coordinates (``MultiplicativeGroup``)."""

    def check(self, p: int) -> None:
        super().check(p)
        if not is_prime(p):
            raise MechgrokError(f"task {self.name!r} needs a prime p (b must be invertible), got {p}")

    def n_examples(self, p: int) -> int:
        return p * (p - 1)

    def pairs(self, p: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, b = _grid(p)
        a, b = a[b != 0], b[b != 0]
        return a, b, self.label(a, b, p, seed)

    def lens(self, data: Dataset) -> Lens:
        group = MultiplicativeGroup(data.p)
        return Lens.build(group, data.inputs, data.labels, data.train_idx, group.exp, by_products=True,
                          unit="irrep", basis_label=f"irreps of {group.name} (discrete logs, generator "
                                                    f"{group.generator})", axis=("log_g a", "log_g b"))


class PermTask(Task):
    """Composition in S_k, ``p`` read as the degree k (3..6); the label of [a, b, =] is the number of a o b."""

    name = "perm"

    def check(self, p: int) -> None:
        if p not in PERM_DEGREES:
            raise MechgrokError(f"task 'perm' reads p as the degree k of S_k and needs 3 <= k <= 6, got {p}")

    def sizes(self, p: int) -> tuple[int, tuple[int, ...]]:
        n = math.factorial(p)
        return n, (n,)

    def pairs(self, p: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, b = _grid(math.factorial(p))
        return a, b, _perm_table(p)[a, b]

    def negation(self, p: int) -> torch.Tensor:
        """The inverse of each permutation."""
        perms = permutations(p)
        inverse = torch.argsort(perms, dim=1)  # inverse[i][perm[i][j]] = j
        return _number(perms, inverse)

    def lens(self, data: Dataset) -> Lens:
        group = SymmetricGroup(data.p)
        return Lens.build(group, data.inputs, data.labels, data.train_idx, torch.arange(group.order),
                          by_products=True, unit="irrep", basis_label=f"irreps of {group.name}")


class MiiiiTask(Task):
    """[x0, x1, =], the base-p digits of n = x0 + p*x1; one head per prime q < p predicting n mod q."""

    name = "miiii"

    def check(self, p: int) -> None:
        super().check(p)
        if p > MAX_MIIII_P:
            raise MechgrokError(f"task 'miiii' needs p <= {MAX_MIIII_P} (one head per prime below p), got {p}")

    def sizes(self, p: int) -> tuple[int, tuple[int, ...]]:
        return p, tuple(primes_below(p))

    def pairs(self, p: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, b = _grid(p)
        return a, b, torch.stack([(a + p * b) % q for q in primes_below(p)], 1)


def _div_labels(a: torch.Tensor, b: torch.Tensor, p: int, seed: int) -> torch.Tensor:
    inverse = torch.tensor([pow(int(x), -1, p) if x else 0 for x in range(p)])
    return (a * inverse[b]) % p


def _rand_labels(a: torch.Tensor, b: torch.Tensor, p: int, seed: int) -> torch.Tensor:
    # Its own generator, offset from the split's, so the table never correlates with the split.
    table = torch.randint(p, (p, p), generator=torch.Generator().manual_seed(seed + 7919))
    return table[a, b]


TASKS: dict[str, Task] = {task.name: task for task in (
    ZpTask("add", lambda a, b, p, seed: (a + b) % p, group_law=True),
    ZpTask("sub", lambda a, b, p, seed: (a - b) % p, group_law=True),
    UnitsTask("div", _div_labels),
    UnitsTask("mul", lambda a, b, p, seed: (a * b) % p),
    ZpTask("x2xyy2", lambda a, b, p, seed: (a * a + a * b + b * b) % p),
    ZpTask("x3xy2y", lambda a, b, p, seed: (a**3 + a * b * b + b) % p),
    ZpTask("rand", _rand_labels),
    PermTask(),
    MiiiiTask(),
)}


def get_task(task: str) -> Task:
    """The registered task named ``task``, or one line naming the choices."""
    if task not in TASKS:
        raise MechgrokError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return TASKS[task]


def check_task(task: str, p: int) -> None:
    """Raise MechgrokError when ``task`` is unknown or cannot use ``p``."""
    get_task(task).check(p)


def primes_below(p: int) -> list[int]:
    """The miiii moduli: every prime q < p (29 of them for p = 113)."""
    return [q for q in range(2, p) if is_prime(q)]


def permutations(k: int) -> torch.Tensor:
    """[k!, k] all permutations of range(k) in lexicographic order."""
    return torch.tensor(list(itertools.permutations(range(k))))


def _number(perms: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The lexicographic number of each permutation in ``images`` [..., k] (``perms`` = ``permutations(k)``)."""
    k = perms.shape[1]
    # Base-k codes of permutations are increasing in lexicographic order: searchsorted numbers them.
    place = k ** torch.arange(k - 1, -1, -1)
    return torch.searchsorted((perms * place).sum(-1), (images * place).sum(-1))


def _perm_table(k: int) -> torch.Tensor:
    """[k!, k!] table[a, b] = number of the permutation i -> a[b[i]]."""
    perms = permutations(k)
    return _number(perms, perms[:, perms])  # [a, b, i] = perms[a, perms[b, i]]


def all_pairs(task: str, p: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int, tuple[int, ...]]:
    """(inputs [N, 3], labels [N] or [N, T], n_tokens, heads) for every valid pair, row-major in (a, b)."""
    spec = get_task(task)
    spec.check(p)
    n, heads = spec.sizes(p)
    a, b, labels = spec.pairs(p, seed)
    inputs = torch.stack([a, b, torch.full_like(a, n)], dim=1)
    return inputs, labels, n, heads


def split_indices(n: int, frac_train: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded shuffle of range(n); the first floor(frac_train * n) are train (as in Nanda et al.)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_train = int(frac_train * n)
    if n_train == 0 or n_train == n:
        raise MechgrokError(
            f"frac_train={frac_train} leaves an empty train or test set for {n} examples"
        )
    return order[:n_train].sort().values, order[n_train:].sort().values


def make_dataset(task: str, p: int, frac_train: float, seed: int) -> Dataset:
    """Every input pair of ``task`` with its label, split into train/test by a permutation seeded by ``seed``."""
    inputs, labels, n, heads = all_pairs(task, p, seed)
    train_idx, test_idx = split_indices(len(inputs), frac_train, seed)
    return Dataset(task, p, n, heads, inputs, labels, train_idx, test_idx)


def augment(inputs: torch.Tensor, labels: torch.Tensor, table: torch.Tensor, negation: torch.Tensor,
            p_reverse: float, p_negate: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Operand reversal and negation (the augmentation study), labels recomputed.

    Each example independently: with probability ``p_reverse`` (a, b) -> (b, a); then with
    probability ``p_negate`` each a -> -a, and independently b -> -b (the inverse for perm).
    The label is looked up again in the task's ``table``, so it stays correct; an example whose
    new pair is not in the table (-1: b = 0 for div, or a held-out pair in a table built with
    ``train_only``) is left as it was. With the full table a new pair may belong to the held-out
    split, so the model trains on validation pairs: the paper's setting, and part of why it helps.
    """
    a, b = inputs[:, 0], inputs[:, 1]
    draws = torch.rand(3, len(a), generator=generator).to(inputs.device)
    swap = draws[0] < p_reverse
    new_a, new_b = torch.where(swap, b, a), torch.where(swap, a, b)
    negation = negation.to(inputs.device)
    new_a = torch.where(draws[1] < p_negate, negation[new_a], new_a)
    new_b = torch.where(draws[2] < p_negate, negation[new_b], new_b)
    new_labels = table.to(inputs.device)[new_a, new_b]
    valid = new_labels >= 0
    augmented = torch.stack([torch.where(valid, new_a, a), torch.where(valid, new_b, b), inputs[:, 2]], 1)
    return augmented, torch.where(valid, new_labels, labels)
