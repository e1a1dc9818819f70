"""The dashboard in JupyterLab's main area, on the demo's first registry (in the SQLite file, and in
PostgreSQL): a pipeline run over its five steps, the train step's ROC curve and worst predictions, chosen columns
that stay chosen, a version's lineage and its gate's fairness figures."""

import pytest

import mlops_nb as mlops
from tests.browser.test_lab_magics import wait_for
from tests.browser.test_lab_sidebar import click_text

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_registry(home, tmp_path):
    """What the demo's first steps make: the template's project, its pipeline run once (version 1 promoted)."""
    from mlops_nb.project.scaffold import init_project

    init_project(tmp_path / "demo")
    result = mlops.run_pipeline(tmp_path / "demo" / "pipeline.yaml")
    assert result.status == "finished", result
    with mlops.start_run(experiment="notebook", name="exploring"):
        mlops.log_text("first look at the data", "notes")
    return result


@pytest.mark.backends  # on the SQLite file and on a team's PostgreSQL registry
def test_the_dashboard_groups_runs_shows_figures_and_tables_and_draws_lineage(demo_registry, jupyter_lab, browser,
                                                                             tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(f"{jupyter_lab['url']}/lab?token={jupyter_lab['token']}")
    # The launcher's card opens it (the sidebar's button and the command palette run the same command).
    wait_for(browser, lambda d: click_text(d, ".jp-LauncherCard-label", "mlops-nb Dashboard"), 60,
             "the dashboard's card in the launcher")
    board = wait_for(browser, lambda d: d.find_element(By.ID, "mlops-dash-runs"), 30, "the dashboard")
    wait_for(browser, lambda d: "pipeline, 5 steps" in board.text, 30, "the pipeline run")
    assert "churn · 1 run" in board.text and "notebook · 1 run" in board.text  # steps are inside their pipeline
    assert "train" not in [e.text for e in board.find_elements(By.CSS_SELECTOR, ".mlops-run-link")]
    pipeline_row = board.find_element(By.CSS_SELECTOR, f"tr[data-run='{demo_registry.run_id}']")
    pipeline_row.find_element(By.CSS_SELECTOR, ".mlops-toggle").click()
    wait_for(browser, lambda d: len(board.find_elements(By.CSS_SELECTOR, "tr.mlops-depth-1")) == 5, 10,
             "the five step runs")
    steps = [e.text for e in board.find_elements(By.CSS_SELECTOR, "tr.mlops-depth-1 .mlops-run-link")]
    assert steps == ["extract", "validate", "prepare", "train", "gate"]

    assert click_text(browser, "#mlops-dash-runs .mlops-run-link", "train")
    roc = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "figure[data-name='roc.png'] img"), 30,
                   "the ROC curve")
    wait_for(browser, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", roc),
             30, "the ROC curve's picture to load")
    worst = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR,
                                                       "figure[data-name='worst-predictions.parquet'] table"), 30,
                     "the table of worst predictions")
    assert len(worst.find_elements(By.CSS_SELECTOR, "tbody tr")) == 20 and "p_churn" in worst.text
    assert "accuracy" in board.find_element(By.CSS_SELECTOR, ".mlops-dash-detail").text
    browser.find_element(By.ID, "mlops-nb-dashboard").screenshot(str(tmp_path / "dashboard-runs.png"))  # the README's

    # A column chosen stays chosen: kept in the browser, there after a reload.
    assert click_text(browser, "#mlops-dash-runs .mlops-toolbar button", "Columns")
    choice = board.find_element(By.CSS_SELECTOR, "input[data-column='params.C']")
    was = choice.is_selected()
    choice.click()
    browser.refresh()
    wait_for(browser, lambda d: click_text(d, ".jp-LauncherCard-label", "mlops-nb Dashboard"), 60, "the launcher")
    board = wait_for(browser, lambda d: d.find_element(By.ID, "mlops-dash-runs"), 30, "the dashboard again")
    wait_for(browser, lambda d: "pipeline, 5 steps" in board.text, 30, "the runs again")
    headers = [h.get_attribute("title") for h in board.find_elements(By.CSS_SELECTOR, ".mlops-dash-list th span")]
    assert ("params.C" in headers) is not was

    assert click_text(browser, ".mlops-dashboard .lm-TabBar-tab", "Models")
    models = wait_for(browser, lambda d: d.find_element(By.ID, "mlops-dash-models"), 30, "the models board")
    wait_for(browser, lambda d: models.find_elements(By.CSS_SELECTOR, ".mlops-lineage .mlops-node-version"), 30,
             "the lineage graph")
    nodes = {kind: [n.text for n in models.find_elements(By.CSS_SELECTOR, f".mlops-lineage .mlops-node-{kind}")]
             for kind in ("dataset", "run", "version", "alias")}
    assert nodes["version"] == ["churn/1"] and nodes["alias"] == ["@production"] and nodes["run"] == ["run train"]
    assert "data/train.csv" in nodes["dataset"]
    assert len(models.find_elements(By.CSS_SELECTOR, ".mlops-lineage .mlops-edge")) == len(nodes["dataset"]) + 2
    assert "@production: v1" in models.text
    # Beside the version, the fairness its gate measured across the template's sensitive column.
    fairness = models.find_element(By.CSS_SELECTOR, ".mlops-fairness").text
    assert fairness.startswith("region: DP diff ") and "EO diff" in fairness
    browser.find_element(By.ID, "mlops-nb-dashboard").screenshot(str(tmp_path / "dashboard-models.png"))
