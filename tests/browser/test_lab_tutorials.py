"""The tutorials as a reader meets them: opened in real JupyterLab, run with Run All Cells, in order.

Screenshots of each executed tutorial land in the test's tmp dir (and in $MLOPS_NB_SCREENSHOTS
when it is set), so a person can look at what a newcomer sees.
"""

import os
import shutil
from pathlib import Path

import nbformat
import pytest

from tests.browser.test_lab_magics import accept_kernel_dialog, click_menu, kernel_idle, wait_for
from tests.browser.test_lab_sidebar import widen_left_sidebar

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TUTORIALS = ("01-experiment.ipynb", "02-pipeline.ipynb", "03-continuous-training.ipynb", "04-feature-tables.ipynb")


def all_cells_ran(driver):
    """Every code cell shows an execution count and none is still queued ([*])."""
    from selenium.webdriver.common.by import By

    prompts = [p.get_attribute("textContent").strip()
               for p in driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt")]
    return prompts and all(p.startswith("[") and p[1:-2].isdigit() for p in prompts) and kernel_idle(driver)


def save_notebook(driver):
    click_menu(driver, "File", "Save Notebook")


SCROLLER = "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')"


def screenshots(driver, prefix, limit=12):
    """Page through the open notebook from the top, one screenshot per screenful."""
    import time

    height = driver.execute_script(f"return {SCROLLER}.scrollHeight")
    step = driver.execute_script(f"return {SCROLLER}.clientHeight") * 0.9
    for i in range(limit):
        driver.execute_script(f"{SCROLLER}.scrollTop = {int(i * step)}")
        time.sleep(0.5)  # let the windowed notebook render the cells scrolled into view
        driver.save_screenshot(f"{prefix}-{i + 1}.png")
        if (i + 1) * step >= height:
            break


def run_all_in_lab(browser, lab, name, shots):
    """Open ``name`` (relative to the server's root) in JupyterLab, Run All Cells, save; the executed notebook."""
    browser.set_window_size(1400, 1000)
    browser.get(f"{lab['url']}/lab/tree/{name}?token={lab['token']}")
    wait_for(browser, lambda d: d.find_elements("css selector", ".jp-NotebookPanel .jp-CodeCell"), 60, f"{name} to open")
    accept_kernel_dialog(browser)
    wait_for(browser, kernel_idle, 60, "the kernel to be idle")
    click_menu(browser, "Run", "Run All Cells")
    wait_for(browser, lambda d: all_cells_ran(d), 240, f"every cell of {name} to run")
    save_notebook(browser)
    path = lab["root"] / name
    wait_for(browser, lambda d: any(c.get("execution_count") for c in nbformat.read(str(path), as_version=4).cells
                                    if c.cell_type == "code"), 20, f"{name} to be saved")
    screenshots(browser, shots / Path(name).stem)
    executed = nbformat.read(str(path), as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code"), name
    click_menu(browser, "Kernel", "Shut Down Kernel")
    return executed


def sidebar_shows_the_tutorial_runs(browser, shots):
    """What tutorial 1 promises: the sidebar shows its runs, from its registry, without being told where."""
    from selenium.webdriver.common.by import By

    browser.execute_script(f"{SCROLLER}.scrollTop = 1900")  # the tracked cells, next to the sidebar
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".lm-TabBar-tab[data-id='mlops-nb-sidebar']"),
             30, "the mlops-nb sidebar tab").click()
    widen_left_sidebar(browser, 220)
    wait_for(browser, lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, "#mlops-runs .mlops-table")
                                  if "forest" in t.text and "logreg-C0.1" in t.text], 30,
             "the sidebar's runs table to show the tutorial's runs")
    assert browser.find_element(By.CSS_SELECTOR, ".mlops-registry select").get_attribute("value") == "tutorial-work"
    browser.save_screenshot(str(shots / "01-experiment-sidebar.png"))
    browser.find_element(By.CSS_SELECTOR, ".lm-TabBar-tab[data-id='mlops-nb-sidebar']").click()  # fold it again


def screenshot_dir(tmp_path):
    shots = Path(os.environ.get("MLOPS_NB_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@pytest.mark.user_env
def test_tutorials_run_in_jupyterlab(jupyter_lab, browser, tmp_path):
    shots = screenshot_dir(tmp_path)
    for name in TUTORIALS:
        shutil.copy(NOTEBOOKS / name, jupyter_lab["root"] / name)
    for name in TUTORIALS:
        run_all_in_lab(browser, jupyter_lab, name, shots)
        if name.startswith("01"):
            sidebar_shows_the_tutorial_runs(browser, shots)
    events = (jupyter_lab["root"] / "03-continuous-training.ipynb").read_text()
    assert "drift#2" in events and "new_data#1" in events  # the trigger history the reader is shown
