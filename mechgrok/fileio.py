"""Atomic, code-free file I/O: safetensors for tensors, JSON and CSV for everything else.

Every write goes to a temporary sibling (``.NAME.XXXXXXXX.tmp``), is flushed to disk and
renamed over the target, so a kill at any moment leaves either the old file or the new one,
never half of one (``remove_stale_temporaries`` clears what a kill leaves behind). Reading
never unpickles anything. Tensor files carry a SHA-256 of their tensors, checked on load.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from .errors import MechgrokError

JSONObject = dict[str, Any]  # a JSON object as read: free-form by nature (metadata, documents)
Row = dict[str, float | int | str | None]  # one row of a table (CSV, JSON lines)

FORMAT_KEY = "mechgrok"
CHECKSUM_KEY = "mechgrok.sha256"
TEMPORARY_TAG = "mechgrok-"  # in every temporary name this package makes, so that only those are ever removed
TEMPORARY_RE = re.compile(r"\..+\.mechgrok-[a-z0-9_]{8}\.tmp")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()  # the process's, read once: files are written with the mode open() would give them


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, fsync it, then rename it to ``path``.

    A full disk or any other OSError becomes one MechgrokError naming the file; the old file stays.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{TEMPORARY_TAG}", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise MechgrokError(f"cannot write {path} ({err.strerror or err})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes it private; the file gets the mode any other would
        os.replace(tmp, path)
    except (OSError, SafetensorError) as err:  # safetensors reports a full disk as its own error
        why = getattr(err, "strerror", None) or str(err).split(": ")[-1]
        raise MechgrokError(f"cannot write {path} ({why}); the previous version is kept") from None
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files a killed ``atomic_write`` left in ``directory`` (our pattern only)."""
    removed = []
    if directory.is_dir():
        for path in directory.iterdir():
            if path.is_file() and TEMPORARY_RE.fullmatch(path.name):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def write_json(path: str | Path, value: Any) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(value, indent=2) + "\n"))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MechgrokError(f"{path} is not valid JSON: {err}") from None
    except (ValueError, RecursionError) as err:
        raise MechgrokError(f"{path} is beyond what is read ({_limit(err)})") from None
    except OSError as err:
        raise MechgrokError(f"{path} cannot be read ({err.strerror or err})") from None


def read_document(path: str | Path, what: str) -> Any:
    """A TOML (``.toml``) or JSON (any other suffix) file, parsed; MechgrokError naming ``what`` and the file."""
    path = Path(path)
    if not path.is_file():
        raise MechgrokError(f"{what} {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except UnicodeDecodeError:
        raise MechgrokError(f"{what} {path} is not UTF-8 text") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise MechgrokError(f"{what} {path} is not valid {path.suffix[1:].upper() or 'JSON'}: {err}") from None
    except (ValueError, RecursionError) as err:  # Python's own limits: a 5,000-digit integer, 100,000-deep nesting
        raise MechgrokError(f"{what} {path} is beyond what is read ({_limit(err)})") from None
    except OSError as err:
        raise MechgrokError(f"{what} {path} cannot be read ({err.strerror or err})") from None


def _limit(err: Exception) -> str:
    return "nesting too deep" if isinstance(err, RecursionError) else str(err).split(";")[0]


def read_jsonl(path: Path) -> list[JSONObject]:
    """Rows of a JSON-lines file; [] when it does not exist. A torn last line (a kill mid-append) is dropped."""
    if not path.exists():
        return []
    try:
        lines = path.read_bytes().decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        raise MechgrokError(f"{path} is not UTF-8 text") from None
    except OSError as err:
        raise MechgrokError(f"{path} cannot be read ({err.strerror or err})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not line.endswith("\n"):
                break
            raise MechgrokError(f"{path}: line {number} is not valid JSON") from None
        except (ValueError, RecursionError) as err:
            raise MechgrokError(f"{path}: line {number} is beyond what is read ({_limit(err)})") from None
        if not isinstance(row, dict):
            raise MechgrokError(f"{path}: line {number} is not a JSON object")
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[Row]) -> None:
    atomic_write(path, lambda tmp: tmp.write_text("".join(json.dumps(r) + "\n" for r in rows)))


def write_csv(path: Path, rows: list[Row]) -> None:
    """Atomically write ``rows`` with every column any row has (blank where a row lacks it)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
    atomic_write(path, write)


def read_csv(path: Path) -> list[dict[str, float | int]]:
    """Rows of a numeric CSV written by ``write_csv``: ``step`` as int, the rest float (blank: NaN)."""
    if not path.exists():
        return []
    try:
        with open(path, newline="") as handle:
            return [{k: (int(v) if k == "step" else float(v) if v != "" else math.nan) for k, v in row.items()}
                    for row in csv.DictReader(handle)]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as err:
        raise MechgrokError(f"{path} is not a numeric table ({err})") from None


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class TensorFile:
    """What ``load_tensors`` read: tensors, metadata, and whether a stored checksum was verified."""

    tensors: dict[str, torch.Tensor]
    meta: JSONObject
    verified: bool


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: JSONObject) -> None:
    """Write tensors, JSON metadata (header key 'mechgrok') and their checksum (header key 'mechgrok.sha256')."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {FORMAT_KEY: json.dumps(meta), CHECKSUM_KEY: tensor_checksum(cpu)}
    # serialised in memory and written by atomic_write: safetensors' own save_file goes through a temporary of its
    # own (.tmpXXXXXX), which a kill would leave behind under a name this package does not own
    data = save(cpu, metadata=header)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def load_tensors(path: str | Path, kind: str) -> TensorFile:
    """Read a file written by ``save_tensors`` whose metadata says ``kind``; one clear error otherwise.

    A checksum mismatch is an error (the file is corrupt); a file written before checksums
    existed loads with ``verified=False``.
    """
    path = Path(path)
    if not path.is_file():
        raise MechgrokError(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise MechgrokError(f"{path} is truncated or corrupt ({str(err).splitlines()[0][:100]})") from None
    try:
        meta = json.loads(header[FORMAT_KEY])
    except (KeyError, json.JSONDecodeError):
        raise MechgrokError(f"{path} is not a mechgrok file (no '{FORMAT_KEY}' metadata)") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        found = meta.get("kind") if isinstance(meta, dict) else None
        raise MechgrokError(f"{path} holds a {found!r}, expected a {kind!r}")
    stored = header.get(CHECKSUM_KEY)
    if stored is not None and stored != tensor_checksum(tensors):
        raise MechgrokError(f"{path} is corrupt: its tensors do not match their stored checksum")
    return TensorFile(tensors, meta, stored is not None)
