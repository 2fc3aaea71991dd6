"""The report: its JSON form read back unchanged, old versions read, and a summary that says what was found."""

import json
import shutil
from pathlib import Path

import pytest

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
