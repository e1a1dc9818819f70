"""The Features tab in real JupyterLab: the feature views, a view's schema, its writes with their drift from the
values the production model was trained on, and the models trained on it."""

import json
import textwrap
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlops_nb as mlops
from tests.browser.test_lab_magics import wait_for
from tests.browser.test_lab_sidebar import click_text, widen_left_sidebar

pytest.importorskip("duckdb", reason="feature tables need DuckDB: pip install -e '.[features]'")
pytestmark = pytest.mark.slow


@pytest.fixture
def written(home):
    """customer_stats declared beside the registry, written twice (the second drifted), a model in production."""
    (home.parent / "features.yaml").write_text(textwrap.dedent("""\
        customer_stats:
          entity: customer_id
          timestamp: event_time
          description: what billing knows of each customer
          features:
            charges: {dtype: float, description: the monthly bill}
            calls: {dtype: int, description: support calls this month}
        """))
    rng = np.random.default_rng(0)

    def customers(day, shift=0.0):
        return pd.DataFrame({"customer_id": np.arange(200), "event_time": pd.Timestamp("2026-01-01") + pd.Timedelta(days=day),
                             "charges": rng.normal(50 + 40 * shift, 15, 200), "calls": rng.poisson(1 + 4 * shift, 200)})

    mlops.write_features("customer_stats", customers(0))
    labels = pd.DataFrame({"customer_id": np.arange(200), "event_time": pd.Timestamp("2026-01-05"),
                           "churned": rng.integers(0, 2, 200)})
    with mlops.start_run(name="train") as run:
        frame = mlops.training_frame(labels, ["customer_stats:*"])
        X = frame[["charges", "calls"]]
        mlops.log_model(LogisticRegression().fit(X, frame["churned"]), "model", X=X)
    mlops.promote("churn", mlops.register_model(run, "churn").version, override="the first model")
    mlops.write_features("customer_stats", customers(20, shift=1.0))


def test_the_features_tab_shows_the_views_writes_drift_and_models(written, jupyter_lab, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(f"{jupyter_lab['url']}/lab?token={jupyter_lab['token']}")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".lm-TabBar-tab[data-id='mlops-nb-sidebar']"),
             60, "the mlops-nb sidebar tab").click()
    widen_left_sidebar(browser, 200)
    assert wait_for(browser, lambda d: click_text(d, ".mlops-sidebar .lm-TabBar-tab", "Features"), 30,
                    "the Features tab")
    tab = wait_for(browser, lambda d: [t for t in d.find_elements(By.ID, "mlops-features") if "Writes" in t.text],
                   30, "the view's writes")[0]
    text = tab.text
    assert "customer_stats" in text and "customer_id" in text and "churn/1" in text
    assert "the monthly bill" in text and "support calls this month" in text
    assert "models trained on it: churn/1 (production)" in text
    rows = [r.text for r in tab.find_elements(By.CSS_SELECTOR, ".mlops-table tr")]
    newest = next(r for r in rows if r.startswith("2 "))
    assert "100% (charges, calls)" in newest, rows
    assert next(r for r in rows if r.startswith("1 ")).endswith("0%"), rows
    browser.find_element(By.ID, "mlops-nb-sidebar").screenshot(str(tmp_path / "features-tab.png"))

    # The API behind it: an unknown view is a 404 with a one-line message.
    request = urllib.request.Request(f"{jupyter_lab['url']}/mlops-nb/api/features/customer_stat",
                                     headers={"Authorization": f"token {jupyter_lab['token']}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 404
    assert "did you mean 'customer_stats'?" in json.loads(refused.value.read())["error"]
