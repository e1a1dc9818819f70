"""drift: {features: VIEW}: a write of a feature view that drifted from what production was trained on retrains.

The whole path on a real pipeline: features written, a model trained on a point-in-time frame of them and
gated into production; a drifted write fires the trigger, the run retrains on the new values, the gate
promotes the new version, and the next check is quiet (the reference is now what the new model saw).
"""

import textwrap

import numpy as np
import pandas as pd
import pytest

import mlops_nb as mlops
from mlops_nb.features.monitor import history
from mlops_nb.features.views import find_views
from mlops_nb.registry import datasets
from mlops_nb.registry.store import open_store
from mlops_nb.triggers.check import check_pipeline
from tests.notebooks_util import write_notebook

pytest.importorskip("duckdb", reason="feature tables need DuckDB: pip install -e '.[features]'")
pytestmark = pytest.mark.slow

FEATURES = """\
customer_stats:
  entity: customer_id
  timestamp: event_time
  features:
    charges: float
    calls: int
"""
PIPELINE = """\
name: churn
params: {model_name: churn}
steps:
  - name: train
    notebook: notebooks/train.ipynb
    inputs: [data/labels.csv, "features:customer_stats"]   # a new write reruns it
  - name: gate
    notebook: notebooks/gate.ipynb
    inputs: [train, data/labels.csv]
triggers:
  - drift: {features: customer_stats}
"""
SETUP = """\
import pandas as pd
import mlops_nb as mlops
mlops.chdir_project()
labels = pd.read_csv("data/labels.csv", parse_dates=["event_time"])
labels = labels[labels.event_time > labels.event_time.max() - pd.Timedelta(days=window_days)]"""
TRAIN = """\
from sklearn.linear_model import LogisticRegression
frame = mlops.training_frame(labels.iloc[::2], ["customer_stats:*"])
model = LogisticRegression(max_iter=1000).fit(frame[["charges", "calls"]], frame["churned"])
mlops.log_model(model, "model", X=frame[["charges", "calls"]])
version = mlops.register_model(mlops.active_run(), model_name)
mlops.output("model_version", version.version)"""
GATE = """\
version = mlops.input("model_version")
test = mlops.training_frame(labels.iloc[1::2], ["customer_stats:*"], name="evaluation")
try:
    mlops.get_model_version(f"{model_name}@production")
    baseline = "production"
except mlops.MlopsError:
    baseline = None
decision = mlops.gate(f"{model_name}/{version}", baseline, test[["charges", "calls", "churned"]],
                      {"accuracy": {"min": 0.7}}, target="churned", importance=False)
if decision.passed:
    mlops.promote(model_name, version)"""
START = pd.Timestamp("2026-01-01")


def customers(rng, day: int, shift: float = 0.0, n: int = 300) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": np.arange(n), "event_time": START + pd.Timedelta(days=day),
                         "charges": rng.normal(50 + 40 * shift, 15, n).round(2),
                         "calls": rng.poisson(1 + 4 * shift, n)})


def labels_for(features: pd.DataFrame, rng, after_days: int) -> pd.DataFrame:
    """A label per customer a few days after its values, by a rule of those values."""
    churned = ((features["charges"] / 25 + features["calls"] + rng.normal(0, 0.5, len(features))) > 4).astype(int)
    return pd.DataFrame({"customer_id": features["customer_id"],
                         "event_time": features["event_time"] + pd.Timedelta(days=after_days), "churned": churned})


@pytest.fixture
def project(tmp_path, home, monkeypatch):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "features.yaml").write_text(FEATURES)
    (root / "pipeline.yaml").write_text(PIPELINE)
    write_notebook(root / "notebooks" / "train.ipynb", [SETUP, TRAIN], parameters='model_name = "churn"\nwindow_days = 10')
    write_notebook(root / "notebooks" / "gate.ipynb", [SETUP, GATE], parameters='model_name = "churn"\nwindow_days = 10')
    monkeypatch.chdir(root)
    return root


def test_a_drifted_write_retrains_gates_and_promotes_a_model_trained_on_the_new_values(project, home):
    rng = np.random.default_rng(0)
    first = customers(rng, day=0)
    mlops.write_features("customer_stats", first)
    labels = labels_for(first, rng, after_days=5)
    labels.to_csv(project / "data" / "labels.csv", index=False)
    assert mlops.run_pipeline().ok
    assert mlops.get_model_version("churn@production").version == 1

    quiet = check_pipeline()                      # the write production was trained on: no drift
    assert not quiet.fired and not quiet.errors, quiet.errors
    mlops.write_features("customer_stats", customers(rng, day=10))   # new values, the same distribution
    assert not check_pipeline().fired

    drifted = customers(rng, day=20, shift=1.0)
    mlops.write_features("customer_stats", drifted)
    pd.concat([labels, labels_for(drifted, rng, after_days=3)]).to_csv(project / "data" / "labels.csv", index=False)
    result = check_pipeline()
    assert [f.trigger.key for f in result.fired] == ["drift#1"] and result.runs[0].ok
    evidence = result.fired[0].evidence
    assert evidence["versions"] == [3] and evidence["reference"] == "churn/1"
    assert set(evidence["drifted_columns"]) == {"charges", "calls"}
    assert "in write 3 against what churn/1 was trained on" in result.fired[0].reason
    assert result.runs[0].steps["train"].status == "ran"           # retrained, not cached
    production = mlops.get_model_version("churn@production")
    assert production.version == 2
    # churn/2 was trained on the drifted values: the frame it logged holds them
    read = {(d["name"], d["role"]) for d in datasets.run_datasets(open_store(home), production.run_id)}
    assert {("features/customer_stats", "input"), ("training_frame", "train")} <= read

    after = check_pipeline()                      # the same write against churn/2's training frame: re-armed
    assert not after.fired, after.fired and after.fired[0].reason
    views, _ = find_views(project)
    shown = history(open_store(home), views["customer_stats"])
    assert shown["reference"] == "churn/2" and [m["version"] for m in shown["models"]] == [2, 1]
    assert [w["version"] for w in shown["writes"]] == [1, 2, 3]
    assert shown["writes"][0]["drift_share"] == 1.0 and shown["writes"][2]["drift_share"] < 0.5


def test_a_step_reading_a_feature_view_reruns_after_a_write_and_is_cached_otherwise(project, home):
    rng = np.random.default_rng(1)
    first = customers(rng, day=0)
    mlops.write_features("customer_stats", first)
    labels_for(first, rng, after_days=5).to_csv(project / "data" / "labels.csv", index=False)
    assert mlops.run_pipeline().ok
    again = mlops.run_pipeline()
    assert again.steps["train"].status == "cached"
    mlops.write_features("customer_stats", customers(rng, day=1))     # labels unchanged: only the view changed
    after_write = mlops.run_pipeline()
    assert after_write.steps["train"].status == "ran" and after_write.ok


def test_an_input_naming_a_view_never_written_fails_the_step_in_one_line(project, home):
    (project / "pipeline.yaml").write_text(PIPELINE.replace("features:customer_stats", "features:customer_stat"))
    mlops.write_features("customer_stats", customers(np.random.default_rng(2), day=0))
    (project / "data" / "labels.csv").write_text("customer_id,event_time,churned\n")
    result = mlops.run_pipeline()
    assert not result.ok
    reason = result.steps["train"].failure.summary()
    assert reason.startswith("step 'train': input features:customer_stat: feature view 'customer_stat' has never been written "
                             "(did you mean 'customer_stats'?)"), reason
