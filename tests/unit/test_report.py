"""The report: its JSON form read back unchanged, old versions read, and a summary that says what was found."""

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mechgrok import MechgrokError
from mechgrok.analysis.miiii import Claim, TaskRow, TaskStudy
from mechgrok.analysis.report import Report, read_report
from mechgrok.analysis.results import CheckpointMeasures, Phases, Skipped, Spectra
from mechgrok.fileio import write_csv

HEADLINE = Path(__file__).parent.parent.parent / "results" / "add_p113_seed0"


def test_the_committed_version_2_report_reads_with_its_frequencies_named():
    report = read_report(HEADLINE)
    assert report.circuit.unit == "frequency" and report.circuit.name(report.circuit.frequencies[0]).startswith("k=")
    assert report.spectra.steps == [m.step for m in report.measures]
    assert "key frequencies in the Fourier basis of Z_p" in report.summary_text()


def _write(report: Report, out: Path) -> None:
    out.mkdir(parents=True)
    (out / "report.json").write_text(json.dumps(report.content))
    write_csv(out / "measures.csv", [m.to_row() for m in report.measures])
    write_csv(out / "spectrum.csv", report.spectra.to_rows())


def test_a_report_round_trips_through_its_files(tmp_path):
    original = read_report(HEADLINE)
    original.run_dir = tmp_path
    original.skipped = [Skipped(5, "truncated")]
    _write(original, tmp_path / "analysis")
    again = read_report(tmp_path / "analysis")
    assert again.content == original.content and again.skipped == [Skipped(5, "truncated")]


def test_a_run_that_never_generalised_claims_nothing_and_says_why(tmp_path):
    rows = [CheckpointMeasures(s, 0.1, 4.0, 1.0, 0.1, 100.0) for s in (0, 100)]
    tasks = TaskStudy([TaskRow(2, 50, 1.0, 0.9, 0.1), TaskRow(3, None, 0.5, 0.1, 0.1)], [2], [Claim("c", "holds")])
    report = Report(tmp_path, {"task": "miiii", "p": 11}, rows, Spectra(), None,
                    Phases(evidence={"note": "not generalised"}), None, tasks=tasks)
    text = report.summary_text()
    assert not report.generalised and "not available for task miiii" in text
    assert "phases: none placed (not generalised)" in text and "mod 2 (1 not grokked)" in text and "c: holds" in text


def test_a_report_of_an_unknown_version_is_refused(tmp_path):
    shutil.copytree(HEADLINE, tmp_path / "analysis")
    content = json.loads((tmp_path / "analysis" / "report.json").read_text())
    (tmp_path / "analysis" / "report.json").write_text(json.dumps({**content, "version": 99}))
    with pytest.raises(MechgrokError, match="version this release reads"):
        read_report(tmp_path / "analysis")


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=8)
REPORT_KEYS = ["version", "config", "key_frequencies", "phases", "grok_step", "ablations", "skipped", "tasks",
               "frequencies", "clusters", "cluster_sizes_all", "bogus"]


def _mutated(original: dict, key: str, value) -> dict:
    """report.json with one field (top level, or inside key_frequencies) replaced by an arbitrary JSON value."""
    report = json.loads(json.dumps(original))
    if key in ("frequencies", "clusters", "cluster_sizes_all"):
        report["key_frequencies"][key] = value
    else:
        report[key] = value
    return report


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(REPORT_KEYS), value=JSON_VALUES)
def test_any_damage_to_report_json_reads_or_is_one_line(tmp_path_factory, key, value):
    analysis = tmp_path_factory.mktemp("report") / "analysis"
    shutil.copytree(HEADLINE, analysis)
    original = json.loads((analysis / "report.json").read_text())
    (analysis / "report.json").write_text(json.dumps(_mutated(original, key, value)))
    try:
        read_report(analysis)
    except MechgrokError as err:
        assert "\n" not in str(err)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(JSON_VALUES, st.dictionaries(st.sampled_from(["step", "test_acc", "train_loss", "x"]),
                                                            JSON_VALUES, max_size=3)), max_size=4))
def test_any_metrics_jsonl_reads_as_checked_rows_or_is_one_line(tmp_path_factory, rows):
    from mechgrok.run import read_metrics

    path = tmp_path_factory.mktemp("metrics") / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        read = read_metrics(path)
    except MechgrokError as err:
        assert "\n" not in str(err)
        return
    steps = [r["step"] for r in read]
    assert all(isinstance(s, int) and s >= 0 for s in steps) and steps == sorted(steps)
