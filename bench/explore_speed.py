"""`mechgrok explore` against its budgets: file size (<= 25 MB) and seconds beyond `analyze` (<= 20 s).

    .venv/bin/python bench/explore_speed.py RUN_DIR [--screenshot PNG]

RUN_DIR must be analysed (`mechgrok analyze RUN_DIR`, which stores the explorer's arrays);
the bench times `explore` alone, which is what it adds to an analysis. With --screenshot it
opens the page in headless Chromium (Playwright, Debian's /usr/bin/chromium, as the tests do),
moves the slider to the grok step and saves a picture (the README's).
"""

import argparse
import time
from pathlib import Path

from mechgrok.analysis.explorer import write_explorer
from mechgrok.run import EXPLORER_ARRAYS_FILE, load_run

SIZE_BUDGET_MB, SECONDS_BUDGET = 25, 20


def screenshot(html: Path, png: Path, step_index: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.goto(html.resolve().as_uri())
        page.wait_for_function("document.getElementById('losses') && document.getElementById('losses').data")
        page.locator("#slider").fill(str(step_index))
        page.wait_for_timeout(500)
        page.screenshot(path=str(png))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir")
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    run = load_run(args.run_dir)
    if not (run.analysis_dir / EXPLORER_ARRAYS_FILE).is_file():
        raise SystemExit(f"run `mechgrok analyze {args.run_dir}` first")
    start = time.perf_counter()
    html = write_explorer([run.path])
    seconds = time.perf_counter() - start
    size = html.stat().st_size / 1e6
    print(f"explore {run.path.name}: {len(run.steps)} checkpoints, {size:.1f} MB (budget {SIZE_BUDGET_MB} MB), "
          f"{seconds:.1f} s beyond analyze (budget {SECONDS_BUDGET} s); arrays file "
          f"{(run.analysis_dir / EXPLORER_ARRAYS_FILE).stat().st_size / 1e6:.1f} MB")
    if args.screenshot:
        grok = (run.summary() or {}).get("grok_step")
        index = min(range(len(run.steps)), key=lambda i: abs(run.steps[i] - grok)) if grok else 0
        screenshot(html, args.screenshot, index)
        print(f"screenshot at step {run.steps[index]}: {args.screenshot}")


if __name__ == "__main__":
    main()
