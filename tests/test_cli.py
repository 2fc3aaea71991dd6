import json
import subprocess
import sys

import pytest

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
    (["--task", "mul"], "unknown task 'mul'"),
    (["--device", "tpu9"], "unknown device"),
    (["--device", "cuda"], "CUDA is not available"),
    (["--aug-scope", "test"], "unknown aug_scope 'test'; choose one of all, train"),
])
def test_bad_train_input_gives_one_line_error(capsys, tmp_path, argv, message):
    assert message in _error(capsys, ["train", "--steps", "1", "--out", str(tmp_path / "r"), *argv])
    assert not (tmp_path / "r").exists()


def test_non_writable_output(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "is not writable" in _error(capsys, ["train", "--p", "23", "--steps", "1", "--out", str(blocker / "run")])


def test_config_file_with_unknown_key(capsys, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('task = "add"\nlearning_rate = 0.1\n')
    assert "unknown key(s) learning_rate" in _error(capsys, ["train", "--config", str(config)])


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
