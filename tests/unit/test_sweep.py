"""Sweep helpers and cross-run figures on rows whose answers are known."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechgrok.analysis.sweep_figures import phase_diagram_figure, seed_frequencies_figure, sweep_figure_set
from mechgrok.sweep import outcome, point_name, seed_spread, spread


def test_outcome_follows_omnigrok_labels():
    assert outcome(1.0, 0.995) == "generalises"
    assert outcome(1.0, 0.5) == "memorises only"
    assert outcome(0.7, 0.1) == "fails to fit"
    assert outcome(0.98, 0.99) == "generalises"  # test accuracy decides first


def test_point_names_are_path_safe():
    assert point_name({"lr": 1e-3, "task": "add/../x"}) == "lr-0.001_task-add..x"


def test_spread_is_sample_statistics():
    s = spread([1.0, 2.0, 3.0, 6.0])
    assert s == {"mean": 3.0, "sd": pytest.approx(2.1602469), "min": 1.0, "max": 6.0}
    assert spread([5.0])["sd"] == 0.0


def test_seed_spread_groups_by_the_other_fields():
    rows = [{"run": f"r{i}", "lr": lr, "seed": i, "grok_step": g, "wall_seconds": 1.0}
            for i, (lr, g) in enumerate([(1, 100), (1, 300), (2, 1000), (2, None)])]
    stats = {(s["lr"], s["quantity"]): s for s in seed_spread(rows, {"lr": [1, 2], "seed": [0, 1]})}
    assert stats[1, "grok_step"]["mean"] == 200 and stats[1, "grok_step"]["runs"] == "2/2"
    assert stats[2, "grok_step"]["mean"] == 1000 and stats[2, "grok_step"]["runs"] == "1/2"


def test_phase_diagram_cells_take_the_majority_and_the_median():
    rows = [dict(wd=wd, lr=lr, outcome=o, grok_step=g, run="r") for wd, lr, o, g in [
        (0.1, 1, "generalises", 100), (0.1, 1, "generalises", 300), (0.1, 1, "fails to fit", None),
        (1.0, 1, "generalises", 50), (1.0, 1, "memorises only", None),  # a tie goes to the worse outcome
        (0.1, 2, "memorises only", None)]]
    heat = phase_diagram_figure(rows, "wd", "lr").data[0]
    assert list(heat.x) == ["0.1", "1.0"] and list(heat.y) == ["1", "2"]
    assert [list(r) for r in heat.z] == [[0, 1], [1, None]]
    assert heat.text[0][0] == "200<br>2/3" and heat.text[0][1] == "50<br>1/2" and heat.text[1][0] == "—<br>0/1"


def test_frequency_figure_has_a_point_per_cluster():
    rows = [{"run": "seed-0", "key_frequencies": "1 8 21", "cluster_sizes": "166 138 181"},
            {"run": "seed-1", "key_frequencies": "4", "cluster_sizes": "90"}]
    scatter = seed_frequencies_figure(rows).data[0]
    assert list(scatter.y) == [1, 8, 21, 4] and list(scatter.x) == ["seed-0"] * 3 + ["seed-1"]


def test_figure_set_depends_on_the_grid():
    rows = [{"run": "a", "seed": 0, "wd": 1, "lr": 1, "outcome": "generalises", "grok_step": 5}]
    assert set(sweep_figure_set(rows, {"seed": [0], "wd": [1], "lr": [1]})) == {"seed_spread", "phase_diagram"}
    assert set(sweep_figure_set(rows, {"wd": [1]})) == set()


SPEC_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(st.sampled_from(["name", "out", "analyze", "base", "grid", "bogus"]), SPEC_VALUES,
                                max_size=4))
def test_any_spec_document_gives_a_spec_or_one_line_and_writes_nothing(tmp_path_factory, document):
    import json

    from mechgrok import MechgrokError
    from mechgrok.sweep import load_spec

    where = tmp_path_factory.mktemp("spec")
    path = where / "spec.json"  # a spec is read as JSON when its name does not end in .toml
    path.write_text(json.dumps(document))
    try:
        load_spec(path, out=where / "out")
    except MechgrokError as err:
        assert "\n" not in str(err)
    assert sorted(p.name for p in where.iterdir()) == ["spec.json"]


SUMMARY = {"task": "add", "p": 23, "steps": 40, "wall_seconds": 1.5, "train_loss": 0.1, "test_loss": 2.0,
           "train_acc": 1.0, "test_acc": 0.2, "grok_step": None, "steps_per_second": 26.7}
SUMMARY_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**30) | st.floats() | st.text(max_size=4),
                              lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner,
                                                                                          max_size=2), max_leaves=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from([*SUMMARY, "bogus"]), value=SUMMARY_VALUES, drop=st.booleans(),
       whole=st.one_of(st.none(), SUMMARY_VALUES))
def test_any_summary_json_reads_checked_or_is_one_line(tmp_path_factory, key, value, drop, whole):
    """summary.json as a sweep table and a resume check read it: a checked row, 'not finished' (so the run is
    trained again, which rewrites it) or one line; the file is left as it was."""
    import json

    from mechgrok import TrainConfig
    from mechgrok.errors import MechgrokError
    from mechgrok.presets import SMALL_GROK
    from mechgrok.run import SUMMARY_FILE, is_finished, read_summary
    from mechgrok.sweep import is_done, run_row

    run_dir = tmp_path_factory.mktemp("summary")
    summary = dict(SUMMARY)
    if drop:
        summary.pop(key, None)
    else:
        summary[key] = value
    document = summary if whole is None else whole
    (run_dir / SUMMARY_FILE).write_text(json.dumps(document))
    before = (run_dir / SUMMARY_FILE).read_bytes()
    cfg = TrainConfig(**{**SMALL_GROK, "steps": 40, "out": str(run_dir)})
    finished = is_finished(run_dir, 40)
    assert isinstance(finished, bool) and isinstance(is_done(cfg), bool)
    try:
        row = run_row("run", cfg, {"seed": [0]})
    except MechgrokError as err:
        assert "\n" not in str(err)
    else:
        if row is not None:
            checked = read_summary(run_dir / SUMMARY_FILE)
            assert row["steps"] == checked["steps"] and 0 <= row["final_test_acc"] <= 1
    assert (run_dir / SUMMARY_FILE).read_bytes() == before
