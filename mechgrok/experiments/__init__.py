"""Runnable experiments from the seed studies: ``mechgrok experiment NAME [--quick]``.

Each module has ``run(out: Path, quick: bool, progress: bool) -> dict`` that writes its runs,
a results table (CSV + Markdown) and a figure under ``out`` and returns a summary. Those that
train many transformer runs also take ``jobs``: how many to train side by side.
"""

from __future__ import annotations

import importlib

EXPERIMENTS = {
    "augmentation": "operand reversal / negation augmentation (seeds/000), Table 1 layout",
    "grokfast": "steps to 99% test accuracy with and without the Grokfast EMA filter, p=113 addition",
    "gromov": "Gromov's quadratic MLP: analytic Fourier solution vs gradient-descent training (seeds/002)",
    "miiii": "remainders of x0 + p*x1 modulo every prime q < p, one head per task (seeds/003)",
}


PARALLEL = ("augmentation", "grokfast")


def run_experiment(name: str, out, quick: bool = False, progress: bool = True, jobs: int = 1) -> dict:
    from ..errors import MechgrokError

    if name not in EXPERIMENTS:
        raise MechgrokError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    if jobs < 1:
        raise MechgrokError(f"--jobs must be at least 1, got {jobs}")
    module = importlib.import_module(f"{__name__}.{name}")
    if name in PARALLEL:
        return module.run(out, quick=quick, progress=progress, jobs=jobs)
    if jobs > 1:
        raise MechgrokError(f"experiment {name} trains one model at a time; --jobs applies to {', '.join(PARALLEL)}")
    return module.run(out, quick=quick, progress=progress)
