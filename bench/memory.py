"""Peak resident memory (RSS) of training and of `mechgrok analyze`, each in a fresh process, side by side.

- training: the default p=113 model, 300 full-batch steps;
- analysis of RUN_DIR (default: a 200-step run with a checkpoint every step, 201 checkpoints,
  trained first) on every checkpoint, on every 4th and on the last alone, so the three figures
  show whether memory grows with the number of checkpoints (it must not: one model is
  reused and each checkpoint's rows are small).
Run: ``.venv/bin/python bench/memory.py [RUN_DIR]``.
"""

import subprocess
import sys
import tempfile

PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_mb(*command: str) -> float:
    """Peak RSS (MB) of ``command``, run in a child of a fresh interpreter (ru_maxrss is in kB on Linux)."""
    out = subprocess.run([sys.executable, "-c", PEAK, *command], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    cli = [sys.executable, "-m", "mechgrok.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        training = peak_mb(*cli, "train", "--steps", "300", "--save-every", "100", "--out", f"{tmp}/train", "--quiet")
        print(f"train, default p=113 model, 300 full-batch steps: peak RSS {training:.0f} MB")
        run_dir = sys.argv[1] if len(sys.argv) > 1 else f"{tmp}/run"
        if len(sys.argv) == 1:
            subprocess.run([*cli, "train", "--steps", "200", "--save-every", "1", "--out", run_dir, "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
        for label, extra in (("every checkpoint", []), ("every 4th", ["--every", "4"]), ("last only", None)):
            args = extra if extra is not None else ["--steps", str(_last_step(run_dir))]
            mb = peak_mb(*cli, "analyze", run_dir, "--force", "--quiet", "--no-figures", *args)
            print(f"analyze {label:>16}: peak RSS {mb:.0f} MB")


def _last_step(run_dir: str) -> int:
    from mechgrok import load_run

    return load_run(run_dir).steps[-1]


if __name__ == "__main__":
    main()
