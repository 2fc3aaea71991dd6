"""Where a run executes: the device, the CPU thread count, and whether its memory fits.

The memory estimate is made from the config alone, before anything is allocated, so an
impossible size (p = 100003 asks for hundreds of GB) is refused with one line instead of an
allocator traceback. It counts the dataset (inputs, labels, split), the parameters with their
gradients, AdamW moments and Grokfast state, and the activations of one full-batch step.
It is an estimate: within a small factor for the package's models, and deliberately generous.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .config import TrainConfig
from .errors import MechgrokError
from .tasks import get_task

BYTES_FLOAT32 = 4
BYTES_INDEX = 8


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; otherwise a device torch knows and this machine has."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MechgrokError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type not in ("cpu", "cuda"):
        raise MechgrokError(f"device {name!r} is not supported; use auto, cpu or cuda[:N]")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MechgrokError(f"device {name!r} requested but CUDA is not available here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise MechgrokError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} GPU(s)")
    return device


def apply_threads(threads: int) -> None:
    """Set torch's CPU thread count (0 leaves torch's default)."""
    if threads:
        torch.set_num_threads(threads)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one CPU thread, then restore the caller's count.

    For small float64 solves whose last bits must not depend on the caller's thread count: LAPACK's least squares
    and BLAS's products split their sums by thread, so the same W_E gave R^2 differing at ~1e-16 under 1 and 2
    threads, and a rebuilt table's CSV changed with the load on the machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
RELEASE_THRESHOLD_BYTES = 1 << 20
REUSE_THRESHOLD_BYTES = 1 << 30
NEVER_TRIM_BYTES = (1 << 31) - 1  # mallopt takes a C int
BUFFER_POLICIES = ("release", "reuse")


def large_buffer_policy(policy: str) -> bool:
    """How glibc's allocator serves buffers of a megabyte and more; True when it took (glibc only, False elsewhere).

    ``release`` (``mechgrok analyze``): allocations >= 1 MB by mmap, so that freeing them hands the memory back.
    glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MB), after which torch's
    repeated multi-MB activations land on the heap and fragment it: measured on the analysis of 201 p=113
    checkpoints, peak RSS 1,060 MB by default against 781 MB with the threshold fixed at 1 MB (``bench/memory.py``).

    ``reuse`` (``mechgrok train``, ``sweep`` and ``experiment``, and every sweep worker): a training step frees and
    allocates the same activations every step. glibc serves a buffer above 32 MB by mmap whatever its threshold
    does (the miiii run's logits are 75 MB, a batch of 8 p=113 runs' MLP activations 63 MB), so each is mapped and
    faulted in afresh, page by page, every step. With the threshold at 1 GB and the heap never trimmed they are
    reused. Measured in fresh processes on one thread (``bench/allocator.py``, three runs): the miiii code run
    1.14x-1.31x steps/s, a batch of 8 p=113 runs 1.40x-1.55x; single p=47 and p=113 runs within the machine's drift
    (0.90x-1.04x: their buffers are under 32 MB, where glibc's own threshold already adapts); peak RSS up to +13%.
    The numbers are unchanged (only where the memory comes from); the process keeps its largest step's memory until
    it exits. Both thresholds are set: fixing the trim threshold alone turns glibc's adaptive mmap threshold off and
    maps every buffer over 128 KB afresh (measured: p=113 at 6.7 steps/s against 11.9).

    Set by the commands only, since it is process-wide: a notebook kernel keeps its allocator as it is.
    """
    import ctypes
    import ctypes.util

    if policy not in BUFFER_POLICIES:
        raise MechgrokError(f"unknown buffer policy {policy!r}; choose one of {', '.join(BUFFER_POLICIES)}")
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if not libc:
            return False
        if policy == "release":
            return bool(libc.mallopt(M_MMAP_THRESHOLD, RELEASE_THRESHOLD_BYTES))
        # older glibc refuses a threshold above 32 MB (half its heap size): then 32 MB, and larger buffers stay mapped
        took = libc.mallopt(M_MMAP_THRESHOLD, REUSE_THRESHOLD_BYTES) or libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        return bool(took and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM_BYTES))
    except (OSError, AttributeError):
        return False


def n_parameters(cfg: TrainConfig, d_vocab: int, d_vocab_out: int) -> int:
    """Parameters of the transformer (the fixed zero biases included)."""
    m = cfg.model
    d, h, e = m.d_model, m.n_heads, m.d_head
    per_layer = 4 * h * d * e + 3 * h * e + d + 2 * d * m.d_mlp + m.d_mlp + d
    return d_vocab * d + 3 * d + m.n_layers * per_layer + d * d_vocab_out + d_vocab_out


def estimate_bytes(cfg: TrainConfig) -> int:
    """Peak memory of one training run, from its config (see the module docstring)."""
    data, model = cfg.data, cfg.model
    task = get_task(data.task)
    n = task.n_examples(data.p)
    n_tokens, heads = task.sizes(data.p)
    d_vocab, d_out = n_tokens + 1, sum(heads)
    dataset = n * BYTES_INDEX * (3 + len(heads) + 1) * 2  # built once, copied once into the split
    params = n_parameters(cfg, d_vocab, d_out)
    states = 4 + (1 if cfg.optim.grokfast == "ema" else 0) + (cfg.optim.grokfast_window if cfg.optim.grokfast == "ma"
                                                               else 0)
    batch = min(cfg.optim.batch_size or n, n)
    width = BYTES_FLOAT32 * (2 if model.dtype == "float64" else 1)
    per_example = (3 * model.n_layers * (3 * model.d_mlp + 8 * model.d_model + 9 * model.n_heads * model.d_head)
                   * width + 4 * d_out * 8)
    return dataset + params * width * states + batch * per_example + n * d_out * width


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's free memory, or the system's MemAvailable."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_memory(cfg: TrainConfig, device: torch.device) -> int:
    """The estimate in bytes; MechgrokError when it exceeds what ``device`` has free."""
    need, have = estimate_bytes(cfg), available_bytes(device)
    if need > have:
        raise MechgrokError(f"this run needs about {_gib(need)} of memory and {device} has {_gib(have)} free; "
                            "choose a smaller p, model, batch or Grokfast window")
    return need


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"
