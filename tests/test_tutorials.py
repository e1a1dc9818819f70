"""The tutorial notebooks, executed headless in order, as a reader would run them."""

from pathlib import Path

import nbformat
import papermill
import pytest

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def test_tutorials_run_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    for name in ("01-experiment.ipynb", "02-pipeline.ipynb", "03-continuous-training.ipynb",
                 "04-feature-tables.ipynb"):
        output = tmp_path / f"out-{name}"
        papermill.execute_notebook(str(NOTEBOOKS / name), str(output), cwd=str(tmp_path), kernel_name="python3",
                                   progress_bar=False)
        executed = nbformat.read(str(output), as_version=4)
        assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    text = (tmp_path / "out-03-continuous-training.ipynb").read_text()
    assert "drift#2" in text and "new_data#1" in text
    features = (tmp_path / "out-04-feature-tables.ipynb").read_text()
    assert "plain merge: 525 of 525 training rows hold values from after" in features
    assert "the same values as pandas.merge_asof on every row: True" in features


def test_tutorials_are_committed_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(str(path), as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), path.name
