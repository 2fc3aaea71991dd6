"""Runs the field already has, read safely and written as ordinary run directories (``mechgrok import``).

Formats (detected from the file's keys; ``fmt`` forces one):

- ``tl-demo``: the TransformerLens grokking demo's ``torch.save`` dict: ``model`` (the final state dict),
  ``config`` (a pickled ``HookedTransformerConfig``), ``checkpoints`` and ``checkpoint_epochs``,
  ``train_losses`` / ``test_losses`` (one per epoch), ``train_indices`` / ``test_indices`` (indices into
  every pair, ordered a * p + b);
- ``arena``: ARENA's ``full_run_data.pth``: ``state_dicts``, ``epochs`` (one per state dict),
  ``train_losses``, ``test_losses``; no split is stored, so one is drawn (``frac_train``, ``seed``) or read
  from ``index_file``;
- ``progress-measures``: the directory of Nanda et al.'s code: ``init.pth`` (``model``, ``train_data``,
  ``test_data`` as (i, j, p) lists), ``<epoch>.pth`` (``model``, ``train_loss``, ``test_loss``, ``epoch``) and
  ``final.pth``, with weights in that code's layout, converted here to HookedTransformer's (``paper_to_tl``);
- ``state-dicts``: a directory of HookedTransformer state dicts (``<epoch>.pt``/``.pth``/``.safetensors``, or
  any names with the step as their last number), with ``task``, ``p``, and the split from ``frac_train`` /
  ``seed`` or ``index_file``.

Nothing is unpickled: ``torch.load(weights_only=True)`` reads tensors and plain data, and the config classes
these files pickle (``HookedTransformerConfig`` under each of its module paths, and the numpy scalar and dtype
types it holds) are admitted as inert stand-ins (``InertObject``: a bag of attributes; no ``__reduce__`` of
theirs runs, no TransformerLens class is needed). Any other global is refused in one line naming it.

A run's facts come from the file where it records them (model shape from the weights, p from the output
width, the split where stored); the rest from flags, and a missing one is one line naming its flag. The
written run keeps the file's loss curves in metrics.jsonl (every epoch they cover) and adds, at each
checkpoint, accuracies and the weight norm computed from the weights; where the file has no loss for a
checkpoint's epoch, mechgrok's float64 cross-entropy stands in. An imported run cannot be trained further
(config.json names its source).
"""

from __future__ import annotations

import math
import pickle
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import TrainConfig
from .errors import MechgrokError
from .fileio import JSONObject, read_json
from .metrics import Objective, grok_step, sum_sq_weights
from .model import Transformer
from .run import RunWriter, load_weights, weights_only
from .tasks import Dataset, TASKS, all_pairs, get_task, split_indices

FORMATS = ("tl-demo", "arena", "progress-measures", "state-dicts")
STATE_SUFFIXES = (".pt", ".pth", ".safetensors")
MAX_FILE_BYTES = 8 * 2**30  # torch.load reads a whole file into memory


class InertObject:
    """What a pickled config class becomes: its saved attributes, nothing else (no methods of the original)."""

    def __setstate__(self, state) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)

    def get(self, name: str, default=None):
        return self.__dict__.get(name, default)


def _stand_ins() -> list:
    """(stand-in, 'module.Name') pairs admitted by the weights-only unpickler."""
    import numpy as np

    paths = ["transformer_lens.HookedTransformerConfig.HookedTransformerConfig",
             "transformer_lens.config.HookedTransformerConfig.HookedTransformerConfig",
             "transformer_lens.config.hooked_transformer_config.HookedTransformerConfig",
             "transformer_lens.config.TransformerLensConfig.TransformerLensConfig",
             "easy_transformer.EasyTransformerConfig.EasyTransformerConfig"]
    numpy_types = [np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32)), type(np.dtype(np.int64))]
    scalar = [(_numpy_scalar, f"{module}.multiarray.scalar") for module in ("numpy.core", "numpy._core")]
    return [*[(InertObject, path) for path in paths], *numpy_types, *scalar]


def _numpy_scalar(dtype, data=b""):
    """numpy's pickled scalar (dtype, raw bytes) as a Python number: numbers only, never code."""
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or not isinstance(data, bytes):
        raise MechgrokError("a pickled numpy scalar of a non-numeric type")
    return np.frombuffer(data, dtype=dtype, count=1)[0].item()


def pickled_globals(path: Path) -> list[str]:
    """The 'module.name' globals a pickle (raw, or a torch zip's data.pkl) refers to, read with pickletools: the
    opcodes are listed, never executed."""
    import io
    import pickletools
    import zipfile

    raw = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            raw = archive.read(names[0]) if names else b""
    found, strings = [], []
    try:
        for opcode, arg, _ in pickletools.genops(raw):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings = [*strings[-1:], arg]
            elif opcode.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) == 2:
                found.append(".".join(strings))
    except (ValueError, pickle.UnpicklingError, EOFError):  # a cut-short pickle: what was read so far
        pass
    return found


ADMITTED = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
            "torch.FloatStorage", "torch.LongStorage", "torch.BoolStorage", "torch.float32", "torch.float64",
            "builtins.set", "torch.serialization._get_layout", "torch.device"}


def safe_load(path: Path) -> object:
    """torch.load(weights_only=True) with the inert stand-ins; one line for code, damage or a foreign file."""
    path = Path(path)
    if not path.is_file():
        raise MechgrokError(f"{path} is not a file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise MechgrokError(f"{path} is larger than {MAX_FILE_BYTES // 2**30} GiB; refusing to read it")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise MechgrokError(f"{path} is not a readable safetensors file ({str(err).splitlines()[0][:80]})") \
                from None
    try:
        with torch.serialization.safe_globals(_stand_ins()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing: the refusal says it
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        names = [n for n in pickled_globals(path) if n not in ADMITTED]
        what = names[0] if names else "a pickle instruction torch's weights-only reader does not take"
        raise MechgrokError(f"{path} asks to load {what}, which is not data; refused (nothing was run)") from None
    except MechgrokError as err:
        raise MechgrokError(f"{path}: {err}") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise MechgrokError(f"{path} is truncated or not a torch file ({type(err).__name__}: "
                            f"{str(err).splitlines()[0][:80] if str(err) else 'no detail'})") from None


# -- the weights --------------------------------------------------------------------------------
def paper_to_tl(sd: dict[str, torch.Tensor], p: int) -> dict[str, torch.Tensor]:
    """Nanda et al.'s code's layout -> HookedTransformer's.

    Theirs: embed.W_E [d_model, vocab], attn.W_Q/W_K/W_V [heads, d_head, d_model], attn.W_O
    [d_model, heads * d_head] (the heads' outputs concatenated head-major), mlp.W_in [d_mlp, d_model],
    mlp.W_out [d_model, d_mlp], unembed.W_U [d_model, vocab] with vocab = p + 1 outputs. Ours: W_E.T,
    W_Q.transpose(1, 2), W_O.T reshaped to [heads, d_head, d_model], W_in.T, W_out.T, and W_U[:, :p] (the
    '=' token's output, which no label uses, is dropped: the p class logits are theirs exactly).
    """
    out = {"embed.W_E": sd["embed.W_E"].T, "pos_embed.W_pos": sd["pos_embed.W_pos"],
           "unembed.W_U": sd["unembed.W_U"][:, :p]}
    layers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))})
    for layer in layers:
        b = f"blocks.{layer}."
        heads, d_head, d_model = sd[b + "attn.W_Q"].shape
        for name in ("W_Q", "W_K", "W_V"):
            out[b + f"attn.{name}"] = sd[b + f"attn.{name}"].transpose(1, 2)
        out[b + "attn.W_O"] = sd[b + "attn.W_O"].T.reshape(heads, d_head, d_model)
        out[b + "mlp.W_in"], out[b + "mlp.W_out"] = sd[b + "mlp.W_in"].T, sd[b + "mlp.W_out"].T
        for name in ("b_in", "b_out"):
            if b + f"mlp.{name}" in sd:
                out[b + f"mlp.{name}"] = sd[b + f"mlp.{name}"]
    return out


@dataclass(frozen=True)
class Shape:
    """The model shape a state dict implies (HookedTransformer layout)."""

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    d_vocab: int
    d_vocab_out: int

    @classmethod
    def of(cls, sd: dict[str, torch.Tensor], where: str) -> "Shape":
        try:
            d_vocab, d_model = sd["embed.W_E"].shape
            layers = sorted({int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))})
            n_heads, _, d_head = sd["blocks.0.attn.W_Q"].shape
            d_mlp = sd["blocks.0.mlp.W_in"].shape[1]
            d_vocab_out = sd["unembed.W_U"].shape[1]
            n_ctx = sd["pos_embed.W_pos"].shape[0]
        except (KeyError, ValueError, IndexError):
            raise MechgrokError(f"{where} does not hold a HookedTransformer-layout model (embed.W_E, "
                                "blocks.0.attn.W_Q, blocks.0.mlp.W_in, unembed.W_U, pos_embed.W_pos)") from None
        if layers != list(range(len(layers))) or n_ctx != 3:
            raise MechgrokError(f"{where}: a model of {n_ctx} positions; mechgrok reads [a, b, =] models (3)")
        return cls(len(layers), d_model, n_heads, d_head, d_mlp, d_vocab, d_vocab_out)


def tl_weights(sd: dict, expected: dict[str, tuple[int, ...]], where: str) -> dict[str, torch.Tensor]:
    """A HookedTransformer state dict as a checkpoint of this run: buffers dropped, the biases it lacks zero,
    float32; one line for LayerNorm weights, other keys, shapes or non-finite values."""
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise MechgrokError(f"{where} is not a state dict (names to tensors)")
    sd = weights_only(sd)
    extra = sorted(set(sd) - set(expected))
    if extra:
        why = " (LayerNorm: mechgrok reads models without it)" if any(".ln" in k for k in extra) else ""
        raise MechgrokError(f"{where} has weights mechgrok's model lacks: {', '.join(extra[:3])}{why}")
    out = {}
    for name, shape in expected.items():
        value = sd.get(name)
        if value is None:
            if not name.rsplit(".", 1)[-1].startswith("b_"):
                raise MechgrokError(f"{where} lacks {name}")
            value = torch.zeros(shape)
        if tuple(value.shape) != shape or not value.is_floating_point():
            raise MechgrokError(f"{where}: {name} has shape {tuple(value.shape)}, {value.dtype}; expected {shape}")
        if not bool(torch.isfinite(value).all()):
            raise MechgrokError(f"{where}: {name} is not finite")
        out[name] = value.detach().float().contiguous()
    return out


# -- the formats --------------------------------------------------------------------------------
@dataclass
class Foreign:
    """A foreign run as read: checkpoints (epoch -> HookedTransformer-layout state dict), loss curves
    (epoch -> value), the split as indices into every pair ordered a * p + b (when stored), and facts."""

    fmt: str
    checkpoints: dict[int, dict]
    train_losses: dict[int, float]
    test_losses: dict[int, float]
    train_pairs: list[int] | None = None
    test_pairs: list[int] | None = None
    act_fn: str | None = None
    p: int | None = None


def _number(value, where: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MechgrokError(f"{where} is not a finite number: {type(value).__name__}")
    return float(value)


def _curve(values, where: str) -> dict[int, float]:
    if isinstance(values, torch.Tensor):
        values = values.flatten().tolist()
    if not isinstance(values, (list, tuple)):
        raise MechgrokError(f"{where} is not a list of losses")
    return {i: _number(v, f"{where}[{i}]") for i, v in enumerate(values)}


def _indices(values, where: str) -> list[int]:
    if isinstance(values, torch.Tensor):
        if values.is_floating_point() or values.dim() != 1:
            raise MechgrokError(f"{where} is not a list of pair indices")
        return values.tolist()
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                         for v in values):
        raise MechgrokError(f"{where} is not a list of pair indices")
    return list(values)


def _epochs(values, n: int, where: str) -> list[int]:
    epochs = _indices(values, where)
    if len(epochs) != n or len(set(epochs)) != n or any(e < 0 for e in epochs):
        raise MechgrokError(f"{where}: {len(epochs)} distinct epochs >= 0 expected one per state dict ({n})")
    return epochs


def detect(path: Path, loaded: object | None) -> str:
    """The format of ``path`` from its keys (a directory: progress-measures if it has init.pth, else state-dicts)."""
    if path.is_dir():
        return "progress-measures" if (path / "init.pth").is_file() else "state-dicts"
    keys = set(loaded) if isinstance(loaded, dict) else set()
    if {"checkpoints", "checkpoint_epochs", "config"} <= keys:
        return "tl-demo"
    if {"state_dicts", "epochs"} <= keys:
        return "arena"
    shown = ", ".join(sorted(str(k) for k in keys)[:6]) or type(loaded).__name__
    raise MechgrokError(f"{path}: not a format mechgrok imports (its keys: {shown}); give --format "
                        f"({', '.join(FORMATS)})")


def _need(data: dict, keys: tuple[str, ...], where: Path, fmt: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise MechgrokError(f"{where} is not a {fmt} file: it lacks {', '.join(missing)}")


def read_tl_demo(path: Path, data: dict) -> Foreign:
    _need(data, ("checkpoints", "checkpoint_epochs", "config", "train_losses", "test_losses", "train_indices",
                 "test_indices"), path, "tl-demo")
    checkpoints = data["checkpoints"]
    if not isinstance(checkpoints, (list, tuple)) or not checkpoints:
        raise MechgrokError(f"{path}: checkpoints is not a list of state dicts")
    epochs = _epochs(data["checkpoint_epochs"], len(checkpoints), f"{path}: checkpoint_epochs")
    found = dict(zip(epochs, checkpoints))
    train = _curve(data["train_losses"], f"{path}: train_losses")
    if isinstance(data.get("model"), dict) and len(train) - 1 not in found:  # the final weights, at the last epoch
        found[len(train) - 1] = data["model"]
    config = data["config"]
    act_fn = config.get("act_fn") if isinstance(config, InertObject) else None
    return Foreign("tl-demo", found, train, _curve(data["test_losses"], f"{path}: test_losses"),
                   _indices(data["train_indices"], f"{path}: train_indices"),
                   _indices(data["test_indices"], f"{path}: test_indices"),
                   act_fn if isinstance(act_fn, str) else None)


def read_arena(path: Path, data: dict) -> Foreign:
    _need(data, ("state_dicts", "epochs", "train_losses", "test_losses"), path, "arena")
    state_dicts = data["state_dicts"]
    if not isinstance(state_dicts, (list, tuple)) or not state_dicts:
        raise MechgrokError(f"{path}: state_dicts is not a list of state dicts")
    epochs = _epochs(data["epochs"], len(state_dicts), f"{path}: epochs")
    return Foreign("arena", dict(zip(epochs, state_dicts)), _curve(data["train_losses"], f"{path}: train_losses"),
                   _curve(data["test_losses"], f"{path}: test_losses"))


def _pairs(values, p: int, where: str) -> list[int]:
    if not isinstance(values, (list, tuple)) or not all(isinstance(t, (list, tuple)) and len(t) >= 2 for t in values):
        raise MechgrokError(f"{where} is not a list of (i, j, p) triples")
    return [int(t[0]) * p + int(t[1]) for t in values]


def read_progress_measures(path: Path) -> Foreign:
    init = safe_load(path / "init.pth")
    if not isinstance(init, dict):
        raise MechgrokError(f"{path / 'init.pth'} is not a dict")
    _need(init, ("model", "train_data", "test_data"), path / "init.pth", "progress-measures")
    try:
        p = int(init["model"]["unembed.W_U"].shape[1]) - 1  # outputs: the p classes and '='
    except (KeyError, TypeError, AttributeError, IndexError):
        raise MechgrokError(f"{path / 'init.pth'}: its model has no unembed.W_U") from None
    found, train, test = {0: paper_to_tl(init["model"], p)}, {}, {}
    for file in sorted(path.glob("*.pth"), key=lambda f: f.name):
        if not re.fullmatch(r"\d+\.pth|final\.pth", file.name):
            continue
        saved = safe_load(file)
        if not isinstance(saved, dict) or "model" not in saved:
            raise MechgrokError(f"{file} is not a progress-measures checkpoint (no model)")
        if "epoch" in saved:
            epoch = int(_number(saved["epoch"], f"{file}: epoch"))
        elif file.stem.isdigit():
            epoch = int(file.stem)
        else:
            continue  # final.pth without its epoch: the same weights as the last numbered file
        try:
            found[epoch] = paper_to_tl(saved["model"], p)
        except (KeyError, TypeError, AttributeError, RuntimeError, ValueError):
            raise MechgrokError(f"{file}: its model is not in the progress-measures code's layout") from None
        for key, curve in (("train_loss", train), ("test_loss", test)):
            if key in saved:
                curve[epoch] = _number(saved[key], f"{file}: {key}")
    return Foreign("progress-measures", found, train, test, _pairs(init["train_data"], p, "train_data"),
                   _pairs(init["test_data"], p, "test_data"), "relu", p)


def read_state_dicts(path: Path) -> Foreign:
    found = {}
    for file in sorted(path.iterdir()):
        if file.suffix not in STATE_SUFFIXES or not file.is_file():
            continue
        numbers = re.findall(r"\d+", file.stem)
        if not numbers:
            raise MechgrokError(f"{file}: no step in its name (e.g. 1000.pt or step_1000.safetensors)")
        step = int(numbers[-1])
        if step in found:
            raise MechgrokError(f"{path}: two state dicts for step {step}")
        found[step] = safe_load(file)
    if not found:
        raise MechgrokError(f"{path} holds no state dicts ({', '.join(STATE_SUFFIXES)})")
    return Foreign("state-dicts", found, {}, {})


def read_foreign(path: Path, fmt: str | None = None) -> Foreign:
    """Read ``path`` in ``fmt`` (default: detected)."""
    path = Path(path)
    if not path.exists():
        raise MechgrokError(f"{path} does not exist")
    if fmt is not None and fmt not in FORMATS:
        raise MechgrokError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    loaded = None if path.is_dir() else safe_load(path)
    fmt = fmt or detect(path, loaded)
    if fmt in ("progress-measures", "state-dicts"):
        if not path.is_dir():
            raise MechgrokError(f"--format {fmt} reads a directory; {path} is a file")
        return read_progress_measures(path) if fmt == "progress-measures" else read_state_dicts(path)
    if not isinstance(loaded, dict):
        raise MechgrokError(f"{path}: a {fmt} file holds a dict, this holds {type(loaded).__name__}")
    return read_tl_demo(path, loaded) if fmt == "tl-demo" else read_arena(path, loaded)


# -- writing the run ----------------------------------------------------------------------------
def read_index_file(path: Path) -> tuple[list[int], list[int] | None]:
    """A JSON index file: {"train_indices": [...], "test_indices": [...] (optional: the rest)}, into every pair
    ordered a * p + b."""
    data = read_json(path)
    if not isinstance(data, dict) or "train_indices" not in data:
        raise MechgrokError(f"{path}: expected a JSON object with train_indices (and optionally test_indices)")
    test = data.get("test_indices")
    return (_indices(data["train_indices"], f"{path}: train_indices"),
            None if test is None else _indices(test, f"{path}: test_indices"))


def _dataset(task: str, p: int, train_pairs: list[int], test_pairs: list[int] | None, where: str) -> Dataset:
    """The task's dataset with the foreign split, each pair index a * n + b (n tokens, p for Z_p) mapped to its
    row; without test indices the test set is every other pair."""
    inputs, labels, n_tokens, heads = all_pairs(task, p)
    row_of = torch.full((n_tokens * n_tokens,), -1, dtype=torch.long)
    row_of[inputs[:, 0] * n_tokens + inputs[:, 1]] = torch.arange(len(inputs))

    def rows(pairs: list[int], name: str) -> torch.Tensor:
        index = torch.tensor(pairs, dtype=torch.long)
        if len(index) == 0 or bool(((index < 0) | (index >= len(row_of))).any()) or bool((row_of[index] < 0).any()):
            raise MechgrokError(f"{where}: {name} holds pairs that are not inputs of {task} p={p}")
        if len(set(pairs)) != len(pairs):
            raise MechgrokError(f"{where}: {name} repeats a pair")
        return row_of[index]

    train = rows(train_pairs, "the train indices")
    test = rows(test_pairs, "the test indices") if test_pairs is not None else torch.tensor(
        sorted(set(range(len(inputs))) - set(train.tolist())), dtype=torch.long)
    if set(train.tolist()) & set(test.tolist()) or len(test) == 0:
        raise MechgrokError(f"{where}: the train and test indices overlap, or no test pair is left")
    return Dataset(task, p, n_tokens, heads, inputs, labels, train, test)


def import_run(path: str | Path, out: str | Path, fmt: str | None = None, task: str | None = None,
               p: int | None = None, frac_train: float | None = None, seed: int = 0,
               index_file: str | Path | None = None, act_fn: str | None = None) -> Path:
    """Read the foreign run at ``path`` and write it as the run directory ``out``; returns ``out``."""
    path, out = Path(path), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MechgrokError(f"--out {out} exists and is not an empty directory; import writes a new run")
    foreign = read_foreign(path, fmt)
    first = min(foreign.checkpoints)
    if foreign.fmt in ("tl-demo", "arena", "state-dicts"):  # HookedTransformer state dicts: check the first
        if not isinstance(foreign.checkpoints[first], dict):
            raise MechgrokError(f"{path}: the checkpoint at epoch {first} is not a state dict")
    shape = Shape.of(weights_only(foreign.checkpoints[first]), f"{path} (epoch {first})")
    found_p = foreign.p or shape.d_vocab_out
    if p is not None and p != found_p:
        raise MechgrokError(f"--p {p} disagrees with the file, whose model has {found_p} output classes")
    if task is None:
        raise MechgrokError(f"{path} does not record its task; give --task ({', '.join(sorted(TASKS))})")
    get_task(task).check(found_p)  # one line when the task does not take this p
    split = foreign.train_pairs, foreign.test_pairs
    if index_file is not None:
        split = read_index_file(Path(index_file))
    inputs, _, n_tokens, _ = all_pairs(task, found_p)
    if split[0] is None:
        if frac_train is None:
            raise MechgrokError(f"{path} does not store its split; give --frac-train (and --seed) or --index-file")
        train_rows, _ = split_indices(len(inputs), frac_train, seed)
        split = ((inputs[train_rows, 0] * n_tokens + inputs[train_rows, 1]).tolist(), None)
    data = _dataset(task, found_p, split[0], split[1], str(path))
    if (shape.d_vocab, shape.d_vocab_out) != (data.d_vocab, data.n_classes):
        raise MechgrokError(f"{path}: the model reads {shape.d_vocab} tokens into {shape.d_vocab_out} classes; "
                            f"{task} p={found_p} has {data.d_vocab} and {data.n_classes}")
    act = act_fn or foreign.act_fn or "relu"
    steps = sorted(foreign.checkpoints)
    cfg = TrainConfig(task=task, p=found_p, frac_train=len(data.train_idx) / len(inputs), seed=seed,
                      n_layers=shape.n_layers, d_model=shape.d_model, n_heads=shape.n_heads, d_head=shape.d_head,
                      d_mlp=shape.d_mlp, act_fn=act, steps=max(steps[-1], 1), out=str(out))
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in weights_only(
            Transformer(cfg.model, data.d_vocab, data.n_classes).state_dict()).items()}
    weights = {step: tl_weights(foreign.checkpoints[step], expected, f"{path} (epoch {step})") for step in steps}
    _write(out, cfg, data, weights, foreign, {"path": str(path), "format": foreign.fmt})
    return out


def _write(out: Path, cfg: TrainConfig, data: Dataset, weights: dict[int, dict], foreign: Foreign,
           source: JSONObject) -> None:
    """The run directory: dataset, config (with its source), checkpoints, metrics, summary."""
    model = Transformer(cfg.model, data.d_vocab, data.n_classes).eval()
    objective = Objective(data.heads)
    (x_train, y_train), (x_test, y_test) = data.train(), data.test()
    rows: dict[int, dict] = {}
    for epoch in sorted(set(foreign.train_losses) | set(foreign.test_losses)):
        rows[epoch] = {"step": epoch, "train_loss": foreign.train_losses.get(epoch),
                       "test_loss": foreign.test_losses.get(epoch)}
    writer = RunWriter.open(out, cfg)
    try:
        writer.save_dataset(data, cfg)
        writer.write_config(cfg, data.d_vocab, data.n_classes, source)
        for step, sd in weights.items():
            load_weights(model, sd)
            with torch.no_grad():
                scores = {**objective.scores(model(x_train), y_train, "train"),
                          **objective.scores(model(x_test), y_test, "test")}
            row = rows.setdefault(step, {"step": step})
            for key, value in scores.items():
                if row.get(key) is None:
                    row[key] = value
            row["sum_sq_weights"] = sum_sq_weights(sd.values())
            writer.save_checkpoint(step, sd, {"config": cfg.to_dict(), "metrics": row, "source": source})
        for step in sorted(rows):
            writer.append_metrics(rows[step])
        last = rows[max(weights)]
        writer.write_summary({"task": cfg.data.task, "p": cfg.data.p, "steps": max(weights), "wall_seconds": 0.0,
                              **{k: last[k] for k in ("train_loss", "test_loss", "train_acc", "test_acc")},
                              "grok_step": grok_step([rows[s] for s in sorted(rows)]),
                              "imported_from": source})
    except BaseException:
        writer.close()
        shutil.rmtree(out, ignore_errors=True)  # a half-written import is no run: remove it whole
        raise
    writer.close()
