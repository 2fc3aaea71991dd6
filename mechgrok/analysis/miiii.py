"""The miiii study's per-task embedding fit (Syrkis & Søgaard, "Mechanistic interpretability of
irreducible integer identifiers").

The task itself (``miiii`` in ``mechgrok.tasks``: n = x0 + p*x1, one head per prime q < p,
predicting n mod q) trains with the package's one loop, with the loss of ``mechgrok.metrics``
(sum over heads of CE_q / ln q). What is specific to it is how its embedding is read:
the digit x enters n mod q through x mod q (x0) and p*x mod q (x1), both periodic in x with
period q, whose frequencies 2 pi k/q do not lie on the p-point DFT grid. So W_E's number
rows are fitted by least squares on [1, cos(2 pi k x / q), sin(2 pi k x / q)], k = 1..q//2,
and the fraction of their variance explained (R^2) is compared with what the same fit
explains of Gaussian noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..metrics import MetricsRow, grok_step
from ..runtime import one_thread


def periodic_design(p: int, q: int) -> torch.Tensor:
    """[p, 1 + 2*(q//2)] columns 1, cos(2 pi k x/q), sin(2 pi k x/q) for x = 0..p-1 (sin dropped where it vanishes)."""
    x = torch.arange(p, dtype=torch.float64)
    columns = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, q // 2 + 1):
        columns.append(torch.cos(2 * math.pi * k * x / q))
        if 2 * k != q:
            columns.append(torch.sin(2 * math.pi * k * x / q))
    return torch.stack(columns, 1)


def periodic_r2(matrix: torch.Tensor, q: int) -> float:
    """R^2 = 1 - |X - D D^+ X|^2 / |X - mean_rows X|^2 for ``matrix`` X [p, d] and D = ``periodic_design(p, q)``.

    D D^+ X is Q Q^T X with D = QR (D has full column rank for q <= p), on one thread: the same matrix then gives
    the same bits in every call. ``torch.linalg.lstsq``'s default CPU driver (gelsy) did not, even on one thread
    (the last bit or two changed from call to call in one process: it hands LAPACK an uninitialised pivot array,
    pytorch/pytorch#187411), and two threads change them again.
    """
    design = periodic_design(matrix.shape[0], q)
    target = matrix.double()
    with one_thread():
        basis = torch.linalg.qr(design).Q
        fitted = basis @ (basis.T @ target)
        centred = target - target.mean(0)
        return float(1 - (target - fitted).pow(2).sum() / centred.pow(2).sum())


@dataclass(frozen=True)
class PeriodicFit:
    """R^2 of W_E's number rows on period-q features, and of the same fit on Gaussian noise (the control)."""

    q: int
    r2: float
    noise_r2: float


def embedding_task_spectrum(W_E: torch.Tensor, p: int, moduli: tuple[int, ...], seed: int = 0) -> list[PeriodicFit]:
    """Per task q: R^2 of W_E's number rows on period-q features, and the same fit on Gaussian noise."""
    noise = torch.randn(p, W_E.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return [PeriodicFit(q, periodic_r2(W_E[:p], q), periodic_r2(noise, q)) for q in moduli]


FIRST_TASKS = (2, 3, 5, 7)  # the study's claim: these are learnt first, then the rest rapidly


@dataclass(frozen=True)
class TaskRow:
    """One task of a multi-task run: grok step (test_acc_q >= 99% in metrics.jsonl; None if never), final test
    accuracy, W_E's period-q R^2 and the noise control's."""

    q: int
    grok_step: int | None
    final_test_acc: float
    fit_r2: float
    noise_r2: float


@dataclass(frozen=True)
class Claim:
    claim: str
    verdict: str


@dataclass
class TaskStudy:
    """A multi-task run's per-task table, the order in which its tasks grok, and the study's claims on it."""

    table: list[TaskRow] = field(default_factory=list)
    order: list[int] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.table)

    def to_dict(self) -> dict[str, list]:
        return {"table": [vars(r) for r in self.table], "order": self.order, "claims": [vars(c) for c in self.claims]}

    @classmethod
    def from_dict(cls, value: dict[str, list]) -> "TaskStudy":
        return cls([TaskRow(**r) for r in value.get("table", [])], list(value.get("order", [])),
                   [Claim(**c) for c in value.get("claims", [])])


def task_table(metric_rows: list[MetricsRow], heads: tuple[int, ...], fits: list[PeriodicFit]) -> list[TaskRow]:
    """Per task q: grok step (test_acc_q >= 99% in metrics.jsonl), final test accuracy, W_E's period-q R^2, noise R^2."""
    by_q = {f.q: f for f in fits}
    return [TaskRow(q, grok_step(metric_rows, f"test_acc_q{q}"), metric_rows[-1][f"test_acc_q{q}"], by_q[q].r2,
                    by_q[q].noise_r2) for q in heads]


def task_study(W_E: torch.Tensor, p: int, heads: tuple[int, ...], metric_rows: list[MetricsRow]) -> TaskStudy:
    """The per-task table with the final W_E's fits, the grok order and the claims (``claims``)."""
    table = task_table(metric_rows, heads, embedding_task_spectrum(W_E, p, heads))
    return TaskStudy(table, grok_order(table), claims(table, metric_rows[-1]["step"]))


def grok_order(table: list[TaskRow]) -> list[int]:
    """The tasks in the order they grok (never-grokked ones left out)."""
    return [r.q for r in sorted((r for r in table if r.grok_step is not None), key=lambda r: (r.grok_step, r.q))]


def claims(table: list[TaskRow], last_step: int | None = None) -> list[Claim]:
    """The study's order claims, each 'holds' / 'does not hold' / 'undetermined (why)'.

    1. mod 2, 3, 5, 7 are learnt first: each groks, at or before the first grok step of any other task.
    2. then the rest rapidly: every other task groks, within a span (last minus first of their grok
       steps) no longer than the steps the first four took (our reading of "rapidly"). With ``last_step``, the
       run's last logged step, it is decided before every task groks: a task not grokked by then groks later, so
       once last_step - (the first of the rest's grok step) >= max(first four's grok steps) the span is longer.
    """
    step = {r.q: r.grok_step for r in table}
    first = [step[q] for q in FIRST_TASKS if q in step]
    rest = [s for q, s in step.items() if q not in FIRST_TASKS]
    reached = [s for s in rest if s is not None]
    if len(first) < len(FIRST_TASKS) or None in first:
        verdict_first = verdict_rest = "undetermined (not every one of mod 2, 3, 5, 7 has grokked)"
    else:
        verdict_first = "holds" if not reached or max(first) <= min(reached) else "does not hold"
        left = f"{len(rest) - len(reached)} of {len(rest)} other tasks have not grokked"
        if not rest:  # p = 11: no prime between 7 and p, so no task is left to follow
            verdict_rest = "undetermined (no task besides mod 2, 3, 5 and 7 at this p)"
        elif len(reached) == len(rest):
            verdict_rest = "holds" if max(reached) - min(reached) <= max(first) else "does not hold"
        elif reached and last_step is not None and last_step - min(reached) >= max(first):
            verdict_rest = (f"does not hold ({left} by step {last_step}, {last_step - min(reached)} steps after the "
                            f"first of them grokked; the first four took {max(first)})")
        else:
            verdict_rest = f"undetermined ({left})"
    return [Claim("mod 2, 3, 5 and 7 are learnt first", verdict_first),
            Claim("then the rest, rapidly (within the steps the first four took)", verdict_rest)]


def all_grokked_step(table: list[TaskRow]) -> int | None:
    """The step by which every task has grokked, max_q grok_step(q); None while any task has not."""
    steps = [r.grok_step for r in table]
    return None if not steps or None in steps else max(steps)


def grokfast_claim(with_filter: list[TaskRow], without: list[TaskRow], steps_with: int, steps_without: int) -> Claim:
    """The study's claim that Grokfast speeds it up, read from two runs that differ only in the filter.

    s_gf = max_q grok_step(q) with Grokfast, s_plain the same without it. Holds when s_gf < s_plain, or when every
    task has grokked with Grokfast and the run without it, trained to ``steps_without`` >= s_gf, has not (so
    s_plain > s_gf); does not hold when s_plain <= s_gf, or when only the run without the filter has grokked every
    task and the run with it, trained to ``steps_with`` >= s_plain, has not. Undetermined otherwise: neither run has
    grokked every task, or the one that has not is not yet trained to the step the other finished at (the runs of a
    partial table stop at different steps). When neither has, the verdict says what the two runs do show by the
    last step both reached, s = min(steps_with, steps_without): how many tasks each has grokked by s, and of the
    tasks grokked by s in both, how many grokked sooner with the filter and how many later.
    """
    fast, plain = all_grokked_step(with_filter), all_grokked_step(without)
    left = sum(r.grok_step is None for r in without)
    if fast is None and plain is None:
        shown = _grokked_by(with_filter, without, steps_with, steps_without)
        verdict = f"undetermined (neither run has grokked every task; {shown})"
    elif fast is None and steps_with < plain:
        verdict = (f"undetermined (without Grokfast every task groks by step {plain}; the run with it, trained to "
                   f"step {steps_with}, has not yet)")
    elif fast is None:
        verdict = (f"does not hold (without Grokfast every task groks by step {plain}; with it, not by step "
                   f"{steps_with})")
    elif plain is None and steps_without < fast:
        verdict = (f"undetermined (with Grokfast every task groks by step {fast}; the run without it, trained to step "
                   f"{steps_without}, has not yet)")
    elif plain is None:
        verdict = (f"holds (every task groks by step {fast} with Grokfast; without it, {left} of {len(without)} "
                   f"have not by step {steps_without})")
    else:
        verdict = (f"{'holds' if fast < plain else 'does not hold'} (every task groks by step {fast} with Grokfast, "
                   f"by step {plain} without)")
    return Claim("Grokfast speeds it up", verdict)


def _grokked_by(with_filter: list[TaskRow], without: list[TaskRow], steps_with: int, steps_without: int) -> str:
    """Each run's grokked tasks by the last step both reached, and the per-task comparison where both grokked."""
    last = min(steps_with, steps_without)
    fast = {r.q: r.grok_step for r in with_filter if r.grok_step is not None and r.grok_step <= last}
    plain = {r.q: r.grok_step for r in without if r.grok_step is not None and r.grok_step <= last}
    both = sorted(fast.keys() & plain.keys())
    sooner = sum(fast[q] < plain[q] for q in both)
    later = sum(fast[q] > plain[q] for q in both)
    return (f"by step {last}, {len(fast)} of {len(with_filter)} tasks grokked with Grokfast and {len(plain)} of "
            f"{len(without)} without; of the {len(both)} grokked in both, {sooner} sooner with it, {later} later, "
            f"{len(both) - sooner - later} at the same step")
