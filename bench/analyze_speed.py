"""Wall time of ``mechgrok analyze`` on a p=113 run with 201 checkpoints (target: < 20 s with HTML figures,
fixed start-up < 5 s, on this 2-core CPU), with PNG export timed separately.

With no run directory it first trains the default p=113 model for 200 steps with a checkpoint at
every step (201 checkpoints, not timed). Prints, each recomputing everything (``force=True``), in a
fresh process: the last checkpoint alone (the fixed cost: the final checkpoint's circuit, ablations
and arrays; importing TransformerLens reported apart), every checkpoint with HTML figures, and the
same with PNG copies. ``--against DIR`` times the same run with the package of another checkout
(e.g. ``git worktree add /tmp/prev <commit>``) in the same way and prints both side by side.

Run: ``.venv/bin/python bench/analyze_speed.py [RUN_DIR] [--against DIR] [--no-png]``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def _timed(analyze_run, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    report = analyze_run(force=True, progress=False, **kwargs)
    return time.perf_counter() - start, report


def child(run_dir: str, png: bool) -> None:
    """Time one package (the one on sys.path) on ``run_dir`` and print the figures as JSON."""
    import mechgrok
    from mechgrok import load_run
    from mechgrok.analysis import analyze_run

    run = load_run(run_dir)
    start = time.perf_counter()
    import transformer_lens  # noqa: F401  (what the first analysis in a process pays for)
    imported = time.perf_counter() - start
    last, _ = _timed(analyze_run, run_dir=run_dir, steps=[run.steps[-1]], figures=False)
    html, report = _timed(analyze_run, run_dir=run_dir)
    with_png = _timed(analyze_run, run_dir=run_dir, png=True)[0] if png else None
    print(json.dumps({"package": str(Path(mechgrok.__file__).parent.parent), "n": len(report.measures),
                      "import": imported, "last": last, "html": html, "png": with_png}))


def measure(root: Path, run_dir: str, png: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, __file__, run_dir, "--child"] + ([] if png else ["--no-png"]),
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", nargs="?")
    parser.add_argument("--against", help="a checkout of another release to time beside this one")
    parser.add_argument("--no-png", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.run_dir, not args.no_png)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir
        if run_dir is None:
            from mechgrok import TrainConfig, train

            run_dir = f"{tmp}/run"
            train(TrainConfig(steps=200, save_every=1, out=run_dir), progress=False)
        roots = [HERE] + ([Path(args.against).resolve()] if args.against else [])
        results = [measure(root, run_dir, not args.no_png) for root in roots]
    n = results[0]["n"]
    print(f"analyze, {n} checkpoints of {run_dir}; each column a fresh process:")
    print(f"  {'':58s}" + "".join(f"{Path(r['package']).name[:18]:>20s}" for r in results))
    rows = [("importing TransformerLens (once per process)", "import"),
            ("last checkpoint alone, no figures (target < 5 s with import)", "last"),
            ("every checkpoint, HTML figures (target < 20 s)", "html"),
            ("every checkpoint, HTML + PNG figures", "png")]
    for label, key in rows:
        cells = [f"{r[key]:.1f} s" if r[key] is not None else "-" for r in results]
        print(f"  {label:58s}" + "".join(f"{c:>20s}" for c in cells))
    per = [f"{1000 * (r['html'] - r['last']) / max(n - 1, 1):.0f} ms" for r in results]
    print(f"  {'per further checkpoint':58s}" + "".join(f"{c:>20s}" for c in per))


if __name__ == "__main__":
    main()
