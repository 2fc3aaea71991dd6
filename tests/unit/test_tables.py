"""Markdown tables, seed statistics and result files."""

import math

import pytest

from mechgrok.fileio import read_csv
from mechgrok.tables import markdown_table, mean_and_stderr, write_table


def test_mean_and_standard_error():
    assert mean_and_stderr([3.0]) == (3.0, 0.0)
    mean, stderr = mean_and_stderr([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and stderr == pytest.approx(math.sqrt(5 / 3) / 2)


def test_markdown_table_has_a_header_a_rule_and_a_line_per_row():
    text = markdown_table(["q", "step"], [[2, 100], [3, None]])
    assert text.splitlines() == ["| q | step |", "|---|---|", "| 2 | 100 |", "| 3 | None |"]


def test_write_table_keeps_every_column_any_row_has(tmp_path):
    write_table(tmp_path / "sub" / "t", [{"step": 1, "a": 0.5}, {"step": 2, "b": 2.0}])
    rows = read_csv(tmp_path / "sub" / "t.csv")
    assert rows[0]["step"] == 1 and rows[0]["a"] == 0.5 and math.isnan(rows[0]["b"]) and rows[1]["b"] == 2.0
