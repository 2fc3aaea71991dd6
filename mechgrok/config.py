"""Run configuration in four sections, each owned by one part of the pipeline.

- ``DataConfig`` (``data``): the task, its size, the split, the seed, augmentation.
- ``ModelConfig`` (``model``): the transformer (TransformerLens HookedTransformer layout).
- ``OptimConfig`` (``optim``): AdamW, warm-up, steps, batch size, Grokfast.
- ``RunConfig`` (``run``): checkpoints, logging, early stop, device, threads, output.

Every section validates itself on construction: a value of the wrong type, a non-finite
float or an out-of-range number raises ``MechgrokError`` naming the field, so no invalid
config exists anywhere in the program. Field names are unique across sections, which keeps
the flat spellings working: ``TrainConfig(lr=1e-2, p=23)``, the CLI's ``--lr``, flat TOML or
JSON files and every ``config.json`` written so far. Files may also use the section tables
(``[optim]`` ``lr = 1e-2``). Serialised configs stay flat (``to_dict``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from .errors import MechgrokError
from .fileio import read_document
from .grokfast import FILTERS
from .tasks import check_task, get_task

FieldValue = bool | int | float | str | None  # every config field holds one scalar
ConfigValues = dict[str, FieldValue]  # {field: value}, flat (config.json) or one section


ACT_FNS = ("relu", "gelu", "silu")
DROPOUT_ON = ("sublayer", "residual")
INITS = ("paper", "he")
BIASES = ("mlp", "none")  # mlp: b_in and b_out train (Nanda et al.); none: no bias trains (the miiii code)
MLP_INITS = ("independent", "tied")  # tied: W_out from W_in's draws (the miiii code draws both from one key)
DROPOUT_MASKS = ("example", "step")  # step: one mask shared by every example of a step (the miiii code)
DTYPES = ("float32", "float64")
TASK_LOSSES = ("sum", "mean")  # several heads: sum or mean over the heads of CE_q / ln q
GROKFAST_STARTS = ("gradient", "zero")  # the EMA's first value: the first gradient, or zero (the miiii code)
AUG_SCOPES = ("all", "train")
MAX_INT = 2**63 - 1  # torch seeds and counters are int64
FLOAT32_MAX = 3.4028234663852886e38
MAX_NAME_BYTES = 255  # the longest file name Linux file systems take
MAX_THREADS = 1024  # torch refuses a thread count that does not fit a C int; no CPU here has more cores


def _check_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError
    if not -MAX_INT <= int(value) <= MAX_INT:
        raise ValueError("out of the 64-bit integer range")
    return int(value)


def _check_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError
    if not math.isfinite(float(value)):
        raise ValueError("not a finite number")
    return float(value)


def _check_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


# The one type map: a field's annotation -> (checker of a Python/JSON/TOML value, parser of command-line text).
FIELD_TYPES = {
    "int": (_check_int, int),
    "float": (_check_float, float),
    "str": (_check_str, str),
}
TYPE_NAMES = {"int": "an integer", "float": "a finite number", "str": "a string"}


def check_field(owner: str, name: str, kind: str, value: Any) -> Any:
    """``value`` as field ``name``'s type, or MechgrokError naming the field (no coercion of bools or strings)."""
    try:
        return FIELD_TYPES[kind][0](value)
    except (TypeError, ValueError) as err:
        why = f" ({err})" if str(err) else ""
        raise MechgrokError(f"{owner}: {name} must be {TYPE_NAMES[kind]}, got {value!r}{why}") from None


def field_parser(kind: str):
    """Command-line text -> a value of a field of ``kind`` (argparse ``type=``; argparse names it in its errors:
    "invalid float value: 'abc'")."""
    return FIELD_TYPES[kind][1]


class _Section:
    """Type-checks every field in ``__post_init__`` and then calls the section's own ``check``."""

    NAME: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, check_field("config", f.name, f.type, getattr(self, f.name)))
        self.check()

    def check(self) -> None:  # ranges and choices; overridden per section
        pass


def _positive(owner: _Section, *names: str) -> None:
    for name in names:
        if getattr(owner, name) < 1:
            raise MechgrokError(f"config: {name} must be a positive integer, got {getattr(owner, name)}")


def _not_negative(owner: _Section, *names: str) -> None:
    for name in names:
        if getattr(owner, name) < 0:
            raise MechgrokError(f"config: {name} must not be negative, got {getattr(owner, name)}")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise MechgrokError(f"config: unknown {name} {value!r}; choose one of {', '.join(choices)}")


def _in_range(name: str, value: float, low: float, high: float, high_open: bool = False) -> None:
    if not (low <= value < high if high_open else low <= value <= high):
        raise MechgrokError(f"config: {name} must lie in [{low}, {high}{')' if high_open else ']'}, got {value}")


@dataclass(frozen=True)
class DataConfig(_Section):
    """The task and its split. ``seed`` seeds the split, the initial weights and the batch/dropout draws."""

    NAME: ClassVar[str] = "data"
    task: str = "add"
    p: int = 113
    frac_train: float = 0.3
    seed: int = 0
    aug_reverse: float = 0.0  # probability of operand reversal per training example
    aug_negate: float = 0.0  # probability of negating each operand per training example
    aug_scope: str = "all"  # pairs augmentation may produce: all (the paper) or train (held-out ones left unaugmented)

    def check(self) -> None:
        check_task(self.task, self.p)
        if not 0 < self.frac_train < 1:
            raise MechgrokError(f"config: frac_train must lie strictly between 0 and 1, got {self.frac_train}")
        _not_negative(self, "seed")
        _in_range("aug_reverse", self.aug_reverse, 0, 1)
        _in_range("aug_negate", self.aug_negate, 0, 1)
        _choice("aug_scope", self.aug_scope, AUG_SCOPES)


@dataclass(frozen=True)
class ModelConfig(_Section):
    """HookedTransformer layout: no LayerNorm, causal attention, n_ctx 3, logits read at the last position."""

    NAME: ClassVar[str] = "model"
    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"
    init_scale: float = 1.0  # multiplies the initial weights (either init)
    dropout: float = 0.0  # training only (HookedTransformer has none)
    dropout_on: str = "sublayer"  # sublayer: attention and MLP outputs; residual: the stream after each (miiii code)
    init: str = "paper"  # paper: N(0, 1/d_model) (Nanda et al.); he: truncated He normal (the miiii code)
    biases: str = "mlp"  # which biases train: mlp (b_in, b_out) or none; the others are always zero buffers
    mlp_init: str = "independent"  # tied: W_out is W_in's draws reshaped and rescaled (the miiii code)
    dropout_mask: str = "example"  # example: a mask per example; step: one mask for the whole step (miiii code)
    dtype: str = "float32"  # the weights' and activations' float type in training (the miiii code: float64)

    def check(self) -> None:
        _positive(self, "n_layers", "d_model", "n_heads", "d_head", "d_mlp")
        _choice("act_fn", self.act_fn, ACT_FNS)
        _choice("dropout_on", self.dropout_on, DROPOUT_ON)
        _choice("init", self.init, INITS)
        _choice("biases", self.biases, BIASES)
        _choice("mlp_init", self.mlp_init, MLP_INITS)
        _choice("dropout_mask", self.dropout_mask, DROPOUT_MASKS)
        _choice("dtype", self.dtype, DTYPES)
        if self.init_scale <= 0:
            raise MechgrokError(f"config: init_scale must be positive, got {self.init_scale}")
        _in_range("dropout", self.dropout, 0, 1, high_open=True)


@dataclass(frozen=True)
class OptimConfig(_Section):
    """AdamW with linear warm-up then a constant learning rate (optionally cut once the model generalises);
    optional Grokfast gradient filter."""

    NAME: ClassVar[str] = "optim"
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    warmup_steps: int = 10
    steps: int = 20_000
    batch_size: int = 0  # 0 = full batch
    grokfast: str = "none"  # gradient filter: none, ema or ma (mechgrok/grokfast.py)
    grokfast_alpha: float = 0.98
    grokfast_lamb: float = 2.0
    grokfast_window: int = 100
    grokfast_start: str = "gradient"  # the EMA's first value: the first gradient, or zero (the miiii code)
    task_loss: str = "sum"  # several heads (miiii): sum or mean of CE_q / ln q (the miiii code: mean)
    decay_at_test_acc: float = 0.0  # once a logged test accuracy reaches this, lr *= decay_factor (0 = never)
    decay_factor: float = 0.1

    def check(self) -> None:
        _in_range("decay_at_test_acc", self.decay_at_test_acc, 0, 1)
        _in_range("decay_factor", self.decay_factor, 0, 1)
        if self.lr <= 0:
            raise MechgrokError(f"config: lr must be positive, got {self.lr}")
        _not_negative(self, "weight_decay", "warmup_steps", "batch_size", "grokfast_lamb")
        if self.grokfast_lamb > FLOAT32_MAX:  # it scales float32 gradients
            raise MechgrokError(f"config: grokfast_lamb must be at most {FLOAT32_MAX:.3g}, got {self.grokfast_lamb}")
        _in_range("beta1", self.beta1, 0, 1, high_open=True)
        _in_range("beta2", self.beta2, 0, 1, high_open=True)
        _positive(self, "steps", "grokfast_window")
        _choice("grokfast", self.grokfast, FILTERS)
        _choice("grokfast_start", self.grokfast_start, GROKFAST_STARTS)
        _choice("task_loss", self.task_loss, TASK_LOSSES)
        _in_range("grokfast_alpha", self.grokfast_alpha, 0, 1, high_open=True)


@dataclass(frozen=True)
class RunConfig(_Section):
    """Bookkeeping: none of it changes what a run computes, so it may change when a run resumes."""

    NAME: ClassVar[str] = "run"
    save_every: int = 100
    dense_save_every: int = 0  # extra checkpoints every this many steps ...
    dense_save_until: int = 0  # ... up to this step (0 = off)
    log_every: int = 10
    stop_at_test_acc: float = 0.0  # stop at the first log step with test accuracy >= this (0 = off)
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 = torch's default
    out: str = ""  # run directory; empty = checkpoints/<task>_p<p>_seed<seed>

    def check(self) -> None:
        _positive(self, "save_every", "log_every")
        _not_negative(self, "dense_save_every", "dense_save_until", "threads")
        if self.threads > MAX_THREADS:
            raise MechgrokError(f"config: threads must be at most {MAX_THREADS}, got {self.threads}")
        _in_range("stop_at_test_acc", self.stop_at_test_acc, 0, 1)
        if not self.device.strip():
            raise MechgrokError("config: device must not be empty")
        long = [part for part in Path(self.out).parts if len(part.encode()) > MAX_NAME_BYTES]
        if long:
            raise MechgrokError(f"config: out has a name longer than {MAX_NAME_BYTES} bytes, which no file system "
                                f"takes: {long[0][:40]}...")


SECTIONS: tuple[type[_Section], ...] = (DataConfig, ModelConfig, OptimConfig, RunConfig)
FIELD_SECTION: dict[str, type[_Section]] = {f.name: s for s in SECTIONS for f in fields(s)}
FIELD_KIND: dict[str, str] = {f.name: f.type for s in SECTIONS for f in fields(s)}
# Fields that may change between a run and its resumption without changing its results.
RESUMABLE_FIELDS = ("steps", *(f.name for f in fields(RunConfig)))
# Fields every config.json has had since the first release; later ones default when missing.
RUN_CONFIG_FORMAT = "mechgrok.run"  # config.json's "format" (mechgrok.run.RUN_FORMAT)
CORE_FIELDS = ("task", "p", "frac_train", "seed", "n_layers", "d_model", "n_heads", "d_head", "d_mlp")


class TrainConfig:
    """Everything a run depends on: ``data``, ``model``, ``optim``, ``run`` sections.

    ``TrainConfig(p=23, lr=1e-2)`` takes flat field names; ``TrainConfig(model=ModelConfig(...))``
    whole sections. Defaults are Nanda et al.'s one-layer p=113 addition model.
    """

    __slots__ = ("data", "model", "optim", "run")

    def __init__(self, data: DataConfig | None = None, model: ModelConfig | None = None,
                 optim: OptimConfig | None = None, run: RunConfig | None = None, **flat: Any):
        given = {"data": data, "model": model, "optim": optim, "run": run}
        unknown = sorted(set(flat) - set(FIELD_SECTION))
        if unknown:
            raise MechgrokError(f"config: unknown field(s) {', '.join(unknown)}")
        for section in SECTIONS:
            own = {k: v for k, v in flat.items() if FIELD_SECTION[k] is section}
            base = given[section.NAME]
            if base is None:
                base = section(**own)
            elif own:
                base = dataclasses.replace(base, **own)
            object.__setattr__(self, section.NAME, base)
        self._check_together()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("TrainConfig is immutable; use .replace(...)")

    def __reduce__(self):  # pickling (worker processes) rebuilds it through __init__, validated
        return (TrainConfig, (self.data, self.model, self.optim, self.run))

    def _check_together(self) -> None:
        """Constraints across sections."""
        n = get_task(self.data.task).n_examples(self.data.p)
        n_train = int(self.data.frac_train * n)
        if n_train == 0 or n_train == n:
            raise MechgrokError(f"config: frac_train={self.data.frac_train} leaves an empty train or test set "
                                f"for {n} examples")

    def replace(self, **flat: Any) -> "TrainConfig":
        """A copy with these flat fields changed (validated)."""
        return TrainConfig(self.data, self.model, self.optim, self.run, **flat)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrainConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"TrainConfig({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    @property
    def run_name(self) -> str:
        return f"{self.data.task}_p{self.data.p}_seed{self.data.seed}"

    def to_dict(self) -> ConfigValues:
        """Flat {field: value}, the form config.json, checkpoints and report.json hold."""
        return {k: v for s in SECTIONS for k, v in dataclasses.asdict(getattr(self, s.NAME)).items()}

    def sections(self) -> dict[str, ConfigValues]:
        """{section: {field: value}}, the form a sectioned TOML file holds."""
        return {s.NAME: dataclasses.asdict(getattr(self, s.NAME)) for s in SECTIONS}

    @staticmethod
    def checked_values(values: Any, source: str = "config") -> ConfigValues:
        """Flat, type-checked fields from flat or sectioned ``values`` (a parsed JSON/TOML document)."""
        if not isinstance(values, dict):
            raise MechgrokError(f"{source}: expected a table of config fields, got {type(values).__name__}")
        flat: dict[str, object] = {}
        for key, value in values.items():
            if key in FIELD_SECTION:
                flat[key] = value
            elif key in {s.NAME for s in SECTIONS} and isinstance(value, dict):
                section = next(s for s in SECTIONS if s.NAME == key)
                for name, inner in value.items():
                    if FIELD_SECTION.get(name) is not section:
                        raise MechgrokError(f"{source}: unknown key {(key + '.' + name)!r}")
                    flat[name] = inner
            else:
                raise MechgrokError(f"{source}: unknown key {key!r}")
        return {k: check_field(source, k, FIELD_KIND[k], v) for k, v in flat.items()}

    @classmethod
    def from_dict(cls, values: Any, source: str = "config") -> "TrainConfig":
        checked = cls.checked_values(values, source)
        try:
            return cls(**checked)
        except MechgrokError as err:
            raise MechgrokError(f"{source}: {str(err).removeprefix('config: ')}") from None

    @classmethod
    def file_values(cls, path: str | Path) -> ConfigValues:
        """The fields a TOML (``.toml``) or JSON file sets, checked; a run's config.json gives its run's fields
        (``mechgrok train --config RUN/config.json`` resumes that run, or with another ``--out`` trains its like)."""
        values = read_document(path, "config file")
        if isinstance(values, dict) and values.get("format") == RUN_CONFIG_FORMAT and isinstance(values.get("config"),
                                                                                                 dict):
            values = values["config"]
        return cls.checked_values(values, source=str(path))

    def identity(self) -> ConfigValues:
        """The fields that define what a run computes (everything but RESUMABLE_FIELDS)."""
        return {k: v for k, v in self.to_dict().items() if k not in RESUMABLE_FIELDS}

    def differences(self, saved: "TrainConfig") -> str:
        """The identity fields where ``saved`` (a run on disk) and this config differ, as text; '' if none."""
        theirs, ours = saved.identity(), self.identity()
        return ", ".join(f"{k}: {theirs[k]!r} there vs {ours[k]!r} now" for k in ours if theirs[k] != ours[k])
