"""Measures of one HookedTransformer checkpoint on the full (a, b) grid, through TL's hooks.

Logit directions: for ``add`` the restricted/excluded loss and the logit ablations use the
paper's directions cos/sin(w_k(a+b)); for ``sub`` cos/sin(w_k(a-b)). For the other grid tasks
(``x2xyy2``, ``x3xy2y``, ``rand``), where no such closed form is known, they use frequency k's
2D terms over (a, b) instead (linear in a, linear in b and the cos/sin products), keeping the
constant term as the bias correction: a documented extension of the paper's definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from transformer_lens import HookedTransformer

from ..tasks import Dataset
from .fourier import embedding_spectrum, fourier_basis, frequency_norms
from .measures import (fourier_row_norms, gini, loss_and_accuracy, mask_frequencies_1d,
                       mask_frequencies_2d, neuron_clusters, restricted_and_excluded_logits)

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


def keep_or_remove_logits(logits: torch.Tensor, task: str, freqs: list[int], keep: bool) -> torch.Tensor:
    """Restricted (keep=True) or excluded (keep=False) logits [p*p, c] for key frequencies ``freqs``."""
    return restricted_and_excluded(logits, task, freqs)[0 if keep else 1]


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
    """One forward pass over every pair: last-position logits [p*p, c] (float64) and neurons [p, p, d_mlp]."""

    logits: torch.Tensor
    neurons: torch.Tensor


def run_grid(model: HookedTransformer, data: Dataset) -> GridRun:
    """HookedTransformer's forward on every pair, with a hook capturing the last layer's hook_post.

    (``run_with_hooks`` with one capturing hook does what ``run_with_cache`` with a names
    filter does, without building an ActivationCache: measurably faster on 200 checkpoints.)
    """
    captured = {}

    def capture(act: torch.Tensor, hook) -> None:
        captured["neurons"] = act[:, -1]

    with torch.inference_mode():
        logits = model.run_with_hooks(data.inputs, fwd_hooks=[last_position_hook(model),
                                                              (neuron_hook_name(model), capture)])
    p = data.p
    return GridRun(logits[:, -1].double(), captured["neurons"].reshape(p, p, -1))


def split_scores(logits: torch.Tensor, data: Dataset) -> dict[str, float]:
    """Loss and accuracy of grid logits [p*p, c] on the train and on the test split."""
    train_loss, train_acc = loss_and_accuracy(logits[data.train_idx], data.labels[data.train_idx])
    test_loss, test_acc = loss_and_accuracy(logits[data.test_idx], data.labels[data.test_idx])
    return {"train_loss": train_loss, "test_loss": test_loss, "train_acc": train_acc, "test_acc": test_acc}


def sum_sq_weights(model: HookedTransformer) -> float:
    """sum over all parameters theta^2."""
    return float(sum(p.detach().double().pow(2).sum() for p in model.parameters()))


def neuron_logit_map(model: HookedTransformer) -> torch.Tensor:
    """W_L = W_out @ W_U [d_mlp, d_vocab_out] of the last layer: each neuron's direct effect on the logits."""
    return model.blocks[-1].mlp.W_out.detach() @ model.W_U.detach()


def neuron_logit_spectrum(model: HookedTransformer, p: int) -> torch.Tensor:
    """[K + 1] norm of each output frequency of W_L = W_out @ W_U (rows: neurons, Fourier over classes)."""
    basis, _, _ = fourier_basis(p)
    return frequency_norms(basis @ neuron_logit_map(model).T.double(), p)


def measure(model: HookedTransformer, data: Dataset, key_freqs: list[int]) -> tuple[dict[str, float], torch.Tensor | None]:
    """(one row of per-checkpoint measures, embedding spectrum [K + 1]).

    Tasks whose inputs are not the full (a, b) grid (div, perm) get losses, accuracies and
    the weight norm only, and no spectrum.

    restricted_loss: CE on all pairs of the logits kept to the key frequencies;
    excluded_loss: CE on the training pairs of the logits without them;
    gini_embed / gini_neuron_logit: Gini of the p Fourier-component norms of W_E[:p] and of W_L
    over the output classes; fraction_clustered: share of neurons above the cluster threshold
    in one of ``key_freqs``; n_key_freqs: key frequencies found at this checkpoint alone.
    """
    if not data.is_full_grid:
        with torch.no_grad():
            logits = model(data.inputs)[:, -1].double()
        return {**split_scores(logits, data), "sum_sq_weights": sum_sq_weights(model)}, None
    grid = run_grid(model, data)
    p = data.p
    everything = torch.arange(p * p)
    restricted, excluded = restricted_and_excluded(grid.logits, data.task, key_freqs)
    clusters = neuron_clusters(grid.neurons)
    in_key = torch.isin(clusters.best_freq, torch.tensor(key_freqs, dtype=clusters.best_freq.dtype))
    W_E = model.W_E.detach()
    row = {
        **split_scores(grid.logits, data),
        "restricted_loss": F.cross_entropy(restricted[everything], data.labels).item(),
        "excluded_loss": F.cross_entropy(excluded[data.train_idx], data.labels[data.train_idx]).item(),
        "sum_sq_weights": sum_sq_weights(model),
        "gini_embed": gini(fourier_row_norms(W_E[:p], p)),
        "gini_neuron_logit": gini(fourier_row_norms(neuron_logit_map(model).T, p)),
        "fraction_clustered": float((in_key & clusters.clustered).double().mean()),
        "n_key_freqs": len(clusters.key_frequencies),
    }
    return row, embedding_spectrum(W_E, p)


def fourier_ablations(model: HookedTransformer, data: Dataset, key_freqs: list[int],
                      control_freq: int | None) -> list[dict]:
    """Loss and accuracy (train and test) after Fourier-space ablations at three sites.

    Sites: ``embed`` (W_E's number rows projected, via a hook on hook_embed), ``neurons``
    (the 2D Fourier terms of the last layer's hook_post over (a, b), via a hook), ``logits``
    (the key-frequency logit directions). Ablations: ``none``; ``remove k`` for each key
    frequency and for one control (non-key) frequency; ``remove key``; ``keep only key``.
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

    baseline = run_grid(model, data).logits
    rows = [{"site": "none", "ablation": "none", **split_scores(baseline, data)}]
    with torch.no_grad():
        for name, freqs, keep in ablations:
            for site, make_hook in (("embed", embed_hook), ("neurons", neuron_hook)):
                hooks = [last_position_hook(model), make_hook(freqs, keep)]
                logits = model.run_with_hooks(inputs, fwd_hooks=hooks)[:, -1].double()
                rows.append({"site": site, "ablation": name, **split_scores(logits, data)})
            patched = keep_or_remove_logits(baseline, data.task, freqs, keep)
            rows.append({"site": "logits", "ablation": name, **split_scores(patched, data)})
    return rows
