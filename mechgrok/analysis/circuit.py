"""Forward passes of a checkpoint in TransformerLens over every input, and the measures read from them.

One path for every task with a lens (``mechgrok.lens``): the neurons are read over the lens's grid in
its group's basis, the logits through its directions (products a o b, or 2D input terms), and the
ablations patch the grid's inputs only. Tasks without a lens (miiii) get losses, accuracies, the
weight norm and their per-head probes (``analysis/miiii.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F

from ..lens import Lens
from ..metrics import GROK_ACCURACY, Objective, head_accuracies, sum_sq_weights
from ..tasks import Dataset
from .measures import NeuronClusters, gini, lens_clusters, neuron_clusters, top_frequencies
from .miiii import periodic_r2
from .results import Ablation, CheckpointMeasures, Circuit, LayerCircuit

if TYPE_CHECKING:  # TransformerLens is imported only where a model is built (mechgrok.model)
    from ..hooked import HookedModel


def neuron_hook_name(model: HookedModel, layer: int | None = None) -> str:
    """The neurons the measures read: a block's MLP activations, ``hook_post`` (default: the last block's, the
    paper's)."""
    return f"blocks.{model.cfg.n_layers - 1 if layer is None else layer}.mlp.hook_post"


def last_position_hook(model: HookedModel) -> tuple[str, Callable]:
    """A hook keeping only the last position of the last block's ``hook_resid_mid``.

    Only the last position's logits and neurons are read, and in the last block nothing else
    depends on the earlier positions, so HookedTransformer's own forward then skips their MLP
    and unembedding (about half its work) and returns the same last-position values.
    """
    return f"blocks.{model.cfg.n_layers - 1}.hook_resid_mid", lambda act, hook: act[:, -1:]


@dataclass
class GridRun:
    """One forward pass over every input, last position: logits [N, c] (float64); with a lens, the analysed
    layer's neurons [N, d_mlp] (``neurons``), every layer's when asked (``by_layer``) and, when asked,
    layer 0's attention from '=' to the first operand [N, heads]."""

    logits: torch.Tensor
    neurons: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    by_layer: dict[int, torch.Tensor] = field(default_factory=dict)


def run_model(model: HookedModel, data: Dataset, attention: bool = False, layer: int | None = None,
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
    if data.lens is not None:
        for index in (range(n_layers) if all_layers else [layer]):
            hooks.append((neuron_hook_name(model, index),
                          lambda act, hook, index=index: captured.__setitem__(index, act[:, -1])))
        if attention:
            hooks.append(("blocks.0.attn.hook_pattern", lambda act, hook: pattern.append(act[:, :, -1, 0])))
    with torch.inference_mode():
        logits = model.run_with_hooks(data.inputs, fwd_hooks=hooks)[:, -1].double()
    return GridRun(logits, captured.get(layer), pattern[0] if pattern else None, captured if all_layers else {})


def _scores(logits: torch.Tensor, data: Dataset, objective: Objective | None = None) -> dict[str, float]:
    """train/test loss and accuracy of logits [N, c] over every input (per-head accuracies dropped); ``objective``:
    the run's (default: ``Objective(data.heads)``)."""
    objective = objective or Objective(data.heads)
    scores = {**objective.scores(logits[data.train_idx], data.labels[data.train_idx], "train"),
              **objective.scores(logits[data.test_idx], data.labels[data.test_idx], "test")}
    return {k: scores[k] for k in ("train_loss", "test_loss", "train_acc", "test_acc")}


def neuron_logit_map(model: HookedModel, layer: int = -1) -> torch.Tensor:
    """W_L = W_out @ W_U [d_mlp, d_vocab_out] of a layer (default the last): each neuron's direct effect on the
    logits."""
    return model.blocks[layer].mlp.W_out.detach() @ model.W_U.detach()


def neuron_logit_spectrum(model: HookedModel, lens: Lens, layer: int = -1) -> torch.Tensor:
    """[n_irreps] the norm of each output irrep (frequency) of W_L = W_out @ W_U: ``Group.spectrum`` of W_L^T's
    rows of the group's classes."""
    return lens.group.spectrum(neuron_logit_map(model, layer).T[lens.classes])


@dataclass
class Measured:
    """What ``measure`` found at one checkpoint: its row, and with a lens its embedding spectrum, clusters and
    neurons over the grid."""

    row: CheckpointMeasures
    spectrum: torch.Tensor | None = None  # embedding spectrum [n_irreps] (for Z_p, [K + 1] frequencies)
    clusters: NeuronClusters | None = None
    neurons: torch.Tensor | None = None  # [|G|, |G|, d_mlp]


def _ce(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return F.cross_entropy(logits, labels).item()


def measure(model: HookedModel, data: Dataset, step: int, key: list[int], grid: GridRun | None = None,
            layer: int = -1, objective: Objective | None = None) -> Measured:
    """The measures of one checkpoint (weights in ``model``).

    ``key``: the key irreps (frequencies) of the final checkpoint, by index; ``grid``: this checkpoint's
    forward pass when it is already at hand; ``layer``: the block whose MLP neurons are read; ``objective``:
    the run's loss (default ``Objective(data.heads)``).

    restricted_loss = CE over the grid of the logits kept to ``key``; excluded_loss = CE over the grid's
    training pairs of the logits without them; gini_embed / gini_neuron_logit = Gini of the basis-row
    norms of W_E's element rows and of (W_out W_U)^T's class rows.
    """
    layer = layer % model.cfg.n_layers
    grid = grid or run_model(model, data, layer=layer)
    norm = sum_sq_weights(model.parameters())
    scores = _scores(grid.logits, data, objective)
    lens = data.lens
    if lens is None or grid.neurons is None:
        return Measured(CheckpointMeasures(step, **scores, sum_sq_weights=norm,
                                           per_task=task_measures(model, data, grid.logits)))
    W_E, W_L = model.W_E.detach(), neuron_logit_map(model, layer)
    neurons = lens.grid(grid.neurons)
    clusters = neuron_clusters(neurons, lens.group)
    restricted, excluded = lens.restricted_and_excluded(grid.logits, key)
    row = CheckpointMeasures(
        step, **scores, sum_sq_weights=norm,
        restricted_loss=_ce(restricted, lens.labels),
        excluded_loss=_ce(excluded[lens.in_train], lens.labels[lens.in_train]),
        gini_embed=gini(lens.group.row_norms(W_E[lens.tokens])),
        gini_neuron_logit=gini(lens.group.row_norms(W_L.T[lens.classes])),
        fraction_clustered=clusters.fraction_in(key), n_key_freqs=len(clusters.key_frequencies))
    return Measured(row, lens.group.spectrum(W_E[lens.tokens]), clusters, neurons)


def task_measures(model: HookedModel, data: Dataset, logits: torch.Tensor) -> dict[str, float]:
    """Multi-task (miiii) runs, per task q: test accuracy of head q, and the R^2 of W_E's number rows on
    period-q features (``analysis.miiii.periodic_r2``). {} for one-head tasks."""
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
    neurons in key clusters (``per_layer`` has every block's key irreps and share).
    """

    step: int
    grid: GridRun
    lens: Lens | None
    clusters: NeuronClusters | None = None
    spectrum: torch.Tensor | None = None  # embedding spectrum [n_irreps]
    layer: int = 0
    per_layer: list[LayerCircuit] = field(default_factory=list)

    def circuit(self, test_acc: float) -> Circuit | None:
        """Key irreps (frequencies) with their clusters, the embedding cross-check and a control."""
        if self.clusters is None or self.lens is None:
            return None
        key = self.clusters.key_frequencies
        spectrum = self.spectrum
        embedding_top = top_frequencies(spectrum, max(len(key), 1))
        control = max((k for k in range(1, len(spectrum)) if k not in key), key=lambda k: float(spectrum[k]),
                      default=None)
        return Circuit(from_step=self.step, frequencies=key, clusters=self.clusters.table(),
                       cluster_sizes_all=self.clusters.cluster_sizes(),
                       fraction_clustered=self.clusters.fraction_clustered, threshold=self.clusters.threshold,
                       min_neurons=self.clusters.min_neurons, embedding_top=embedding_top,
                       agree_with_embedding=sorted(embedding_top) == key, control_frequency=control,
                       claimed=test_acc >= GROK_ACCURACY, basis=self.lens.basis_label,
                       irrep_names=self.lens.unit_names, unit=self.lens.unit, layer=self.layer,
                       per_layer=self.per_layer)


def final_checkpoint(model: HookedModel, data: Dataset, step: int) -> FinalCheckpoint:
    """One pass of the final checkpoint (weights already in ``model``), with every layer's neurons and attention."""
    grid = run_model(model, data, attention=True, all_layers=True)
    lens = data.lens
    if lens is None:
        return FinalCheckpoint(step, grid, None)
    by_layer = {layer: lens_clusters(lens, neurons) for layer, neurons in grid.by_layer.items()}
    per_layer = [LayerCircuit(layer, c.key_frequencies, c.fraction_clustered) for layer, c in sorted(by_layer.items())]
    layer = max(sorted(by_layer, reverse=True), key=lambda l: by_layer[l].fraction_clustered)  # ties: the later
    grid = GridRun(grid.logits, grid.by_layer[layer], grid.attention)
    spectrum = lens.group.spectrum(model.W_E.detach()[lens.tokens])
    return FinalCheckpoint(step, grid, lens, by_layer[layer], spectrum, layer, per_layer)


def ablations(model: HookedModel, data: Dataset, key: list[int], control: int | None,
              baseline: torch.Tensor, layer: int = -1) -> list[Ablation]:
    """Loss and accuracy (train and test) after ablations in the lens's basis at three sites.

    Sites: ``embed`` (W_E's element rows projected, via a hook on hook_embed), ``neurons`` (the 2D terms
    of the circuit layer's hook_post over the grid, via a hook), ``logits`` (the key irreps' logit
    directions, applied to ``baseline``, the unablated logits). Only the grid's inputs are patched: for
    div and mul the pairs with a = 0 keep their own embeddings, neurons and logits. Ablations: ``none``;
    ``remove k`` for each key irrep and for one control (non-key) irrep; ``remove key``; ``keep only key``
    (at the neurons a cross term between two key irreps belongs to neither: ``remove key`` leaves it,
    ``keep only key`` drops it). Scores are over every input.
    """
    lens, inputs, layer = data.lens, data.inputs, layer % model.cfg.n_layers
    W_E = model.W_E.detach()
    on_grid = inputs[lens.rows]

    def embed_hook(irreps: list[int], keep: bool) -> tuple[str, Callable]:
        patched = lens.masked_embedding(W_E, irreps, keep)

        def patch(act, hook):
            act = act.clone()
            act[lens.rows] = F.embedding(on_grid, patched)
            return act
        return "hook_embed", patch

    def neuron_hook(irreps: list[int], keep: bool) -> tuple[str, Callable]:
        def patch(act, hook):
            act = act.clone()
            act[:, -1] = lens.scatter(act[:, -1], lens.group.mask_2d(lens.grid(act[:, -1]), irreps, keep))
            return act
        return neuron_hook_name(model, layer), patch

    def masked_logits(irreps: list[int], keep: bool) -> torch.Tensor:
        restricted, excluded = lens.restricted_and_excluded(baseline, irreps)
        return lens.scatter(baseline, restricted if keep else excluded)

    unit = "k" if lens.unit == "frequency" else "irrep"
    cases = [(f"remove {unit}={k}", [k], False) for k in key]
    if control is not None:
        cases.append((f"remove {unit}={control} (control)", [control], False))
    cases += [("remove key", key, False), ("keep only key", key, True)]
    rows = [Ablation("none", "none", **_scores(baseline, data))]
    with torch.inference_mode():
        for name, irreps, keep in cases:
            for site, make_hook in (("embed", embed_hook), ("neurons", neuron_hook)):
                logits = model.run_with_hooks(inputs, fwd_hooks=[last_position_hook(model), make_hook(irreps, keep)])
                rows.append(Ablation(site, name, **_scores(logits[:, -1].double(), data)))
            rows.append(Ablation("logits", name, **_scores(masked_logits(irreps, keep), data)))
    return rows
