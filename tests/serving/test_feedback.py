"""Feedback: late labels joined to the prediction log, as the monitor and the triggers will read them."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

import mlops_nb as mlops
from mlops_nb.errors import InvalidInputError
from mlops_nb.registry.predictions import PredictionLog


def test_labels_for_half_the_predictions_give_sklearns_metric_and_half_coverage(home):
    rng = np.random.default_rng(0)
    log = PredictionLog(home, "churn")
    features = pd.DataFrame({"age": rng.integers(18, 80, 2000), "calls": rng.integers(0, 8, 2000)})
    predicted = rng.integers(0, 2, 2000).tolist()
    ids = [f"p{i:04d}" for i in range(2000)]
    for start in range(0, 2000, 500):  # four requests of 500 rows, four files
        log.add(ids=ids[start:start + 500], version=1, features=features.iloc[start:start + 500],
                predictions=predicted[start:start + 500], probabilities=None, latency_ms=1.0)
        log.flush()
    labelled = rng.choice(2000, 1000, replace=False)
    truth = rng.integers(0, 2, 1000).tolist()
    assert mlops.log_feedback("churn", [ids[i] for i in labelled], truth) == {"stored": 1000, "unknown": []}
    frame = mlops.predictions("churn")
    assert len(frame) == 2000 and frame["label"].notna().mean() == 0.5  # label coverage
    known = frame[frame["label"].notna()]
    expected = accuracy_score([truth[list(labelled).index(int(i[1:]))] for i in known["id"]],
                              [predicted[int(i[1:])] for i in known["id"]])
    assert accuracy_score(known["label"].astype(int), known["prediction"].astype(int)) == expected


def test_a_later_label_counts_and_unknown_ids_are_reported(home):
    log = PredictionLog(home, "churn")
    log.add(ids=["a", "b"], version=1, features=pd.DataFrame({"x": [1, 2]}), predictions=[0, 1], probabilities=None,
            latency_ms=1.0)
    log.flush()
    assert mlops.log_feedback("churn", ["a", "zzz"], [1, 0]) == {"stored": 1, "unknown": ["zzz"]}
    mlops.log_feedback("churn", ["a"], [0])  # a correction, hours later
    frame = mlops.predictions("churn").set_index("id")
    assert frame.loc["a", "label"] == 0 and frame.loc["b", "label"] is None
    with pytest.raises(InvalidInputError, match="of the same length"):
        mlops.log_feedback("churn", ["a", "b"], [1])
