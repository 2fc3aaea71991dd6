"""The miiii study (Syrkis & Søgaard, "Mechanistic interpretability of irreducible integer
identifiers"): remainders of x0 + p*x1 modulo every prime q < p, one head each.

Full: p=113 (29 tasks), the study's best hyperparameters (``mechgrok.presets.MIIII``: d_model
256, 4 heads, dropout 0.1, Grokfast lambda 0.5, weight decay 1/3, lr 3e-4, frac 0.3), 40,000
full-batch steps: hours on this CPU. It is an ordinary run directory (``OUT/run``) trained by
the package's one loop, so rerunning the command after a kill resumes it, ``--device cuda``
applies. It is then analysed (``mechgrok analyze OUT/run``): per-task test accuracy and
embedding fit (``mechgrok.analysis.miiii``) at every checkpoint, the step at which each task groks (test
accuracy >= 99%), the order they grok in and the study's order claims, tabulated in miiii.md.
The same config without Grokfast trains beside it (``OUT/run_no_grokfast``), and the step by
which every task has grokked in each run decides the study's third claim, that Grokfast speeds
it up (``mechgrok.analysis.miiii.grokfast_claim``).
"""

from __future__ import annotations

from pathlib import Path
from ..analysis.miiii import grokfast_claim
from ..analysis.pipeline import analyze_run
from ..config import TrainConfig
from ..presets import MIIII, MIIII_QUICK
from ..run import load_run
from ..train import train
from ..tables import markdown_table, write_table

RUN_SUBDIR = "run"
BASELINE_SUBDIR = "run_no_grokfast"  # the same config without the filter: the Grokfast claim's control


def run(out: Path, quick: bool = False, progress: bool = True, device: str = "auto") -> dict[str, list]:
    """Train (or resume) the run and its twin without Grokfast, analyse both (``mechgrok analyze``), tabulate."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(**(MIIII_QUICK if quick else MIIII), device=device, out=str(out / RUN_SUBDIR))
    plain = cfg.replace(grokfast="none", out=str(out / BASELINE_SUBDIR))
    for config in (cfg, plain):
        train(config, progress=progress)
    report, baseline = (analyze_run(c.run.out, progress=progress) for c in (cfg, plain))
    plain_steps = {r.q: r.grok_step for r in baseline.tasks.table}
    table = [{**vars(r), "grok_step_no_grokfast": plain_steps[r.q]} for r in report.tasks.table]
    claims = [*report.tasks.claims, grokfast_claim(report.tasks.table, baseline.tasks.table, cfg.optim.steps)]
    write_table(out / "miiii", table)
    write_table(out / "miiii_curves", load_run(cfg.run.out).metrics())
    write_table(out / "miiii_curves_no_grokfast", load_run(plain.run.out).metrics())
    rows = [[r["q"], r["grok_step"], r["grok_step_no_grokfast"], f"{r['final_test_acc']:.3f}", f"{r['fit_r2']:.3f}",
             f"{r['noise_r2']:.3f}"] for r in table]
    markdown = markdown_table(["q", "grok step (test acc >= 99%)", "without Grokfast", "final test acc",
                               "W_E R^2 on period-q features", "same fit on noise"], rows)
    order = ", ".join(str(q) for q in report.tasks.order)
    plain_order = ", ".join(str(q) for q in baseline.tasks.order)
    claim_lines = "\n".join(f"- {c.claim}: **{c.verdict}**" for c in claims)
    (out / "miiii.md").write_text(
        f"# miiii, p={cfg.data.p}, {report.final.step} steps{' (quick)' if quick else ''}\n\n{markdown}\n"
        f"Grok order: {order or 'no task has grokked'}\n\n"
        f"Without Grokfast ({baseline.final.step} steps): {plain_order or 'no task has grokked'}\n\n"
        f"## The study's claims in this run\n\n{claim_lines}\n\n"
        f"Figures: `{cfg.run.out}/analysis/task_order.html`, `losses.html` (and the same under "
        f"`{plain.run.out}`).\n")
    return {"tasks": table, "claims": [vars(c) for c in claims], "order": report.tasks.order}
