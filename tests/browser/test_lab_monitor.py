"""The Monitor tab in real JupyterLab: a served model's log as charts, with the moment the alias moved."""

import pandas as pd
import pytest

import mlops_nb as mlops
from tests.browser.test_lab_magics import wait_for
from tests.browser.test_lab_sidebar import click_text, widen_left_sidebar
from tests.monitoring.test_monitor import customers, serve, train_version

pytestmark = pytest.mark.slow


@pytest.fixture
def served(home, tmp_path):
    first, model = train_version(tmp_path, customers(800, 0))
    traffic = pd.concat([customers(1000, 1), customers(1000, 2, shift=60)], ignore_index=True)
    ids = serve(home, model, first.version, traffic)
    mlops.log_feedback("churn", ids[:1500], traffic["churned"][:1500].tolist())
    second, model = train_version(tmp_path, customers(800, 3))  # promoted: the alias moves
    serve(home, model, second.version, customers(500, 4))
    return second


def test_the_monitor_tab_draws_the_windows_and_where_the_alias_moved(served, jupyter_lab, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{jupyter_lab['url']}/lab?token={jupyter_lab['token']}")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".lm-TabBar-tab[data-id='mlops-nb-sidebar']"),
             60, "the mlops-nb sidebar tab").click()
    widen_left_sidebar(browser, 120)
    assert wait_for(browser, lambda d: click_text(d, ".mlops-sidebar .lm-TabBar-tab", "Monitor"), 30, "the Monitor tab")
    wait_for(browser, lambda d: "churn@production: version 2 serving" in d.find_element(By.ID, "mlops-monitor").text,
             30, "the monitoring summary")
    window = browser.find_element(By.CSS_SELECTOR, "#mlops-monitor .mlops-window")
    window.clear()
    window.send_keys("500", Keys.ENTER)
    wait_for(browser, lambda d: "windows of 500 predictions" in d.find_element(By.ID, "mlops-monitor").text, 30,
             "the windows of 500 predictions")
    text = browser.find_element(By.ID, "mlops-monitor").text
    assert "2500 predictions, 1500 labelled (60%)" in text and "alias: production -> churn/2" in text
    lines = browser.find_elements(By.CSS_SELECTOR, "#mlops-monitor .mlops-chart-svg polyline")
    assert len(lines) == 6  # traffic; p50 and p99; drift; accuracy and coverage
    assert all(len(line.get_attribute("points").split()) == 5 for line in lines[:4])  # five windows each
    assert browser.find_elements(By.CSS_SELECTOR, "#mlops-monitor .mlops-marker-alias")
    browser.save_screenshot(str(tmp_path / "sidebar-monitor.png"))
    browser.find_element(By.ID, "mlops-nb-sidebar").screenshot(str(tmp_path / "monitor-tab.png"))  # the README's


def test_the_monitor_tab_says_how_to_get_predictions(home, tmp_path, jupyter_lab, browser):
    from selenium.webdriver.common.by import By

    train_version(tmp_path, customers(300, 0))
    browser.get(f"{jupyter_lab['url']}/lab?token={jupyter_lab['token']}")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".lm-TabBar-tab[data-id='mlops-nb-sidebar']"),
             60, "the mlops-nb sidebar tab").click()
    assert wait_for(browser, lambda d: click_text(d, ".mlops-sidebar .lm-TabBar-tab", "Monitor"), 30, "the Monitor tab")
    wait_for(browser, lambda d: "serve it with `mlops-nb serve churn`" in d.find_element(By.ID, "mlops-monitor").text,
             30, "the hint to serve the model")
