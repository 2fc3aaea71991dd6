"""The run directory: names, reader and writer, damaged files, and run dirs written by older code."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from mechgrok import MechgrokError, TrainConfig, load_run
from mechgrok.fileio import load_tensors, save_tensors
from mechgrok.run import CONFIG_FILE, DATASET_FILE, RunWriter, checkpoint_name

from ..conftest import LEGACY_RUN


@pytest.fixture
def legacy(tmp_path):
    copy = tmp_path / "legacy"
    shutil.copytree(LEGACY_RUN, copy)
    return copy


def test_a_run_written_before_the_redesign_opens(legacy):
    run = load_run(legacy)
    assert run.steps == [0, 300, 600, 900, 1200, 1500]
    assert run.config.data.p == 23 and run.config.model.d_model == 32 and run.config.run.threads == 0
    ckpt = run.checkpoint(1500)
    assert not ckpt.verified  # written before checksums: readable, reported unverified
    assert run.dataset.heads == (23,) and torch.equal(run.dataset.lens.rows, torch.arange(23 * 23))
    with torch.no_grad():
        accuracy = (run.model()(run.dataset.inputs)[:, -1].argmax(-1) == run.dataset.labels).double().mean()
    assert accuracy.item() == pytest.approx(0.6 * 1.0 + 0.4 * run.metrics()[-1]["test_acc"], abs=1e-3)


def test_expected_shapes_need_no_model(legacy):
    shapes = load_run(legacy).expected_shapes
    assert shapes["embed.W_E"] == (24, 32) and shapes["unembed.W_U"] == (32, 23)


def test_a_flipped_bit_in_a_new_checkpoint_is_caught(tmp_path):
    path = tmp_path / checkpoint_name(7)
    save_tensors(path, {"w": torch.ones(64)}, {"kind": "checkpoint"})
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x40  # an exponent bit of the last float
    path.write_bytes(bytes(raw))
    with pytest.raises(MechgrokError, match="do not match their stored checksum"):
        load_tensors(path, "checkpoint")


def _rewrite_config(run_dir, change):
    raw = json.loads((run_dir / CONFIG_FILE).read_text())
    change(raw)
    (run_dir / CONFIG_FILE).write_text(json.dumps(raw))


@pytest.mark.parametrize("change,message", [
    (lambda raw: raw.update(config=[1]), "'config' must be a table of fields, got list"),
    (lambda raw: raw.update(config=None), "'config' must be a table of fields, got NoneType"),
    (lambda raw: raw.update(d_vocab="24"), "d_vocab and n_classes must be positive integers"),
    (lambda raw: raw["config"].pop("p"), "config lacks p"),
    (lambda raw: raw["config"].update(lr="fast"), "lr must be a finite number"),
])
def test_damaged_config_json_is_one_line_naming_the_file(legacy, change, message):
    _rewrite_config(legacy, change)
    with pytest.raises(MechgrokError, match=message) as err:
        load_run(legacy)
    assert CONFIG_FILE in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("change,message", [
    (lambda t: t.update(inputs=t["inputs"].float()), "inputs must be int64"),
    (lambda t: t["inputs"].__setitem__((0, 0), 99), "inputs hold tokens outside"),
    (lambda t: t["labels"].__setitem__(0, 23), "labels outside their classes"),
    (lambda t: t["train_idx"].__setitem__(0, 10**6), "train_idx is empty or indexes outside"),
    (lambda t: t.pop("test_idx"), "lacks tensor\\(s\\) test_idx"),
])
def test_damaged_dataset_is_one_line_naming_the_file(legacy, change, message):
    path = legacy / DATASET_FILE
    loaded = load_tensors(path, "dataset")
    tensors = dict(loaded.tensors)
    change(tensors)
    save_tensors(path, tensors, loaded.meta)
    with pytest.raises(MechgrokError, match=message) as err:
        load_run(legacy).dataset
    assert DATASET_FILE in str(err.value)


def test_writer_refuses_foreign_content_and_accepts_failed_start_scaffolding(tmp_path):
    cfg = TrainConfig(p=23, out=str(tmp_path / "run"))
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / ".lock").write_text("")
    RunWriter.open(tmp_path / "run", cfg).abandon()
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "precious.txt").write_text("keep me")
    with pytest.raises(MechgrokError, match="not empty and is not a mechgrok run"):
        RunWriter.open(tmp_path / "run", cfg)
    assert (tmp_path / "run" / "precious.txt").read_text() == "keep me"


def test_old_checkpoint_without_checksum_still_loads(tmp_path):
    path = tmp_path / "old.safetensors"
    save_file({"w": torch.ones(2)}, str(path), metadata={"mechgrok": json.dumps({"kind": "checkpoint"})})
    loaded = load_tensors(path, "checkpoint")
    assert not loaded.verified and torch.equal(loaded.tensors["w"], load_file(str(path))["w"])


def test_a_kill_during_the_first_write_leaves_what_the_same_command_accepts(tmp_path):
    """What a kill during a new run's first write leaves: the lock, an empty checkpoints/ and the dataset's
    temporary; the rerun of the same command takes the directory."""
    from mechgrok import train

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".lock").write_text("")
    (run / ".dataset.safetensors.mechgrok-k2j4_x9a.tmp").write_bytes(b"\x00" * 100)
    result = train(TrainConfig(p=23, d_model=32, d_head=8, d_mlp=64, steps=10, save_every=10, out=str(run)),
                   progress=False)
    assert result.summary["steps"] == 10 and not list(run.glob(".*.tmp"))
