"""The tabular-features template, scaffolded and run headless: a level-1 pipeline on a feature view.

Its whole path: the first batch materialized into the view, a model trained on a point-in-time frame and
promoted; a shifted batch retrains, gates and promotes; the drift trigger compares the view's newest write
with what production was trained on; the served model answers requests that name only the customer.
"""

import pandas as pd
import pytest

import mlops_nb as mlops
from mlops_nb.project.scaffold import init_project, write_batch
from mlops_nb.registry import datasets, gates
from mlops_nb.registry import features as feature_store
from mlops_nb.triggers.check import check_pipeline
from tests.serving.test_serve import post
from tests.serving.test_serve_features import serve
from tests.waiting import age

pytest.importorskip("duckdb", reason="feature tables need DuckDB: pip install -e '.[features]'")
pytestmark = pytest.mark.slow


def test_the_feature_store_template_retrains_on_new_values_and_serves_by_customer(tmp_path, home, monkeypatch):
    project = tmp_path / "churn"
    init_project(project, "tabular-features")
    monkeypatch.chdir(project)
    first = mlops.run_pipeline()
    assert first.ok, [s.failure.describe() for s in first.steps.values() if s.failure]
    store = mlops.tracking.get_store()
    assert [w["n_rows"] for w in feature_store.versions(store, "customer_stats")] == [3000]
    production = mlops.get_model_version("churn@production")
    assert production.version == 1
    read = {(d["name"], d["role"]) for d in datasets.run_datasets(store, production.run_id)}
    assert {("features/customer_stats", "input"), ("training_frame", "train"), ("test_frame", "test")} <= read

    age(*(project / "data" / "incoming").glob("*.csv"))
    baseline = check_pipeline()
    assert not baseline.fired and not baseline.errors, baseline.errors
    later = pd.Timestamp.now() + pd.Timedelta(days=1)
    age(write_batch(project / "data" / "incoming" / "batch-002.csv", n_rows=3000, seed=2, shift=1.0, keyed=True,
                    at=later))
    result = check_pipeline()
    assert [f.trigger.key for f in result.fired] == ["new_data#1"] and result.runs[0].ok, [
        s.failure.describe() for s in result.runs[0].steps.values() if s.failure]
    assert [w["n_rows"] for w in feature_store.versions(store, "customer_stats")] == [3000, 3000]
    assert result.runs[0].steps["train"].status == "ran"
    decision = gates.latest_decision(store, "churn", 2)
    assert decision["baseline_version"] == 1 and decision["passed"], decision["results"]
    assert mlops.get_model_version("churn@production").version == 2
    # churn/2 learnt from the newest labels, all of the shifted batch: its newest write is no drift from it
    after = check_pipeline()
    assert not after.fired and after.notes["drift#2"].startswith("last share drifted 0%"), after.notes

    base, proc = serve(home, project, "--features", "customer_stats")
    try:
        batch = pd.read_csv(project / "data" / "incoming" / "batch-002.csv").head(5)
        status, by_key = post(base, "/predict", [{"customer_id": int(c)} for c in batch["customer_id"]])
        assert status == 200, by_key
        model = mlops.load_model("churn@production")
        rows = batch.drop(columns=["customer_id", "event_time", "churned"])
        assert by_key["predictions"] == model.predict(rows).tolist() and by_key["model"]["version"] == 2
        status, stored = post(base, "/feedback", {"ids": by_key["ids"], "labels": batch["churned"].tolist()})
        assert status == 200 and stored["stored"] == 5, stored
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # The labels that came back join the next training, as entity rows at the time of each prediction.
    served = mlops.labelled_predictions("churn", target="churned")
    assert served["customer_id"].tolist() == batch["customer_id"].tolist()
    assert {"predicted_at", "monthly_charges", "churned"} <= set(served.columns)
    # (every label: the batch of tomorrow's times would push today's predictions out of the newest 2500)
    again = mlops.run_pipeline(params=["newest_rows=0"])
    assert again.ok and again.steps["train"].status == "ran"   # new labels: retrained
    labels = pd.read_csv(project / "data" / "labels.csv", parse_dates=["event_time"])
    joined = labels.merge(served.rename(columns={"predicted_at": "event_time"})[["customer_id", "event_time"]])
    assert len(labels) == 6005 and joined["customer_id"].tolist() == batch["customer_id"].tolist()
