"""Redraw the README's headline figures from a committed analysis, without checkpoints.

    .venv/bin/python scripts/make_figures.py [ANALYSIS_DIR] [FIGURES_DIR]

ANALYSIS_DIR holds report.json, measures.csv and spectrum.csv (default
results/add_p113_seed0, copied from the headline run's analysis/); PNGs go to FIGURES_DIR
(default figures/). Needs kaleido and Chromium (``make figures`` installs kaleido).
"""

import sys
from pathlib import Path

from mechgrok.analysis.figures import save_figures, summary_figures
from mechgrok.analysis.report import read_csv
from mechgrok.checkpoints import read_json


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "results/add_p113_seed0")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "figures")
    out.mkdir(exist_ok=True)
    figures = summary_figures(read_json(source / "report.json"), read_csv(source / "measures.csv"),
                              read_csv(source / "spectrum.csv"))
    save_figures(figures, out, html=False)
    print(f"wrote {', '.join(f'{name}.png' for name in figures)} to {out}/")


if __name__ == "__main__":
    main()
