"""Every named configuration builds a valid config, and the recipes are what `--recipe` offers."""

import pytest

from mechgrok import TrainConfig
from mechgrok import presets


TRAIN_PRESETS = [name for name in dir(presets) if name.isupper() and not name.startswith("GROMOV")
                 and name != "RECIPES"]


@pytest.mark.parametrize("name", TRAIN_PRESETS)
def test_every_training_preset_is_a_valid_config(name):
    cfg = TrainConfig(**getattr(presets, name))
    assert cfg.to_dict()["task"] in ("add", "sub", "div", "mul", "miiii", "perm", "x2xyy2", "x3xy2y", "rand")


def test_recipes_paper_is_the_defaults_and_fast_changes_the_optimiser():
    assert TrainConfig(**presets.RECIPES["paper"]) == TrainConfig()
    fast = TrainConfig(**presets.RECIPES["fast"])
    assert fast.optim.lr > TrainConfig().optim.lr and fast.optim.steps < TrainConfig().optim.steps


def test_gromov_presets_are_not_transformer_configs():
    for name in ("GROMOV", "GROMOV_QUICK"):
        assert "widths" in getattr(presets, name)
