"""mechgrok: train small transformers on group operations and find the circuit they grok."""

import os
from pathlib import Path


def _pin_cpu_kernels() -> None:
    """Run torch's AVX2 kernels on an AVX-512 CPU, so that a run gives the same numbers, to the last bit, on every
    x86 CPU with AVX2 (the committed runs were trained there; AVX-512's kernels round differently in the last bit,
    and a grokking trajectory amplifies that). It must come before torch's first kernel picks its code path, so it
    runs on ``import mechgrok``; an ATEN_CPU_CAPABILITY you set wins. Speed: within this CPU's noise (2026-12-01)."""
    if "ATEN_CPU_CAPABILITY" in os.environ:
        return
    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split())
    except (OSError, StopIteration):
        return  # not Linux on x86: nothing to pin
    if {"avx2", "fma", "avx512f"} <= flags:
        os.environ["ATEN_CPU_CAPABILITY"] = "avx2"


_pin_cpu_kernels()

from .config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from .errors import MechgrokError
from .run import Run, load_run
from .tasks import make_dataset
from .train import train

__version__ = "0.2.0"


def __getattr__(name: str):
    """``from mechgrok import views``: the explorer's views in Python, imported on first use (they need plotly and
    TransformerLens, which ``import mechgrok`` does not load)."""
    if name == "views":
        from .analysis import views

        return views
    raise AttributeError(f"module 'mechgrok' has no attribute {name!r}")
__all__ = ["DataConfig", "MechgrokError", "ModelConfig", "OptimConfig", "Run", "RunConfig", "TrainConfig",
           "load_run", "make_dataset", "train"]
