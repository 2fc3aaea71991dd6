"""Phase boundaries (memorization -> circuit formation -> cleanup) from measured curves.

Nanda et al. place the boundaries by eye; this rule is ours. On log10 of the test loss L(t),
over the analysed checkpoints:

1. **memorization ends** at the checkpoint where the test loss peaks, among those at or after
   the first with train accuracy >= 99%. Up to there the model fits the training set by rote
   and the test loss climbs; from there on the forming circuit pulls it down.
2. Let P = L(memorization end), F = min L after it, D = P - F (the log-drop). If D < 1 (the
   test loss never falls tenfold) the run has not generalised: no cleanup is reported.
3. **cleanup starts** at the first checkpoint where L <= P - START_FRACTION * D, and
4. **ends** at the first checkpoint where L <= F + END_FRACTION * D.

The evidence returned alongside holds P, F, the restricted and excluded loss and the weight
norm at each boundary, so the call can be checked against every curve.
"""

from __future__ import annotations

import math
from typing import Any

from ..run import first_step_at

MEMORIZED_ACCURACY = 0.99
START_FRACTION = 0.1
END_FRACTION = 0.1
MIN_LOG_DROP = 1.0


def find_phases(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Boundary steps and the evidence behind them (see the module docstring for the rule)."""
    empty = {"memorization_end": None, "cleanup_start": None, "cleanup_end": None}
    memorized = first_step_at(rows, "train_acc", MEMORIZED_ACCURACY)
    if memorized is None:
        return {**empty, "evidence": "train accuracy never reached 99%: still memorizing"}
    after = [r for r in rows if r["step"] >= memorized]
    peak = max(after, key=lambda r: r["test_loss"])
    log_loss = {r["step"]: math.log10(max(r["test_loss"], 1e-300)) for r in after}
    later = [r for r in after if r["step"] >= peak["step"]]
    top, floor = log_loss[peak["step"]], min(log_loss[r["step"]] for r in later)
    drop = top - floor
    phases = {**empty, "memorization_end": peak["step"]}
    evidence = {"train_acc_99_step": memorized, "peak_test_loss": peak["test_loss"],
                "min_test_loss_after_peak": 10**floor, "log10_drop": drop}
    if drop < MIN_LOG_DROP:
        return {**phases, "evidence": {**evidence, "note": "test loss never fell tenfold after its peak: no cleanup"}}
    start = next(r for r in later if log_loss[r["step"]] <= top - START_FRACTION * drop)
    end = next(r for r in later if log_loss[r["step"]] <= floor + END_FRACTION * drop)
    phases.update(cleanup_start=start["step"], cleanup_end=end["step"])
    at = {name: {k: r.get(k) for k in ("test_loss", "train_loss", "restricted_loss", "excluded_loss", "sum_sq_weights")}
          for name, r in (("memorization_end", peak), ("cleanup_start", start), ("cleanup_end", end))}
    return {**phases, "evidence": {**evidence, "at_boundaries": at}}
