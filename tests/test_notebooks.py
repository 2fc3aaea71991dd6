"""Every notebook runs end to end on a small run (nbclient), so none can silently break."""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def notebook_run(grokked_run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("nb") / "run"
    shutil.copytree(grokked_run, run_dir)
    return run_dir


def test_there_are_four_notebooks():
    assert len(NOTEBOOKS) == 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_draws(path, notebook_run, monkeypatch):
    book = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), "commit notebooks cleared"
    monkeypatch.setenv("MECHGROK_RUN_DIR", str(notebook_run))
    NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    for cell in code:
        if ".show()" in cell.source:  # every figure cell draws a plotly figure
            assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in cell.outputs), cell.source
