"""``mechgrok explore``: one self-contained HTML file that moves every view through training together.

The page needs nothing but a browser: plotly.js and the data are inlined, and it makes no
network request. One checkpoint slider (with play/pause and the arrow keys) drives every
panel. The data are the analysis's numbers (report.json, measures.csv, spectrum.csv) and the
per-checkpoint arrays ``mechgrok analyze`` stores in explorer.safetensors (see
``trajectory.py``), sent as base64 typed arrays; what a panel shows at a checkpoint is read
from them, or computed from them in the page (an attention map from the score tables, a
neuron's 2D Fourier spectrum from its activations).

Several runs: the loss curves and phases are overlaid, the key frequencies and cluster sizes
are shown side by side, and a run selector chooses the run the per-checkpoint panels show.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path

import torch

from ..errors import MechgrokError
from ..fileio import JSONObject, atomic_write
from ..run import EXPLORER_ARRAYS_FILE, EXPLORER_FILE, REPORT_FILE, Run, load_run
from . import trajectory
from .pipeline import analyze_run
from .report import Report, read_report
from .views import TITLES, RunViews, run_row

# The page's panel of each per-checkpoint view whose title and axis names come from views.TITLES.
PANEL_OF_VIEW = {"embedding_spectrum": "embed", "neurons": "neurons", "cluster_sizes": "clusters",
                 "neuron_logit": "logit", "attention": "attention"}

PAGE_SIGNATURE = b"<title>mechgrok explorer</title>"  # in the head of every page this package has written
PANEL_NOTE = ("per-neuron panels (spectra, neurons, clusters, attention, neuron-to-logit map) need a basis: task "
              "{task} has none (no group, not the Z_p grid); its losses, accuracies and weight norm are shown")


def _b64(tensor: torch.Tensor) -> dict[str, str | list[int]]:
    """A tensor as {dtype, shape, b64} (little-endian bytes) for the page's decoder."""
    t = tensor.detach().cpu().contiguous()
    dtype = {torch.float16: "f16", torch.float32: "f32", torch.int16: "i16", torch.int64: "i32"}[t.dtype]
    if t.dtype == torch.int64:
        t = t.to(torch.int32)
    return {"dtype": dtype, "shape": list(t.shape), "b64": base64.b64encode(t.numpy().tobytes()).decode()}


def _report_and_arrays(run_dir: Path) -> tuple[Report, dict[str, torch.Tensor] | None]:
    """The run's analysis and explorer arrays; ``mechgrok analyze`` is run first when they are missing."""
    run = load_run(run_dir)
    out = run.analysis_dir
    try:
        report, arrays = _finished_analysis(run)
    except MechgrokError:  # missing, or damaged since: analysed again, as `mechgrok analyze` would
        analyze_run(run.path, figures=False, progress=False)
        report, arrays = _finished_analysis(run)
    return report, arrays


def _finished_analysis(run: Run) -> tuple[Report, dict[str, torch.Tensor] | None]:
    """The report and the explorer arrays of an analysis, which must agree (every array step has its spectrum)."""
    out = run.analysis_dir
    if not (out / REPORT_FILE).is_file():
        raise MechgrokError(f"{out} holds no analysis")
    report = read_report(out)
    if report.circuit is None:  # the arrays exist for runs with a lens (see trajectory.py)
        return report, None
    arrays = trajectory.load_arrays(out / EXPLORER_ARRAYS_FILE, run)[0]
    if not set(arrays["steps"].tolist()) <= set(report.spectra.steps):
        raise MechgrokError(f"{out}: the explorer arrays and spectrum.csv disagree")
    return report, arrays


def run_payload(run_dir: Path) -> JSONObject:
    """Everything the page needs about one run (JSON-serialisable)."""
    report, arrays = _report_and_arrays(Path(run_dir))
    run = load_run(run_dir)
    opened = RunViews(run, report, arrays)  # the views' helpers on the analysis just read
    cfg = run.config.to_dict()  # the run's own, checked config: report.json's copy is not read
    columns = ("step", "train_loss", "test_loss", "train_acc", "test_acc", "restricted_loss", "excluded_loss",
               "sum_sq_weights", "gini_embed", "gini_neuron_logit")
    payload = {
        "name": Path(run_dir).name, "task": cfg["task"], "p": cfg["p"],
        "measures": {c: [getattr(m, c) for m in report.measures] for c in columns},
        "phases": {k: getattr(report.phases, k) for k in ("memorization_end", "cleanup_start", "cleanup_end")},
        "grok_step": report.grok_step, "generalised": report.generalised,
        "note": None if arrays is not None else PANEL_NOTE.format(task=cfg["task"]),
        "table_row": run_row(opened),
    }
    if arrays is None:
        return payload
    circuit = report.circuit
    data = run.dataset
    lens = data.lens
    payload.update({"titles": {panel: list(TITLES[view]) for view, panel in PANEL_OF_VIEW.items()},
                    "basis": _b64(lens.group.basis.float()), "basis_names": lens.group.basis_names,
                    "units": lens.unit_names, "unit": lens.unit, "tokens": lens.tokens.tolist(),
                    "axis": list(lens.axis)})
    steps = arrays["steps"].tolist()
    final_freq, final_frac = arrays["neuron_freq"][-1], arrays["neuron_frac"][-1].float()
    clustered = (final_frac > circuit.threshold) & torch.isin(final_freq.long(), torch.tensor(circuit.frequencies))
    # neurons ordered by final cluster (key frequencies first, cleanest first), the rest after
    order = sorted(range(len(final_freq)), key=lambda n: (not bool(clustered[n]), int(final_freq[n]),
                                                          -float(final_frac[n])))
    payload.update({
        "steps": steps, "key": circuit.frequencies, "claimed": circuit.claimed, "threshold": circuit.threshold,
        "min_neurons": circuit.min_neurons, "cluster_sizes_final": {str(k): v for k, v in
                                                                   circuit.cluster_sizes_all.items()},
        "embed_spectrum": _b64(torch.tensor([report.spectra.at(s) for s in steps], dtype=torch.float32)),
        "neuron_order": order,
        "neuron_freq": _b64(arrays["neuron_freq"]), "neuron_frac": _b64(arrays["neuron_frac"]),
        "logit_spectrum": _b64(arrays["logit_spectrum"]), "attention_scores": _b64(arrays["attention_scores"]),
        "picked": arrays["picked"].tolist(), "map_steps": arrays["map_steps"].tolist(),
        "maps": _b64(arrays["maps"]) if "maps" in arrays else None,
        "neuron_spectra": _b64(arrays["neuron_spectra"]) if "neuron_spectra" in arrays else None,
        "spectrum_rows": trajectory.spectrum_rows(lens, circuit.frequencies),
        "basis_owner": lens.group.owner.tolist(),
        "dimension": _b64(arrays["dimension"]), "attention_spectrum": _b64(arrays["attention_spectrum"]),
        "clock": _b64(arrays["clock"]), "weight_pca": _b64(arrays["weight_pca"]),
        "weight_pca_explained": arrays["weight_pca_explained"].tolist(),
    })
    payload.update({"dynamics": dataclasses.asdict(opened.dynamics),  # the Python views' own, read by the page
                    "spans": [dataclasses.asdict(s) for s in opened.spans]})
    names, table, is_key, top = opened.cluster_table
    payload.update({"cluster_names": names, "cluster_table": _b64(table.to(torch.int64)), "cluster_key": is_key,
                    "cluster_top": top})
    return payload


def write_explorer(run_dirs: list[str | Path], out: str | Path | None = None) -> Path:
    """Write the explorer of ``run_dirs`` (default path: RUN_DIR/analysis/explorer.html for one run)."""
    if not run_dirs:
        raise MechgrokError("explore needs at least one run directory")
    if out is None:
        if len(run_dirs) > 1:
            raise MechgrokError("several runs: say where the explorer goes with --out FILE.html")
        out = load_run(run_dirs[0]).analysis_dir / EXPLORER_FILE
    out = Path(out)
    if not out.parent.is_dir() and out.parent.name != "analysis":  # a run's analysis/ is made by analyze
        raise MechgrokError(f"{out.parent} is not a directory")
    check_replaceable(out)
    runs = [run_payload(Path(d)) for d in run_dirs]
    atomic_write(out, lambda tmp: tmp.write_text(page(runs)))
    return out


def check_replaceable(out: Path) -> None:
    """Refuse an ``out`` that exists and is not an explorer page: --out never overwrites a run's own files."""
    if not out.exists():
        return
    if not out.is_file():
        raise MechgrokError(f"--out {out} is a directory; name a file such as {out / EXPLORER_FILE}")
    with open(out, "rb") as handle:
        head = handle.read(1024)
    if PAGE_SIGNATURE not in head:
        raise MechgrokError(f"--out {out} exists and is not an explorer page mechgrok wrote; it is left as it is "
                            "(choose another --out)")


def page(runs: list[JSONObject]) -> str:
    """The HTML page of ``runs`` (``run_payload``s). Every string from a run stays text: the JSON is embedded with
    '<' escaped, so no name can end the script or open a comment, and the page's code never parses data as HTML.
    The three parts go in in one pass, so a run's strings cannot hold a marker the next substitution would fill."""
    from plotly.offline import get_plotlyjs

    parts = {"PLOTLY": get_plotlyjs, "DATA": lambda: json.dumps(runs, separators=(",", ":")).replace("<", "\\u003c"),
             "APP": lambda: Path(__file__).with_name("explorer.js").read_text()}
    return re.sub(r"/\*(PLOTLY|DATA|APP)\*/", lambda m: parts[m.group(1)](), _TEMPLATE)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mechgrok explorer</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#fafafa;color:#222}
header{position:sticky;top:0;z-index:10;background:#fff;border-bottom:1px solid #ddd;padding:4px 12px;
display:flex;gap:10px;align-items:center;flex-wrap:wrap;font-size:14px}
header input[type=range]{flex:1;min-width:240px}
#tabs button{border:1px solid #ccc;background:#f4f4f4;padding:3px 10px;cursor:pointer;font-size:13px}
#tabs button.on{background:#222;color:#fff;border-color:#222}
#picknote{color:#8a4b00;font-size:12px}
#grid{display:grid;grid-auto-flow:dense;gap:6px;padding:6px;
grid-auto-rows:max(280px,calc((100vh - var(--top, 80px) - 18px) / 2))}
#grid.cols4{grid-template-columns:repeat(4,minmax(0,1fr))}
#grid.cols3{grid-template-columns:repeat(3,minmax(0,1fr))}
@media (max-width:1100px){#grid.cols4,#grid.cols3{grid-template-columns:repeat(2,minmax(0,1fr))}}
@media (max-width:700px){#grid.cols4,#grid.cols3{grid-template-columns:minmax(0,1fr)}}
.panel{background:#fff;border:1px solid #e3e3e3;overflow:hidden;min-width:0}
.tablepanel{overflow:auto;padding:8px;font-size:13px}
.tablepanel table{border-collapse:collapse}.tablepanel td,.tablepanel th{border:1px solid #ddd;padding:3px 6px}
.note{padding:4px 12px;color:#8a4b00;font-size:13px}
</style></head><body>
<header><strong>mechgrok explorer</strong>
<label id="runpick">run <select id="run"></select></label>
<button id="play" title="play / pause (space)">&#9654;</button>
<input id="slider" type="range" min="0" value="0" step="1" aria-label="checkpoint">
<span id="steplabel"></span>
<label>neuron <select id="neuron"></select></label>
<label title="the 2D spectrum's every basis function, not only the key units'"><input id="allterms"
type="checkbox"> all terms</label>
<span id="picknote"></span>
<span id="tabs"></span></header>
<div id="notes"></div>
<div id="grid"></div>
<script>/*PLOTLY*/</script>
<script type="application/json" id="runs">/*DATA*/</script>
<script>/*APP*/</script>
</body></html>
"""
