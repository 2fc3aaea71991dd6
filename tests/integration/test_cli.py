import json
import subprocess
import sys

import pytest

from mechgrok import load_run
from mechgrok.cli import main


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mechgrok: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("argv,message", [
    (["--task", "div", "--p", "21"], "needs a prime p"),
    (["--p", "2"], "p must be at least 3"),
    (["--frac-train", "1.5"], "frac_train must lie strictly between 0 and 1"),
    (["--frac-train", "0"], "frac_train must lie strictly between 0 and 1"),
    (["--task", "mod"], "unknown task 'mod'"),
    (["--device", "tpu9"], "unknown device"),
    (["--device", "cuda"], "CUDA is not available"),
    (["--aug-scope", "test"], "unknown aug_scope 'test'; choose one of all, train"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--lr", "inf"], "lr must be a finite number"),
    (["--weight-decay", "nan"], "weight_decay must be a finite number"),
    (["--init-scale", "nan"], "init_scale must be a finite number"),
    (["--grokfast-lamb", "nan"], "grokfast_lamb must be a finite number"),
    (["--stop-at-test-acc", "nan"], "stop_at_test_acc must be a finite number"),
    (["--seed", "99999999999999999999"], "out of the 64-bit integer range"),
    (["--p", "23", "--frac-train", "0.001"], "leaves an empty train or test set"),
    (["--p", "100003"], "needs about"),
    (["--d-model", "1000000"], "needs about"),
    (["--grokfast", "ma", "--grokfast-window", "100000000"], "needs about"),
])
def test_bad_train_input_gives_one_line_error(capsys, tmp_path, argv, message):
    err = _error(capsys, ["train", "--steps", "1", "--out", str(tmp_path / "r"), *argv])
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()  # validated before anything was created


@pytest.mark.parametrize("content,message", [
    (b"[1, 2]", "expected a table of config fields, got list"),
    (b"3", "got int"),
    (b"null", "got NoneType"),
    (b"\xff\xfe\x00", "is not UTF-8 text"),
    (b'{"steps": true}', "steps must be an integer, got True"),
    (b'{"frac_train": "0.5"}', "frac_train must be a finite number"),
    (b'{"lr": -1}', "lr must be positive"),
])
def test_bad_config_file_gives_one_line_naming_the_file(capsys, tmp_path, content, message):
    config = tmp_path / "c.json"
    config.write_bytes(content)
    err = _error(capsys, ["train", "--config", str(config), "--out", str(tmp_path / "r")])
    assert message in err and "c.json" in err and err.count("\n") == 1
    assert config.read_bytes() == content and not (tmp_path / "r").exists()


def test_analyze_checks_its_argument_before_importing_the_analysis(tmp_path):
    code = ("import sys; from mechgrok.cli import main; rc = main(['analyze', sys.argv[1]]); "
            "assert 'transformer_lens' not in sys.modules; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing")], capture_output=True, text=True)
    assert result.returncode == 2 and "is not a directory" in result.stderr


def test_non_writable_output(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "is not writable" in _error(capsys, ["train", "--p", "23", "--steps", "1", "--out", str(blocker / "run")])


def test_config_file_with_unknown_key(capsys, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('task = "add"\nlearning_rate = 0.1\n')
    assert "c.toml: unknown key 'learning_rate'" in _error(capsys, ["train", "--config", str(config)])


def test_config_file_and_flags(capsys, tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"p": 23, "steps": 5, "frac_train": 0.5, "d_model": 32, "d_head": 8, "d_mlp": 64}))
    assert main(["train", "--config", str(config), "--steps", "10", "--quiet", "--out", str(tmp_path / "r")]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert saved["p"] == 23 and saved["steps"] == 10 and saved["d_model"] == 32
    assert "add p=23: 10 steps" in capsys.readouterr().out


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "mechgrok.cli", "--help"], capture_output=True, text=True).stdout
    assert "train" in out and "analyze" in out


def test_recipe_then_file_then_flags(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("weight_decay = 2.0\np = 23\nd_model = 32\nd_head = 8\nd_mlp = 64\n")
    out = tmp_path / "r"
    assert main(["train", "--recipe", "fast", "--config", str(config), "--steps", "5", "--quiet", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["lr"] == 1e-2  # from the recipe
    assert saved["weight_decay"] == 2.0  # the file beats the recipe
    assert saved["steps"] == 5  # a flag beats both


def _legacy_copy(tmp_path):
    import shutil

    from ..conftest import LEGACY_RUN

    copy = tmp_path / "run"
    shutil.copytree(LEGACY_RUN, copy)
    return copy


def _tree(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _edit_json(name, change):
    def edit(run_dir):
        path = run_dir / name
        raw = json.loads(path.read_text())
        change(raw)
        path.write_text(json.dumps(raw))
    return edit


def _edit_dataset(change):
    def edit(run_dir):
        from mechgrok.fileio import load_tensors, save_tensors

        loaded = load_tensors(run_dir / "dataset.safetensors", "dataset")
        tensors = dict(loaded.tensors)
        change(tensors)
        save_tensors(run_dir / "dataset.safetensors", tensors, loaded.meta)
    return edit


DAMAGED_RUNS = {
    "config is a list": (_edit_json("config.json", lambda raw: raw.update(config=[])), "config.json: 'config' must be"),
    "config is null": (_edit_json("config.json", lambda raw: raw.update(config=None)), "config.json: 'config' must be"),
    "d_vocab is a string": (_edit_json("config.json", lambda raw: raw.update(d_vocab="24")), "d_vocab and n_classes"),
    "config lacks a key": (_edit_json("config.json", lambda raw: raw["config"].pop("d_model")), "config lacks d_model"),
    "config.json not JSON": (lambda d: (d / "config.json").write_text("{oops"), "config.json is not valid JSON"),
    "float inputs": (_edit_dataset(lambda t: t.update(inputs=t["inputs"].double())), "inputs must be int64"),
    "token out of range": (_edit_dataset(lambda t: t["inputs"].__setitem__((3, 1), 500)), "tokens outside"),
    "label out of range": (_edit_dataset(lambda t: t["labels"].__setitem__(3, -1)), "labels outside"),
    "index out of range": (_edit_dataset(lambda t: t["test_idx"].__setitem__(0, 99999)), "test_idx is empty or"),
    "missing tensor": (_edit_dataset(lambda t: t.pop("labels")), "lacks tensor(s) labels"),
    "dataset of another task": (_edit_json("config.json", lambda raw: raw["config"].update(task="sub")),
                                "is not the dataset of this run's config"),
    "no checkpoints": (lambda d: [p.unlink() for p in (d / "checkpoints").iterdir()], "has no checkpoints"),
    "metrics not UTF-8": (lambda d: (d / "metrics.jsonl").write_bytes(b'{"step": 0}\n\xff\xfe\n'), "not UTF-8"),
    "metrics a directory": (lambda d: ((d / "metrics.jsonl").unlink(), (d / "metrics.jsonl").mkdir()),
                            "metrics.jsonl cannot be read"),
    "metrics text accuracy": (lambda d: _append(d, {"step": 10**6, "test_acc": "x"}), "test_acc: 'x'"),
    "metrics row without step": (lambda d: _append(d, {"test_acc": 1.0}), "no valid step"),
    "metrics step text": (lambda d: _append(d, {"step": "abc"}), "got 'abc'"),
    "5000-digit integer": (lambda d: (d / "config.json").write_text('{"format": ' + "9" * 5000 + "}"),
                           "beyond what is read"),
    "a million layers": (_edit_json("config.json", lambda raw: raw["config"].update(n_layers=10**6)),
                         "for its weights alone"),
    "100,000-deep nesting": (lambda d: (d / "config.json").write_text("[" * 100_000 + "]" * 100_000),
                             "beyond what is read (nesting too deep)"),
}


def _append(run_dir, row):
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")


@pytest.mark.parametrize("damage,message", DAMAGED_RUNS.values(), ids=DAMAGED_RUNS.keys())
def test_damaged_run_directory_gives_one_line_and_is_left_as_it_was(capsys, tmp_path, damage, message):
    run_dir = _legacy_copy(tmp_path)
    damage(run_dir)
    before = _tree(run_dir)
    err = _error(capsys, ["analyze", str(run_dir), "--quiet", "--no-figures"])
    assert message in err and err.count("\n") == 1
    assert _tree(run_dir) == before  # nothing written, nothing changed


def test_flipped_bits_and_garbage_cache_are_named_or_recomputed(capsys, tmp_path):
    from mechgrok.fileio import load_tensors, save_tensors

    run_dir = _legacy_copy(tmp_path)
    for step in (600, 900):  # give two checkpoints checksums, then flip a bit in one of them
        path = run_dir / "checkpoints" / f"step_{step:07d}.safetensors"
        loaded = load_tensors(path, "checkpoint")
        save_tensors(path, loaded.tensors, loaded.meta)
    broken = run_dir / "checkpoints" / "step_0000600.safetensors"
    raw = bytearray(broken.read_bytes())
    raw[-2] ^= 0x10
    broken.write_bytes(bytes(raw))
    (run_dir / "analysis").mkdir()
    (run_dir / "analysis" / "measures.csv").write_text("garbage,\x00\n1,2,3\n")
    (run_dir / "analysis" / "report.json").write_text('{"version": 2, "key_frequencies": 7}')
    assert main(["analyze", str(run_dir), "--quiet", "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "step 600:" in out and "do not match their stored checksum" in out
    report = json.loads((run_dir / "analysis" / "report.json").read_text())
    assert 600 not in report["analysed_steps"] and 900 in report["analysed_steps"]
    assert 900 not in report["unverified_checkpoints"] and 300 in report["unverified_checkpoints"]


@pytest.mark.parametrize("argv,names", [
    (["train", "--lr", "abc"], "--lr"), (["train", "--p", "1.5"], "--p"), (["train", "--recipe", "slow"], "--recipe"),
    (["nope"], "COMMAND"), (["analyze"], "run_dir"), (["train", "--lr", "-1e-3"], "lr must be positive"),
    (["train", "--init-scale", "-2.5E+1"], "init_scale must be positive")])
def test_a_bad_command_line_is_one_line_without_the_usage_block(argv, names, tmp_path, capsys):
    try:
        code = main([*argv, *(["--out", str(tmp_path / "run")] if argv[0] == "train" else [])])
    except SystemExit as exit_:  # argparse's own refusals exit from parse_args
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("mechgrok: error:") and names in err[0], err
    assert not (tmp_path / "run").exists()


def test_train_help_names_each_section_in_a_sentence(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    headers = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("data (", "optim ("))]
    assert len(headers) == 2 and all(line.endswith("):") and ";)" not in line for line in headers), headers


def test_train_help_lists_the_miiii_codes_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--dropout-mask", "--task-loss", "--biases", "--mlp-init", "--grokfast-start", "--dtype"):
        assert flag in out, flag


def test_a_runs_config_json_is_a_config_file_that_resumes_it(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["train", "--p", "23", "--d-model", "32", "--d-head", "8", "--d-mlp", "64", "--steps", "20",
            "--save-every", "10", "--quiet", "--out", str(run_dir)]
    assert main(argv) == 0
    assert main(["train", "--config", str(run_dir / "config.json"), "--steps", "30", "--quiet"]) == 0
    assert load_run(run_dir).steps[-1] == 30
