"""Publish an analysed run into the committed results root, by command (never by hand).

    .venv/bin/python scripts/publish_results.py RUN_DIR [DEST]

DEST (default results/<run name>) receives the run's config.json and summary.json, the
analysis's report.json, measures.csv and spectrum.csv, the PNG figures `mechgrok analyze`
rendered (or, without them, PNGs of the summary figures; needs kaleido and Chromium) in
the top-level figures/ (FIGURES, which the README shows), and
early_trajectory.csv: the first EARLY_STEPS steps of metrics.jsonl, which the acceptance test
``test_headline_early_trajectory_is_reproduced`` retrains and compares. ``make results`` runs
this on the headline run after training and analysing it.
"""

import shutil
import sys
from pathlib import Path

from mechgrok import load_run
from mechgrok.analysis import read_report
from mechgrok.analysis.figure_set import summary_figures
from mechgrok.analysis.figures import save_figures
from mechgrok.fileio import write_csv
from mechgrok.run import CONFIG_FILE, MEASURES_FILE, REPORT_FILE, SPECTRUM_FILE, SUMMARY_FILE

FIGURES = Path("figures")  # the headline run's figures, shown by the README and the docs
EARLY_STEPS = 300
EARLY_FILE = "early_trajectory.csv"


def main() -> None:
    run = load_run(sys.argv[1])
    dest = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("results") / run.path.name
    report = read_report(run.analysis_dir)
    dest.mkdir(parents=True, exist_ok=True)
    FIGURES.mkdir(exist_ok=True)
    for source in (run.path / CONFIG_FILE, run.path / SUMMARY_FILE, *(run.analysis_dir / name for name in (
            REPORT_FILE, MEASURES_FILE, SPECTRUM_FILE))):
        shutil.copyfile(source, dest / source.name)
    early = [{k: r[k] for k in ("step", "train_loss", "test_loss", "train_acc", "test_acc")}
             for r in run.metrics() if r["step"] <= EARLY_STEPS]
    write_csv(dest / EARLY_FILE, early)
    rendered = sorted(run.analysis_dir.glob("*.png"))  # what `mechgrok analyze` drew, model figures included
    for png in rendered:
        shutil.copyfile(png, FIGURES / png.name)
    if not rendered:
        save_figures(summary_figures(report), FIGURES, html=False)
    print(f"published {run.path} to {dest}/")


if __name__ == "__main__":
    main()
