"""The monitor: a served model's log, window by window, against the data the serving version was trained on."""

import time
import uuid

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import mlops_nb as mlops
from mlops_nb.errors import InvalidInputError
from mlops_nb.monitoring.windows import parse_window
from mlops_nb.pipeline.record import record_files
from mlops_nb.registry import artifacts
from mlops_nb.registry.predictions import PredictionLog
from mlops_nb.tracking import get_store


def customers(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.integers(18, 80, n), "charges": rng.normal(50 + shift, 20, n),
                          "calls": rng.integers(0, 8, n), "plan": rng.choice(["basic", "pro"], n)})
    frame["churned"] = ((frame["charges"] / 20 + frame["calls"] - frame["age"] / 30
                         + rng.normal(0, 1, n)) > 2).astype(int)
    return frame


def train_version(tmp_path, data: pd.DataFrame):
    """A version trained as a pipeline step trains one: its run read data/train.csv, which the registry keeps
    (an earlier step wrote it as an output)."""
    path = tmp_path / "data" / "train.csv"
    path.parent.mkdir(exist_ok=True)
    data.to_csv(path, index=False)
    X, y = data.drop(columns=["churned"]), data["churned"]
    model = make_pipeline(ColumnTransformer([("plan", OneHotEncoder(), ["plan"])], remainder="passthrough"),
                          LogisticRegression(max_iter=1000)).fit(X, y)
    with mlops.start_run() as run:
        artifacts.put_file(get_store().artifacts_dir, path)
        record_files(get_store(), run.id, tmp_path, [path], "input")
        mlops.log_model(model, "model", X=X)
    version = mlops.register_model(run, "churn")
    mlops.set_alias("churn", version.version, "production")
    return version, model


def serve(home, model, version: int, rows: pd.DataFrame, *, batch: int = 100) -> list[str]:
    """What `mlops-nb serve` writes for these rows: one request per ``batch`` rows, each flushed."""
    log = PredictionLog(home, "churn")
    ids = []
    for start in range(0, len(rows), batch):
        part = rows.iloc[start:start + batch].drop(columns=["churned"])
        answered = [uuid.uuid4().hex for _ in range(len(part))]
        log.add(ids=answered, version=version, features=part.reset_index(drop=True),
                predictions=model.predict(part).tolist(), probabilities=None, latency_ms=2.0 + start % 7)
        log.flush()
        ids += answered
    return ids


@pytest.fixture
def served(home, tmp_path):
    version, model = train_version(tmp_path, customers(800, 0))
    calm, shifted = customers(1000, 1), customers(1000, 2, shift=60)
    ids = serve(home, model, version.version, pd.concat([calm, shifted], ignore_index=True))
    return {"version": version, "model": model, "ids": ids, "traffic": pd.concat([calm, shifted], ignore_index=True)}


def test_windows_by_count_show_traffic_latency_and_the_drift_where_the_inputs_shifted(served):
    m = mlops.monitor("churn", window=500)
    w = m.windows
    assert list(w["n"]) == [500, 500, 500, 500] and m.total == 2000 and m.serving == served["version"].version
    assert (w["versions"] == str(served["version"].version)).all()
    assert w["p50_ms"].between(2, 9).all() and (w["p99_ms"] >= w["p50_ms"]).all()
    # The first 1,000 are like the training data, the last 1,000 have charges 60 higher.
    assert ["charges" in columns for columns in w["drifted"]] == [False, False, True, True]
    assert (w["drift_share"] > 0).iloc[2:].all()
    assert list(w["prediction_drifted"]) == [False, False, True, True]
    assert w["labelled"].sum() == 0 and m.metric == "accuracy" and w["metric"].isna().all()


def test_the_live_metric_is_sklearns_on_the_labelled_predictions_with_their_coverage(served):
    rng = np.random.default_rng(3)
    chosen = rng.choice(2000, 600, replace=False)
    truth = served["traffic"]["churned"].to_numpy()
    mlops.log_feedback("churn", [served["ids"][i] for i in chosen], [int(truth[i]) for i in chosen])
    m = mlops.monitor("churn", window=1000)
    predicted = served["model"].predict(served["traffic"].drop(columns=["churned"]))
    for k, row in m.windows.iterrows():
        mine = sorted(i for i in chosen if k * 1000 <= i < (k + 1) * 1000)
        assert row["labelled"] == len(mine) and row["coverage"] == len(mine) / 1000
        assert row["metric"] == pytest.approx(accuracy_score(truth[mine], predicted[mine]))
    assert m.labelled == 600


def test_labelled_predictions_are_training_rows_under_the_training_datas_names(served):
    truth = served["traffic"]["churned"]
    mlops.log_feedback("churn", served["ids"][:300], truth[:300].tolist())
    rows = mlops.labelled_predictions("churn")
    assert list(rows.columns) == ["age", "charges", "calls", "plan", "churned"]
    expected = served["traffic"].head(300).reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, expected, check_dtype=False)


def test_markers_say_where_the_alias_moved(served, tmp_path):
    second, _ = train_version(tmp_path, customers(800, 5))
    m = mlops.monitor("churn", window=1000)
    assert [mark["text"] for mark in m.markers if mark["kind"] == "alias"] == [f"production -> churn/{second.version}"]
    assert m.serving == second.version


def test_windows_by_time(home, tmp_path):
    version, model = train_version(tmp_path, customers(400, 0))
    serve(home, model, version.version, customers(200, 1), batch=200)  # one request: one time
    time.sleep(1.1)
    serve(home, model, version.version, customers(300, 2), batch=300)
    w = mlops.monitor("churn", window="1s").windows
    assert list(w["n"]) == [200, 300] and (w["end"] >= w["start"]).all()


@pytest.mark.parametrize("given, expected", [("1h", ("time", 3600)), ("30m", ("time", 1800)), ("1d", ("time", 86400)),
                                             (500, ("count", 500)), ("250", ("count", 250))])
def test_window_names(given, expected):
    assert parse_window(given) == expected


@pytest.mark.parametrize("bad", ["0", "1y", "soon", -5, "0h"])
def test_a_bad_window_says_what_a_window_is(bad):
    with pytest.raises(InvalidInputError, match="duration .* or a number of predictions"):
        parse_window(bad)
