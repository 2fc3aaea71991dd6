"""Runnable experiments from the seed studies: ``mechgrok experiment NAME [--quick]``.

Each module has ``run(out: Path, quick: bool, progress: bool) -> dict`` that writes its runs,
a results table (CSV + Markdown) and a figure under ``out`` and returns a summary. Some take
more options (``OPTIONS``): ``jobs``, how many runs to train side by side, ``backend``, where
(``mechgrok.sweep``'s local processes or Ray), ``partial``,
tables from the runs finished so far without training any, and ``device``. Results go under
``results/experiments/NAME`` (``RESULTS_ROOT``) unless ``--out`` says otherwise.
"""

from __future__ import annotations

import importlib

RESULTS_ROOT = "results/experiments"

EXPERIMENTS = {
    "augmentation": "operand reversal / negation augmentation (the augmentation study), Table 1 layout",
    "grokfast": "steps to 99% test accuracy with and without the Grokfast EMA filter, p=113 addition",
    "gromov": "Gromov's quadratic MLP: analytic Fourier solution vs gradient-descent training (Gromov 2023)",
    "miiii": "remainders of x0 + p*x1 modulo every prime q < p, one head per task (the miiii study)",
    "miiii-differences": "miiii: which of the study's code settings makes it learn fast (each set back, each added, "
                         "in turn)",
}


# Options beyond (out, quick, progress), by the experiments that take them, with their defaults.
OPTIONS = {"augmentation": ("jobs", "partial", "backend"), "grokfast": ("jobs", "backend"), "gromov": ("device",),
           "miiii": ("device", "variant", "partial"), "miiii-differences": ("jobs", "partial", "backend", "device")}
DEFAULTS = {"jobs": 1, "partial": False, "device": "auto", "backend": "local", "variant": "text"}
FLAGS = {"variant": "as"}  # options whose flag is not --NAME


def run_experiment(name: str, out, quick: bool = False, progress: bool = True, **options) -> dict:
    """Run experiment ``name``; ``options``: jobs (runs side by side), partial (tables from finished runs only)."""
    from ..errors import MechgrokError

    if name not in EXPERIMENTS:
        raise MechgrokError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    options = {**DEFAULTS, **options}
    if options["jobs"] < 1:
        raise MechgrokError(f"--jobs must be at least 1, got {options['jobs']}")
    for option, value in options.items():
        if value != DEFAULTS[option] and option not in OPTIONS.get(name, ()):
            takers = ", ".join(n for n, taken in OPTIONS.items() if option in taken)
            raise MechgrokError(f"--{FLAGS.get(option, option)} does not apply to experiment {name}; it applies to "
                                f"{takers}")
    from pathlib import Path

    from ..runtime import resolve_device

    resolve_device(options["device"])  # before --out is made
    if Path(out).exists() and not Path(out).is_dir():
        raise MechgrokError(f"--out {out} is a file; an experiment writes a directory")
    module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
    return module.run(out, quick=quick, progress=progress, **{k: options[k] for k in OPTIONS.get(name, ())})
