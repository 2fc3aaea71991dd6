"""Atomic, code-free file I/O: safetensors for tensors, JSON for everything else.

Every write goes to a temporary file in the same directory, is flushed to disk and then
renamed over the target, so a kill at any moment leaves either the old file or the new
one, never half of one. Reading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from .errors import MechgrokError

FORMAT_KEY = "mechgrok"


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, fsync it, then rename it to ``path``."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, value: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(value, indent=2) + "\n"))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise MechgrokError(f"{path} is not valid JSON: {err}") from None


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write tensors and JSON metadata (stored under the safetensors header key 'mechgrok')."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata={FORMAT_KEY: json.dumps(meta)}))


def load_tensors(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by ``save_tensors`` whose metadata says ``kind``; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MechgrokError(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise MechgrokError(f"{path} is truncated or corrupt ({err})") from None
    try:
        meta = json.loads(header[FORMAT_KEY])
    except (KeyError, json.JSONDecodeError):
        raise MechgrokError(f"{path} is not a mechgrok file (no '{FORMAT_KEY}' metadata)") from None
    if meta.get("kind") != kind:
        raise MechgrokError(f"{path} holds a {meta.get('kind')!r}, expected a {kind!r}")
    return tensors, meta
