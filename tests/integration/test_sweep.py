"""`mechgrok sweep`: both backends give the same bits, a killed sweep continues, bad specs fail cleanly."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mechgrok.cli import main
from mechgrok.fileio import load_tensors, read_jsonl
from mechgrok.run import checkpoint_name
from mechgrok.sweep import RUNS_DIR, SWEEP_FILE, TABLE_NAME, load_spec, run_sweep

BASE = """
[base]
task = "add"
p = 23
frac_train = 0.6
weight_decay = 3.0
d_model = 32
d_head = 8
d_mlp = 64
log_every = 10
"""


def _spec(tmp_path, grid, steps=40, analyze=False, name="s", extra=""):
    path = tmp_path / f"{name}.toml"
    head = extra if "analyze" in extra else f"analyze = {str(analyze).lower()}\n{extra}"
    path.write_text(f"{head}{BASE}steps = {steps}\nsave_every = {steps // 2}\n"
                    f"[grid]\n{grid}\n")
    return path


def _table(out, drop=("wall_seconds",)):
    with open(out / f"{TABLE_NAME}.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(handle)]


def _run_files(run_dir):
    return {p.name: load_tensors(p, "checkpoint").tensors for p in sorted((run_dir / "checkpoints").iterdir())}


@pytest.mark.slow
def test_ray_backend_equals_local_bit_for_bit(tmp_path):
    pytest.importorskip("ray")  # .ci/run installs the extra, so CI always runs this
    spec = _spec(tmp_path, 'seed = [0, 1]\nlr = [1e-3, 3e-3]', steps=30)
    local, _ = run_sweep(spec, "local", jobs=2, out=tmp_path / "local", progress=False)
    ray, _ = run_sweep(spec, "ray", jobs=2, out=tmp_path / "ray", progress=False)
    assert _table(local.out) == _table(ray.out) and len(_table(local.out)) == 4
    for name, _ in local.points:
        a, b = _run_files(local.out / RUNS_DIR / name), _run_files(ray.out / RUNS_DIR / name)
        assert a.keys() == b.keys() and len(a) == 3
        assert all(torch.equal(a[f][k], b[f][k]) for f in a for k in a[f])
        rows = [[{k: v for k, v in r.items() if k != "wall_seconds"} for r in read_jsonl(d / RUNS_DIR / name /
                 "metrics.jsonl")] for d in (local.out, ray.out)]
        assert rows[0] == rows[1]
    seeds = [_run_files(local.out / RUNS_DIR / name) for name, _ in local.points[:3:2]]  # seeds 0 and 1, same lr
    last = checkpoint_name(30)
    assert not torch.equal(seeds[0][last]["embed.W_E"], seeds[1][last]["embed.W_E"])  # seeds do differ


def test_killed_sweep_continues_without_retraining_finished_runs(tmp_path):
    spec = _spec(tmp_path, "seed = [0, 1, 2]", steps=300, analyze=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "mechgrok.cli", "sweep", str(spec), "--jobs", "1", "--quiet",
                                "--out", str(killed)], start_new_session=True, stderr=subprocess.PIPE)
    first, second = killed / RUNS_DIR / "seed-0", killed / RUNS_DIR / "seed-1"
    deadline = time.time() + 240
    while not (second / "metrics.jsonl").is_file() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (first / "summary.json").is_file() and (first / "analysis" / "report.json").is_file()
    assert not (killed / RUNS_DIR / "seed-2").exists()
    before = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    assert main(["sweep", str(spec), "--jobs", "1", "--quiet", "--out", str(killed)]) == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before  # the finished run was reused, not retrained
    fresh, _ = run_sweep(spec, "local", jobs=1, out=tmp_path / "fresh", progress=False)
    assert _table(killed) == _table(fresh.out) and len(_table(fresh.out)) == 3
    assert all(row["memorization_end"] != "" or row["grok_step"] == "" for row in _table(fresh.out))


def test_a_killed_worker_is_one_line_not_a_traceback(tmp_path):
    """A pool worker killed mid-run (by a signal, or the out-of-memory killer) stops the sweep with one line that
    says how to resume."""
    spec = _spec(tmp_path, "seed = [0, 1]", steps=200000)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "mechgrok.cli", "sweep", str(spec), "--jobs", "2", "--quiet",
                                "--out", str(out)], start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(out.glob(f"{RUNS_DIR}/*/metrics.jsonl")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    workers = [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)
    try:
        err = process.communicate(timeout=120)[1].decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("mechgrok: error: a worker process stopped abruptly") and "re-run the same command" in err


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mechgrok: error: ") and "Traceback" not in err and err.count("\n") == 1
    return err


@pytest.mark.parametrize("grid,extra,message", [
    ("learning_rate = [1e-3]", "", "unknown field 'learning_rate' in [grid]"),
    ("", "", "the grid is empty"),
    ("seed = []", "", "grid field seed needs a non-empty list"),
    ('lr = [1e-3, "fast"]', "", "lr must be a finite number, got 'fast'"),
    ("seed = [0, 0]", "", "grid field seed repeats a value"),
    ("dropout = [0.0, 1.5]", "", "grid point dropout-1.5: dropout must lie in"),
    ("out = ['a', 'b']", "", "'out' cannot be swept"),
    ("seed = [0]", "analyze = 1\n", "analyze must be true or false"),
    ("seed = [0]", "workers = 3\n", "unknown key(s) 'workers'"),
    ("seed = [0]\nn_layers = [1000000]", "", "needs about"),
    ("device = ['cpu', 'cpu ']", "", "two grid points map to the run directory device-cpu"),
    ("seed = [0]", "out = 5\n", "out must be a directory path (a string), got 5"),
    ("seed = [0]", "out = [1]\n", "out must be a directory path (a string), got [1]"),  # refused from its memory estimate, before anything is made
    ("seed = [0]\ndevice = ['cuda:7']", "", "cuda:7"),
])
def test_bad_spec_gives_one_line_and_creates_nothing(capsys, tmp_path, grid, extra, message):
    spec = _spec(tmp_path, grid, extra=extra)
    before = sorted(tmp_path.rglob("*"))
    err = _error(capsys, ["sweep", str(spec), "--out", str(tmp_path / "out")])
    assert message in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_a_bad_job_count_is_refused_before_anything_is_made(capsys, tmp_path):
    spec = _spec(tmp_path, "seed = [0]")
    before = sorted(tmp_path.rglob("*"))
    assert "--jobs must be at least 1, got -3" in _error(capsys, ["sweep", str(spec), "--jobs", "-3",
                                                                  "--out", str(tmp_path / "out")])
    assert sorted(tmp_path.rglob("*")) == before


def test_a_sweep_never_overwrites_another_directory(capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["sweep", str(_spec(tmp_path, "seed = [0]", steps=10)), "--quiet", "--out", str(out)]) == 0
    marker = (out / SWEEP_FILE).read_bytes()
    other = _spec(tmp_path, "seed = [0, 1]", steps=10, name="other")
    assert "holds another sweep" in _error(capsys, ["sweep", str(other), "--out", str(out)])
    assert (out / SWEEP_FILE).read_bytes() == marker and not (out / RUNS_DIR / "seed-1").exists()
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    assert "is not a sweep directory" in _error(capsys, ["sweep", str(other), "--out", str(stranger)])
    assert [p.name for p in stranger.iterdir()] == ["notes.txt"]


def test_missing_ray_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    spec = _spec(tmp_path, "seed = [0]")
    assert "needs Ray: pip install 'mechgrok[ray]'" in _error(capsys, ["sweep", str(spec), "--backend", "ray",
                                                                       "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_spec_points_are_named_by_their_grid_values(tmp_path):
    spec = load_spec(_spec(tmp_path, "beta2 = [0.98, 0.999]\nlr = [1e-3]"), out=tmp_path / "o")
    assert [name for name, _ in spec.points] == ["beta2-0.98_lr-0.001", "beta2-0.999_lr-0.001"]
    assert [cfg.optim.beta2 for _, cfg in spec.points] == [0.98, 0.999]
    assert all(cfg.run.threads == 1 and Path(cfg.run.out).parent == tmp_path / "o" / RUNS_DIR
               for _, cfg in spec.points)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["summary", "report"])
def test_a_finished_run_with_a_damaged_summary_or_report_is_named_in_one_line(capsys, tmp_path, damage):
    spec = _spec(tmp_path, "seed = [0]", steps=20, analyze=True)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--quiet"]) == 0
    run_dir = next((out / RUNS_DIR).iterdir())
    path = run_dir / ("summary.json" if damage == "summary" else "analysis/report.json")
    path.write_text('{"steps": 20, "test_acc": "x", "phases": 3}')
    err = _error(capsys, ["sweep", str(spec), "--out", str(out), "--partial"])
    assert run_dir.name in err and "damaged" in err
