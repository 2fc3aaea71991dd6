import json
import shutil

import pytest

import mechgrok.analysis.pipeline as pipeline
from mechgrok import MechgrokError
from mechgrok.analysis import analyze_run
from mechgrok.cli import main
from mechgrok.run import load_run

from mechgrok.analysis import load_report
from mechgrok.analysis.figure_set import summary_figures

from ..conftest import LEGACY_RUN, small_config

pytestmark = pytest.mark.hooked  # builds TransformerLens's model: make test-tl4 runs it on TL 4


@pytest.fixture(scope="module")
def analysed(grokked_run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("analysed") / "run"
    shutil.copytree(grokked_run, run_dir)
    return analyze_run(run_dir, progress=False)


def test_analysis_claims_the_circuit_of_a_run_that_generalised(analysed):
    assert analysed.generalised and analysed.circuit.claimed and analysed.phases.placed


def _at(rows, step):
    return next(r for r in rows if r["step"] == step)


def test_end_to_end_finds_the_fourier_circuit(analysed):
    c = analysed.content
    rows = [m.to_row() for m in analysed.measures]
    p = c["config"]["p"]
    key = c["key_frequencies"]["frequencies"]
    assert 1 <= len(key) <= 6
    assert c["key_frequencies"]["fraction_clustered"] > 0.5
    assert c["key_frequencies"]["agree_with_embedding"], c["key_frequencies"]

    grok = c["grok_step"]
    assert grok is not None and grok > 0
    before = [r for r in rows if 0 < r["step"] < grok]
    assert any(r["restricted_loss"] < r["test_loss"] for r in before)

    final = rows[-1]
    assert final["excluded_loss"] > 1.0 and final["excluded_loss"] > 1000 * final["train_loss"]
    assert final["restricted_loss"] < 0.01

    phases = c["phases"]
    assert phases["memorization_end"] < phases["cleanup_start"] < phases["cleanup_end"]

    ablation = {(r["site"], r["ablation"]): r for r in c["ablations"]}
    chance = 1 / p
    for site in ("embed", "neurons", "logits"):
        assert ablation[(site, "remove key")]["test_acc"] < chance + 0.15, site
        assert ablation[(site, "keep only key")]["test_acc"] > 0.95, site
    control = [r for r in c["ablations"] if r["ablation"].endswith("(control)") and r["site"] == "neurons"]
    assert control and control[0]["test_acc"] > 0.9  # a non-key frequency hardly matters


def test_outputs_are_written_under_analysis_only(analysed):
    out = analysed.path
    report = json.loads((out / "report.json").read_text())
    assert report["key_frequencies"]["frequencies"] == analysed.content["key_frequencies"]["frequencies"]
    header = (out / "measures.csv").read_text().splitlines()[0].split(",")
    assert {"step", "restricted_loss", "excluded_loss", "gini_embed", "gini_neuron_logit", "sum_sq_weights"} <= set(header)
    for name in report["figures"]:
        assert (out / f"{name}.html").stat().st_size > 1000
    assert len(report["figures"]) == 8
    assert "key frequencies" in analysed.summary_text() and "no circuit claimed" not in analysed.summary_text()


def test_second_call_reuses_finished_work(analysed, monkeypatch, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(analysed.run_dir, run_dir)
    calls = []
    real = pipeline.measure

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "measure", counting)
    again = analyze_run(run_dir, progress=False, figures=False)
    assert again.measures == analysed.measures
    assert calls == [analysed.final.step]  # only the final checkpoint, whose pass the circuit needs anyway
    assert again.figures == analysed.figures  # nothing changed: the figures drawn before are still listed
    forced = analyze_run(run_dir, progress=False, figures=False, force=True)
    assert len(calls) == 1 + len(analysed.measures) and forced.figures == []


def test_reading_an_analysis_never_rewrites_it(analysed):
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in analysed.path.iterdir() if p.is_file()}
    report = load_report(analysed.run_dir)
    assert report.content["key_frequencies"] == analysed.content["key_frequencies"]
    assert report.measures == analysed.measures and report.figures == analysed.figures
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in analysed.path.iterdir() if p.is_file()} == files


def test_grok_step_is_one_value_in_every_file(analysed):
    summary = json.loads((analysed.run_dir / "summary.json").read_text())
    report = json.loads((analysed.path / "report.json").read_text())
    assert summary["grok_step"] == report["grok_step"] == analysed.grok_step is not None


def test_every_figure_has_its_essentials(analysed):
    figures = summary_figures(analysed)
    for name, fig in figures.items():
        assert fig.layout.title.text, name
    assert figures["losses"].layout.yaxis.title.text == "cross-entropy"
    assert figures["losses"].layout.yaxis.exponentformat == "power"  # 10^-7, not "100n"
    table = figures["ablations"].data[0]
    assert len(table.cells.values[0]) == len(analysed.ablations)  # every row present ...
    assert figures["ablations"].layout.height >= 26 * (len(analysed.ablations) + 2)  # ... and room to show it
    bars = figures["neuron_clusters"].data[0]
    assert {f"k={k}" for k in analysed.circuit.frequencies} <= set(bars.x)  # one labelled bar per key frequency
    assert figures["neuron_clusters"].layout.xaxis.type == "category"
    heat = figures["embedding_spectrum"].data[1]
    assert heat.colorbar.title.text == "norm"


def test_damaged_analysis_cache_is_recomputed(analysed, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(analysed.run_dir, copy)
    (copy / "analysis" / "measures.csv").write_text("step,test_loss\nnot-a-number,###\n")
    report = analyze_run(copy, progress=False, figures=False)
    assert report.measures == analysed.measures


def test_a_run_written_before_the_redesign_analyses_and_claims_no_circuit(tmp_path, capsys):
    copy = tmp_path / "legacy"
    shutil.copytree(LEGACY_RUN, copy)
    assert main(["analyze", str(copy), "--quiet", "--no-figures"]) == 0
    out = capsys.readouterr().out
    # it memorized but reached only 81% test accuracy: no circuit is claimed and no phase placed
    assert "no circuit claimed: the last checkpoint's test accuracy is 0.807" in out
    assert "phases: none placed" in out and "6 checkpoint(s) written before checksums existed" in out
    report = json.loads((copy / "analysis" / "report.json").read_text())
    assert report["generalised"] is False and report["key_frequencies"]["claimed"] is False
    assert report["phases"]["memorization_end"] is None and report["unverified_checkpoints"] == [0, 300, 600, 900, 1200, 1500]


def test_subset_of_checkpoints(grokked_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(grokked_run, run_dir)
    every = analyze_run(run_dir, every=10, progress=False, figures=False)
    assert [r.step for r in every.measures] == [0, 500, 1000, 1500]
    chosen = analyze_run(run_dir, steps=[50, 1500], progress=False, figures=False, force=True)
    assert [r.step for r in chosen.measures] == [50, 1500]
    with pytest.raises(MechgrokError, match=r"no checkpoint at step\(s\) \[77\]"):
        analyze_run(run_dir, steps=[77], progress=False)


def test_corrupt_checkpoint_is_named_skipped_and_the_rest_analysed(grokked_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(grokked_run, run_dir)
    broken = run_dir / "checkpoints" / "step_0000500.safetensors"
    broken.write_bytes(broken.read_bytes()[:100])
    assert main(["analyze", str(run_dir), "--every", "10", "--no-figures", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 unreadable checkpoint(s): step 500" in out and "truncated or corrupt" in out
    report = json.loads((run_dir / "analysis" / "report.json").read_text())
    assert report["analysed_steps"] == [0, 1000, 1500]


def _analyze_error(capsys, path):
    assert main(["analyze", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_not_a_run_dir(capsys, tmp_path):
    assert "is not a directory" in _analyze_error(capsys, tmp_path / "missing")
    assert "not a mechgrok run directory" in _analyze_error(capsys, tmp_path)


def test_run_without_checkpoints(capsys, tmp_path):
    from mechgrok import train

    run_dir = train(small_config(tmp_path, steps=10), progress=False).run_dir
    for f in (run_dir / "checkpoints").iterdir():
        f.unlink()
    assert "has no checkpoints" in _analyze_error(capsys, run_dir)


@pytest.mark.parametrize("task,p", [("div", 23), ("mul", 23), ("perm", 3)])
def test_group_tasks_get_circuit_measures_in_their_irreps(tmp_path, task, p):
    from mechgrok import train

    run_dir = train(small_config(tmp_path, task=task, p=p, steps=20), progress=False).run_dir
    report = analyze_run(run_dir, progress=False)
    circuit = report.circuit
    assert circuit.basis.startswith(f"irreps of {'S_3' if task == 'perm' else 'Z_23^*'}")
    assert len(circuit.irrep_names) == (3 if task == "perm" else 12)  # S_3: 3 partitions; Z_22: k = 0..11
    assert not circuit.claimed and not report.phases.placed  # 20 steps: nothing has generalised
    final = report.measures[-1]
    assert final.restricted_loss is not None and final.gini_embed is not None
    assert {a.site for a in report.ablations} == {"none", "embed", "neurons", "logits"}


def test_multi_task_runs_get_per_task_accuracy_fits_and_order(tmp_path):
    from mechgrok import train
    from mechgrok.analysis import read_report

    run_dir = train(small_config(tmp_path, task="miiii", p=11, steps=150), progress=False).run_dir
    report = analyze_run(run_dir, progress=False)
    assert report.circuit is None and report.measures[-1].restricted_loss is None
    assert set(report.figures) == {"losses", "task_order"}
    final = report.measures[-1].to_row()
    assert {"test_acc_q2", "test_acc_q7", "fit_r2_q2", "fit_r2_q7"} <= set(final)
    metrics = load_run(run_dir).metrics()
    assert final["test_acc_q3"] == pytest.approx(metrics[-1]["test_acc_q3"])  # recomputed from the checkpoint
    table = {r.q: r for r in report.tasks.table}
    assert set(table) == {2, 3, 5, 7} and table[2].grok_step is not None  # mod 2 is easy
    assert report.tasks.order[0] == 2 and "grok order" in report.summary_text()
    again = read_report(run_dir / "analysis")
    assert again.tasks == report.tasks and again.measures[-1].per_task == report.measures[-1].per_task


def test_a_cut_short_plotly_js_is_written_again(analysed, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(analysed.run_dir, run_dir)
    bundle = run_dir / "analysis" / "plotly.min.js"
    whole = bundle.read_bytes()
    bundle.write_bytes(whole[: len(whole) // 3])  # what a kill or a full disk leaves
    analyze_run(run_dir, progress=False)
    assert bundle.read_bytes() == whole


def test_analyze_on_a_disk_with_no_room_for_the_figures_is_one_line_and_leaves_no_debris(analysed_every_2, tmp_path,
                                                                                        capsys):
    """A real full disk (a small tmpfs; root on Linux, as CI runs) under the figures: one line, exit 2, no temporary
    left, the analysis files whole (each the old version or a complete new one); with room again, the same command finishes and plotly.min.js is whole."""
    import subprocess

    from plotly.offline import get_plotlyjs

    from mechgrok.fileio import TEMPORARY_RE

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")  # CI runs as root; elsewhere the ENOSPC test in test_train
    try:
        run_dir = disk / "run"
        # the run and its analysis (7.5 MB; what other tests drew there left out): plotly.js (4.6 MB) cannot fit
        shutil.copytree(analysed_every_2, run_dir, ignore=shutil.ignore_patterns("*.html", "*.png", "*.js"))
        before = {p.name: p.read_bytes() for p in (run_dir / "analysis").iterdir()}
        assert main(["analyze", str(run_dir), "--every", "2", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "No space left on device" in err and err.count("\n") == 1 and "Traceback" not in err, err
        left = {p.name: p for p in (run_dir / "analysis").iterdir()}
        assert not [n for n in left if TEMPORARY_RE.fullmatch(n) or n.startswith(".")], sorted(left)
        assert set(before) <= set(left)  # each file whole: the old version or a complete new one
        load_report(run_dir)
        from mechgrok.analysis.trajectory import load_arrays
        load_arrays(run_dir / "analysis" / "explorer.safetensors", load_run(run_dir))
        subprocess.run(["mount", "-o", "remount,size=32m", str(disk)], check=True)
        assert main(["analyze", str(run_dir), "--every", "2", "--quiet"]) == 0
        assert (run_dir / "analysis" / "plotly.min.js").read_bytes() == get_plotlyjs().encode()
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
