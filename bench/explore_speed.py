"""The explorer against its budgets, today's page beside an earlier one (default: the page before issue 27's rework).

    .venv/bin/python bench/explore_speed.py RUN_DIR [--baseline GIT_REV] [--steps 30] [--screenshot PNG]

RUN_DIR must be analysed (`mechgrok analyze RUN_DIR` stores the explorer's arrays). Printed for each page:
- `explore` seconds beyond `analyze` (budget 20 s) and the file size (budget 30 MB);
- load to interactive: navigation start to the first full draw, in headless Chromium, the median of 3 cold
  loads, each in a new browser context (budget 3 s);
- browser time per slider step: the median over --steps moves spread over the run, each timed with the
  Performance API from the slider's input event to the frame after every panel has been redrawn (budget 60 ms).
The browser is Debian's /usr/bin/chromium driven by Playwright, at 1366x768, as the tests use. The baseline page is
today's data with the baseline's explorer.js (from `git show REV:mechgrok/analysis/explorer.js`, the data given to it
as it read it), so the two differ only in the page's code. With --screenshot the current page is saved at the grok step (the README's picture).
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from mechgrok.analysis.explorer import write_explorer
from mechgrok.run import EXPLORER_ARRAYS_FILE, load_run

BUDGETS = {"step_ms": 60, "load_s": 3, "size_mb": 30, "explore_s": 20}
LOADS = 3
BASELINE = "9fbc2ca"  # the last commit before the per-step redraw was reworked
APP_FILE = "mechgrok/analysis/explorer.js"
READY = "document.getElementById('losses') && document.getElementById('losses').data && " \
        "(!document.getElementById('attention') || document.getElementById('attention').data)"

# Move the slider to n checkpoints spread over the run; time each from the input event to the frame after the redraw.
STEP_TIMES = """async (n) => {
  const slider = document.getElementById("slider"), last = Number(slider.max), out = [];
  const frame = () => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    slider.value = String(Math.round((i + 1) * last / (n + 1)));
    slider.dispatchEvent(new Event("input"));
    await frame();
    out.push(performance.now() - t0);
  }
  return out;
}"""


def baseline_page(html: str) -> str:
    """Today's page with its data as the baseline's code reads it (a script literal, ``const RUNS = ...;``, before
    the data moved to a JSON script element)."""
    opening = '<script type="application/json" id="runs">'
    start = html.find(opening)
    if start < 0:
        return html
    end = html.index("</script>", start)
    return html[:start] + "<script>const RUNS = " + html[start + len(opening):end] + ";" + html[end:]


def measure(browser, html: Path, n_steps: int, screenshot: tuple[Path, int] | None = None) -> dict[str, float]:
    """Load time (s) and the median per-step time (ms) of one page."""
    loads, context = [], None
    for _ in range(LOADS):  # the median of a few cold loads (a new context each: no cache of the file or its code)
        if context:
            context.close()
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(html.resolve().as_uri())
        page.wait_for_function(READY, polling="raf", timeout=120_000)
        loads.append(page.evaluate("performance.now()") / 1000)
    load_s = statistics.median(loads)
    page.evaluate(STEP_TIMES, 3)  # warm up: plotly's first redraw of each panel type
    times = page.evaluate(STEP_TIMES, n_steps)
    if screenshot:
        path, index = screenshot
        page.locator("#slider").fill(str(index))
        page.wait_for_timeout(500)
        page.screenshot(path=str(path))
    context.close()
    return {"load_s": load_s, "step_ms": statistics.median(times), "step_ms_max": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--baseline", default=BASELINE, help=f"git revision of the page to compare (default {BASELINE})")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    run = load_run(args.run_dir)
    if not (run.analysis_dir / EXPLORER_ARRAYS_FILE).is_file():
        raise SystemExit(f"run `mechgrok analyze {args.run_dir}` first")
    with tempfile.TemporaryDirectory() as tmp:
        current = Path(tmp) / "current.html"
        start = time.perf_counter()
        write_explorer([run.path], current)
        explore_s = time.perf_counter() - start
        html = current.read_text()
        app = Path(APP_FILE).read_text()
        old_app = subprocess.run(["git", "show", f"{args.baseline}:{APP_FILE}"], capture_output=True, text=True,
                                 check=True).stdout
        baseline = Path(tmp) / "baseline.html"
        baseline.write_text(baseline_page(html.replace(app, old_app)))
        grok = (run.summary() or {}).get("grok_step")
        index = min(range(len(run.steps)), key=lambda i: abs(run.steps[i] - grok)) if grok else 0

        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            figures = {"baseline " + args.baseline: measure(browser, baseline, args.steps),
                       "current": measure(browser, current, args.steps,
                                          (args.screenshot, index) if args.screenshot else None)}
            browser.close()
    size = current.stat().st_size / 1e6 if current.exists() else len(html) / 1e6
    print(f"explorer of {run.path.name}: {len(run.steps)} checkpoints, {size:.1f} MB (budget {BUDGETS['size_mb']} MB), "
          f"explore {explore_s:.1f} s beyond analyze (budget {BUDGETS['explore_s']} s)")
    print(f"{'page':<20} {'load to interactive':>20} {'per slider step (median)':>26} {'slowest step':>14}")
    for name, f in figures.items():
        print(f"{name:<20} {f['load_s']:>18.2f} s {f['step_ms']:>23.0f} ms {f['step_ms_max']:>11.0f} ms")
    print(f"budgets: load <= {BUDGETS['load_s']} s, step <= {BUDGETS['step_ms']} ms")
    if args.screenshot:
        print(f"screenshot at step {run.steps[index]}: {args.screenshot}")
    print(f"step_ms={figures['current']['step_ms']:.0f}")


if __name__ == "__main__":
    main()
