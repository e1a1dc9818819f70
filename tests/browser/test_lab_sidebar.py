"""The mlops-nb sidebar in real JupyterLab: a run logged beforehand, and a promotion from the Models tab."""

import time

import pytest
from sklearn.dummy import DummyClassifier

import mlops_nb as mlops
from tests.browser.test_lab_magics import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def logged(home):
    for name, accuracy in (("baseline-run", 0.71), ("sidebar-run", 0.9345)):
        with mlops.start_run(experiment="lab", name=name) as run:
            mlops.log_metric("accuracy", accuracy)
            mlops.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "model")
        mlops.register_model(run, "churn")
    mlops.set_alias("churn", 1, "production")


def widen_left_sidebar(driver, pixels):
    """Drag the left panel's edge, as a user would, so that the tables fit."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    handles = [h for h in driver.find_elements(By.CSS_SELECTOR, "#jp-main-split-panel > .lm-SplitPanel-handle")
               if h.is_displayed()]
    if handles:
        ActionChains(driver).click_and_hold(handles[0]).move_by_offset(pixels, 0).release().perform()


def click_text(driver, selector, text):
    from selenium.webdriver.common.by import By

    for element in driver.find_elements(By.CSS_SELECTOR, selector):
        if element.text.strip() == text:
            element.click()
            return True
    return False


@pytest.mark.backends  # the sidebar on the SQLite file and on a team's PostgreSQL registry
def test_sidebar_shows_runs_and_promotes_a_version(logged, jupyter_lab, browser, tmp_path, backend):
    from selenium.webdriver.common.by import By

    browser.get(f"{jupyter_lab['url']}/lab?token={jupyter_lab['token']}")
    tab = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".lm-TabBar-tab[data-id='mlops-nb-sidebar']"),
                   60, "the mlops-nb sidebar tab")
    tab.click()
    widen_left_sidebar(browser, 260)
    table = wait_for(browser, lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, "#mlops-runs .mlops-table")
                                         if "sidebar-run" in t.text], 30, "the runs table with the logged run")
    assert "0.9345" in table[0].text
    if backend == "postgresql":  # the picker names the team's registry
        picker = browser.find_element(By.CSS_SELECTOR, ".mlops-sidebar select")
        assert picker.text.strip().startswith("postgresql://postgres@127.0.0.1:"), picker.text
    browser.save_screenshot(str(tmp_path / "sidebar-runs.png"))
    assert click_text(browser, ".mlops-sidebar .lm-TabBar-tab", "Models")
    wait_for(browser, lambda d: "production" in d.find_element(By.ID, "mlops-models").text, 30, "the models tab")
    rows = browser.find_elements(By.CSS_SELECTOR, "#mlops-models tbody tr")
    version_two = next(r for r in rows if r.find_element(By.CSS_SELECTOR, "td").text.strip() == "2")
    version_two.find_element(By.CSS_SELECTOR, "button").click()
    confirm = wait_for(browser, lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, ".jp-Dialog button")
                                           if b.text.strip() == "Confirm"], 15, "the confirmation dialog")
    browser.save_screenshot(str(tmp_path / "sidebar-confirm.png"))
    confirm[0].click()
    deadline = time.time() + 15
    while time.time() < deadline and mlops.get_model_version("churn@production").version != 2:
        time.sleep(0.3)
    assert mlops.get_model_version("churn@production").version == 2
    wait_for(browser, lambda d: "churn@production -> version 2" in d.find_element(By.ID, "mlops-models").text, 15,
             "the promotion message")
    browser.save_screenshot(str(tmp_path / "sidebar-models.png"))


def test_a_step_link_opens_the_executed_notebook(jupyter_lab, browser, home, tmp_path):
    from selenium.webdriver.common.by import By

    from mlops_nb import run_pipeline
    from tests.notebooks_util import write_notebook

    project = jupyter_lab["root"] / "churn"
    (project / "notebooks").mkdir(parents=True)
    write_notebook(project / "notebooks" / "score.ipynb", ["print('scored', n * 21)"], parameters="n = 1")
    (project / "pipeline.yaml").write_text("name: churn\nsteps:\n  - name: score\n    notebook: notebooks/score.ipynb\n"
                                           "    params: {n: 2}\n")
    assert run_pipeline(project / "pipeline.yaml").ok
    browser.get(f"{jupyter_lab['url']}/lab?token={jupyter_lab['token']}")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".lm-TabBar-tab[data-id='mlops-nb-sidebar']"),
             60, "the mlops-nb sidebar tab").click()
    wait_for(browser, lambda d: click_text(d, ".mlops-sidebar .lm-TabBar-tab", "Pipelines"), 30, "the Pipelines tab")
    link = wait_for(browser, lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, "#mlops-pipelines a.mlops-step")
                                        if a.text.strip() == "score: ran"], 30, "the step's link")
    link[0].click()
    frame = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".mlops-executed iframe"), 30,
                     "the executed notebook's tab")
    browser.switch_to.frame(frame)
    text = wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body").text, 30, "the executed notebook")
    assert "scored 42" in text and "n = 2" in text  # its output, and the params papermill injected
    browser.switch_to.default_content()
    browser.save_screenshot(str(tmp_path / "executed-notebook.png"))
