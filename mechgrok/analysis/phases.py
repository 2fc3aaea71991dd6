"""Phase boundaries (memorization -> circuit formation -> cleanup) from measured curves.

Nanda et al. place the boundaries by eye; this rule is ours. On log10 of the test loss L(t),
over the analysed checkpoints:

1. **memorization ends** at the checkpoint where the test loss peaks, among those at or after
   the first with train accuracy >= 99%. Up to there the model fits the training set by rote
   and the test loss climbs; from there on the forming circuit pulls it down. A peak at the last
   analysed checkpoint places nothing (no decline follows it: a run stopped as it generalised).
2. Let P = L(memorization end), F = min L after it, D = P - F (the log-drop). If D < 1 (the
   test loss never falls tenfold) the run has not generalised: no cleanup is reported.
3. **cleanup starts** at the first checkpoint where L <= P - START_FRACTION * D, and
4. **ends** at the first checkpoint where L <= F + END_FRACTION * D.

The evidence returned alongside holds P, F, the restricted and excluded loss and the weight
norm at each boundary, so the call can be checked against every curve. A run whose last
analysed checkpoint has not generalised (test accuracy below 99%) gets no boundary at all: a
flat test-loss plateau has a maximum too, and calling it the end of memorization would claim
a transition that never happened.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..metrics import GROK_ACCURACY, first_step_at
from .results import Phases

MEMORIZED_ACCURACY = 0.99
START_FRACTION = 0.1
END_FRACTION = 0.1
MIN_LOG_DROP = 1.0
EVIDENCE_KEYS = ("test_loss", "train_loss", "restricted_loss", "excluded_loss", "sum_sq_weights")


def _value(row: Any, key: str) -> Any:
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)


def find_phases(rows: Sequence[Any]) -> Phases:
    """Boundary steps and the evidence behind them (see the module docstring for the rule).

    ``rows`` are the analysed checkpoints in step order (CheckpointMeasures or measures.csv dicts).
    A run whose last checkpoint has not generalised (test accuracy < 99%) gets no boundary.
    """
    rows = [{k: _value(r, k) for k in ("step", "train_acc", "test_acc", *EVIDENCE_KEYS)} for r in rows]
    final_acc = rows[-1]["test_acc"]
    if final_acc < GROK_ACCURACY:
        return Phases(evidence={"note": f"the last checkpoint's test accuracy is {final_acc:.3f} < {GROK_ACCURACY}: "
                                        "the run has not generalised, so no phase boundary is placed",
                                "final_test_acc": final_acc})
    memorized = first_step_at(rows, "train_acc", MEMORIZED_ACCURACY)
    if memorized is None:
        return Phases(evidence={"note": "train accuracy never reached 99%: still memorizing"})
    after = [r for r in rows if r["step"] >= memorized]
    peak = max(after, key=lambda r: r["test_loss"])
    if peak is rows[-1]:  # nothing after it: no decline shows that memorization ended (a run stopped at its grok step)
        return Phases(evidence={"note": "the test loss peaks at the last analysed checkpoint, so no end of "
                                        "memorization can be placed (a run stopped as soon as it generalised)",
                                "train_acc_99_step": memorized, "peak_test_loss": peak["test_loss"]})
    log_loss = {r["step"]: math.log10(max(r["test_loss"], 1e-300)) for r in after}
    later = [r for r in after if r["step"] >= peak["step"]]
    top, floor = log_loss[peak["step"]], min(log_loss[r["step"]] for r in later)
    drop = top - floor
    evidence = {"train_acc_99_step": memorized, "peak_test_loss": peak["test_loss"],
                "min_test_loss_after_peak": 10**floor, "log10_drop": drop}
    if drop < MIN_LOG_DROP:
        return Phases(memorization_end=peak["step"],
                      evidence={**evidence, "note": "test loss never fell tenfold after its peak: no cleanup"})
    start = next(r for r in later if log_loss[r["step"]] <= top - START_FRACTION * drop)
    end = next(r for r in later if log_loss[r["step"]] <= floor + END_FRACTION * drop)
    at = {name: {k: r.get(k) for k in EVIDENCE_KEYS}
          for name, r in (("memorization_end", peak), ("cleanup_start", start), ("cleanup_end", end))}
    return Phases(peak["step"], start["step"], end["step"], {**evidence, "at_boundaries": at})
