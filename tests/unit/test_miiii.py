import math

import pytest
import torch

from mechgrok.metrics import head_accuracies, loss
from mechgrok.analysis.miiii import TaskRow, embedding_task_spectrum, periodic_r2
from mechgrok.tasks import make_dataset, primes_below


def test_labels_are_remainders_of_the_base_p_number():
    data = make_dataset("miiii", 11, 0.5, 0)
    assert data.heads == (2, 3, 5, 7) and data.d_vocab == 12 and data.n_classes == 17
    for (x0, x1, eq), row in zip(data.inputs.tolist(), data.labels.tolist()):
        assert eq == 11 and row == [(x0 + 11 * x1) % q for q in data.heads]
    assert primes_below(113)[-1] == 109 and len(primes_below(113)) == 29


def test_loss_is_the_number_of_tasks_at_chance_and_zero_when_perfect():
    data = make_dataset("miiii", 11, 0.5, 0)
    uniform = torch.zeros(len(data.labels), data.n_classes)
    assert loss(uniform, data.labels, data.heads).item() == pytest.approx(len(data.heads))
    perfect = torch.cat([100 * torch.nn.functional.one_hot(data.labels[:, i], q) for i, q in enumerate(data.heads)], 1)
    assert loss(perfect.float(), data.labels, data.heads).item() < 1e-6
    assert head_accuracies(perfect, data.labels, data.heads) == [1.0] * 4


def test_periodic_fit_finds_the_right_period():
    p = 113
    x = torch.arange(p, dtype=torch.float64)
    W_E = torch.stack([torch.cos(2 * math.pi * 3 * x / 7), torch.sin(2 * math.pi * x / 7)], 1)
    assert periodic_r2(W_E, 7) == pytest.approx(1.0)
    assert periodic_r2(W_E, 11) < 0.2
    rows = {r.q: r for r in embedding_task_spectrum(W_E, p, (7, 11))}
    assert rows[7].r2 > rows[7].noise_r2 + 0.8


def test_periodic_fit_has_the_same_bits_in_every_call_and_on_one_thread_or_two():
    noise = torch.randn(113, 128, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    threads = torch.get_num_threads()
    try:
        by_threads = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            by_threads[n] = [periodic_r2(noise, q) for q in (5, 17, 43, 101)]
            assert torch.get_num_threads() == n  # the caller's count is left as it was
        again = [periodic_r2(noise, q) for q in (5, 17, 43, 101)]
    finally:
        torch.set_num_threads(threads)
    assert by_threads[1] == by_threads[2] == again  # exact: lstsq's gelsy differed at ~1e-16 call to call


def _table(steps):
    return [TaskRow(q, s, 1.0, 0.0, 0.0) for q, s in zip((2, 3, 5, 7), steps)]


def test_grokfast_claim_compares_the_step_by_which_every_task_has_grokked():
    from mechgrok.analysis.miiii import all_grokked_step, grokfast_claim

    assert all_grokked_step(_table([100, 400, 200, 300])) == 400
    assert all_grokked_step(_table([100, None, 200, 300])) is None
    faster = grokfast_claim(_table([100, 400, 200, 300]), _table([500, 600, 900, 700]), 1000, 1000)
    assert faster.verdict == "holds (every task groks by step 400 with Grokfast, by step 900 without)"
    slower = grokfast_claim(_table([100, 950, 200, 300]), _table([500, 600, 900, 700]), 1000, 1000)
    assert slower.verdict.startswith("does not hold")
    assert grokfast_claim(_table([100, 400, 200, 300]), _table([500, None, None, 700]), 1000, 1000).verdict == (
        "holds (every task groks by step 400 with Grokfast; without it, 2 of 4 have not by step 1000)")
    assert grokfast_claim(_table([None] * 4), _table([500, 600, 900, 700]), 1000, 1000).verdict.startswith(
        "does not hold")
    assert grokfast_claim(_table([1, None, 1, 1]), _table([None] * 4), 1000, 1000).verdict.startswith("undetermined")


def test_grokfast_claim_counts_what_two_unfinished_runs_show_by_the_last_step_both_reached():
    """Neither run grokked every task: still undetermined, with each run's count by the shorter run's last step (a
    task the longer run grokked after it is not counted) and the tasks grokked in both compared one by one."""
    from mechgrok.analysis.miiii import grokfast_claim

    with_filter, without = _table([100, 300, 900, None]), _table([100, 500, 200, None])
    assert grokfast_claim(with_filter, without, 1000, 800).verdict == (
        "undetermined (neither run has grokked every task; by step 800, 2 of 4 tasks grokked with Grokfast and 3 of 4 "
        "without; of the 2 grokked in both, 1 sooner with it, 0 later, 1 at the same step)")
    assert "by step 1000, 3 of 4 tasks grokked with Grokfast and 3 of 4 without; of the 3 grokked in both, 1 sooner " \
           "with it, 1 later, 1 at the same step" in grokfast_claim(with_filter, without, 1000, 1000).verdict


def test_grokfast_claim_waits_for_the_run_behind_in_a_partial_table():
    """The runs of a partial table stop at different steps: the one that has not finished decides nothing until it
    is trained to the step the other finished at (it may yet finish by then)."""
    from mechgrok.analysis.miiii import grokfast_claim

    finished, unfinished = _table([100, 400, 200, 300]), _table([500, None, None, 700])
    assert grokfast_claim(finished, unfinished, 1000, 399).verdict == ("undetermined (with Grokfast every task groks "
                                                                       "by step 400; the run without it, trained to "
                                                                       "step 399, has not yet)")
    assert grokfast_claim(finished, unfinished, 1000, 400).verdict.startswith("holds")
    assert grokfast_claim(unfinished, finished, 399, 1000).verdict.startswith("undetermined (without Grokfast")
    assert grokfast_claim(unfinished, finished, 400, 1000).verdict == (
        "does not hold (without Grokfast every task groks by step 400; with it, not by step 400)")


def test_grok_order_and_claims_on_hand_built_tables():
    from mechgrok.analysis.miiii import TaskStudy, claims, grok_order

    first_then_rest = _table([100, 400, 200, 300]) + [TaskRow(11, 450, 1.0, 0.0, 0.0), TaskRow(13, 500, 1.0, 0.0, 0.0)]
    assert grok_order(first_then_rest) == [2, 5, 7, 3, 11, 13]
    assert [c.verdict for c in claims(first_then_rest)] == ["holds", "holds"]
    late = _table([100, 400, 200, 300]) + [TaskRow(11, 350, 1.0, 0.0, 0.0)]
    assert claims(late)[0].verdict == "does not hold"
    # mod 11 groks at 450, mod 13 not by the last step: the span is already longer than the first four's 400 steps
    slow_rest = _table([100, 400, 200, 300]) + [TaskRow(11, 450, 1.0, 0.0, 0.0), TaskRow(13, None, 0.5, 0.0, 0.0)]
    assert claims(slow_rest, 850)[1].verdict == ("does not hold (1 of 2 other tasks have not grokked by step 850, "
                                                 "400 steps after the first of them grokked; the first four took 400)")
    assert claims(slow_rest, 800)[1].verdict == "undetermined (1 of 2 other tasks have not grokked)"  # may yet hold
    assert claims(slow_rest)[1].verdict.startswith("undetermined")
    only_first = _table([100, 400, 200, 300])  # p = 11: the four are every task (this raised ValueError)
    assert [c.verdict for c in claims(only_first, 1_000)] == [
        "holds", "undetermined (no task besides mod 2, 3, 5 and 7 at this p)"]
    none_yet = _table([100, 400, 200, 300]) + [TaskRow(11, None, 0.5, 0.0, 0.0)]
    assert claims(none_yet, 10_000)[1].verdict.startswith("undetermined")  # the span has not begun
    study = TaskStudy(first_then_rest, grok_order(first_then_rest), claims(first_then_rest))
    assert TaskStudy.from_dict(study.to_dict()) == study and not TaskStudy()


def test_tasks_grokked_by_a_step_in_the_order_they_grokked():
    from mechgrok.experiments.miiii import _by_step, text_steps

    table = [{"q": 2, "grok_step": 300}, {"q": 3, "grok_step": 200}, {"q": 5, "grok_step": 40001},
             {"q": 7, "grok_step": None}]
    assert _by_step(table, "grok_step", 40000) == "3, 2"
    assert _by_step(table, "grok_step", 100) == "no task"
    assert text_steps(False) == 40000  # the paper's text's horizon
