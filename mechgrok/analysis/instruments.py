"""Measures of how the circuit forms over training, beyond the paper's progress measures.

Each is computed by ``mechgrok analyze`` (per checkpoint rows go to explorer.safetensors, see
``trajectory.py``) or derived from those rows, and drawn both by the Python views and the explorer:

- ``participation_ratio``: effective dimensionality, PR = (sum_i l_i)^2 / sum_i l_i^2 over the eigenvalues l_i
  of the covariance of a set of vectors (k orthogonal directions of equal variance give exactly k);
- ``weight_pca``: the run's flattened weights over checkpoints projected on their first principal components;
- ``attention_spectra``: each head's QK (the '=' query's scores over a's token) and OV (W_E W_V W_O over the
  elements) in the lens's basis, so a head's frequency or irrep specialisation can be followed;
- ``clock``: the embedding of every element projected on each key unit's plane (the "clock" of the paper);
- ``neuron_dynamics``: per neuron, the step it commits to its final unit and how often its unit changed;
- ``transient_clusters``: clusters that reach the key-size threshold and later dissolve.

The last two are this package's definitions (no paper fixes them); their rules are stated in their docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..hooked import HookedModel
    from ..lens import Lens
    from ..run import Run

N_COMPONENTS = 3


def participation_ratio(vectors: torch.Tensor) -> float:
    """(sum l)^2 / sum l^2 of the covariance eigenvalues of ``vectors`` [n, d] (rows centred); 0 for constant rows.

    Computed without an eigendecomposition: sum l = ||X||_F^2 and sum l^2 = ||X^T X||_F^2 for the centred X.
    """
    x = vectors.double().reshape(vectors.shape[0], -1)
    x = x - x.mean(0)
    gram = x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x  # same non-zero spectrum, the smaller of the two
    square = gram.pow(2).sum()
    return 0.0 if float(square) == 0 else float(gram.trace() ** 2 / square)


def effective_dimensions(W_E: torch.Tensor, neurons: torch.Tensor, lens: Lens) -> torch.Tensor:
    """[2] float32: the participation ratio of the MLP activations over the grid ([|G|^2, d_mlp]) and of W_E's
    element rows ([|G|, d_model])."""
    return torch.tensor([participation_ratio(neurons.reshape(-1, neurons.shape[-1])),
                         participation_ratio(W_E[lens.tokens])], dtype=torch.float32)


def attention_spectra(model: HookedModel, scores: torch.Tensor, lens: Lens) -> torch.Tensor:
    """[heads, 2, n_irreps] float32 for layer 0: QK, the norm in each irrep of the '=' query's scores over a's
    token (``scores`` [heads, 3, d_vocab] from ``trajectory.attention_scores``), and OV, the norm in each irrep of
    W_E[elements] W_V W_O [|G|, d_model], head by head."""
    attn = model.blocks[0].attn
    W_E = model.W_E.detach()[lens.tokens].double()
    qk = torch.stack([lens.group.spectrum(s[0, lens.tokens].double()[:, None]) for s in scores])
    ov = torch.stack([lens.group.spectrum(W_E @ attn.W_V.detach()[h].double() @ attn.W_O.detach()[h].double())
                      for h in range(attn.W_V.shape[0])])
    return torch.stack([qk, ov], 1).float()


def unit_planes(lens: Lens, units: list[int]) -> torch.Tensor:
    """[len(units), 2, |G|]: for each unit its first two basis rows (cos and sin for a frequency k of Z_p); a
    one-dimensional irrep's second row is zero."""
    basis, owner = lens.group.basis, lens.group.owner
    planes = torch.zeros(len(units), 2, lens.group.order, dtype=torch.float64)
    for i, unit in enumerate(units):
        rows = torch.nonzero(owner == unit).flatten()[:2]
        planes[i, :len(rows)] = basis[rows]
    return planes


def clock(W_E: torch.Tensor, lens: Lens, units: list[int]) -> torch.Tensor:
    """[len(units), |G|, 2] float32: each element's embedding projected on each unit's plane.

    For unit k with basis rows (c, s), the plane in embedding space is spanned by u = c @ E and v = s @ E (E:
    W_E's element rows; u and v orthonormalised, u first); element g's coordinates are E_g's orthogonal
    projection on it. When E carries frequency k in two orthogonal directions of equal norm the points lie on a
    circle in the order of the group's rotation (Nanda et al.'s clock). A unit that E does not carry (||u||, ||v||
    below 1e-6 of ||E||) has no plane: its points are all 0.
    """
    E = W_E[lens.tokens].double()
    planes = unit_planes(lens, units) @ E  # [n, 2, d_model]
    tiny = 1e-6 * float(E.norm())
    points = torch.zeros(len(units), E.shape[0], 2, dtype=torch.float64)
    for i, (u, v) in enumerate(planes):
        if u.norm() <= tiny:  # the second row alone (or none) spans the plane
            u, v = v, torch.zeros_like(v)
        if u.norm() <= tiny:
            continue
        u = u / u.norm()
        v = v - (v @ u) * u
        axes = [u] + ([v / v.norm()] if v.norm() > tiny else [])
        for j, axis in enumerate(axes):
            points[i, :, j] = E @ axis
    return points.float()


def weight_pca(run: Run, steps: list[int], components: int = N_COMPONENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """The checkpoints' flattened weights W [C, P] (every parameter, in the checkpoint's key order), centred over
    checkpoints, projected on their first principal components: ([C, components] coordinates U S, [components]
    explained-variance ratios S_i^2 / sum S^2). Computed from the C x C Gram matrix, so P may be large."""
    flat = [torch.cat([w.detach().double().flatten() for _, w in sorted(run.checkpoint(s).weights.items())])
            for s in steps]
    x = torch.stack(flat)
    x = x - x.mean(0)
    gram = x @ x.T
    values, vectors = torch.linalg.eigh(gram)  # ascending
    values, vectors = values.flip(0).clamp_min(0), vectors.flip(1)
    k = min(components, len(steps))
    coords = torch.zeros(len(steps), components, dtype=torch.float64)
    coords[:, :k] = vectors[:, :k] * values[:k].sqrt()
    explained = torch.zeros(components, dtype=torch.float64)
    total = values.sum()
    if float(total) > 0:
        explained[:k] = values[:k] / total
    return coords.float(), explained.float()


@dataclass
class NeuronDynamics:
    """Per neuron: ``final`` unit (-1: unclustered at the end), ``commit`` step (None: unclustered at the end),
    ``switches`` (changes of unit between consecutive clustered checkpoints)."""

    final: list[int]
    commit: list[int | None]
    switches: list[int]


def neuron_labels(freq: torch.Tensor, frac: torch.Tensor, threshold: float) -> torch.Tensor:
    """[C, n] each neuron's dominant unit at each checkpoint, -1 where it explains <= ``threshold`` of the variance."""
    return torch.where(frac.float() > threshold, freq.long(), torch.full_like(freq.long(), -1))


def neuron_dynamics(freq: torch.Tensor, frac: torch.Tensor, threshold: float, steps: list[int]) -> NeuronDynamics:
    """From ``freq``/``frac`` [C, n] (trajectory's neuron_freq and neuron_frac):

    commit = the first checkpoint from which the neuron is clustered on its final unit at every later checkpoint;
    switches = the number of times its unit changes between one clustered checkpoint and the next clustered one
    (checkpoints where it is unclustered are skipped, so leaving and rejoining the same unit is not a switch).
    """
    labels = neuron_labels(freq, frac, threshold)
    final = labels[-1]
    settled = labels == final  # [C, n]
    # the last checkpoint where it was not on its final unit; commit is the one after
    unsettled = (~settled).long() * torch.arange(1, labels.shape[0] + 1)[:, None]
    commit_index = unsettled.max(0).values  # 0: settled throughout
    commits = [None if int(f) < 0 else steps[int(i)] for f, i in zip(final, commit_index)]
    switches = []
    for column in labels.T.tolist():
        clustered = [u for u in column if u >= 0]
        switches.append(sum(a != b for a, b in zip(clustered, clustered[1:])))
    return NeuronDynamics(final.tolist(), commits, switches)


@dataclass
class ClusterSpan:
    """A unit's cluster while it held at least ``min_neurons`` neurons: first and last step, peak size and step,
    and whether it is gone at the final checkpoint (``transient``)."""

    unit: int
    first: int
    last: int
    peak: int
    peak_step: int
    transient: bool


def cluster_sizes(freq: torch.Tensor, frac: torch.Tensor, threshold: float, n_units: int) -> torch.Tensor:
    """[C, n_units] the number of neurons clustered on each unit at each checkpoint."""
    labels = neuron_labels(freq, frac, threshold)
    sizes = torch.zeros(labels.shape[0], n_units + 1, dtype=torch.long)
    sizes.scatter_add_(1, labels.clamp_min(-1) + 1, torch.ones_like(labels))
    return sizes[:, 1:]


def transient_clusters(freq: torch.Tensor, frac: torch.Tensor, threshold: float, min_neurons: int,
                       steps: list[int], n_units: int) -> list[ClusterSpan]:
    """Every maximal run of consecutive checkpoints where a unit (not the trivial one) holds >= ``min_neurons``
    neurons, in order of first step; ``transient`` when the run ends before the final checkpoint (the cluster
    dissolved). A cluster that dips below the threshold for one checkpoint counts as two spans: the rule is
    literal, so a flickering cluster shows as flickering."""
    sizes = cluster_sizes(freq, frac, threshold, n_units)
    spans = []
    for unit in range(1, n_units):
        big = (sizes[:, unit] >= min_neurons).tolist() + [False]
        start = None
        for c, on in enumerate(big):
            if on and start is None:
                start = c
            elif not on and start is not None:
                window = sizes[start:c, unit]
                peak = int(window.argmax())
                spans.append(ClusterSpan(unit, steps[start], steps[c - 1], int(window[peak]), steps[start + peak],
                                         c < len(steps)))
                start = None
    return sorted(spans, key=lambda s: (s.first, s.unit))


def cluster_units(sizes: torch.Tensor, min_neurons: int, key: list[int]) -> list[int]:
    """The units a cluster-size panel names (the rest are shown together as "other"): the key units and every
    unit holding >= ``min_neurons`` neurons at some checkpoint (``sizes`` from ``cluster_sizes``), trivial excluded."""
    formed = torch.nonzero((sizes >= min_neurons).any(0)).flatten().tolist()
    return sorted(set(key) | {u for u in formed if u != 0})
