"""The phase rule on hand-made curves whose boundaries are known by construction."""

from mechgrok.analysis.phases import find_phases


def _rows(test_losses, train_acc=1.0, final_test_acc=1.0):
    n = len(test_losses)
    return [{"step": 100 * i, "train_acc": train_acc if i else 0.0, "test_loss": loss, "train_loss": 1e-3,
             "test_acc": final_test_acc if i == n - 1 else 0.1} for i, loss in enumerate(test_losses)]


def test_phase_rule_on_a_hand_made_curve():
    #            0    1    2     3     4     5     6     7     8     9
    losses = [4.0, 9.0, 20.0, 18.0, 15.0, 1.0, 1e-2, 1e-5, 1e-6, 1e-6]
    phases = find_phases(_rows(losses))
    assert phases.memorization_end == 200
    # log10 drop from 20 to 1e-6 is 7.3: 10% of it (<= 10^0.57) is reached at step 500 (1.0),
    # 90% (<= 10^-5.27) at step 800 (1e-6; 1e-5 at step 700 is not yet there).
    assert (phases.cleanup_start, phases.cleanup_end) == (500, 800)
    assert phases.evidence["at_boundaries"]["cleanup_end"]["test_loss"] == 1e-6


def test_a_run_that_never_generalised_gets_no_phase_at_all():
    # the same shape, but the last checkpoint's test accuracy is 7%: a plateau's maximum is no transition
    phases = find_phases(_rows([4.0, 9.0, 20.0, 18.0, 15.0, 12.0], final_test_acc=0.07))
    assert not phases.placed and phases.cleanup_start is None
    assert "has not generalised" in phases.evidence["note"]


def test_generalised_without_a_tenfold_drop_has_no_cleanup():
    phases = find_phases(_rows([4.0, 9.0, 20.0, 18.0, 15.0, 12.0]))
    assert phases.memorization_end == 200 and phases.cleanup_start is None
    assert "never fell tenfold" in phases.evidence["note"]


def test_still_memorizing():
    assert find_phases(_rows([4.0, 4.0], train_acc=0.5)).memorization_end is None


def test_a_run_stopped_as_it_generalised_gets_no_memorization_end():
    phases = find_phases(_rows([4.0, 5.0, 6.0, 7.0]))  # the test loss still rising at the last checkpoint
    assert not phases.placed and "peaks at the last analysed checkpoint" in phases.note
