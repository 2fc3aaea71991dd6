"""The committed headline analysis (results/add_p113_seed0) stays consistent with the code."""

from pathlib import Path

from mechgrok.analysis.figures import summary_figures
from mechgrok.analysis.phases import find_phases
from mechgrok.analysis.report import read_csv
from mechgrok.checkpoints import read_json

RESULTS = Path(__file__).parent.parent / "results" / "add_p113_seed0"


def test_phase_rule_on_the_real_p113_curves():
    rows = read_csv(RESULTS / "measures.csv")
    phases = find_phases(rows)
    assert (phases["memorization_end"], phases["cleanup_start"], phases["cleanup_end"]) == (1400, 5700, 7400)
    assert read_json(RESULTS / "report.json")["phases"]["cleanup_end"] == phases["cleanup_end"]
    # the evidence agrees with the story: restricted loss is already low when cleanup starts,
    # and the weight norm falls through cleanup
    at = phases["evidence"]["at_boundaries"]
    assert at["cleanup_start"]["restricted_loss"] < 0.01 < at["cleanup_start"]["test_loss"]
    assert at["cleanup_end"]["sum_sq_weights"] < 0.6 * at["cleanup_start"]["sum_sq_weights"]


def test_headline_figures_redraw_from_committed_numbers():
    figures = summary_figures(read_json(RESULTS / "report.json"), read_csv(RESULTS / "measures.csv"),
                              read_csv(RESULTS / "spectrum.csv"))
    assert set(figures) == {"losses", "restricted_excluded", "embedding_spectrum", "neuron_clusters",
                            "gini_weight_norm", "ablations"}
    assert len(figures["losses"].data[0].x) == 201
