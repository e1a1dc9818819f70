"""mlops-nb serve --features: rows that name an entity get the model's features from the online table.

The whole path: feature values written over time, a training frame joined as of each label's time, a model
trained on it, promoted, and served with only entity keys (and a feature known at request time) in each row.
"""

import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlops_nb as mlops
from tests.jupyter_util import free_port
from tests.serving.test_serve import post
from tests.waiting import wait_for

pytest.importorskip("duckdb", reason="feature tables need DuckDB: pip install -e '.[features]'")
pytestmark = pytest.mark.slow

FEATURES = """
customer_stats:
  entity: customer_id
  timestamp: event_time
  features:
    monthly_charges: float
    support_calls: int
"""
START = pd.Timestamp("2026-01-01")


@pytest.fixture
def trained(home, tmp_path):
    """Two versions of customer_stats, a model trained on a point-in-time frame of them, in production."""
    (tmp_path / "features.yaml").write_text(textwrap.dedent(FEATURES))
    rng = np.random.default_rng(0)
    history = pd.DataFrame({"customer_id": np.repeat(np.arange(30), 4),
                            "event_time": START + pd.to_timedelta(np.tile([0, 20, 40, 60], 30), unit="D"),
                            "monthly_charges": rng.uniform(10, 120, 120).round(2),
                            "support_calls": rng.integers(0, 9, 120)})
    with mlops.start_run(name="features"):
        mlops.write_features("customer_stats", history[history.event_time < START + pd.Timedelta(days=30)])
        mlops.write_features("customer_stats", history[history.event_time >= START + pd.Timedelta(days=30)])
    labels = pd.DataFrame({"customer_id": rng.integers(0, 30, 400),
                           "event_time": START + pd.to_timedelta(rng.integers(1, 80, 400), unit="D"),
                           "tenure": rng.integers(1, 60, 400)})
    with mlops.start_run(name="train") as run:
        frame = mlops.training_frame(labels, ["customer_stats:*"])
        X = frame[["monthly_charges", "support_calls", "tenure"]]
        y = (X["monthly_charges"] / 30 + X["support_calls"] - X["tenure"] / 20 > 3).astype(int)
        model = LogisticRegression(max_iter=1000).fit(X, y)
        mlops.log_model(model, "model", X=X)
    version = mlops.register_model(run, "churn")
    mlops.set_alias("churn", version.version, "production")
    return model, history


def serve(home, tmp_path, *extra):
    """`mlops-nb serve churn EXTRA...` run in ``tmp_path`` (where features.yaml is): (its URL, its process)."""
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "--home", str(home), "serve", "churn",
                             "--port", str(port), *extra], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    log.close()
    base = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "serve.log").read_text())
        try:
            import urllib.request

            urllib.request.urlopen(f"{base}/ping", timeout=2)
            return True
        except OSError:
            return False

    wait_for(up, "the server to answer /ping", timeout=60)
    return base, proc


def test_rows_with_only_entity_keys_get_the_same_predictions_as_full_rows(trained, home, tmp_path):
    model, history = trained
    base, proc = serve(home, tmp_path, "--features", "customer_stats")
    try:
        customers = [3, 17, 29, 3]
        keys_only = [{"customer_id": c, "tenure": 10 + i} for i, c in enumerate(customers)]
        status, by_key = post(base, "/predict", keys_only)
        assert status == 200, by_key
        full = mlops.online_features(keys_only, ["customer_stats:monthly_charges", "customer_stats:support_calls"])
        latest = history.sort_values("event_time").groupby("customer_id").last()
        assert full["monthly_charges"].tolist() == latest.loc[customers, "monthly_charges"].tolist()
        rows = full[["monthly_charges", "support_calls", "tenure"]]
        status, by_row = post(base, "/invocations", {"dataframe_records": rows.to_dict(orient="records")})
        assert status == 200, by_row
        assert by_key["predictions"] == by_row["predictions"] == model.predict(rows).tolist()
        # A value the client sends wins over the stored one.
        status, sent = post(base, "/predict", [{"customer_id": 3, "tenure": 10, "monthly_charges": 500.0}])
        expected = model.predict(pd.DataFrame({"monthly_charges": [500.0], "support_calls": [rows.support_calls[0]],
                                               "tenure": [10]}))
        assert status == 200 and sent["predictions"] == expected.tolist()

        def logged():
            try:
                found = mlops.predictions("churn")
            except mlops.MlopsError:
                return None
            return [found] if len(found) >= 9 else None

        [found] = wait_for(logged, "the predictions to be logged", timeout=15)
        by_id = found.set_index("id")
        used = by_id.loc[by_key["ids"]]
        assert used["feature.monthly_charges"].tolist() == rows["monthly_charges"].tolist()
        assert used["feature.support_calls"].tolist() == rows["support_calls"].tolist()
        assert "feature.customer_id" not in found.columns  # the key looked the row up; the model never saw it
        assert used["entity.customer_id"].tolist() == customers       # and the log keeps it beside the features
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_row_without_its_key_or_with_an_unknown_entity_is_refused_by_name(trained, home, tmp_path):
    base, proc = serve(home, tmp_path, "--features", "customer_stats")
    try:
        status, answer = post(base, "/predict", [{"tenure": 3}])
        assert status == 400 and "needs 'customer_id', the key of feature view 'customer_stats' (or the features monthly_charges, support_calls)" in answer["error"], answer
        status, answer = post(base, "/predict", [{"customer_id": 3, "tenure": 3}, {"customer_id": 99, "tenure": 3}])
        assert status == 422 and "holds no values for 1 entity (99)" in answer["error"], answer
        assert answer["fields"] == [{"field": "customer_id", "problem": "no online features for 99"}]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_unknown_view_or_one_the_model_does_not_use_stops_serve_in_one_line(trained, home, tmp_path):
    run = lambda *args: subprocess.run([sys.executable, "-m", "mlops_nb.cli", "--home", str(home), "serve", "churn",
                                        "--port", str(free_port()), *args], cwd=tmp_path, capture_output=True,
                                       text=True, timeout=60)
    unknown = run("--features", "customer_stat")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    assert "no feature view 'customer_stat' in features.yaml (did you mean 'customer_stats'?)" in unknown.stderr
    (tmp_path / "features.yaml").write_text(textwrap.dedent(FEATURES) + textwrap.dedent("""
        regions:
          entity: region
          timestamp: at
          features: {population: int}
        """))
    unused = run("--features", "regions")
    assert unused.returncode != 0 and "Traceback" not in unused.stderr
    assert "takes none of the features of regions" in unused.stderr, unused.stderr
