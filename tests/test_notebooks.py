"""The notebooks run top to bottom (with small settings) and show what they promise.

When ``PLATFORM_SIM_EXECUTED_NOTEBOOKS`` names a folder of notebooks executed already (continuous
integration executes a copy once with ``pytest --nbmake --overwrite``, at the notebooks' own
settings), the tests check those instead of executing the notebooks again."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {"PLATFORM_SIM_NOTEBOOK_SIMS": "40", "PLATFORM_SIM_NOTEBOOK_DRAWS": "150"}


def _executed_copy(name: str, folder: str):
    """The notebook ``name`` as executed in ``folder``: it must hold the committed cells, every code cell
    run, none with an error."""
    path = Path(folder) / name
    if not path.is_file():
        pytest.fail(f"PLATFORM_SIM_EXECUTED_NOTEBOOKS={folder}: no executed {name} there")
    nb = nbformat.read(path, as_version=4)
    committed = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in committed.cells], f"{path} is not a copy of {name}"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, f"{path}: a code cell was not executed"
            assert not any(o.get("output_type") == "error" for o in cell.outputs), f"{path}: a cell failed"
    return nb


def _execute(name: str, tmp_path: Path, monkeypatch):
    executed = os.environ.get("PLATFORM_SIM_EXECUTED_NOTEBOOKS")
    if executed:
        return _executed_copy(name, executed)
    for key, value in SMALL.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:  # run from a clean state
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def _outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield from cell.outputs


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


def _text(nb) -> str:
    parts = []
    for o in _outputs(nb):
        parts.append(o.get("text", ""))
        parts.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_quickstart(tmp_path, monkeypatch):
    nb = _execute("01_quickstart.ipynb", tmp_path, monkeypatch)
    assert _images(nb) >= 4  # arms, sample size and duration, allocation, convergence
    text = _text(nb)
    assert "trials/s" in text and "report.html" in text and "manifest.json" in text
    # it uses the public interface and its figures: no hand-drawn plots, no re-pivoting, no command line
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "import platform_sim as ps" in code and "from platform_sim import plot" in code
    for handmade in (".barh(", ".hist(", ".pivot", "subprocess", "from platform_sim.runner", "from platform_sim.spec"):
        assert handmade not in code, handmade


def test_allcomer_vs_biomarker(tmp_path, monkeypatch):
    nb = _execute("02_allcomer_vs_biomarker.ipynb", tmp_path, monkeypatch)
    assert _images(nb) >= 4  # frontier, paired differences, two claims heatmaps
    text = _text(nb)
    assert re.search(r"5 designs x 7 scenarios x \d+ trials, calibrated and sized", text)
    assert "superiority" in text  # the calibration table names the threshold it moved
    assert "Overall:" in text  # the computed recommendation


def test_single_trial_bayes(tmp_path, monkeypatch):
    pytest.importorskip("pymc")
    nb = _execute("03_single_trial_bayes.ipynb", tmp_path, monkeypatch)
    assert _images(nb) >= 3  # history, forest plot, trace plot
    text = _text(nb)
    assert "r_hat" in text and "max r_hat" in text


def test_notebooks_are_built_from_build_py():
    """The committed notebooks hold the cells build.py writes (edit build.py, not the notebooks)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build", NOTEBOOKS / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, cells in build.NOTEBOOKS.items():
        committed = nbformat.read(NOTEBOOKS / name, as_version=4)
        sources = [c.source for c in committed.cells]
        assert sources == [c.source for c in cells()], name
    assert os.path.exists(NOTEBOOKS / "01_quickstart.ipynb")
