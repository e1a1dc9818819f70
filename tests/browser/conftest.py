"""A real JupyterLab server and a real headless Chromium for browser tests.

Locally the tests skip when Chromium or its driver is missing (with the command that
installs them); under CI=true they must run, so a missing browser is a failure.
"""

import json
import os
import shutil

import pytest

from tests.jupyter_util import running_server

INSTALL_HINT = "install them with: apt-get install -y chromium chromium-driver (and pip install selenium)"


def _require_browser():
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        message = f"browser tests need {', '.join(missing)}: {INSTALL_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must install them: see .ci/run)")
        pytest.skip(message)


@pytest.fixture
def jupyter_lab(tmp_path, home, request):
    """A JupyterLab server on 127.0.0.1 serving tmp_path/root, with its own config dirs; its registry is the
    test's ``home`` ($MLOPS_NB_HOME), or, under ``@pytest.mark.user_env``, found as a user's would be."""
    _require_browser()
    root = tmp_path / "root"
    root.mkdir()
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    # The news pop-up would cover part of the page; these tests do not want it.
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"), MLOPS_NB_HOME=str(home))
    if request.node.get_closest_marker("user_env"):
        del env["MLOPS_NB_HOME"]
    token = "mlops-nb-test-token"
    with running_server("jupyterlab", root, token, tmp_path / "jupyter.log", env) as base:
        yield {"url": base, "token": token, "root": root}


@pytest.fixture
def browser(tmp_path, request):
    """Headless Chromium driven by Selenium; a screenshot lands in tmp_path on failure."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                 "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    yield driver
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        path = tmp_path / "failure.png"
        driver.save_screenshot(str(path))
        print(f"screenshot of the failure: {path}")
    driver.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
