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
from ..fileio import JSONObject as JSON


PER_TASK_RE = re.compile(r"(test_acc|fit_r2)_q\d+")


def _index_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in value)


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

    def to_row(self) -> JSON:
        row = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "per_task"}
        return {**row, **self.per_task}

    @classmethod
    def from_row(cls, row: JSON, source: str = "measures") -> "CheckpointMeasures":
        names = {f.name for f in fields(cls)}
        try:
            values = {k: _number_or_none(v) for k, v in row.items() if k in names}
            if values.get("n_key_freqs") is not None:
                values["n_key_freqs"] = int(values["n_key_freqs"])
            values["per_task"] = {k: v for k, v in row.items() if PER_TASK_RE.fullmatch(k) and v is not None}
            return cls(**values)
        except TypeError as err:
            raise MechgrokError(f"{source}: a row lacks measures ({err})") from None



@dataclass
class Cluster:
    """Neurons whose variance is mostly (> threshold) one frequency k's."""

    k: int
    neurons: int
    mean_frac_explained: float


@dataclass
class LayerCircuit:
    """One block's key irreps (frequencies) and the share of its MLP neurons in their clusters."""

    layer: int
    frequencies: list[int]
    fraction_clustered: float


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
    irrep_names: list[str] = field(default_factory=list)  # the name of each index: k=3, or an irrep's
    unit: str = "frequency"  # what an index is: a frequency of Z_p's number line, or an irrep
    layer: int = 0  # the block whose MLP neurons carry the circuit
    per_layer: list[LayerCircuit] = field(default_factory=list)

    def name(self, index: int) -> str:
        """How a key frequency or irrep is written: ``k=8``, or the irrep's own name (a partition, ``k=3`` of logs)."""
        return self.irrep_names[index] if self.irrep_names else f"k={index}"

    @property
    def units(self) -> str:
        """The unit in the plural: 'frequencies' or 'irreps'."""
        return "frequencies" if self.unit == "frequency" else f"{self.unit}s"

    def to_dict(self) -> JSON:
        value = dataclasses.asdict(self)
        value["cluster_sizes_all"] = {str(k): v for k, v in self.cluster_sizes_all.items()}
        return value

    @classmethod
    def from_dict(cls, value: JSON) -> "Circuit":
        """Read report.json's form; reports of version 2 and before named Z_p's frequencies by no list."""
        value = dict(value)
        for key in ("frequencies", "embedding_top"):
            if not _index_list(value.get(key, [])):
                raise MechgrokError(f"report: key_frequencies.{key} must be a list of indices, got {value.get(key)!r}")
        value["clusters"] = [Cluster(**c) for c in value["clusters"]]
        value["cluster_sizes_all"] = {int(k): int(v) for k, v in value["cluster_sizes_all"].items()}
        value["per_layer"] = [LayerCircuit(**r) for r in value.get("per_layer", [])]
        value.setdefault("control_frequency", None)
        value.setdefault("claimed", True)
        value.setdefault("unit", "irrep" if value.get("irrep_names") else "frequency")
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


SPECTRUM_COLUMN = "k{}"  # spectrum.csv's column of index k (a frequency, or an irrep by index)


@dataclass
class Spectra:
    """The embedding spectrum of each analysed checkpoint: ``values[i][k]`` = ||W_E's element rows in irrep
    (frequency) k|| at ``steps[i]`` (``Group.spectrum``); spectrum.csv holds one row per step, columns k0..kK."""

    steps: list[int] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)

    def append(self, step: int, values: list[float]) -> None:
        self.steps.append(step)
        self.values.append(list(values))

    def at(self, step: int) -> list[float]:
        return self.values[self.steps.index(step)]

    @property
    def final(self) -> list[float]:
        return self.values[-1]

    def to_rows(self) -> list[JSON]:
        return [{"step": s, **{SPECTRUM_COLUMN.format(k): v for k, v in enumerate(row)}}
                for s, row in zip(self.steps, self.values)]

    @classmethod
    def from_rows(cls, rows: list[JSON], source: str = "spectrum") -> "Spectra":
        spectra = cls()
        for row in rows:
            try:
                width = sum(1 for name in row if name != "step")
                spectra.append(int(row["step"]), [float(row[SPECTRUM_COLUMN.format(k)]) for k in range(width)])
            except (KeyError, TypeError, ValueError) as err:
                raise MechgrokError(f"{source}: a row is not a spectrum ({err})") from None
        return spectra


@dataclass
class Phases:
    """Boundary steps (None where not placed) and the evidence behind them (see ``phases.py``)."""

    memorization_end: int | None = None
    cleanup_start: int | None = None
    cleanup_end: int | None = None
    evidence: JSON | str = field(default_factory=dict)

    @property
    def placed(self) -> bool:
        return self.memorization_end is not None

    @property
    def note(self) -> str:
        """Why a boundary was not placed ('' when every one was)."""
        return self.evidence.get("note", "") if isinstance(self.evidence, dict) else self.evidence

    def to_dict(self) -> JSON:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, value: JSON) -> "Phases":
        return cls(**{f.name: value.get(f.name) for f in fields(cls) if f.name in value})


@dataclass(frozen=True)
class Skipped:
    """A checkpoint the analysis could not read, and why."""

    step: int
    error: str
