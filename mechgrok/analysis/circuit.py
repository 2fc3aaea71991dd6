"""Forward passes of a HookedTransformer checkpoint over every input, and the measures read from them.

Logit directions: for ``add`` the restricted/excluded loss and the logit ablations use the
paper's directions cos/sin(w_k(a+b)); for ``sub`` cos/sin(w_k(a-b)). For the other grid tasks
(``x2xyy2``, ``x3xy2y``, ``rand``), where no such closed form is known, they use frequency k's
2D terms over (a, b) instead (linear in a, linear in b and the cos/sin products), keeping the
constant term as the bias correction: a documented extension of the paper's definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F

from ..groups import group_of_task
from ..metrics import GROK_ACCURACY, Objective, head_accuracies, sum_sq_weights
from ..miiii import periodic_r2
from ..tasks import Dataset
from .group_measures import GroupGrid
from .fourier import embedding_spectrum, fourier_basis, frequency_norms
from .measures import (NeuronClusters, fourier_row_norms, gini, mask_frequencies_1d, mask_frequencies_2d,
                       neuron_clusters, restricted_and_excluded_logits, top_frequencies)
from .results import Ablation, CheckpointMeasures, Circuit

if TYPE_CHECKING:  # TransformerLens is imported only where a model is built (mechgrok.model)
    from transformer_lens import HookedTransformer

LOGIT_SIGN = {"add": 1, "sub": -1}


def neuron_hook_name(model: HookedTransformer, layer: int | None = None) -> str:
    """The neurons the measures read: a block's MLP activations, ``hook_post`` (default: the last block's, the
    paper's)."""
    return f"blocks.{model.cfg.n_layers - 1 if layer is None else layer}.mlp.hook_post"


def last_position_hook(model: HookedTransformer) -> tuple[str, Callable]:
    """A hook keeping only the last position of the last block's ``hook_resid_mid``.

    Only the last position's logits and neurons are read, and in the last block nothing else
    depends on the earlier positions, so HookedTransformer's own forward then skips their MLP
    and unembedding (about half its work) and returns the same last-position values.
    """
    return f"blocks.{model.cfg.n_layers - 1}.hook_resid_mid", lambda act, hook: act[:, -1:]


def restricted_and_excluded(logits: torch.Tensor, task: str, freqs: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(restricted, excluded) logits [p*p, c] for key frequencies ``freqs`` (one projection for both)."""
    sign = LOGIT_SIGN.get(task)
    if sign is not None:
        return restricted_and_excluded_logits(logits, freqs, sign)
    p = int(round(logits.shape[0] ** 0.5))
    grid = logits.reshape(p, p, -1)
    return (mask_frequencies_2d(grid, freqs, True).reshape(logits.shape),
            mask_frequencies_2d(grid, freqs, False).reshape(logits.shape))


@dataclass
class GridRun:
    """One forward pass over every input: last-position logits [N, c] (float64); the analysed layer's
    last-position neurons [N, d_mlp] (``flat``) on tasks with a basis (the Z_p grid or a group), the same as
    [p, p, d_mlp] on the Z_p grid (``neurons``), every layer's when asked (``by_layer``), and, when asked,
    layer 0's attention from '=' to a [p, p, heads] on the Z_p grid."""

    logits: torch.Tensor
    neurons: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    flat: torch.Tensor | None = None
    by_layer: dict[int, torch.Tensor] = field(default_factory=dict)


def has_basis(data: Dataset) -> bool:
    """Whether the circuit measures apply: the Z_p grid (Fourier) or a task with a group (``group_grid``)."""
    return data.is_full_grid or group_of_task(data.task, data.p) is not None


def run_model(model: HookedTransformer, data: Dataset, attention: bool = False, layer: int | None = None,
              all_layers: bool = False) -> GridRun:
    """HookedTransformer's forward on every input, with hooks capturing what the measures read.

    (``run_with_hooks`` with capturing hooks does what ``run_with_cache`` with a names filter
    does, without building an ActivationCache: measurably faster on 200 checkpoints.)
    """
    captured: dict[int, torch.Tensor] = {}
    hooks = [last_position_hook(model)]
    n_layers = model.cfg.n_layers
    layer = n_layers - 1 if layer is None else layer
    pattern: list[torch.Tensor] = []
    if has_basis(data):
        for index in (range(n_layers) if all_layers else [layer]):
            hooks.append((neuron_hook_name(model, index),
                          lambda act, hook, index=index: captured.__setitem__(index, act[:, -1])))
        if attention and data.is_full_grid:
            hooks.append(("blocks.0.attn.hook_pattern", lambda act, hook: pattern.append(act[:, :, -1, 0])))
    with torch.inference_mode():
        logits = model.run_with_hooks(data.inputs, fwd_hooks=hooks)[:, -1].double()
    p = data.p
    flat = captured.get(layer)
    return GridRun(logits, flat.reshape(p, p, -1) if flat is not None and data.is_full_grid else None,
                   pattern[0].reshape(p, p, -1) if pattern else None, flat, captured if all_layers else {})


def _scores(logits: torch.Tensor, data: Dataset) -> dict[str, float]:
    """train/test loss and accuracy of logits [N, c] over every input (per-head accuracies dropped)."""
    objective = Objective(data.heads)
    scores = {**objective.scores(logits[data.train_idx], data.labels[data.train_idx], "train"),
              **objective.scores(logits[data.test_idx], data.labels[data.test_idx], "test")}
    return {k: scores[k] for k in ("train_loss", "test_loss", "train_acc", "test_acc")}


def neuron_logit_map(model: HookedTransformer, layer: int = -1) -> torch.Tensor:
    """W_L = W_out @ W_U [d_mlp, d_vocab_out] of a layer (default the last): each neuron's direct effect on the
    logits."""
    return model.blocks[layer].mlp.W_out.detach() @ model.W_U.detach()


def neuron_logit_spectrum(model: HookedTransformer, p: int, lens: GroupGrid | None = None,
                          layer: int = -1) -> torch.Tensor:
    """[K + 1] norm of each output frequency of W_L = W_out @ W_U (rows: neurons, Fourier over classes);
    with ``lens``, [n_irreps] norm of each irrep's rows of B W_L^T over the group's classes."""
    W_L = neuron_logit_map(model, layer)
    if lens is not None:
        return lens.class_spectrum(W_L.T)
    basis, _, _ = fourier_basis(p)
    return frequency_norms(basis @ W_L.T.double(), p)


@dataclass
class Measured:
    """What ``measure`` found at one checkpoint: its row, and with a basis its embedding spectrum and clusters."""

    row: CheckpointMeasures
    spectrum: torch.Tensor | None = None  # embedding spectrum [K + 1] (Z_p) or [n_irreps] (a group)
    clusters: NeuronClusters | None = None
    neurons: torch.Tensor | None = None  # [p, p, d_mlp] on the Z_p grid, [|G|, |G|, d_mlp] on a group's


def _ce(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return F.cross_entropy(logits, labels).item()


def measure(model: HookedTransformer, data: Dataset, step: int, key_freqs: list[int],
            grid: GridRun | None = None, lens: GroupGrid | None = None, layer: int = -1) -> Measured:
    """The measures of one checkpoint (weights in ``model``).

    ``grid``: this checkpoint's forward pass when it is already at hand. ``lens``: the task's group
    grid (div, mul, perm), whose irreps then play the frequencies' part (``key_freqs`` are irrep
    indices); without it the Z_p grid's Fourier basis is used. ``layer``: the block whose MLP neurons
    are read. Tasks with neither (miiii) get losses, accuracies and the weight norm only.
    """
    layer = layer % model.cfg.n_layers
    grid = grid or run_model(model, data, layer=layer)
    norm = sum_sq_weights(model.parameters())
    scores = _scores(grid.logits, data)
    if grid.flat is None:
        return Measured(CheckpointMeasures(step, **scores, sum_sq_weights=norm,
                                           per_task=task_measures(model, data, grid.logits)))
    W_E, W_L = model.W_E.detach(), neuron_logit_map(model, layer)
    if lens is not None:
        clusters = lens.clusters(grid.flat)
        restricted, excluded = lens.restricted_and_excluded(grid.logits, key_freqs)
        row = CheckpointMeasures(
            step, **scores, sum_sq_weights=norm, restricted_loss=_ce(restricted, lens.labels),
            excluded_loss=_ce(excluded[lens.in_train], lens.labels[lens.in_train]),
            gini_embed=gini(lens.basis_row_norms(lens.embedding_rows(W_E))),
            gini_neuron_logit=gini(lens.basis_row_norms(W_L[:, lens.classes].T)),
            fraction_clustered=clusters.fraction_in(key_freqs), n_key_freqs=len(clusters.key_frequencies))
        return Measured(row, lens.embedding_spectrum(W_E), clusters, lens.neuron_grid(grid.flat))
    p = data.p
    restricted, excluded = restricted_and_excluded(grid.logits, data.task, key_freqs)
    clusters = neuron_clusters(grid.neurons)
    row = CheckpointMeasures(
        step, **scores, sum_sq_weights=norm,
        restricted_loss=_ce(restricted, data.labels),
        excluded_loss=_ce(excluded[data.train_idx], data.labels[data.train_idx]),
        gini_embed=gini(fourier_row_norms(W_E[:p], p)),
        gini_neuron_logit=gini(fourier_row_norms(W_L.T, p)),
        fraction_clustered=clusters.fraction_in(key_freqs),
        n_key_freqs=len(clusters.key_frequencies),
    )
    return Measured(row, embedding_spectrum(W_E, p), clusters, grid.neurons)


def task_measures(model: HookedTransformer, data: Dataset, logits: torch.Tensor) -> dict[str, float]:
    """Multi-task (miiii) runs, per task q: test accuracy of head q, and the R^2 of W_E's number rows on
    period-q features (``mechgrok.miiii.periodic_r2``). {} for one-head tasks."""
    if len(data.heads) == 1:
        return {}
    accuracies = head_accuracies(logits[data.test_idx], data.labels[data.test_idx], data.heads)
    W_E = model.W_E.detach()[:data.p]
    values = {f"test_acc_q{q}": acc for q, acc in zip(data.heads, accuracies)}
    return {**values, **{f"fit_r2_q{q}": periodic_r2(W_E, q) for q in data.heads}}


@dataclass
class FinalCheckpoint:
    """The last readable checkpoint's forward pass and clustering, computed once per analysis and
    reused by the circuit, its measures row, the ablations and the figures.

    ``layer``: the block whose MLP carries the circuit, the one with the largest share of its
    neurons in key clusters (``per_layer`` has every block's key frequencies or irreps and share).
    """

    step: int
    grid: GridRun
    clusters: NeuronClusters | None
    spectrum: torch.Tensor | None  # embedding spectrum [K + 1] or [n_irreps]
    lens: GroupGrid | None = None
    layer: int = 0
    per_layer: list[dict] = field(default_factory=list)

    def circuit(self, test_acc: float) -> Circuit | None:
        """Key frequencies (or irreps) with their clusters, the embedding cross-check and a control."""
        if self.clusters is None:
            return None
        key = self.clusters.key_frequencies
        spectrum = self.spectrum
        embedding_top = top_frequencies(spectrum, max(len(key), 1))
        control = max((k for k in range(1, len(spectrum)) if k not in key), key=lambda k: float(spectrum[k]),
                      default=None)
        names = [self.lens.irrep_name(i) for i in range(len(self.lens.group.irreps))] if self.lens else []
        return Circuit(from_step=self.step, frequencies=key, clusters=self.clusters.table(),
                       cluster_sizes_all=self.clusters.cluster_sizes(),
                       fraction_clustered=self.clusters.fraction_clustered, threshold=self.clusters.threshold,
                       min_neurons=self.clusters.min_neurons, embedding_top=embedding_top,
                       agree_with_embedding=sorted(embedding_top) == key, control_frequency=control,
                       claimed=test_acc >= GROK_ACCURACY, basis=self.basis_name, irrep_names=names,
                       layer=self.layer, per_layer=self.per_layer)

    @property
    def basis_name(self) -> str:
        if self.lens is None:
            return "Fourier basis of Z_p"
        group = self.lens.group
        if hasattr(group, "generator"):
            return f"irreps of {group.name} (discrete logs, generator {group.generator})"
        return f"irreps of {group.name}"


def final_checkpoint(model: HookedTransformer, data: Dataset, step: int, lens: GroupGrid | None = None) -> FinalCheckpoint:
    """One pass of the final checkpoint (weights already in ``model``), with every layer's neurons and attention."""
    grid = run_model(model, data, attention=True, all_layers=True)
    if grid.flat is None:
        return FinalCheckpoint(step, grid, None, None, lens)
    p = data.p

    def clusters_of(flat: torch.Tensor) -> NeuronClusters:
        return lens.clusters(flat) if lens is not None else neuron_clusters(flat.reshape(p, p, -1))

    by_layer = {layer: clusters_of(flat) for layer, flat in grid.by_layer.items()}
    per_layer = [{"layer": layer, "frequencies": c.key_frequencies, "fraction_clustered": c.fraction_clustered}
                 for layer, c in sorted(by_layer.items())]
    layer = max(sorted(by_layer, reverse=True), key=lambda l: by_layer[l].fraction_clustered)  # ties: the later
    flat = grid.by_layer[layer]
    grid = GridRun(grid.logits, flat.reshape(p, p, -1) if data.is_full_grid else None, grid.attention, flat)
    W_E = model.W_E.detach()
    spectrum = lens.embedding_spectrum(W_E) if lens is not None else embedding_spectrum(W_E, p)
    return FinalCheckpoint(step, grid, by_layer[layer], spectrum, lens, layer, per_layer)


def _ablation_rows(model: HookedTransformer, data: Dataset, key_freqs: list[int], control_freq: int | None,
                   baseline: torch.Tensor, layer: int, mask_embedding: Callable, mask_neurons: Callable,
                   mask_logits: Callable, label: str) -> list[Ablation]:
    """The ablation loop for any basis: ``mask_*(x, freqs, keep)`` remove or keep only ``freqs`` in x."""
    inputs = data.inputs
    W_E = model.W_E.detach()

    def embed_hook(freqs, keep):
        patched = mask_embedding(W_E, freqs, keep)
        return "hook_embed", lambda act, hook: F.embedding(inputs, patched)

    def neuron_hook(freqs, keep):
        def patch(act, hook):
            act = act.clone()
            act[:, -1] = mask_neurons(act[:, -1], freqs, keep)
            return act
        return neuron_hook_name(model, layer), patch

    ablations = [(f"remove {label}={k}", [k], False) for k in key_freqs]
    if control_freq is not None:
        ablations.append((f"remove {label}={control_freq} (control)", [control_freq], False))
    ablations += [("remove key", key_freqs, False), ("keep only key", key_freqs, True)]

    rows = [Ablation("none", "none", **_scores(baseline, data))]
    with torch.inference_mode():
        for name, freqs, keep in ablations:
            for site, make_hook in (("embed", embed_hook), ("neurons", neuron_hook)):
                hooks = [last_position_hook(model), make_hook(freqs, keep)]
                logits = model.run_with_hooks(inputs, fwd_hooks=hooks)[:, -1].double()
                rows.append(Ablation(site, name, **_scores(logits, data)))
            rows.append(Ablation("logits", name, **_scores(mask_logits(baseline, freqs, keep), data)))
    return rows


def fourier_ablations(model: HookedTransformer, data: Dataset, key_freqs: list[int], control_freq: int | None,
                      baseline: torch.Tensor, layer: int = -1) -> list[Ablation]:
    """Loss and accuracy (train and test) after Fourier-space ablations at three sites.

    Sites: ``embed`` (W_E's number rows projected, via a hook on hook_embed), ``neurons``
    (the 2D Fourier terms of the circuit layer's hook_post over (a, b), via a hook), ``logits``
    (the key-frequency logit directions, applied to ``baseline``, the unablated logits).
    Ablations: ``none``; ``remove k`` for each key frequency and for one control (non-key)
    frequency; ``remove key``; ``keep only key``.
    """
    p = data.p

    def mask_embedding(W_E, freqs, keep):
        patched = W_E.clone()
        patched[:p] = mask_frequencies_1d(W_E[:p], freqs, keep)
        return patched

    def mask_neurons(acts, freqs, keep):
        return mask_frequencies_2d(acts.reshape(p, p, -1), freqs, keep).reshape(p * p, -1)

    def mask_logits(logits, freqs, keep):
        return restricted_and_excluded(logits, data.task, freqs)[0 if keep else 1]

    return _ablation_rows(model, data, key_freqs, control_freq, baseline, layer % model.cfg.n_layers,
                          mask_embedding, mask_neurons, mask_logits, "k")


def group_ablations(model: HookedTransformer, data: Dataset, lens: GroupGrid, key: list[int], control: int | None,
                    baseline: torch.Tensor, layer: int = -1) -> list[Ablation]:
    """``fourier_ablations`` in a group's irreps: the elements' W_E rows, the 2D irrep terms of the neurons over
    the grid, and the key irreps' logit directions of x o y; inputs off the grid (a = 0 for div) are left as they
    are. Ablation names give irrep indices (``Circuit.irrep_names`` names them)."""

    def mask_logits(logits, irreps, keep):
        patched = logits.clone()
        patched[lens.rows] = lens.restricted_and_excluded(logits, irreps)[0 if keep else 1].to(logits.dtype)
        return patched

    return _ablation_rows(model, data, key, control, baseline, layer % model.cfg.n_layers, lens.masked_embedding,
                          lens.masked_neurons, mask_logits, "irrep")
