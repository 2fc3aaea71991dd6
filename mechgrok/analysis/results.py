"""Typed results of an analysis: per-checkpoint measures, the final circuit, ablations, phases.

Each converts to and from the plain JSON/CSV form that ``report.json`` and ``measures.csv``
hold (``to_dict`` / ``from_dict``, ``to_row`` / ``from_row``); the field names are those files'
column and key names, unchanged since the first report version.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import MechgrokError


PER_TASK_RE = re.compile(r"(test_acc|fit_r2)_q\d+")


def _number_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


@dataclass
class CheckpointMeasures:
    """One checkpoint's measures (one row of measures.csv); the circuit measures are None off the Z_p grid.

    restricted_loss: CE on all pairs of the logits kept to the key frequencies; excluded_loss:
    CE on the training pairs of the logits without them; gini_embed / gini_neuron_logit: Gini
    of the Fourier-component norms of W_E's number rows and of W_out W_U; fraction_clustered:
    share of neurons in a key frequency's cluster; n_key_freqs: key frequencies this checkpoint
    would have on its own.
    """

    step: int
    train_loss: float
    test_loss: float
    train_acc: float
    test_acc: float
    sum_sq_weights: float
    restricted_loss: float | None = None
    excluded_loss: float | None = None
    gini_embed: float | None = None
    gini_neuron_logit: float | None = None
    fraction_clustered: float | None = None
    n_key_freqs: int | None = None
    per_task: dict[str, float] = field(default_factory=dict)  # multi-task runs: test_acc_q<q>, fit_r2_q<q>

    def to_row(self) -> dict[str, Any]:
        row = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "per_task"}
        return {**row, **self.per_task}

    @classmethod
    def from_row(cls, row: dict[str, Any], source: str = "measures") -> "CheckpointMeasures":
        names = {f.name for f in fields(cls)}
        try:
            values = {k: _number_or_none(v) for k, v in row.items() if k in names}
            if values.get("n_key_freqs") is not None:
                values["n_key_freqs"] = int(values["n_key_freqs"])
            values["per_task"] = {k: v for k, v in row.items() if PER_TASK_RE.fullmatch(k) and v is not None}
            return cls(**values)
        except TypeError as err:
            raise MechgrokError(f"{source}: a row lacks measures ({err})") from None

    def __getitem__(self, key: str) -> Any:  # rows read like the dicts of measures.csv
        return self.per_task[key] if key in self.per_task else getattr(self, key)


@dataclass
class Cluster:
    """Neurons whose variance is mostly (> threshold) one frequency k's."""

    k: int
    neurons: int
    mean_frac_explained: float


@dataclass
class Circuit:
    """The circuit of the last readable checkpoint: key frequencies (Z_p) or key irreps (a group's, by index
    into ``irrep_names``) from neuron clusters.

    ``claimed`` is False when that checkpoint has not generalised (test accuracy below the grok
    threshold): its clusters are then candidates, reported as evidence, not a circuit.
    """

    from_step: int
    frequencies: list[int]
    clusters: list[Cluster]
    cluster_sizes_all: dict[int, int]
    fraction_clustered: float
    threshold: float
    min_neurons: int
    embedding_top: list[int]
    agree_with_embedding: bool
    control_frequency: int | None
    claimed: bool = True
    basis: str = "Fourier basis of Z_p"
    irrep_names: list[str] = field(default_factory=list)  # a group's irreps by index; empty for Z_p frequencies
    layer: int = 0  # the block whose MLP neurons carry the circuit
    per_layer: list[dict[str, Any]] = field(default_factory=list)

    def name(self, index: int) -> str:
        """How a key frequency or irrep is written: ``k=8``, or the irrep's own name (a partition, ``k=3`` of logs)."""
        return self.irrep_names[index] if self.irrep_names else f"k={index}"

    def to_dict(self) -> dict[str, Any]:
        value = dataclasses.asdict(self)
        value["cluster_sizes_all"] = {str(k): v for k, v in self.cluster_sizes_all.items()}
        return value

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "Circuit":
        value = dict(value)
        value["clusters"] = [Cluster(**c) for c in value["clusters"]]
        value["cluster_sizes_all"] = {int(k): int(v) for k, v in value["cluster_sizes_all"].items()}
        value.setdefault("control_frequency", None)
        value.setdefault("claimed", True)
        return cls(**{f.name: value[f.name] for f in fields(cls) if f.name in value})


@dataclass
class Ablation:
    """Loss and accuracy after one ablation at one site (embed, neurons, logits; 'none' for the baseline)."""

    site: str
    ablation: str
    train_loss: float
    test_loss: float
    train_acc: float
    test_acc: float


@dataclass
class Phases:
    """Boundary steps (None where not placed) and the evidence behind them (see ``phases.py``)."""

    memorization_end: int | None = None
    cleanup_start: int | None = None
    cleanup_end: int | None = None
    evidence: dict[str, Any] | str = field(default_factory=dict)

    @property
    def placed(self) -> bool:
        return self.memorization_end is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "Phases":
        return cls(**{f.name: value.get(f.name) for f in fields(cls) if f.name in value})

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)
