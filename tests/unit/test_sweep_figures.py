"""Cross-run figures of a sweep, on hand-built tables whose picture is known."""

from mechgrok.analysis.sweep_figures import phase_diagram_figure, seed_spread_figure, sweep_figure_set


def _row(run, lr, wd, outcome, grok):
    return {"run": run, "lr": lr, "weight_decay": wd, "outcome": outcome, "grok_step": grok, "memorization_end": 10,
            "key_frequencies": "3 8", "cluster_sizes": "10 12"}


ROWS = [_row("a", 1e-3, 1.0, "generalises", 100), _row("b", 1e-3, 1.0, "generalises", 300),
        _row("c", 1e-2, 1.0, "memorises only", None), _row("d", 1e-3, 0.1, "fails to fit", None)]


def test_phase_diagram_colours_each_cell_by_its_majority_and_prints_the_median():
    fig = phase_diagram_figure(ROWS, "lr", "weight_decay")
    heat = fig.data[0]
    assert list(heat.x) == ["0.001", "0.01"] and list(heat.y) == ["0.1", "1.0"]
    assert [list(r) for r in heat.z] == [[2, None], [0, 1]]
    assert heat.text[1][0] == "200<br>2/2" and heat.text[1][1] == "—<br>0/1"


def test_seed_spread_marks_each_run_and_the_mean():
    fig = seed_spread_figure(ROWS[:2])
    grok = [t for t in fig.data if t.name == "grok step (test acc >= 99%)"][0]
    mean = [t for t in fig.data if t.name == "mean" and t.y[0] == "grok step (test acc >= 99%)"][0]
    assert list(grok.x) == [100, 300] and list(mean.x) == [200, 200]


def test_the_grid_decides_which_figures_a_sweep_gets():
    assert set(sweep_figure_set(ROWS, {"lr": [], "weight_decay": []})) == {"key_frequencies", "phase_diagram"}
    assert set(sweep_figure_set(ROWS, {"seed": []})) == {"seed_spread", "key_frequencies"}
    assert sweep_figure_set([], {"seed": []}) == {}
