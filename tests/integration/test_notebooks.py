"""Every notebook runs end to end on a small run (nbclient), so none can silently break."""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mechgrok.analysis import analyze_run

NOTEBOOKS = sorted((Path(__file__).parent.parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def notebook_run(grokked_run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("nb") / "run"
    shutil.copytree(grokked_run, run_dir)
    analyze_run(run_dir, progress=False)
    return run_dir


def _snapshot(directory):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in directory.iterdir() if p.is_file()}


def test_every_notebook_is_committed_cleared_and_named_in_the_readme():
    readme = (Path(__file__).parent.parent.parent / "README.md").read_text()
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), path.name
        assert path.stem in readme, f"{path.name} is not named in the README"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_draws(path, notebook_run, monkeypatch):
    book = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), "commit notebooks cleared"
    monkeypatch.setenv("MECHGROK_RUN_DIR", str(notebook_run))
    # the kernel inherits this: plotly's renderer detection can pick "browser" in a headless kernel, whose
    # fig.show() then serves the page and waits for a browser that never comes (a hang, seen on CI)
    monkeypatch.setenv("PLOTLY_RENDERER", "plotly_mimetype")
    before = _snapshot(notebook_run / "analysis")
    # timeout: a hang guard, not a timing (a loaded 2-core machine takes minutes for the Gromov training cell)
    NotebookClient(book, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    for cell in code:
        if ".show()" in cell.source:  # every figure cell draws a plotly figure
            assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in cell.outputs), cell.source
    assert _snapshot(notebook_run / "analysis") == before  # opening a notebook never rewrites the analysis


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if "RUN_DIR" in p.read_text()], ids=lambda p: p.stem)
def test_a_missing_run_is_a_message_with_the_command_not_a_training(path, tmp_path, monkeypatch):
    book = nbformat.read(path, as_version=4)
    monkeypatch.setenv("MECHGROK_RUN_DIR", str(tmp_path / "nothing"))
    with pytest.raises(CellExecutionError, match="No run at .*Create it with `make demo`"):
        NotebookClient(book, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    assert not (tmp_path / "nothing").exists()


def test_a_relative_run_dir_is_read_from_the_repository_root(monkeypatch):
    path = NOTEBOOKS[0]
    book = nbformat.read(path, as_version=4)
    monkeypatch.setenv("MECHGROK_RUN_DIR", "checkpoints/no_such_run")
    repo = path.parent.parent
    with pytest.raises(CellExecutionError, match=f"No run at {repo / 'checkpoints' / 'no_such_run'}\\."):
        NotebookClient(book, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()


@pytest.mark.slow
def test_the_views_widget_builds_in_a_kernel(notebook_run):
    """views.widget in a real ipykernel (driven by jupyter_client, not nbclient, which can block on a cell that
    displays an ipywidget: jupyter/nbclient#312): a slider over every analysed step, its figures drawn without error."""
    from jupyter_client.manager import start_new_kernel

    from mechgrok import load_run
    from mechgrok.analysis import views

    steps = views.open(load_run(notebook_run)).steps
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        code = ("from mechgrok import load_run, views\n"
                f"box = views.widget(load_run({str(notebook_run)!r}), ['losses', 'cluster_sizes', 'clock'])\n"
                "print('slider', box.children[0].value, len(box.children[0].options))")
        printed, errors = [], []

        def hook(msg):
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append(msg["content"]["evalue"])

        reply = kc.execute_interactive(code, timeout=600, output_hook=hook)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok" and not errors, errors
    assert f"slider {steps[-1]} {len(steps)}" in "".join(printed)
