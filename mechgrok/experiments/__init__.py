"""Runnable experiments from the seed studies: ``mechgrok experiment NAME [--quick]``.

Each module has ``run(out: Path, quick: bool, progress: bool) -> dict`` that writes its runs,
a results table (CSV + Markdown) and a figure under ``out`` and returns a summary.
"""

from __future__ import annotations

import importlib

EXPERIMENTS = {
    "augmentation": "operand reversal / negation augmentation (seeds/000), Table 1 layout",
    "grokfast": "steps to 99% test accuracy with and without the Grokfast EMA filter, p=113 addition",
    "gromov": "Gromov's quadratic MLP: analytic Fourier solution vs gradient-descent training (seeds/002)",
    "miiii": "remainders of x0 + p*x1 modulo every prime q < p, one head per task (seeds/003)",
}


def run_experiment(name: str, out, quick: bool = False, progress: bool = True) -> dict:
    from ..errors import MechgrokError

    if name not in EXPERIMENTS:
        raise MechgrokError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{name}").run(out, quick=quick, progress=progress)
