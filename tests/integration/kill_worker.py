"""Fault injection: train a tiny run, SIGKILL it again and again, resume it, report what was seen.

    python kill_worker.py WORK_DIR KILLS SEED

This process imports mechgrok but never runs a torch operation itself, so it can ``fork``
training children safely (each sets one thread). Half the kills land at a random moment, half
as soon as a temporary file of an atomic write is seen (a kill mid-write). After the kills the
run is resumed to the end, and an uninterrupted reference run is trained in another child.
Prints one JSON line: kills made, kills that left a temporary file behind, and the run dirs.
"""

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

from mechgrok import TrainConfig
from mechgrok.fileio import TEMPORARY_RE

CONFIG = dict(task="add", p=11, frac_train=0.5, d_model=16, n_heads=2, d_head=8, d_mlp=32, lr=3e-3, dropout=0.2,
              grokfast="ema", steps=400, save_every=2, log_every=2)


def child(out: Path) -> None:
    import torch

    from mechgrok import train

    torch.set_num_threads(1)
    train(TrainConfig(**CONFIG, out=str(out)), progress=False)
    os._exit(0)


def spawn(out: Path) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            child(out)
        finally:
            os._exit(1)
    return pid


def temporaries(out: Path) -> list[Path]:
    return [p for d in (out, out / "checkpoints") if d.is_dir() for p in d.iterdir() if TEMPORARY_RE.fullmatch(p.name)]


def main() -> None:
    work, kills, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    killed = out = work / "killed"
    debris_seen = 0
    made = 0
    while made < kills:
        pid = spawn(out)
        deadline = time.monotonic() + (rng.uniform(0.05, 0.6) if made % 2 else 5.0)
        while time.monotonic() < deadline and not (made % 2 == 0 and temporaries(out)):
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished:
                break
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            made += 1
            debris_seen += bool(temporaries(out))
            continue
        break  # the run finished before a kill: stop killing
    for directory in (killed, work / "straight"):
        pid = spawn(directory)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            raise SystemExit(f"training child for {directory} failed with status {status}")
    print(json.dumps({"kills": made, "kills_leaving_temporaries": debris_seen, "killed": str(killed),
                      "straight": str(work / "straight")}))


if __name__ == "__main__":
    main()
