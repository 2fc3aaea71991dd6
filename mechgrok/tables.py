"""Small helpers shared by the experiments: result files and seed statistics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .fileio import Row, write_csv


def mean_and_stderr(values: list[float]) -> tuple[float, float]:
    """(mean, standard error = sample std / sqrt(n)); stderr 0 for a single value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def write_table(path: Path, rows: list[Row]) -> None:
    """``path.csv`` with every column any row has (blank where a row lacks it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path.with_suffix(".csv"), rows)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]) + "\n"
