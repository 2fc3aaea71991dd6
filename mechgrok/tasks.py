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
from typing import Callable

import torch

from .errors import MechgrokError


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


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
    def d_vocab(self) -> int:
        return self.n_tokens + 1

    @property
    def n_classes(self) -> int:
        """Width of the output: the sum of the heads' classes (d_vocab_out)."""
        return sum(self.heads)

    @property
    def is_full_grid(self) -> bool:
        """True when the inputs are every pair (a, b) in Z_p x Z_p, in row-major order, with one head of p classes."""
        return self.heads == (self.p,) and self.n_tokens == self.p and self.inputs.shape[0] == self.p**2

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


def _mod_table(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
    def labels(a: torch.Tensor, b: torch.Tensor, p: int, seed: int) -> torch.Tensor:
        return fn(a, b) % p

    return labels


def _div_labels(a: torch.Tensor, b: torch.Tensor, p: int, seed: int) -> torch.Tensor:
    inverse = torch.tensor([pow(int(x), -1, p) if x else 0 for x in range(p)])
    return (a * inverse[b]) % p


def _rand_labels(a: torch.Tensor, b: torch.Tensor, p: int, seed: int) -> torch.Tensor:
    # Its own generator, offset from the split's, so the table never correlates with the split.
    table = torch.randint(p, (p, p), generator=torch.Generator().manual_seed(seed + 7919))
    return table[a, b]


@dataclass(frozen=True)
class _ZpTask:
    labels: Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]
    needs_prime: bool = False
    b_nonzero: bool = False


ZP_TASKS: dict[str, _ZpTask] = {
    "add": _ZpTask(_mod_table(lambda a, b: a + b)),
    "sub": _ZpTask(_mod_table(lambda a, b: a - b)),
    "div": _ZpTask(_div_labels, needs_prime=True, b_nonzero=True),
    "mul": _ZpTask(_mod_table(lambda a, b: a * b), needs_prime=True, b_nonzero=True),
    "x2xyy2": _ZpTask(_mod_table(lambda a, b: a * a + a * b + b * b)),
    "x3xy2y": _ZpTask(_mod_table(lambda a, b: a**3 + a * b * b + b)),
    "rand": _ZpTask(_rand_labels),
}
TASKS = (*ZP_TASKS, "perm", "miiii")
PERM_DEGREES = range(3, 7)


MAX_P = 3_000_000_000  # p^2 stays below 2^63; memory is checked separately, from the config
MAX_MIIII_P = 2_000


def n_examples(task: str, p: int) -> int:
    """Number of valid input pairs of ``task`` (without building them)."""
    if task == "perm":
        return math.factorial(p) ** 2
    return p * (p - 1) if task in ZP_TASKS and ZP_TASKS[task].b_nonzero else p * p


def task_sizes(task: str, p: int) -> tuple[int, tuple[int, ...]]:
    """(n_tokens, heads) of ``task``: the elements a and b range over, and the classes of each output head."""
    if task == "perm":
        n = math.factorial(p)
        return n, (n,)
    return p, tuple(primes_below(p)) if task == "miiii" else (p,)


def primes_below(p: int) -> list[int]:
    """The miiii moduli: every prime q < p (29 of them for p = 113)."""
    return [q for q in range(2, p) if is_prime(q)]


def check_task(task: str, p: int) -> None:
    """Raise MechgrokError when ``task`` is unknown or cannot use ``p``."""
    if task not in TASKS:
        raise MechgrokError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if task == "perm":
        if p not in PERM_DEGREES:
            raise MechgrokError(
                f"task 'perm' reads p as the degree k of S_k and needs 3 <= k <= 6, got {p}"
            )
        return
    if p < 3:
        raise MechgrokError(f"p must be at least 3, got {p}")
    if task == "miiii" and p > MAX_MIIII_P:
        raise MechgrokError(f"task 'miiii' needs p <= {MAX_MIIII_P} (one head per prime below p), got {p}")
    if p > MAX_P:
        raise MechgrokError(f"p must be at most {MAX_P} (p^2 pairs must fit an int64 index and memory), got {p}")
    if task in ZP_TASKS and ZP_TASKS[task].needs_prime and not is_prime(p):
        raise MechgrokError(f"task {task!r} needs a prime p (b must be invertible), got {p}")


def permutations(k: int) -> torch.Tensor:
    """[k!, k] all permutations of range(k) in lexicographic order."""
    return torch.tensor(list(itertools.permutations(range(k))))


def _perm_table(k: int) -> torch.Tensor:
    """[k!, k!] table[a, b] = number of the permutation i -> a[b[i]]."""
    perms = permutations(k)
    composed = perms[:, perms]  # [a, b, i] = perms[a, perms[b, i]]
    # Base-k codes of permutations are increasing in lexicographic order: searchsorted numbers them.
    place = k ** torch.arange(k - 1, -1, -1)
    return torch.searchsorted((perms * place).sum(-1), (composed * place).sum(-1))


def all_pairs(task: str, p: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int, tuple[int, ...]]:
    """(inputs [N, 3], labels [N] or [N, T], n_tokens, heads) for every valid pair, row-major in (a, b)."""
    check_task(task, p)
    n, heads = task_sizes(task, p)
    a, b = (g.reshape(-1) for g in torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"))
    if task == "perm":
        labels = _perm_table(p)[a, b]
    elif task == "miiii":
        labels = torch.stack([(a + p * b) % q for q in heads], 1)
    else:
        spec = ZP_TASKS[task]
        if spec.b_nonzero:
            a, b = a[b != 0], b[b != 0]
        labels = spec.labels(a, b, p, seed)
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


def negation_map(task: str, p: int) -> torch.Tensor:
    """[n] the element that 'negation' maps each element to: -x mod p, or the inverse permutation for perm."""
    if task != "perm":
        return (-torch.arange(p)) % p
    perms = permutations(p)
    place = p ** torch.arange(p - 1, -1, -1)
    inverse = torch.argsort(perms, dim=1)  # inverse[i][perm[i][j]] = j
    return torch.searchsorted((perms * place).sum(-1), (inverse * place).sum(-1))


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
