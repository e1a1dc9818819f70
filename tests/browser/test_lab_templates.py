"""A template project's step notebooks as a person meets them after `mlops-nb init` and a first `mlops-nb run`:
opened in real JupyterLab and run with Run All Cells, in order (screenshots as in test_lab_tutorials)."""

import pytest

import mlops_nb as mlops

from tests.browser.test_lab_tutorials import run_all_in_lab, screenshot_dir

pytestmark = pytest.mark.slow


def test_template_notebooks_run_in_jupyterlab(jupyter_lab, browser, tmp_path):
    """After `mlops-nb init` and a first `mlops-nb run`, a person opens the step notebooks and runs them."""
    from mlops_nb.project.scaffold import init_project

    project = jupyter_lab["root"] / "churn"
    init_project(project)
    assert mlops.run_pipeline(project / "pipeline.yaml").ok
    shots = screenshot_dir(tmp_path)
    for step in ("extract", "validate", "prepare", "train", "gate"):
        executed = run_all_in_lab(browser, jupyter_lab, f"churn/notebooks/{step}.ipynb", shots)
    assert "promoted to production" in str(executed.cells[-1].outputs)  # gate's last line: churn/2 beat churn/1
