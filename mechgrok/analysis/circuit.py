"""Forward passes of a HookedTransformer checkpoint over every input, and the measures read from them.

Logit directions: for ``add`` the restricted/excluded loss and the logit ablations use the
paper's directions cos/sin(w_k(a+b)); for ``sub`` cos/sin(w_k(a-b)). For the other grid tasks
(``x2xyy2``, ``x3xy2y``, ``rand``), where no such closed form is known, they use frequency k's
2D terms over (a, b) instead (linear in a, linear in b and the cos/sin products), keeping the
constant term as the bias correction: a documented extension of the paper's definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F

from ..metrics import GROK_ACCURACY, Objective, sum_sq_weights
from ..tasks import Dataset
from .fourier import embedding_spectrum, fourier_basis, frequency_norms
from .measures import (NeuronClusters, fourier_row_norms, gini, mask_frequencies_1d, mask_frequencies_2d,
                       neuron_clusters, restricted_and_excluded_logits, top_frequencies)
from .results import Ablation, CheckpointMeasures, Circuit

if TYPE_CHECKING:  # TransformerLens is imported only where a model is built (mechgrok.model)
    from transformer_lens import HookedTransformer

LOGIT_SIGN = {"add": 1, "sub": -1}


def neuron_hook_name(model: HookedTransformer) -> str:
    """The neurons the paper analyses: the last block's MLP activations, ``hook_post``."""
    return f"blocks.{model.cfg.n_layers - 1}.mlp.hook_post"


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
    """One forward pass over every input: last-position logits [N, c] (float64); on the Z_p grid also the
    last layer's neurons [p, p, d_mlp] and, when asked, layer 0's attention from '=' to a [p, p, heads]."""

    logits: torch.Tensor
    neurons: torch.Tensor | None = None
    attention: torch.Tensor | None = None


def run_model(model: HookedTransformer, data: Dataset, attention: bool = False) -> GridRun:
    """HookedTransformer's forward on every input, with hooks capturing what the measures read.

    (``run_with_hooks`` with capturing hooks does what ``run_with_cache`` with a names filter
    does, without building an ActivationCache: measurably faster on 200 checkpoints.)
    """
    captured: dict[str, torch.Tensor] = {}
    hooks = [last_position_hook(model)]
    if data.is_full_grid:
        hooks.append((neuron_hook_name(model), lambda act, hook: captured.__setitem__("neurons", act[:, -1])))
        if attention:
            hooks.append(("blocks.0.attn.hook_pattern",
                          lambda act, hook: captured.__setitem__("attention", act[:, :, -1, 0])))
    with torch.inference_mode():
        logits = model.run_with_hooks(data.inputs, fwd_hooks=hooks)[:, -1].double()
    p = data.p
    neurons, pattern = captured.get("neurons"), captured.get("attention")
    return GridRun(logits, None if neurons is None else neurons.reshape(p, p, -1),
                   None if pattern is None else pattern.reshape(p, p, -1))


def _scores(logits: torch.Tensor, data: Dataset) -> dict[str, float]:
    """train/test loss and accuracy of logits [N, c] over every input (per-head accuracies dropped)."""
    objective = Objective(data.heads)
    scores = {**objective.scores(logits[data.train_idx], data.labels[data.train_idx], "train"),
              **objective.scores(logits[data.test_idx], data.labels[data.test_idx], "test")}
    return {k: scores[k] for k in ("train_loss", "test_loss", "train_acc", "test_acc")}


def neuron_logit_map(model: HookedTransformer) -> torch.Tensor:
    """W_L = W_out @ W_U [d_mlp, d_vocab_out] of the last layer: each neuron's direct effect on the logits."""
    return model.blocks[-1].mlp.W_out.detach() @ model.W_U.detach()


def neuron_logit_spectrum(model: HookedTransformer, p: int) -> torch.Tensor:
    """[K + 1] norm of each output frequency of W_L = W_out @ W_U (rows: neurons, Fourier over classes)."""
    basis, _, _ = fourier_basis(p)
    return frequency_norms(basis @ neuron_logit_map(model).T.double(), p)


@dataclass
class Measured:
    """What ``measure`` found at one checkpoint: its row, and on the grid its embedding spectrum and clusters."""

    row: CheckpointMeasures
    spectrum: torch.Tensor | None = None  # embedding spectrum [K + 1]
    clusters: NeuronClusters | None = None
    neurons: torch.Tensor | None = None  # [p, p, d_mlp]


def measure(model: HookedTransformer, data: Dataset, step: int, key_freqs: list[int],
            grid: GridRun | None = None) -> Measured:
    """The measures of one checkpoint (weights in ``model``).

    ``grid``: this checkpoint's forward pass when it is already at hand. Tasks whose inputs are
    not the full (a, b) grid (div, perm, miiii) get losses, accuracies and the weight norm only.
    """
    grid = grid or run_model(model, data)
    norm = sum_sq_weights(model.parameters())
    if grid.neurons is None:
        return Measured(CheckpointMeasures(step, **_scores(grid.logits, data), sum_sq_weights=norm))
    p = data.p
    restricted, excluded = restricted_and_excluded(grid.logits, data.task, key_freqs)
    clusters = neuron_clusters(grid.neurons)
    W_E = model.W_E.detach()
    row = CheckpointMeasures(
        step, **_scores(grid.logits, data), sum_sq_weights=norm,
        restricted_loss=F.cross_entropy(restricted, data.labels).item(),
        excluded_loss=F.cross_entropy(excluded[data.train_idx], data.labels[data.train_idx]).item(),
        gini_embed=gini(fourier_row_norms(W_E[:p], p)),
        gini_neuron_logit=gini(fourier_row_norms(neuron_logit_map(model).T, p)),
        fraction_clustered=clusters.fraction_in(key_freqs),
        n_key_freqs=len(clusters.key_frequencies),
    )
    return Measured(row, embedding_spectrum(W_E, p), clusters, grid.neurons)


@dataclass
class FinalCheckpoint:
    """The last readable checkpoint's forward pass and clustering, computed once per analysis and
    reused by the circuit, its measures row, the ablations and the figures."""

    step: int
    grid: GridRun
    clusters: NeuronClusters | None
    spectrum: torch.Tensor | None  # embedding spectrum [K + 1]

    def circuit(self, test_acc: float) -> Circuit | None:
        """Key frequencies with their clusters, the embedding cross-check and a control frequency."""
        if self.clusters is None:
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
                       claimed=test_acc >= GROK_ACCURACY)


def final_checkpoint(model: HookedTransformer, data: Dataset, step: int) -> FinalCheckpoint:
    """One pass of the final checkpoint (weights already in ``model``), with neurons and attention."""
    grid = run_model(model, data, attention=True)
    if grid.neurons is None:
        return FinalCheckpoint(step, grid, None, None)
    return FinalCheckpoint(step, grid, neuron_clusters(grid.neurons), embedding_spectrum(model.W_E.detach(), data.p))


def fourier_ablations(model: HookedTransformer, data: Dataset, key_freqs: list[int], control_freq: int | None,
                      baseline: torch.Tensor) -> list[Ablation]:
    """Loss and accuracy (train and test) after Fourier-space ablations at three sites.

    Sites: ``embed`` (W_E's number rows projected, via a hook on hook_embed), ``neurons``
    (the 2D Fourier terms of the last layer's hook_post over (a, b), via a hook), ``logits``
    (the key-frequency logit directions, applied to ``baseline``, the unablated logits).
    Ablations: ``none``; ``remove k`` for each key frequency and for one control (non-key)
    frequency; ``remove key``; ``keep only key``.
    """
    p, inputs = data.p, data.inputs
    W_E = model.W_E.detach()
    hook_name = neuron_hook_name(model)

    def embed_hook(freqs, keep):
        patched = W_E.clone()
        patched[:p] = mask_frequencies_1d(W_E[:p], freqs, keep)
        return "hook_embed", lambda act, hook: F.embedding(inputs, patched)

    def neuron_hook(freqs, keep):
        def patch(act, hook):
            act = act.clone()
            act[:, -1] = mask_frequencies_2d(act[:, -1].reshape(p, p, -1), freqs, keep).reshape(p * p, -1)
            return act
        return hook_name, patch

    ablations = [(f"remove k={k}", [k], False) for k in key_freqs]
    if control_freq is not None:
        ablations.append((f"remove k={control_freq} (control)", [control_freq], False))
    ablations += [("remove key", key_freqs, False), ("keep only key", key_freqs, True)]

    rows = [Ablation("none", "none", **_scores(baseline, data))]
    with torch.inference_mode():
        for name, freqs, keep in ablations:
            for site, make_hook in (("embed", embed_hook), ("neurons", neuron_hook)):
                hooks = [last_position_hook(model), make_hook(freqs, keep)]
                logits = model.run_with_hooks(inputs, fwd_hooks=hooks)[:, -1].double()
                rows.append(Ablation(site, name, **_scores(logits, data)))
            patched = restricted_and_excluded(baseline, data.task, freqs)[0 if keep else 1]
            rows.append(Ablation("logits", name, **_scores(patched, data)))
    return rows
