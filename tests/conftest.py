import shutil
from pathlib import Path

import pytest

from mechgrok import TrainConfig, train
from mechgrok.presets import SMALL_GROK

LEGACY_RUN = Path(__file__).parent / "fixtures" / "legacy_run_add_p23"


def small_config(tmp_path, **overrides) -> TrainConfig:
    """A p=23 addition run of a few steps in ``tmp_path/run`` (SMALL_GROK, which groks in ~1,000 steps)."""
    values = {**SMALL_GROK, "steps": 40, "save_every": 10, "out": str(tmp_path / "run"), **overrides}
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def grokked_run(tmp_path_factory):
    """A p=23 addition run trained past grokking, shared by the analysis tests."""
    out = tmp_path_factory.mktemp("grokked") / "run"
    result = train(TrainConfig(**{**SMALL_GROK, "steps": 1500, "save_every": 50, "out": str(out)}), progress=False)
    assert result.summary["test_acc"] >= 0.99, result.summary
    return out


@pytest.fixture(scope="session")
def analysed_every_2(grokked_run, tmp_path_factory):
    """A copy of ``grokked_run`` analysed at every second checkpoint (no figures): the explorer's and views' run."""
    from mechgrok.cli import main

    run_dir = tmp_path_factory.mktemp("analysed") / "run"
    shutil.copytree(grokked_run, run_dir)
    assert main(["analyze", str(run_dir), "--every", "2", "--quiet", "--no-figures"]) == 0
    return run_dir
