"""Device, threads, the memory estimate checked before a run starts, and the allocator policy."""

import os
import platform
import subprocess
import sys

import pytest
import torch

from mechgrok import MechgrokError, TrainConfig
from mechgrok.runtime import (BUFFER_POLICIES, apply_threads, check_memory, estimate_bytes, large_buffer_policy,
                              n_parameters, one_thread, resolve_device)


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


def test_one_thread_restores_the_count_even_when_the_block_fails():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError), one_thread():
            assert torch.get_num_threads() == 1
            raise ValueError
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


FAULTS_OF_A_STEP = """
import resource, sys, torch
from mechgrok.runtime import large_buffer_policy
assert large_buffer_policy(sys.argv[1])
w = torch.randn(512, 1024)
for step in range(8):  # a training step's shape: the same large buffers allocated and freed every step
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.randn(16384, 512)  # 32 MB
    h = (x @ w).relu()  # 64 MB, over glibc's 32 MB cap on its own threshold
    del x, h
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's mallopt")
def test_the_training_policy_reuses_freed_buffers_and_the_analysis_policy_returns_them():
    """The same large buffers allocated and freed every step: under ``reuse`` the heap settles within a few steps
    and the last step finds its pages already there; under ``release`` every step maps them afresh (one fault per
    4 KB page: 8,192 + 16,384 + 16,384 for the two results and ``x``)."""
    faults = {policy: int(subprocess.run([sys.executable, "-c", FAULTS_OF_A_STEP, policy], check=True,
                                         capture_output=True, text=True).stdout) for policy in BUFFER_POLICIES}
    assert faults["reuse"] < 1000 < 10000 < faults["release"], faults


def test_an_unknown_buffer_policy_is_one_line():
    with pytest.raises(MechgrokError, match="unknown buffer policy 'fast'"):
        large_buffer_policy("fast")


def _capability(**env) -> str:
    """torch's CPU kernel set in a fresh process that imports mechgrok first: the environment without
    ATEN_CPU_CAPABILITY, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    code = "import mechgrok, torch; print(torch.backends.cpu.get_cpu_capability())"
    return subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="AVX kernels are x86's")
def test_import_keeps_torch_off_its_avx512_kernels_unless_asked():
    """AVX-512's kernels round differently in the last bit: a run trained on an AVX2 CPU is reproduced bit for bit
    only on the AVX2 kernels (the committed early trajectory failed at step 110 on AVX-512, 2026-12-01)."""
    assert _capability() in ("AVX2", "DEFAULT")
    assert _capability(ATEN_CPU_CAPABILITY="default") == "DEFAULT"  # a value the user sets wins
