"""Wall time of ``mechgrok analyze`` on a p=113 run with 201 checkpoints (target: < 20 s with HTML figures,
fixed start-up < 5 s, on this 2-core CPU), with PNG export timed separately.

With no argument it first trains the default p=113 model for 200 steps with a checkpoint at
every step (201 checkpoints, not timed); pass a run directory to time that run instead.
Prints, each recomputing everything (``force=True``) in this process: the last checkpoint
alone (the fixed cost: the final checkpoint's circuit, ablations and arrays; the first call
also pays for importing TransformerLens, reported apart), every checkpoint with HTML figures,
and the same with PNG copies. Run: ``.venv/bin/python bench/analyze_speed.py [RUN_DIR]``.
"""

import sys
import tempfile
import time

from mechgrok import TrainConfig, load_run, train
from mechgrok.analysis import analyze_run


def timed(**kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    report = analyze_run(force=True, progress=False, **kwargs)
    return time.perf_counter() - start, report


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if len(sys.argv) > 1:
            run_dir = sys.argv[1]
        else:
            run_dir = f"{tmp}/run"
            train(TrainConfig(steps=200, save_every=1, out=run_dir), progress=False)
        run = load_run(run_dir)
        start = time.perf_counter()
        import transformer_lens  # noqa: F401  (what the first analysis in a process pays for)
        imported = time.perf_counter() - start
        last, _ = timed(run_dir=run_dir, steps=[run.steps[-1]], figures=False)
        html, report = timed(run_dir=run_dir)
        png, _ = timed(run_dir=run_dir, png=True)
    n = len(report.measures)
    print(f"analyze, p={run.config.data.p}, {n} checkpoints:")
    print(f"  importing TransformerLens (once per process): {imported:.1f} s")
    print(f"  last checkpoint alone (fixed cost, no figures): {last:.1f} s (target < 5 s with the import)")
    print(f"  every checkpoint, HTML figures: {html:.1f} s = {1000 * (html - last) / max(n - 1, 1):.0f} ms per further "
          f"checkpoint (target < 20 s)")
    print(f"  every checkpoint, HTML + PNG figures: {png:.1f} s (PNG export {png - html:+.1f} s)")


if __name__ == "__main__":
    main()
