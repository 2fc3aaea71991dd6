"""The run directory: its file names, the writer training uses, and the ``Run`` reader.

This module is the only one that knows the layout of ``RUN_DIR``::

    config.json                 the config (flat fields) plus vocabulary sizes
    dataset.safetensors         inputs [N, 3], labels [N] (or [N, T]), train_idx, test_idx
    metrics.jsonl               one JSON row every log_every steps and at every checkpoint
    checkpoints/step_0000100.safetensors
                                HookedTransformer-layout state dict (weights, no buffers) + JSON
                                metadata (config, step, metrics row) + a checksum
    resume.safetensors          everything a resume needs: weights, AdamW moments, the
                                Grokfast filter, the RNG states
    summary.json                written when training stops
    .lock                       held (flock) while a trainer writes the run
    analysis/                   written by ``mechgrok analyze`` only (REPORT_FILE, MEASURES_FILE, ...)
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .config import CORE_FIELDS, RUN_CONFIG_FORMAT, TrainConfig
from .errors import MechgrokError
from .metrics import MetricsRow
from .fileio import (JSONObject, TEMPORARY_RE, load_tensors, read_json, read_jsonl, remove_stale_temporaries, save_tensors, write_json,
                     write_jsonl)
from .runtime import available_bytes, n_parameters
from .tasks import Dataset

if TYPE_CHECKING:
    from .hooked import HookedModel

try:
    import fcntl
except ImportError:  # not POSIX: runs are not guarded against a second trainer
    fcntl = None

CONFIG_FILE = "config.json"
DATASET_FILE = "dataset.safetensors"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
RESUME_FILE = "resume.safetensors"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
ANALYSIS_DIR = "analysis"
REPORT_FILE = "report.json"
MEASURES_FILE = "measures.csv"
SPECTRUM_FILE = "spectrum.csv"
EXPLORER_ARRAYS_FILE = "explorer.safetensors"
EXPLORER_FILE = "explorer.html"
# All a resume needs: a run carried to another machine by these files alone continues bit for bit there (the
# checkpoints before that point stay behind).
RESUME_FILES = (CONFIG_FILE, DATASET_FILE, METRICS_FILE, RESUME_FILE)
RUN_FORMAT = RUN_CONFIG_FORMAT
CHECKPOINT_RE = re.compile(r"step_(\d+)\.safetensors")


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.safetensors"


def default_run_dir(cfg: TrainConfig) -> Path:
    """``cfg.run.out``, or checkpoints/<task>_p<p>_seed<seed>."""
    return Path(cfg.run.out) if cfg.run.out else Path("checkpoints") / cfg.run_name


# -- reading ----------------------------------------------------------------------------------
def _dataset_from_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: JSONObject) -> Dataset:
    """A Dataset from dataset.safetensors' contents, every tensor checked (one error line naming the file)."""
    missing = [k for k in ("inputs", "labels", "train_idx", "test_idx") if k not in tensors]
    if missing:
        raise MechgrokError(f"{path} lacks tensor(s) {', '.join(missing)}")
    try:
        task, p = str(meta["task"]), int(meta["p"])
        n_tokens = int(meta.get("n_tokens", meta["n_classes"]))
        heads = tuple(int(h) for h in meta.get("heads", [meta["n_classes"]]))
    except (KeyError, TypeError, ValueError):
        raise MechgrokError(f"{path} has incomplete metadata (task, p, n_classes)") from None
    inputs, labels, train_idx, test_idx = (tensors[k] for k in ("inputs", "labels", "train_idx", "test_idx"))
    for name, t in (("inputs", inputs), ("labels", labels), ("train_idx", train_idx), ("test_idx", test_idx)):
        if t.dtype != torch.int64:
            raise MechgrokError(f"{path}: {name} must be int64, found {t.dtype}")
    n = len(inputs)
    if inputs.dim() != 2 or inputs.shape[1] != 3 or len(labels) != n or labels.dim() != (1 if len(heads) == 1 else 2):
        raise MechgrokError(f"{path}: inputs {tuple(inputs.shape)} and labels {tuple(labels.shape)} do not fit")
    if n and (inputs.min() < 0 or inputs.max() > n_tokens):
        raise MechgrokError(f"{path}: inputs hold tokens outside 0..{n_tokens}")
    columns = labels.reshape(n, -1)
    if n and any((columns[:, i].min() < 0) or (columns[:, i].max() >= h) for i, h in enumerate(heads)):
        raise MechgrokError(f"{path}: labels outside their classes")
    for name, index in (("train_idx", train_idx), ("test_idx", test_idx)):
        if index.dim() != 1 or len(index) == 0 or index.min() < 0 or index.max() >= n:
            raise MechgrokError(f"{path}: {name} is empty or indexes outside 0..{n - 1}")
    return Dataset(task, p, n_tokens, heads, inputs, labels, train_idx, test_idx)


def load_dataset(path: Path) -> Dataset:
    loaded = load_tensors(path, "dataset")
    return _dataset_from_tensors(path, loaded.tensors, loaded.meta)


def weights_only(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop HookedTransformer's buffers (attn.mask, attn.IGNORE): their shapes vary across TL 3.x releases."""
    return {k: v for k, v in state_dict.items() if not k.endswith((".mask", ".IGNORE"))}


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Plain load_state_dict into a ``mechgrok.model.Transformer`` keeping its own buffers (TransformerLens's
    models load through ``mechgrok.hooked.load_checkpoint``)."""
    merged = model.state_dict()
    merged.update({k: v.to(merged[k].device) for k, v in weights.items()})
    model.load_state_dict(merged, strict=True)


@dataclass
class Checkpoint:
    """One checkpoint's weights and metadata; ``verified`` when its checksum was checked."""

    step: int
    weights: dict[str, torch.Tensor]
    meta: JSONObject
    verified: bool


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
        return self.path / CHECKPOINT_DIR

    @cached_property
    def imported_from(self) -> JSONObject | None:
        """Where ``mechgrok import`` read this run from ({path, format}), or None for a run trained here."""
        source = read_json(self.path / CONFIG_FILE).get("imported_from")
        return source if isinstance(source, dict) else None

    @property
    def analysis_dir(self) -> Path:
        return self.path / ANALYSIS_DIR

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoint_dir / checkpoint_name(step)

    @cached_property
    def dataset(self) -> Dataset:
        data = load_dataset(self.path / DATASET_FILE)
        if (data.task, data.p) != (self.config.data.task, self.config.data.p) or data.d_vocab != self.d_vocab:
            raise MechgrokError(f"{self.path / DATASET_FILE} is not the dataset of this run's config "
                                f"({data.task} p={data.p} vs {self.config.data.task} p={self.config.data.p})")
        return data

    def metrics(self) -> list[MetricsRow]:
        """Rows of metrics.jsonl (``pandas.DataFrame(run.metrics())`` for a table)."""
        return read_metrics(self.path / METRICS_FILE)

    def summary(self) -> JSONObject | None:
        """summary.json (checked), or None before training has stopped once."""
        path = self.path / SUMMARY_FILE
        return read_summary(path) if path.is_file() else None

    def refresh(self) -> "Run":
        self.steps = sorted(
            int(m.group(1)) for f in self.checkpoint_dir.glob("step_*.safetensors")
            if (m := CHECKPOINT_RE.fullmatch(f.name))
        ) if self.checkpoint_dir.is_dir() else []
        return self

    def checkpoint(self, step: int) -> Checkpoint:
        """Weights and metadata of one checkpoint, checked against this run's config and its checksum."""
        if step not in self.steps:
            raise MechgrokError(
                f"{self.path} has no checkpoint at step {step}; "
                f"it has {len(self.steps)} from {self.steps[0] if self.steps else '-'} to {self.steps[-1] if self.steps else '-'}"
            )
        path = self.checkpoint_path(step)
        loaded = load_tensors(path, "checkpoint")
        expected = self.expected_shapes
        got = {k: tuple(v.shape) for k, v in loaded.tensors.items()}
        if got != expected:
            wrong = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
            detail = ", ".join(f"{k}: {got.get(k)} vs config {expected.get(k)}" for k in wrong[:4])
            raise MechgrokError(f"{path} does not fit the run's config ({detail})")
        if any(not torch.isfinite(t).all() for t in loaded.tensors.values() if t.is_floating_point()):
            raise MechgrokError(f"{path} holds non-finite weights")
        return Checkpoint(step, loaded.tensors, loaded.meta, loaded.verified)

    def state_dict(self, step: int) -> tuple[dict[str, torch.Tensor], JSONObject]:
        """(weights, metadata) of one checkpoint (see ``checkpoint``)."""
        ckpt = self.checkpoint(step)
        return ckpt.weights, ckpt.meta

    @cached_property
    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the weights a checkpoint of this config must have (no memory allocated)."""
        from .model import Transformer

        with torch.device("meta"):
            model = Transformer(self.config.model, self.d_vocab, self.n_classes)
        return {k: tuple(v.shape) for k, v in weights_only(model.state_dict()).items()}

    def model(self, step: int | None = None, device: str = "cpu") -> HookedModel:
        """TransformerLens's model (HookedTransformer on TL 3, TransformerBridge on TL 4) holding the weights of
        checkpoint ``step`` (default: the last), in eval mode."""
        from .hooked import model_of

        if step is None:
            if not self.steps:
                raise MechgrokError(f"{self.path} has no checkpoints")
            step = self.steps[-1]
        return model_of(self.config.model, self.d_vocab, self.n_classes, self.checkpoint(step).weights, device)


def _run_config(config_path: Path) -> tuple[TrainConfig, int, int]:
    raw = read_json(config_path)
    if not isinstance(raw, dict) or raw.get("format") != RUN_FORMAT:
        raise MechgrokError(f"{config_path} is not a mechgrok run config")
    values = raw.get("config")
    if not isinstance(values, dict):
        raise MechgrokError(f"{config_path}: 'config' must be a table of fields, got {type(values).__name__}")
    missing = [k for k in CORE_FIELDS if k not in values]
    if missing:
        raise MechgrokError(f"{config_path}: config lacks {', '.join(missing)}")
    sizes = [raw.get("d_vocab"), raw.get("n_classes")]
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise MechgrokError(f"{config_path}: d_vocab and n_classes must be positive integers, got {sizes}")
    return TrainConfig.from_dict(values, source=str(config_path)), sizes[0], sizes[1]


def read_metrics(path: Path) -> list[MetricsRow]:
    """metrics.jsonl's rows, each checked: an integer ``step`` >= 0, never below the row before, and numbers (or
    null) only."""
    rows = read_jsonl(path)
    last = -1
    for number, row in enumerate(rows, start=1):
        step = row.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < max(last, 0):
            raise MechgrokError(f"{path}: line {number} has no valid step (an integer >= 0, not below the row "
                                f"before), got {step!r}")
        wrong = [k for k, v in row.items() if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))]
        if wrong:
            raise MechgrokError(f"{path}: line {number} holds a value that is not a number ({wrong[0]}: {row[wrong[0]]!r})")
        last = step
    return rows


def load_run(path: str | Path) -> Run:
    """Open a run directory written by ``mechgrok train``."""
    path = Path(path)
    if not path.is_dir():
        raise MechgrokError(f"{path} is not a directory")
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise MechgrokError(f"{path} is not a mechgrok run directory (no {CONFIG_FILE})")
    cfg, d_vocab, n_classes = _run_config(config_path)
    weights = 4 * n_parameters(cfg, d_vocab, n_classes)
    if weights > available_bytes(torch.device("cpu")):  # before a model of it is built (minutes for 10^6 layers)
        raise MechgrokError(f"{config_path}: a model of this config needs {weights / 2**30:.1f} GiB for its weights "
                            "alone, more than this machine has free")
    return Run(path, cfg, d_vocab, n_classes).refresh()


SUMMARY_NUMBERS = ("wall_seconds", "train_loss", "test_loss", "train_acc", "test_acc")


def read_summary(path: Path) -> JSONObject:
    """summary.json, checked: ``steps`` an integer >= 0, ``grok_step`` one or null, the losses, accuracies (in
    [0, 1]) and wall time numbers; one line naming the field otherwise."""
    summary = read_json(path)
    if not isinstance(summary, dict):
        raise MechgrokError(f"{path} is not a table of fields")

    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    problem = None
    if not whole(summary.get("steps")):
        problem = "steps"
    elif summary.get("grok_step") is not None and not whole(summary["grok_step"]):
        problem = "grok_step"
    for key in SUMMARY_NUMBERS:
        value = summary.get(key)
        if problem is None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                or (key.endswith("_acc") and not 0 <= value <= 1)
                                or (key == "wall_seconds" and not 0 <= value < float("inf"))):
            problem = key
    if problem is not None:
        raise MechgrokError(f"{path} is damaged: {problem} is {summary.get(problem)!r}; train the run again "
                            "(it resumes) to rewrite it")
    return summary


def is_finished(run_dir: Path, steps: int) -> bool:
    """Whether ``run_dir`` holds a run trained to ``steps`` or beyond (its summary.json says so; a damaged one
    does not)."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        return False
    try:
        return read_summary(path)["steps"] >= steps
    except MechgrokError:
        return False


# -- writing ----------------------------------------------------------------------------------
def _only_scaffolding(path: Path) -> bool:
    """Whether ``path`` holds nothing but our own empty scaffolding (a failed start) or stale temporaries."""
    for entry in path.iterdir():
        if entry.name == CHECKPOINT_DIR and entry.is_dir():
            if any(not TEMPORARY_RE.fullmatch(e.name) for e in entry.iterdir()):
                return False
        elif entry.name != LOCK_FILE and not TEMPORARY_RE.fullmatch(entry.name):
            return False
    return True


class RunWriter:
    """The writer a trainer holds on its run directory (locked while open).

    ``RunWriter.open`` checks the directory before creating anything: a new run goes into a
    missing or empty directory (or one holding only the scaffolding of a failed start), an
    existing run must have the same config apart from the resumable fields. It removes the
    temporaries a killed write left behind, and nothing else.
    """

    def __init__(self, path: Path, existing: Run | None, lock_handle, created: bool):
        self.path, self.existing, self._lock, self.created = path, existing, lock_handle, created

    @classmethod
    def open(cls, path: Path, cfg: TrainConfig) -> "RunWriter":
        path = Path(path)
        existing = None
        created = not path.exists()
        if path.exists() and not path.is_dir():
            raise MechgrokError(f"output {path} exists and is not a directory")
        if path.is_dir() and (path / CONFIG_FILE).is_file():
            existing = load_run(path)
            if existing.imported_from:
                raise MechgrokError(f"{path} was imported from {existing.imported_from.get('path')} "
                                    f"(mechgrok import); it holds no training state, so it cannot be trained further")
            mismatch = cfg.differences(existing.config)
            if mismatch:
                raise MechgrokError(f"{path} holds a run of another config ({mismatch}); choose another --out")
        elif path.is_dir() and not _only_scaffolding(path):
            raise MechgrokError(f"output {path} is not empty and is not a mechgrok run; refusing to write there")
        try:
            (path / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
            handle = open(path / LOCK_FILE, "a")
        except OSError as err:
            raise MechgrokError(f"output directory {path} is not writable ({err.strerror or err})") from None
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise MechgrokError(f"{path} is being trained by another process; wait for it or choose another "
                                    "--out") from None
        writer = cls(path, existing, handle, created)
        for directory in (path, path / CHECKPOINT_DIR):
            remove_stale_temporaries(directory)
        return writer

    def abandon(self) -> None:
        """Undo a new run whose start failed before its config was written: remove what it wrote, nothing else."""
        self.close()
        if self.existing is None and not (self.path / CONFIG_FILE).exists():
            (self.path / DATASET_FILE).unlink(missing_ok=True)  # written just before the config
            ckpt = self.path / CHECKPOINT_DIR
            if ckpt.is_dir() and not any(ckpt.iterdir()):
                ckpt.rmdir()
            (self.path / LOCK_FILE).unlink(missing_ok=True)
            if self.created and self.path.is_dir() and not any(self.path.iterdir()):
                shutil.rmtree(self.path, ignore_errors=True)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def write_config(self, cfg: TrainConfig, d_vocab: int, n_classes: int, source: JSONObject | None = None) -> None:
        """config.json; ``source``: where an imported run came from (such a run is not trained further)."""
        extra = {"imported_from": source} if source else {}
        write_json(self.path / CONFIG_FILE, {"format": RUN_FORMAT, "config": cfg.to_dict(),
                                             "d_vocab": d_vocab, "n_classes": n_classes, **extra})

    def save_dataset(self, data: Dataset, cfg: TrainConfig) -> None:
        save_tensors(self.path / DATASET_FILE,
                     {"inputs": data.inputs, "labels": data.labels, "train_idx": data.train_idx,
                      "test_idx": data.test_idx},
                     {"kind": "dataset", "task": data.task, "p": data.p, "n_classes": data.n_classes,
                      "n_tokens": data.n_tokens, "heads": list(data.heads), "frac_train": cfg.data.frac_train,
                      "seed": cfg.data.seed})

    def load_dataset(self) -> Dataset:
        return load_dataset(self.path / DATASET_FILE)

    def metrics(self) -> list[MetricsRow]:
        return read_metrics(self.path / METRICS_FILE)

    def append_metrics(self, row: MetricsRow) -> None:
        """One line appended; a kill mid-line leaves a torn last line, which reading drops."""
        try:
            with open(self.path / METRICS_FILE, "a") as handle:
                handle.write(json.dumps(row) + "\n")
        except OSError as err:
            raise MechgrokError(f"cannot write {self.path / METRICS_FILE} ({err.strerror or err})") from None

    def truncate_metrics(self, last_step: int) -> None:
        """Drop metrics logged after the checkpoint we resume from (they will be logged again)."""
        write_jsonl(self.path / METRICS_FILE, [r for r in self.metrics() if r["step"] <= last_step])

    def save_checkpoint(self, step: int, weights: dict[str, torch.Tensor], meta: JSONObject) -> None:
        save_tensors(self.path / CHECKPOINT_DIR / checkpoint_name(step), weights,
                     {"kind": "checkpoint", "step": step, **meta})

    def save_resume(self, state: dict[str, torch.Tensor], meta: JSONObject) -> None:
        save_tensors(self.path / RESUME_FILE, state, {"kind": "resume", **meta})

    def load_resume(self):
        """The resume file's contents, or None when the run has none yet."""
        path = self.path / RESUME_FILE
        return load_tensors(path, "resume") if path.exists() else None

    def write_summary(self, summary: JSONObject) -> None:
        write_json(self.path / SUMMARY_FILE, summary)
