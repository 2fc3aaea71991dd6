from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mechgrok import MechgrokError, load_run
from mechgrok.fileio import load_tensors, save_tensors


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    path = tmp_path / "x.safetensors"
    save_tensors(path, {"w": torch.arange(6.0).reshape(2, 3)}, {"kind": "checkpoint", "step": 7})
    loaded = load_tensors(path, "checkpoint")
    assert torch.equal(loaded.tensors["w"], torch.arange(6.0).reshape(2, 3)) and loaded.meta["step"] == 7
    assert loaded.verified


def test_crash_during_write_leaves_old_file_and_no_partial(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save_tensors(path, {"w": torch.ones(3)}, {"kind": "checkpoint", "step": 1})
    before = path.read_bytes()

    def crash(self, data):
        with open(self, "wb") as handle:
            handle.write(data[:10])  # part of the file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", crash)
    with pytest.raises(KeyboardInterrupt):
        save_tensors(path, {"w": torch.zeros(3)}, {"kind": "checkpoint", "step": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]  # the temporary is gone too


def test_truncated_file_is_named_in_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    save_tensors(path, {"w": torch.ones(100)}, {"kind": "checkpoint"})
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(MechgrokError, match="ckpt.safetensors is truncated or corrupt"):
        load_tensors(path, "checkpoint")


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(MechgrokError, match="not a mechgrok file"):
        load_tensors(path, "checkpoint")


def test_checkpoint_of_wrong_shape_is_refused(tmp_path):
    from mechgrok import train

    from ..conftest import small_config

    run = load_run(train(small_config(tmp_path, steps=10), progress=False).run_dir)
    step = run.steps[-1]
    weights, meta = run.state_dict(step)
    weights["embed.W_E"] = torch.zeros(5, 5)
    save_tensors(run.checkpoint_path(step), weights, meta)
    with pytest.raises(MechgrokError, match=r"does not fit the run's config \(embed.W_E"):
        run.model(step)
    with pytest.raises(MechgrokError, match="no checkpoint at step 12345"):
        run.model(12345)


def test_tensors_are_serialised_in_memory_and_written_by_our_atomic_write_alone(tmp_path, monkeypatch):
    import safetensors.torch

    def refuse(*args, **kwargs):
        raise AssertionError("save_file writes a temporary of its own")

    monkeypatch.setattr(safetensors.torch, "save_file", refuse)
    save_tensors(tmp_path / "t.safetensors", {"w": torch.arange(4.0)}, {"kind": "test"})
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]
    assert torch.equal(load_tensors(tmp_path / "t.safetensors", "test").tensors["w"], torch.arange(4.0))


def test_files_get_the_mode_the_users_umask_gives(tmp_path):
    import os
    import stat

    from mechgrok.fileio import UMASK, write_json

    write_json(tmp_path / "report.json", {"a": 1})
    (tmp_path / "plain.txt").write_text("x")
    mode = stat.S_IMODE(os.stat(tmp_path / "report.json").st_mode)
    assert mode == 0o666 & ~UMASK == stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode)
