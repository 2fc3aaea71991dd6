"""The hooked model on the installed TransformerLens (3.x: HookedTransformer; 4.x: TransformerBridge): the same
logits as the training model, and the same report numbers as the committed analysis made on TL 3.9.

`make test-tl4` runs every test marked ``hooked`` under TransformerLens 4, where the reference comparison is the
cross-version check; under TL 3 it guards the reference itself.
"""

import csv
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from mechgrok import load_run
from mechgrok.analysis import analyze_run
from mechgrok.hooked import build_model, load_checkpoint, tl_major
from mechgrok.model import Transformer
from mechgrok.run import load_weights

from ..conftest import LEGACY_RUN

pytestmark = pytest.mark.hooked

REFERENCE = Path(__file__).parents[1] / "fixtures" / "legacy_run_add_p23_analysis_tl3.json"
VOLATILE = ("run_dir", "figures")  # where it was analysed and what was drawn, not what was measured


def _analysis_numbers(analysis: Path) -> dict:
    """report.json (less VOLATILE), measures.csv and spectrum.csv of an analysis, as one JSON value."""
    report = {k: v for k, v in json.loads((analysis / "report.json").read_text()).items() if k not in VOLATILE}
    tables = {}
    for name in ("measures.csv", "spectrum.csv"):
        with open(analysis / name, newline="") as handle:
            tables[name] = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    return {"report": report, **tables}


def _assert_close(got, expected, where="") -> None:
    """Same structure and strings; numbers within 1e-4 relative (+1e-6 absolute): float32 forwards on two
    TransformerLens versions differ in the last bits."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), (where, got, expected)
        for key in expected:
            _assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            _assert_close(g, e, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert isinstance(got, (int, float)) and (math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6)
                                                  or (math.isnan(got) and math.isnan(expected))), (where, got, expected)
    else:
        assert got == expected, (where, got, expected)


def test_the_same_checkpoints_give_the_committed_tl3_report_numbers(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(LEGACY_RUN, run_dir)
    analyze_run(run_dir, figures=False, progress=False)
    got = _analysis_numbers(run_dir / "analysis")
    if os.environ.get("MECHGROK_WRITE_REFERENCE"):  # regenerate (on TL 3 only): MECHGROK_WRITE_REFERENCE=1 pytest -k tl3
        assert tl_major() == 3
        REFERENCE.write_text(json.dumps(got, indent=1) + "\n")
    _assert_close(got, json.loads(REFERENCE.read_text()))


def test_the_hooked_model_computes_the_training_models_logits():
    run = load_run(LEGACY_RUN)
    weights = run.state_dict(run.steps[-1])[0]
    hooked = build_model(run.config.model, run.d_vocab, run.n_classes)
    load_checkpoint(hooked, weights)
    ours = Transformer(run.config.model, run.d_vocab, run.n_classes)
    load_weights(ours, weights)
    inputs = run.dataset.inputs
    with torch.no_grad():
        torch.testing.assert_close(hooked.eval()(inputs)[:, -1], ours(inputs), atol=1e-5, rtol=1e-5)
    expected = "HookedTransformer" if tl_major() == 3 else "TransformerBridge"
    assert type(hooked).__name__ == expected


def test_the_hook_names_the_analysis_uses_fire_with_the_3x_shapes():
    run = load_run(LEGACY_RUN)
    model = run.model()
    seen = {}
    names = ["hook_embed", "blocks.0.hook_resid_mid", "blocks.0.mlp.hook_post", "blocks.0.attn.hook_pattern"]
    hooks = [(name, lambda act, hook, name=name: seen.__setitem__(name, tuple(act.shape))) for name in names]
    model.run_with_hooks(run.dataset.inputs[:5], fwd_hooks=hooks)
    c = run.config.model
    assert seen == {"hook_embed": (5, 3, c.d_model), "blocks.0.hook_resid_mid": (5, 3, c.d_model),
                    "blocks.0.mlp.hook_post": (5, 3, c.d_mlp), "blocks.0.attn.hook_pattern": (5, c.n_heads, 3, 3)}
    assert tuple(model.blocks[0].attn.W_Q.shape) == (c.n_heads, c.d_model, c.d_head)
    assert tuple(model.W_U.shape) == (c.d_model, run.n_classes)
