"""In real JupyterLab: load the extension, track a run, and see it in the runs widget."""

import time

import pytest

import mlops_nb as mlops
from tests.notebooks_util import write_notebook

pytestmark = pytest.mark.slow

CELLS = [
    "%load_ext mlops_nb",
    "%%track browser-run\nimport mlops_nb as mlops\nmlops.log_metric('accuracy', 0.8765)",
    "%mlops runs ls",
]


def click_menu(driver, *labels):
    from selenium.webdriver.common.by import By

    for i, label in enumerate(labels):
        css = "lm-MenuBar-itemLabel" if i == 0 else "lm-Menu-itemLabel"
        driver.find_element(By.XPATH, f"//div[contains(@class, '{css}') and text()='{label}']").click()


def accept_kernel_dialog(driver):
    """JupyterLab may ask which kernel to start; take the one it proposes."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + 5
    while time.time() < deadline:
        buttons = driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept")
        if buttons:
            buttons[0].click()
            return
        time.sleep(0.25)


def wait_for(driver, condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            result = condition(driver)
            if result:
                return result
        except Exception:  # the page is still being built
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kernel_idle(driver) -> bool:
    """The open notebook's kernel is idle: its toolbar's execution indicator says so (JupyterLab 4.6 no
    longer puts the kernel's state in the status bar at every width; older ones did, and have both)."""
    from selenium.webdriver.common.by import By

    indicators = driver.find_elements(
        By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status]")
    if indicators:
        return all(i.get_attribute("data-status") == "idle" for i in indicators)
    return "Idle" in driver.find_element(By.ID, "jp-main-statusbar").text


def test_tracked_run_shows_in_the_runs_widget(jupyter_lab, browser, tmp_path):
    from selenium.webdriver.common.by import By

    write_notebook(jupyter_lab["root"] / "experiment.ipynb", CELLS, parameters="lr = 0.1")
    browser.get(f"{jupyter_lab['url']}/lab/tree/experiment.ipynb?token={jupyter_lab['token']}")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell"), 60,
             "the notebook to open")
    accept_kernel_dialog(browser)
    wait_for(browser, kernel_idle, 60, "the kernel to be idle")
    click_menu(browser, "Run", "Run All Cells")
    widget = wait_for(browser, lambda d: [w for w in d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea .widget-html-content")
                                           if "browser-run" in w.text], 90, "the runs widget to show the run")
    text = widget[0].text
    assert "browser-run" in text and "0.8765" in text
    assert browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea .widget-text input")  # the filter box is live
    browser.save_screenshot(str(tmp_path / "runs-widget.png"))
    run = mlops.get_run("browser-run")
    assert run.metrics == {"accuracy": 0.8765}
    assert run.params == {"lr": 0.1}  # read from the cell tagged `parameters`: the kernel knew its notebook
