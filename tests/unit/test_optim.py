"""AdamW, the warm-up and the lr cut, and the Grokfast filter's construction."""

import pytest
import torch

from mechgrok import TrainConfig
from mechgrok.grokfast import GradientFilter
from mechgrok.optim import make_grad_filter, make_optimizer, scheduled_lr


def test_warm_up_is_linear_then_constant_and_the_cut_scales_it():
    optim = TrainConfig(lr=1e-3, warmup_steps=10, decay_factor=0.1).optim
    assert [scheduled_lr(optim, s) for s in (0, 4, 9, 500)] == pytest.approx([1e-4, 5e-4, 1e-3, 1e-3])
    assert scheduled_lr(optim, 500, decayed=True) == pytest.approx(1e-4)
    assert scheduled_lr(TrainConfig(lr=1e-3, warmup_steps=0).optim, 0) == 1e-3


def test_adamw_takes_the_configs_settings_over_every_parameter():
    model = torch.nn.Linear(3, 2)
    optim = make_optimizer(model, TrainConfig(lr=2e-3, weight_decay=0.5, beta2=0.9).optim)
    group = optim.param_groups[0]
    assert group["lr"] == 2e-3 and group["weight_decay"] == 0.5 and group["betas"] == (0.9, 0.9)
    assert len(group["params"]) == 2


def test_grokfast_filter_only_when_asked():
    model = torch.nn.Linear(3, 2)
    assert make_grad_filter(model, TrainConfig().optim) is None
    assert isinstance(make_grad_filter(model, TrainConfig(grokfast="ema").optim), GradientFilter)
