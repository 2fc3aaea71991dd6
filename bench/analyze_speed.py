"""Wall time of ``mechgrok analyze`` on a p=113 run with 200 checkpoints (target: < 60 s, 2-core CPU).

With no argument it first trains the default p=113 model for 200 steps with a checkpoint at
every step (201 checkpoints, not timed); pass a run directory to time that run instead.
Times the whole analysis, figures included, recomputing everything (``force=True``).
Run: ``.venv/bin/python bench/analyze_speed.py [RUN_DIR]``.
"""

import sys
import tempfile
import time

from mechgrok import TrainConfig, load_run, train
from mechgrok.analysis import analyze_run


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if len(sys.argv) > 1:
            run_dir = sys.argv[1]
        else:
            run_dir = f"{tmp}/run"
            train(TrainConfig(steps=200, save_every=1, out=run_dir), progress=False)
        run = load_run(run_dir)
        start = time.perf_counter()
        report = analyze_run(run_dir, force=True, progress=False)
        seconds = time.perf_counter() - start
    print(f"analyze: p={run.config.data.p}, {len(report.measures)} checkpoints, figures included: {seconds:.1f} s "
          f"({1000 * seconds / len(report.measures):.0f} ms per checkpoint; target < 60 s)")


if __name__ == "__main__":
    main()
