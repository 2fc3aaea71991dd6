"""A run directory and the ``Run`` object that opens one.

Layout of ``RUN_DIR``::

    config.json                 the TrainConfig plus vocabulary sizes
    dataset.safetensors         inputs [N, 3], labels [N], train_idx, test_idx (the exact split)
    metrics.jsonl               one JSON row every log_every steps
    checkpoints/step_0000100.safetensors
                                HookedTransformer state dict (weights, no buffers) + JSON
                                metadata: config, step, train/test loss and accuracy
    resume.safetensors          latest weights + AdamW state, for resuming after a kill
    summary.json                written when training reaches cfg.steps
    analysis/                   written by ``mechgrok analyze`` only
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .checkpoints import load_tensors, read_json, save_tensors, write_json
from .config import TrainConfig
from .errors import MechgrokError
from .model import build_hooked_transformer
from .tasks import Dataset

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

CHECKPOINT_RE = re.compile(r"step_(\d+)\.safetensors")
RUN_FORMAT = "mechgrok.run"


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.safetensors"


def save_dataset(path: Path, data: Dataset, cfg: TrainConfig) -> None:
    save_tensors(
        path,
        {"inputs": data.inputs, "labels": data.labels, "train_idx": data.train_idx, "test_idx": data.test_idx},
        {"kind": "dataset", "task": data.task, "p": data.p, "n_classes": data.n_classes,
         "frac_train": cfg.frac_train, "seed": cfg.seed},
    )


def load_dataset(path: Path) -> Dataset:
    tensors, meta = load_tensors(path, "dataset")
    return Dataset(meta["task"], meta["p"], meta["n_classes"], tensors["inputs"], tensors["labels"],
                   tensors["train_idx"], tensors["test_idx"])


@dataclass
class Run:
    """An opened run directory: its config, exact split, metrics and checkpoints.

    >>> run = load_run("checkpoints/add_p113_seed0")
    >>> run.steps[-1], run.model().cfg.d_model
    """

    path: Path
    config: TrainConfig
    d_vocab: int
    n_classes: int
    steps: list[int] = field(default_factory=list)

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoint_dir / checkpoint_name(step)

    @cached_property
    def dataset(self) -> Dataset:
        return load_dataset(self.path / "dataset.safetensors")

    def metrics(self) -> list[dict[str, Any]]:
        """Rows of metrics.jsonl (``pandas.DataFrame(run.metrics())`` for a table)."""
        return read_jsonl(self.path / "metrics.jsonl")

    def refresh(self) -> "Run":
        self.steps = sorted(
            int(m.group(1)) for f in self.checkpoint_dir.glob("step_*.safetensors")
            if (m := CHECKPOINT_RE.fullmatch(f.name))
        ) if self.checkpoint_dir.is_dir() else []
        return self

    def state_dict(self, step: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Weights and metadata of one checkpoint, checked against this run's config."""
        if step not in self.steps:
            raise MechgrokError(
                f"{self.path} has no checkpoint at step {step}; "
                f"it has {len(self.steps)} from {self.steps[0] if self.steps else '-'} to {self.steps[-1] if self.steps else '-'}"
            )
        path = self.checkpoint_path(step)
        weights, meta = load_tensors(path, "checkpoint")
        expected = self.expected_shapes
        got = {k: tuple(v.shape) for k, v in weights.items()}
        if got != expected:
            wrong = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
            detail = ", ".join(f"{k}: {got.get(k)} vs config {expected.get(k)}" for k in wrong[:4])
            raise MechgrokError(f"{path} does not fit the run's config ({detail})")
        return weights, meta

    @cached_property
    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the weights (no buffers) a checkpoint of this config must have."""
        model = build_hooked_transformer(self.config, self.d_vocab, self.n_classes)
        return {k: tuple(v.shape) for k, v in weights_only(model.state_dict()).items()}

    def model(self, step: int | None = None, device: str = "cpu") -> HookedTransformer:
        """A HookedTransformer holding the weights of checkpoint ``step`` (default: the last)."""
        if step is None:
            if not self.steps:
                raise MechgrokError(f"{self.path} has no checkpoints")
            step = self.steps[-1]
        weights, _ = self.state_dict(step)
        model = build_hooked_transformer(self.config, self.d_vocab, self.n_classes, device)
        load_weights(model, weights)
        model.eval()
        return model


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; [] when it does not exist."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_finished(run_dir: Path, steps: int) -> bool:
    """Whether ``run_dir`` holds a run trained to ``steps`` or beyond (its summary.json says so)."""
    summary = Path(run_dir) / "summary.json"
    return summary.is_file() and read_json(summary)["steps"] >= steps


def first_step_at(rows: list[dict[str, Any]], key: str, threshold: float) -> int | None:
    """The step of the first metrics row with row[key] >= threshold, or None."""
    return next((r["step"] for r in rows if r[key] >= threshold), None)


def weights_only(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop HookedTransformer's buffers (attn.mask, attn.IGNORE): their shapes vary across TL 3.x releases."""
    return {k: v for k, v in state_dict.items() if not k.endswith((".mask", ".IGNORE"))}


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Plain load_state_dict (no LayerNorm folding, no centring) keeping the model's own buffers."""
    merged = model.state_dict()
    merged.update(weights)
    model.load_state_dict(merged, strict=True)


def write_run_config(path: Path, cfg: TrainConfig, d_vocab: int, n_classes: int) -> None:
    write_json(path / "config.json", {"format": RUN_FORMAT, "config": cfg.to_dict(),
                                      "d_vocab": d_vocab, "n_classes": n_classes})


def load_run(path: str | Path) -> Run:
    """Open a run directory written by ``mechgrok train``."""
    path = Path(path)
    if not path.is_dir():
        raise MechgrokError(f"{path} is not a directory")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise MechgrokError(f"{path} is not a mechgrok run directory (no config.json)")
    raw = read_json(config_path)
    if not isinstance(raw, dict) or raw.get("format") != RUN_FORMAT:
        raise MechgrokError(f"{config_path} is not a mechgrok run config")
    cfg = TrainConfig.from_dict(raw["config"], source=str(config_path))
    return Run(path, cfg, raw["d_vocab"], raw["n_classes"]).refresh()
