"""Device, threads, and the memory estimate checked before a run starts."""

import pytest
import torch

from mechgrok import MechgrokError, TrainConfig
from mechgrok.runtime import apply_threads, check_memory, estimate_bytes, n_parameters, resolve_device


def test_devices_resolve_or_say_why_not():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(MechgrokError, match="unknown device"):
        resolve_device("gpu please")
    with pytest.raises(MechgrokError, match="not supported"):
        resolve_device("meta")


def test_parameter_count_is_the_state_dicts():
    from mechgrok.model import Transformer

    cfg = TrainConfig(p=23, d_model=32, d_head=8, d_mlp=64)
    model = Transformer(cfg.model, 24, 23)
    assert n_parameters(cfg, 24, 23) == sum(t.numel() for t in model.state_dict().values())  # zero biases too


def test_estimate_grows_with_the_problem_and_an_impossible_one_is_refused():
    small, large = estimate_bytes(TrainConfig(p=23)), estimate_bytes(TrainConfig(p=113))
    assert 0 < small < large
    assert check_memory(TrainConfig(p=23), torch.device("cpu")) == small
    with pytest.raises(MechgrokError, match="needs about"):
        check_memory(TrainConfig(p=100003, frac_train=0.001), torch.device("cpu"))


def test_threads_are_set_and_zero_leaves_them():
    before = torch.get_num_threads()
    apply_threads(0)
    assert torch.get_num_threads() == before
    apply_threads(1)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(before)
