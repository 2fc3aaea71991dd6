"""Per-checkpoint arrays for the explorer, computed once by ``mechgrok analyze``.

Stored in ``RUN_DIR/analysis/explorer.safetensors`` (float16 where the numbers are shares or
activations; float32 where a softmax or a log scale needs them), one row per analysed
checkpoint of a run with a lens (``mechgrok.lens``: frequencies k of Z_p, or a group's irreps; the
grid's elements numbered as the group numbers them, discrete logs for div and mul):

- ``neuron_freq`` [C, d_mlp] int16, ``neuron_frac`` [C, d_mlp] float16: each neuron's dominant
  frequency (or irrep) and the share of its variance it explains (the clustering's inputs);
- ``logit_spectrum`` [C, K + 1] (or [C, n_irreps]): norm of each output frequency (irrep) of
  W_out W_U (neuron -> logit map);
- ``attention_scores`` [C, heads, 3, d_vocab]: layer 0's attention score of the '=' query on
  each (position, token) key, q . k / sqrt(d_head). In layer 0 a key depends on its token and
  position only, so the attention of '=' to a on input (a, b) is exactly
  softmax(s[0, a], s[1, b], s[2, =])[0]: the browser computes every (a, b) map from these tables;
- ``maps`` [M, n, p, p] (or [M, n, |G|, |G|]) float16: the activations over (a, b) of ``picked`` neurons (a few per key
  frequency, two unclustered) at ``map_steps``, at most MAX_MAP_STEPS checkpoints evenly spread
  (the full set of p^2 activations at every checkpoint would be gigabytes);
- ``neuron_spectra`` [M, d_mlp, r, r] float16: every neuron's 2D coefficients B X B^T at the same checkpoints, on
  the r basis rows of the trivial and the key units (``spectrum_rows``); [M, d_mlp, 0, 0] when r > MAX_SPECTRUM_ROWS
  (large irreps: the file would be hundreds of MB);
- ``dimension`` [C, 2] float32: the participation ratio of the MLP activations and of W_E (``instruments``);
- ``attention_spectrum`` [C, heads, 2, n_irreps] float32: each layer-0 head's QK and OV norm per irrep;
- ``clock`` [C, n_key, |G|, 2] float16: each element's embedding on each key unit's plane;
- ``weight_pca`` [C, 3] float32 and ``weight_pca_explained`` [3]: the checkpoints' weights on their first
  principal components, fitted on the analysed checkpoints (so recomputed whole by every analysis).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..fileio import load_tensors, save_tensors
from ..errors import MechgrokError
from . import instruments
from .measures import NeuronClusters

if TYPE_CHECKING:
    from ..hooked import HookedModel
    from ..lens import Lens

    from ..run import Run

MAX_MAP_STEPS = 26
MAX_SPECTRUM_ROWS = 16
PER_KEY_FREQUENCY = 3
UNCLUSTERED = 2
FORMAT = "explorer-arrays"


def attention_scores(model: HookedModel) -> torch.Tensor:
    """[heads, 3, d_vocab] layer-0 scores of the last ('=') query on each (position, token) key."""
    attn = model.blocks[0].attn
    W_E, W_pos = model.W_E.detach(), model.W_pos.detach()
    eq = W_E.shape[0] - 1
    q = torch.einsum("d,hde->he", W_E[eq] + W_pos[2], attn.W_Q.detach()) + attn.b_Q.detach()  # [heads, d_head]
    keys = torch.einsum("pvd,hde->hpve", W_E[None] + W_pos[:3, None], attn.W_K.detach()) \
        + attn.b_K.detach()[:, None, None]  # [heads, pos, vocab, d_head]
    return torch.einsum("he,hpve->hpv", q, keys) / math.sqrt(attn.W_Q.shape[-1])


def pick_neurons(clusters: NeuronClusters, key_freqs: list[int]) -> list[int]:
    """A few neurons to show over (a, b): the cleanest PER_KEY_FREQUENCY of each key cluster, and UNCLUSTERED others."""
    picked = [n for k in key_freqs for n in clusters.cleanest(k, PER_KEY_FREQUENCY)]
    others = torch.nonzero(~clusters.clustered).flatten()[:UNCLUSTERED].tolist()
    return picked + others


def map_steps(steps: list[int]) -> list[int]:
    """At most MAX_MAP_STEPS checkpoints, evenly spread, the first and the last included."""
    if len(steps) <= MAX_MAP_STEPS:
        return list(steps)
    index = torch.linspace(0, len(steps) - 1, MAX_MAP_STEPS).round().long().unique()
    return [steps[i] for i in index.tolist()]


def spectrum_rows(lens: Lens, key: list[int]) -> list[int]:
    """The basis rows of every neuron's stored 2D spectrum: the trivial unit's and the key units' (none when there
    are more than MAX_SPECTRUM_ROWS)."""
    rows = torch.nonzero(torch.isin(lens.group.owner, torch.tensor([0, *key]))).flatten().tolist()
    return rows if len(rows) <= MAX_SPECTRUM_ROWS else []


def checkpoint_arrays(model: HookedModel, lens: Lens, clusters: NeuronClusters, logit_spectrum: torch.Tensor,
                      neurons: torch.Tensor, picked: list[int], key: list[int], with_map: bool) -> dict[str, torch.Tensor]:
    """One checkpoint's rows (``neurons`` [|G|, |G|, d_mlp]; the picked neurons' maps kept when ``with_map``)."""
    scores = attention_scores(model).float()
    W_E = model.W_E.detach()
    arrays = {"neuron_freq": clusters.best_freq.to(torch.int16), "neuron_frac": clusters.best_frac.half(),
              "logit_spectrum": logit_spectrum.float(), "attention_scores": scores,
              "dimension": instruments.effective_dimensions(W_E, neurons, lens),
              "attention_spectrum": instruments.attention_spectra(model, scores, lens),
              "clock": instruments.clock(W_E, lens, key).half()}
    if with_map:
        arrays["maps"] = neurons[..., picked].permute(2, 0, 1).half()
        rows = torch.tensor(spectrum_rows(lens, key), dtype=torch.long)
        coefficients = lens.group.transform_2d(neurons.double())[rows][:, rows]  # [r, r, d_mlp]
        arrays["neuron_spectra"] = coefficients.permute(2, 0, 1).half()
    return arrays


def present_steps(steps: list[int], rows: dict[int, dict[str, torch.Tensor]]) -> list[int]:
    """The steps the arrays file will hold: those with a row."""
    return [s for s in steps if s in rows]


def save_arrays(path: Path, steps: list[int], rows: dict[int, dict[str, torch.Tensor]], picked: list[int],
                key_from_step: int, pca: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Stack the rows of ``steps`` into one file (a step without a row is left out); ``pca``: ``weight_pca`` of
    ``present_steps``."""
    present = present_steps(steps, rows)
    with_maps = [s for s in present if "maps" in rows[s]]
    tensors = {name: torch.stack([rows[s][name] for s in present]) for name in ROW_ARRAYS if name != "weight_pca"}
    tensors.update(weight_pca=pca[0], weight_pca_explained=pca[1])
    tensors.update(steps=torch.tensor(present), picked=torch.tensor(picked, dtype=torch.int64),
                   map_steps=torch.tensor(with_maps, dtype=torch.int64))
    if with_maps:
        tensors["maps"] = torch.stack([rows[s]["maps"] for s in with_maps])
        tensors["neuron_spectra"] = torch.stack([rows[s]["neuron_spectra"] for s in with_maps])
    save_tensors(path, tensors, {"kind": FORMAT, "key_from_step": key_from_step})


ROW_ARRAYS = {"neuron_freq": 2, "neuron_frac": 2, "logit_spectrum": 2, "attention_scores": 4, "dimension": 2,
              "attention_spectrum": 4, "clock": 4, "weight_pca": 2}  # name: dims
INDEX_ARRAYS = ("steps", "picked", "map_steps")


def check_arrays(tensors: dict[str, torch.Tensor], meta: dict, path: Path) -> None:
    """The arrays are shaped as ``save_arrays`` writes them (a file may hold anything); one line otherwise.

    steps, picked, map_steps: 1-D integers (steps strictly increasing and >= 0, map_steps among them, picked
    neuron indices); every row array [len(steps), ...] with its number of dimensions, neuron_freq and
    neuron_frac of one width, picked neurons inside it; maps [len(map_steps), len(picked), n, n]; all finite.
    """
    def bad(why: str) -> MechgrokError:
        return MechgrokError(f"{path} is not a usable explorer-arrays file ({why}); run `mechgrok analyze --force`")

    for name in (*INDEX_ARRAYS, *ROW_ARRAYS, "weight_pca_explained"):
        if name not in tensors:
            raise bad(f"no {name!r}")
    if not isinstance(meta.get("key_from_step"), int) or isinstance(meta.get("key_from_step"), bool):
        raise bad("no key_from_step")
    for name in INDEX_ARRAYS:
        t = tensors[name]
        if t.dim() != 1 or t.is_floating_point() or t.dtype == torch.bool or t.is_complex():
            raise bad(f"{name} is not a list of integers")
    steps = tensors["steps"].tolist()
    if any(s < 0 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:])):
        raise bad("steps are not increasing")
    if not set(tensors["map_steps"].tolist()) <= set(steps):
        raise bad("map_steps outside steps")
    for name, dims in ROW_ARRAYS.items():
        t = tensors[name]
        if t.dim() != dims or t.shape[0] != len(steps) or t.is_complex() or t.dtype == torch.bool:
            raise bad(f"{name} has shape {tuple(t.shape)}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise bad(f"{name} is not finite")
    explained = tensors["weight_pca_explained"]
    if explained.dim() != 1 or not explained.is_floating_point() or not bool(torch.isfinite(explained).all()):
        raise bad("weight_pca_explained is not a list of numbers")
    if tensors["clock"].shape[-1] != 2:
        raise bad(f"clock has shape {tuple(tensors['clock'].shape)}")
    width = tensors["neuron_freq"].shape[1]
    if tensors["neuron_frac"].shape[1] != width or tensors["neuron_freq"].is_floating_point():
        raise bad("neuron_freq and neuron_frac disagree")
    picked = tensors["picked"].tolist()
    if any(not 0 <= n < width for n in picked):
        raise bad("picked neurons outside the layer")
    n_maps = len(tensors["map_steps"])
    if n_maps:
        maps = tensors.get("maps")
        if maps is None or maps.dim() != 4 or tuple(maps.shape[:2]) != (n_maps, len(picked)) \
                or maps.shape[2] != maps.shape[3] or not maps.is_floating_point() or not bool(torch.isfinite(maps).all()):
            raise bad("maps do not match map_steps and picked")
        spectra = tensors.get("neuron_spectra")
        if spectra is None or spectra.dim() != 4 or tuple(spectra.shape[:2]) != (n_maps, width) \
                or spectra.shape[2] != spectra.shape[3] or not spectra.is_floating_point() \
                or not bool(torch.isfinite(spectra).all()):
            raise bad("neuron_spectra do not match map_steps and the layer")


def run_shapes(run: Run) -> dict[str, tuple[int, ...]]:
    """Each array's shape after its checkpoint axis in an analysis of ``run`` (maps: after the picked axis)."""
    model, group = run.config.model, run.dataset.lens.group
    return {"neuron_freq": (model.d_mlp,), "neuron_frac": (model.d_mlp,), "logit_spectrum": (group.n_irreps,),
            "attention_scores": (model.n_heads, 3, run.d_vocab), "maps": (group.order, group.order),
            "dimension": (2,), "attention_spectrum": (model.n_heads, 2, group.n_irreps),
            "weight_pca": (instruments.N_COMPONENTS,), "weight_pca_explained": (instruments.N_COMPONENTS,)}


def load_arrays(path: Path, run: Run | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """The arrays and metadata of ``path``, checked (``check_arrays``) and, given the ``run``, shaped for it."""
    loaded = load_tensors(path, FORMAT)
    check_arrays(loaded.tensors, loaded.meta, Path(path))
    if run is not None:
        for name, shape in run_shapes(run).items():
            leading = 0 if name == "weight_pca_explained" else 1 + (name == "maps")  # checkpoint (and picked) axes
            if name in loaded.tensors and tuple(loaded.tensors[name].shape[leading:]) != shape:
                raise MechgrokError(f"{path} does not fit {run.path} ({name} has shape "
                                    f"{tuple(loaded.tensors[name].shape)}); run `mechgrok analyze --force`")
        freq = loaded.tensors["neuron_freq"]
        if freq.numel() and not (0 <= int(freq.min()) and int(freq.max()) < run.dataset.lens.group.n_irreps):
            raise MechgrokError(f"{path}: neuron_freq names no irrep of {run.path}'s group; "
                                "run `mechgrok analyze --force`")
    return loaded.tensors, loaded.meta


def previous_rows(path: Path, picked: list[int], key_from_step: int) -> dict[int, dict[str, torch.Tensor]]:
    """The rows of an earlier analysis for the same picked neurons and final checkpoint; {} when none or damaged."""
    if not path.is_file():
        return {}
    try:
        tensors, meta = load_arrays(path)
    except MechgrokError:
        return {}
    if meta.get("key_from_step") != key_from_step or tensors["picked"].tolist() != picked:
        return {}
    maps = dict(zip(tensors["map_steps"].tolist(), zip(tensors["maps"], tensors["neuron_spectra"]))) \
        if "maps" in tensors else {}
    rows = {}
    for i, step in enumerate(tensors["steps"].tolist()):
        rows[step] = {name: tensors[name][i] for name in ROW_ARRAYS if name != "weight_pca"}
        if step in maps:
            rows[step]["maps"], rows[step]["neuron_spectra"] = maps[step]
    return rows
