"""The prediction log's writer: add() keeps what it is given, flush() makes the rows of many adds at once."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

from mlops_nb.registry.predictions import PredictionLog, log_files, read_predictions


def test_probabilities_are_asked_for_once_per_flush_and_match_the_models(home):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    model = LogisticRegression().fit(X, X["a"] > 0)
    calls = []

    def predict_proba(features):
        calls.append(len(features))
        return model.predict_proba(features)

    log = PredictionLog(home, "churn")
    for start, stop in ((0, 1), (1, 3), (3, 8)):  # three answers: 1, 2 and 5 rows
        rows = X.iloc[start:stop]
        log.add(ids=[f"p{i}" for i in range(start, stop)], version=1, features=rows, predictions=model.predict(rows),
                predict_proba=predict_proba, latency_ms=1.0)
    assert log.flush() == 8 and calls == [8]
    logged = read_predictions(home, "churn")
    assert np.allclose(np.stack(logged["proba"].to_list()), model.predict_proba(X.iloc[:8]))
    assert logged["prediction"].tolist() == model.predict(X.iloc[:8]).tolist()


def test_each_prediction_keeps_its_own_json_whether_an_array_or_a_list_came(home):
    log = PredictionLog(home, "churn")
    features = pd.DataFrame({"x": [1, 2, 3]})
    log.add(ids=["a", "b", "c"], version=1, features=features, predictions=np.array([0, 1, 0]), latency_ms=1.0)
    log.add(ids=["d", "e", "f"], version=1, features=features, predictions=[1, 1.0, True], latency_ms=1.0)
    log.add(ids=["g", "h", "i"], version=1, features=features, predictions=[[1, 2], None, "yes"], latency_ms=1.0)
    log.flush()
    (path,) = log_files(home, "churn")
    assert pq.read_table(path)["prediction"].to_pylist() == ["0", "1", "0", "1", "1.0", "true", "[1, 2]", "null",
                                                            '"yes"']


def test_versions_with_other_features_flush_into_one_file(home):
    log = PredictionLog(home, "churn")
    log.add(ids=["a"], version=1, features=pd.DataFrame({"age": [41], "plan": ["pro"]}), predictions=[0],
            latency_ms=1.0)
    log.add(ids=["b"], version=2, features=pd.DataFrame({"age": [35.5], "calls": [3]}), predictions=[1],
            latency_ms=2.0)
    log.flush()
    assert len(log_files(home, "churn")) == 1
    logged = read_predictions(home, "churn").set_index("id")
    assert logged.loc["a", "feature.plan"] == "pro" and logged.loc["b", "feature.calls"] == 3
    assert logged["feature.age"].tolist() == [41.0, 35.5] and logged["version"].tolist() == [1, 2]


def test_a_model_whose_probabilities_fail_still_has_its_predictions_logged(home, caplog):
    def broken(features):
        raise ValueError("no probabilities today")

    log = PredictionLog(home, "churn")
    log.add(ids=["a", "b"], version=1, features=pd.DataFrame({"x": [1, 2]}), predictions=np.array([0, 1]),
            predict_proba=broken, latency_ms=1.0)
    assert log.flush() == 2
    logged = read_predictions(home, "churn")
    assert logged["prediction"].tolist() == [0, 1] and logged["proba"].isna().all()
    assert "no probabilities logged for churn/1: no probabilities today" in caplog.text


def test_a_services_log_is_written_by_a_child_with_its_own_copy_of_the_model(home):
    import mlops_nb as mlops
    from mlops_nb.serving.logwriter import ChildProcessLog

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    model = LogisticRegression().fit(X, X["a"] + X["b"] > 0)
    with mlops.start_run() as run:
        mlops.log_model(model, "model", X=X)
    version = mlops.register_model(run, "churn").version
    log = ChildProcessLog(home, "churn")
    before = __import__("time").time()
    log.add(ids=["a1", "a2"], version=version, features=X.iloc[:2], predictions=model.predict(X.iloc[:2]),
            predict_proba=model.predict_proba, latency_ms=1.5)  # decimals: sent as one array
    mixed = pd.DataFrame({"a": [0.5], "b": [-0.5], "note": ["text"]})  # sent as the frame it is
    log.add(ids=["b1"], version=version, features=mixed, predictions=[True], latency_ms=2.5)
    log.flush()  # on disk when it returns
    logged = read_predictions(home, "churn").set_index("id")
    assert list(logged.index) == ["a1", "a2", "b1"] and (logged["time"] >= before).all()
    assert np.allclose(np.stack(logged.loc[["a1", "a2"], "proba"].to_list()), model.predict_proba(X.iloc[:2]))
    assert logged.loc["a2", "feature.b"] == X["b"].iloc[1] and logged.loc["b1", "feature.note"] == "text"
    assert logged["latency_ms"].tolist() == [1.5, 1.5, 2.5] and pd.isna(logged.loc["b1", "proba"])

    # The server gone without a word (its end of the pipe closed, as a SIGKILL closes it): what it had sent
    # is written all the same, and the child exits.
    log.add(ids=["c1"], version=version, features=X.iloc[2:3], predictions=model.predict(X.iloc[2:3]),
            latency_ms=1.0)
    log.flush_if_due()
    log._conn.close()
    log._child.join(30)
    assert log._child.exitcode == 0
    assert read_predictions(home, "churn")["id"].tolist() == ["a1", "a2", "b1", "c1"]
