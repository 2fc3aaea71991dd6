"""`mechgrok import`: each foreign format written here from its published structure, from a trained p=31 run,
imported, and checked against the source (weights, logits, key frequencies); hostile and damaged files refused
in one line."""

import json
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mechgrok import TrainConfig, load_run, train
from mechgrok.analysis import analyze_run
from mechgrok.cli import main
from mechgrok.foreign import paper_to_tl
from mechgrok.model import Transformer
from mechgrok.presets import SMALL_GROK
from mechgrok.run import load_weights

pytestmark = pytest.mark.hooked  # analyses the imported runs in TransformerLens's model

P = 31


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A p=31 addition run that groks (test accuracy >= 99% by step ~400), checkpoints every 100 steps."""
    out = tmp_path_factory.mktemp("source") / "run"
    cfg = TrainConfig(**{**SMALL_GROK, "p": P, "steps": 800, "save_every": 100, "out": str(out)})
    assert train(cfg, progress=False).summary["test_acc"] >= 0.99
    return load_run(out)


def _with_buffers(weights):
    """A HookedTransformer state dict as TL 3 saves it: the weights and its attention buffers."""
    sd = dict(weights)
    sd["blocks.0.attn.mask"] = torch.ones(3, 3, dtype=torch.bool).tril()
    sd["blocks.0.attn.IGNORE"] = torch.tensor(-1e5)
    return sd


def _curves(run):
    """Per-epoch loss lists (the demo's and ARENA's), each epoch the last logged value."""
    rows = {r["step"]: r for r in run.metrics()}
    train_losses, test_losses, last = [], [], rows[0]
    for epoch in range(run.steps[-1] + 1):
        last = rows.get(epoch, last)
        train_losses.append(last["train_loss"])
        test_losses.append(last["test_loss"])
    return train_losses, test_losses


def _split(run):
    data = run.dataset
    pair = lambda rows: (data.inputs[rows, 0] * P + data.inputs[rows, 1]).tolist()  # noqa: E731
    return pair(data.train_idx), pair(data.test_idx)


class _DemoConfig:
    """Pickled under HookedTransformerConfig's module path, as the demo's file holds it (with a numpy scalar and a
    torch dtype among its fields, as the real one has)."""


def _pickled_config(run):
    module = types.ModuleType("transformer_lens.HookedTransformerConfig")
    _DemoConfig.__module__, _DemoConfig.__qualname__ = module.__name__, "HookedTransformerConfig"
    module.HookedTransformerConfig = _DemoConfig
    config = _DemoConfig()
    c = run.config.model
    config.__dict__.update(n_layers=1, d_model=c.d_model, n_heads=c.n_heads, d_head=c.d_head, d_mlp=c.d_mlp,
                           d_vocab=P + 1, d_vocab_out=P, n_ctx=3, act_fn="relu", normalization_type=None,
                           dtype=torch.float32, initializer_range=np.float64(0.8 / np.sqrt(c.d_model)), seed=999)
    return config, module


def write_tl_demo(run, path):
    train_losses, test_losses = _curves(run)
    train_pairs, test_pairs = _split(run)
    config, module = _pickled_config(run)
    sys.modules[module.__name__] = module
    try:
        torch.save({"model": _with_buffers(run.state_dict(run.steps[-1])[0]), "config": config,
                    "checkpoints": [_with_buffers(run.state_dict(s)[0]) for s in run.steps],
                    "checkpoint_epochs": list(run.steps), "train_losses": train_losses,
                    "test_losses": test_losses, "train_indices": torch.tensor(train_pairs),
                    "test_indices": torch.tensor(test_pairs)}, path)
    finally:
        del sys.modules[module.__name__]


def tl_to_paper(weights):
    """HookedTransformer's layout -> Nanda et al.'s code's (the inverse of ``paper_to_tl``; W_U gains the '='
    output column their model has)."""
    b = "blocks.0."
    heads, d_head, d_model = weights[b + "attn.W_O"].shape
    W_U = weights["unembed.W_U"]
    return {"embed.W_E": weights["embed.W_E"].T.contiguous(), "pos_embed.W_pos": weights["pos_embed.W_pos"],
            **{b + f"attn.{n}": weights[b + f"attn.{n}"].transpose(1, 2).contiguous() for n in ("W_Q", "W_K", "W_V")},
            b + "attn.W_O": weights[b + "attn.W_O"].reshape(heads * d_head, d_model).T.contiguous(),
            b + "attn.mask": torch.ones(3, 3).tril(),
            b + "mlp.W_in": weights[b + "mlp.W_in"].T.contiguous(), b + "mlp.b_in": weights[b + "mlp.b_in"],
            b + "mlp.W_out": weights[b + "mlp.W_out"].T.contiguous(), b + "mlp.b_out": weights[b + "mlp.b_out"],
            "unembed.W_U": torch.cat([W_U, torch.randn(W_U.shape[0], 1)], 1)}


def paper_forward(sd, tokens):
    """The progress-measures code's forward (its einsums), last position: the reference for the converted model."""
    b = "blocks.0."
    x = torch.einsum("dbp->bpd", sd["embed.W_E"][:, tokens]) + sd["pos_embed.W_pos"][: tokens.shape[1]]
    k, q, v = (torch.einsum("ihd,bpd->biph", sd[b + f"attn.{n}"], x) for n in ("W_K", "W_Q", "W_V"))
    scores = torch.einsum("biph,biqh->biqp", k, q)
    scores = torch.tril(scores) - 1e10 * (1 - sd[b + "attn.mask"][:3, :3])
    pattern = torch.softmax(scores / np.sqrt(k.shape[-1]), dim=-1)
    z = torch.einsum("biph,biqp->biqh", v, pattern)
    x = x + torch.einsum("df,bqf->bqd", sd[b + "attn.W_O"], z.permute(0, 2, 1, 3).flatten(2))
    hidden = torch.relu(torch.einsum("md,bpd->bpm", sd[b + "mlp.W_in"], x) + sd[b + "mlp.b_in"])
    x = x + torch.einsum("dm,bpm->bpd", sd[b + "mlp.W_out"], hidden) + sd[b + "mlp.b_out"]
    return (x @ sd["unembed.W_U"])[:, -1]


def write_progress_measures(run, directory):
    directory.mkdir()
    train_pairs, test_pairs = _split(run)
    triple = lambda i: (i // P, i % P, P)  # noqa: E731
    torch.save({"model": tl_to_paper(run.state_dict(0)[0]), "train_data": [triple(i) for i in train_pairs],
                "test_data": [triple(i) for i in test_pairs]}, directory / "init.pth")
    rows = {r["step"]: r for r in run.metrics()}
    for step in run.steps[1:]:
        saved = {"model": tl_to_paper(run.state_dict(step)[0]), "train_loss": torch.tensor(rows[step]["train_loss"]),
                 "test_loss": rows[step]["test_loss"], "epoch": step}
        torch.save(saved, directory / ("final.pth" if step == run.steps[-1] else f"{step}.pth"))


def _same_weights(imported, run):
    assert imported.steps == run.steps
    for step in run.steps:
        got, expected = imported.state_dict(step)[0], run.state_dict(step)[0]
        for name, value in expected.items():
            torch.testing.assert_close(got[name], value, rtol=0, atol=0, msg=name)


def _key(run_dir):
    report = analyze_run(run_dir, figures=False, progress=False)
    return report.circuit.frequencies


def test_a_tl_demo_file_imports_with_its_split_weights_curves_and_key_frequencies(source, tmp_path, capsys):
    path = tmp_path / "grokking_demo.pth"
    write_tl_demo(source, path)
    assert main(["import", str(path), "--task", "add", "--out", str(tmp_path / "run")]) == 0
    assert "(tl-demo)" in capsys.readouterr().out
    imported = load_run(tmp_path / "run")
    _same_weights(imported, source)
    assert torch.equal(imported.dataset.train_idx, source.dataset.train_idx)
    assert torch.equal(imported.dataset.test_idx, source.dataset.test_idx)
    rows = imported.metrics()
    assert [r["step"] for r in rows] == list(range(source.steps[-1] + 1))  # the curves, every epoch
    accuracies = {r["step"]: r["test_acc"] for r in rows if "test_acc" in r}
    logged = {r["step"]: r["test_acc"] for r in source.metrics()}
    assert set(accuracies) == set(source.steps)
    assert all(abs(accuracies[s] - logged[s]) < 1e-9 for s in source.steps)
    assert imported.imported_from["format"] == "tl-demo"
    assert _key(tmp_path / "run") == _key(source.path) and len(_key(source.path)) >= 1
    # an imported run holds no training state: training it is one line, and nothing changes
    before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    assert main(["train", "--p", "31", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "cannot be trained further" in capsys.readouterr().err
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before


def test_an_arena_file_imports_with_a_split_given_or_drawn(source, tmp_path, capsys):
    train_losses, test_losses = _curves(source)
    path = tmp_path / "full_run_data.pth"
    torch.save({"state_dicts": [_with_buffers(source.state_dict(s)[0]) for s in source.steps],
                "epochs": list(source.steps), "train_losses": train_losses, "test_losses": test_losses}, path)
    assert main(["import", str(path), "--task", "add", "--out", str(tmp_path / "a")]) == 2
    assert "--frac-train" in capsys.readouterr().err and not (tmp_path / "a").exists()
    # the same split, drawn as mechgrok draws one (the source's frac_train and seed)
    assert main(["import", str(path), "--task", "add", "--frac-train", str(source.config.data.frac_train),
                 "--out", str(tmp_path / "a")]) == 0
    assert torch.equal(load_run(tmp_path / "a").dataset.train_idx, source.dataset.train_idx)
    _same_weights(load_run(tmp_path / "a"), source)
    # or read from an index file
    train_pairs, test_pairs = _split(source)
    (tmp_path / "split.json").write_text(json.dumps({"train_indices": train_pairs}))
    assert main(["import", str(path), "--task", "add", "--index-file", str(tmp_path / "split.json"),
                 "--out", str(tmp_path / "b")]) == 0
    assert sorted(load_run(tmp_path / "b").dataset.test_idx.tolist()) == sorted(source.dataset.test_idx.tolist())


def test_a_progress_measures_directory_converts_to_hooked_transformers_layout_with_the_same_logits(source, tmp_path):
    directory = tmp_path / "saved_runs"
    write_progress_measures(source, directory)
    assert main(["import", str(directory), "--task", "add", "--out", str(tmp_path / "run")]) == 0
    imported = load_run(tmp_path / "run")
    assert imported.steps == source.steps and imported.imported_from["format"] == "progress-measures"
    tokens = imported.dataset.inputs
    for step in (0, source.steps[-1]):
        paper = torch.load(directory / ("init.pth" if step == 0 else "final.pth"), weights_only=True)["model"]
        expected = paper_forward(paper, tokens)[:, :P]
        with torch.no_grad():
            got = imported.model(step)(tokens)[:, -1]
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(paper_to_tl(tl_to_paper(source.state_dict(800)[0]), P)["embed.W_E"],
                       source.state_dict(800)[0]["embed.W_E"])
    rows = {r["step"]: r for r in imported.metrics()}
    logged = {r["step"]: r for r in source.metrics()}
    assert rows[400]["train_loss"] == pytest.approx(logged[400]["train_loss"], rel=1e-6)  # the file's own losses
    assert _key(tmp_path / "run") == _key(source.path)


def test_a_directory_of_state_dicts_imports_with_flags(source, tmp_path):
    directory = tmp_path / "sds"
    directory.mkdir()
    for step in source.steps:
        save_file(source.state_dict(step)[0], str(directory / f"step_{step}.safetensors"))
    argv = ["import", str(directory), "--task", "add", "--frac-train", str(source.config.data.frac_train),
            "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    imported = load_run(tmp_path / "run")
    _same_weights(imported, source)
    model = Transformer(imported.config.model, imported.d_vocab, imported.n_classes)
    load_weights(model, imported.state_dict(800)[0])
    with torch.no_grad():
        accuracy = (model(imported.dataset.inputs).argmax(-1) == imported.dataset.labels).double().mean()
    assert accuracy > 0.99


class _Exploit:
    def __reduce__(self):
        return (__import__("os").system, ("touch PWNED",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_pickle_that_would_run_code_is_refused_in_one_line_and_runs_nothing(tmp_path, capsys, monkeypatch, writer):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    content = {"checkpoints": [_Exploit()], "checkpoint_epochs": [0], "config": None}
    if writer == "torch.save":
        torch.save(content, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(content, handle)
    assert main(["import", str(path), "--task", "add", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused" in err and "system" in err and "Traceback" not in err, err
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["truncated", "not torch", "foreign keys", "no task"])
def test_damaged_or_foreign_files_are_one_line(source, tmp_path, capsys, damage):
    path = tmp_path / "demo.pth"
    write_tl_demo(source, path)
    argv = ["import", str(path), "--task", "add", "--out", str(tmp_path / "run")]
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "not torch":
        path.write_text("hello")
    elif damage == "foreign keys":
        torch.save({"weights": torch.zeros(3)}, path)
    else:
        argv.remove("--task"), argv.remove("add")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mechgrok: error:") and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()
