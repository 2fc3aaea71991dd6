"""Training configuration: one dataclass, validated, readable from TOML or JSON."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from .errors import MechgrokError
from .grokfast import FILTERS
from .tasks import check_frac_train, check_task

ACT_FNS = ("relu", "gelu", "silu")
AUG_SCOPES = ("all", "train")


@dataclass
class TrainConfig:
    """Everything a run depends on. Defaults are Nanda et al.'s one-layer p=113 addition model."""

    # task and data
    task: str = "add"
    p: int = 113
    frac_train: float = 0.3
    seed: int = 0
    # model (TransformerLens HookedTransformer layout, no LayerNorm, causal attention)
    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"
    init_scale: float = 1.0  # multiplies the paper's initial weights
    dropout: float = 0.0  # on attention and MLP outputs, training only (HookedTransformer has none)
    # optimisation: AdamW, linear warm-up then constant lr
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    warmup_steps: int = 10
    steps: int = 20_000
    batch_size: int = 0  # 0 = full batch
    aug_reverse: float = 0.0  # probability of operand reversal per training example
    aug_negate: float = 0.0  # probability of negating each operand per training example
    aug_scope: str = "all"  # pairs augmentation may produce: all (the paper) or train (held-out ones left unaugmented)
    grokfast: str = "none"  # gradient filter: none, ema or ma (mechgrok/grokfast.py)
    grokfast_alpha: float = 0.98
    grokfast_lamb: float = 2.0
    grokfast_window: int = 100
    # bookkeeping
    save_every: int = 100
    dense_save_every: int = 0  # extra checkpoints every this many steps ...
    dense_save_until: int = 0  # ... up to this step (0 = off)
    log_every: int = 10
    stop_at_test_acc: float = 0.0  # stop at the first log step with test accuracy >= this (0 = off)
    device: str = "auto"
    out: str = ""  # run directory; empty = checkpoints/<task>_p<p>_seed<seed>

    # Fields that may change between a run and its resumption without changing its results.
    RESUMABLE_FIELDS = ("steps", "save_every", "dense_save_every", "dense_save_until", "log_every", "device",
                        "out", "stop_at_test_acc")

    def validate(self) -> "TrainConfig":
        check_task(self.task, self.p)
        check_frac_train(self.frac_train)
        for name in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "steps", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise MechgrokError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("warmup_steps", "batch_size", "dense_save_every", "dense_save_until"):
            if getattr(self, name) < 0:
                raise MechgrokError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.act_fn not in ACT_FNS:
            raise MechgrokError(f"unknown act_fn {self.act_fn!r}; choose one of {', '.join(ACT_FNS)}")
        if self.grokfast not in FILTERS:
            raise MechgrokError(f"unknown grokfast filter {self.grokfast!r}; choose one of {', '.join(FILTERS)}")
        if not 0 <= self.grokfast_alpha < 1 or self.grokfast_window < 1:
            raise MechgrokError("grokfast_alpha must lie in [0, 1) and grokfast_window be positive")
        if not (0 <= self.aug_reverse <= 1 and 0 <= self.aug_negate <= 1):
            raise MechgrokError("aug_reverse and aug_negate are probabilities in [0, 1]")
        if self.aug_scope not in AUG_SCOPES:
            raise MechgrokError(f"unknown aug_scope {self.aug_scope!r}; choose one of {', '.join(AUG_SCOPES)}")
        if not 0 <= self.dropout < 1:
            raise MechgrokError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.init_scale <= 0:
            raise MechgrokError(f"init_scale must be positive, got {self.init_scale}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise MechgrokError("lr must be positive and weight_decay not negative")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise MechgrokError(f"betas must lie in [0, 1), got ({self.beta1}, {self.beta2})")
        resolve_device(self.device)
        return self

    @property
    def run_name(self) -> str:
        return f"{self.task}_p{self.p}_seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def checked_values(cls, values: dict[str, Any], source: str = "config") -> dict[str, Any]:
        """``values`` with every key a field and every value converted to the field's type."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise MechgrokError(f"{source}: unknown key(s) {', '.join(unknown)}")
        converted = {}
        for name, value in values.items():
            kind = known[name].type
            try:
                converted[name] = {"int": int, "float": float, "str": str}[kind](value)
            except (TypeError, ValueError):
                raise MechgrokError(f"{source}: {name} must be {kind}, got {value!r}") from None
        return converted

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        return cls(**cls.checked_values(values, source))

    @classmethod
    def file_values(cls, path: str | Path) -> dict[str, Any]:
        """The fields a TOML (``.toml``) or JSON file sets, checked."""
        path = Path(path)
        if not path.is_file():
            raise MechgrokError(f"config file {path} does not exist")
        text = path.read_text()
        try:
            values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
            raise MechgrokError(f"config file {path} is not valid {path.suffix[1:] or 'JSON'}: {err}") from None
        return cls.checked_values(values, source=str(path))

    def identity(self) -> dict[str, Any]:
        """The fields that define what a run computes (everything but RESUMABLE_FIELDS)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RESUMABLE_FIELDS}

    def differences(self, saved: "TrainConfig") -> str:
        """The identity fields where ``saved`` (a run on disk) and this config differ, as text; '' if none."""
        theirs, ours = saved.identity(), self.identity()
        return ", ".join(f"{k}: {theirs[k]!r} there vs {ours[k]!r} now" for k in ours if theirs[k] != ours[k])


# Named starting points for TrainConfig; ``mechgrok train --recipe NAME``. See the README's
# "Grok faster" section for the sweep behind "fast".
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "fast": {"lr": 1e-2, "weight_decay": 3.0, "stop_at_test_acc": 0.99, "steps": 3000, "save_every": 50},
}


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; otherwise a device torch knows and this machine has."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MechgrokError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MechgrokError(f"device {name!r} requested but CUDA is not available here")
    if device.type not in ("cpu", "cuda"):
        raise MechgrokError(f"device {name!r} is not supported; use auto, cpu or cuda[:N]")
    return device
