"""Triggers on a served model's own traffic: the drift of what it is asked, the accuracy of what it answered."""

import re
import textwrap

import numpy as np
import pytest

import mlops_nb as mlops
from mlops_nb.pipeline.spec import SpecError, load_pipeline
from mlops_nb.triggers.check import check_pipeline
from tests.monitoring.test_monitor import customers, serve, train_version
from tests.notebooks_util import write_notebook


@pytest.fixture
def project(tmp_path, home, monkeypatch):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    write_notebook(root / "notebooks" / "noop.ipynb", ["x = 1"])
    monkeypatch.chdir(root)
    version, model = train_version(root, customers(800, 0))
    return {"root": root, "version": version.version, "model": model}


def write_pipeline(root, trigger: str):
    (root / "pipeline.yaml").write_text(textwrap.dedent("""\
        name: churn
        steps:
          - name: noop
            notebook: notebooks/noop.ipynb
        triggers:
        """) + f"  - {trigger}\n")


def label(ids, rows, correct: float, seed: int = 0):
    """Labels for the predictions ``ids`` of ``rows``: the true one for a share ``correct`` of them."""
    truth = rows["churned"].to_numpy().copy()
    flip = np.random.default_rng(seed).random(len(truth)) > correct
    truth[flip] = 1 - truth[flip]
    mlops.log_feedback("churn", list(ids), truth.tolist())


def test_drift_of_the_served_inputs_fires_once_then_waits_for_new_traffic(project, home):
    write_pipeline(project["root"], "drift: {predictions: churn, window: 1d, min_rows: 300}")
    assert "waiting for predictions of churn" in check_pipeline(run=False).notes["drift#1"]
    serve(home, project["model"], project["version"], customers(400, 1))
    calm = check_pipeline(run=False)
    assert not calm.fired and calm.notes["drift#1"].startswith("last share drifted")
    serve(home, project["model"], project["version"], customers(2000, 2, shift=80))
    result = check_pipeline(run=False)
    [firing] = result.fired
    assert "charges" in firing.evidence["drifted_columns"] and firing.evidence["model"] == "churn"
    assert "of the inputs of churn/1 drifted" in firing.reason and "2400 predictions" in firing.reason
    again = check_pipeline(run=False)                 # the same traffic does not fire twice
    assert not again.fired and "0 of 300 predictions of churn/1" in again.notes["drift#1"]


def test_live_accuracy_fires_below_the_rule_once_it_has_enough_labels(project, home):
    write_pipeline(project["root"], "performance: {model: churn, metric: accuracy, below: 0.8, min_labels: 200}")
    rows = customers(600, 3)
    ids = serve(home, project["model"], project["version"], rows)
    predicted = project["model"].predict(rows.drop(columns=["churned"]))
    label(ids[:150], rows.head(150), correct=0.5)
    waiting = check_pipeline(run=False)
    assert not waiting.fired and waiting.notes["performance#1"] == "150 of 200 labels for the predictions of churn/1"
    label(ids[150:400], rows.iloc[150:400], correct=0.5, seed=1)
    [firing] = check_pipeline(run=False).fired
    frame = mlops.predictions("churn")
    known = frame[frame["label"].notna()]
    expected = float((known["label"].astype(int).to_numpy() == known["prediction"].to_numpy()).mean())
    assert firing.evidence["value"] == pytest.approx(expected) and firing.evidence["labelled"] == 400
    assert firing.evidence["coverage"] == pytest.approx(400 / 600) and expected < 0.8
    assert f"live accuracy {expected:.4g} is below 0.8 on 400 labelled predictions of churn/1" in firing.reason
    assert (predicted == frame["prediction"].to_numpy()).all()
    assert not check_pipeline(run=False).fired        # judged once; new predictions and labels judge again


def test_a_new_version_at_the_alias_starts_afresh(project, home):
    write_pipeline(project["root"], "performance: {model: churn, metric: accuracy, below: 0.8, min_labels: 100}")
    rows = customers(300, 4)
    ids = serve(home, project["model"], project["version"], rows)
    label(ids, rows, correct=0.4)
    assert check_pipeline(run=False).fired
    second, model = train_version(project["root"], customers(800, 9))          # promoted: production moves
    note = check_pipeline(run=False).notes["performance#1"]
    assert note == f"0 of 100 labels for the predictions of churn/{second.version}"


@pytest.mark.parametrize("trigger, message", [
    ("drift: {predictions: churn, window: soon}", "window 'soon' is a duration"),
    ("drift: {predictions: churn, min_rows: 0}", "'min_rows' is a whole number of at least 1"),
    ("drift: {predictions: churn, widow: 1d}", "unknown field 'widow' (did you mean 'window'?)"),
    ("performance: {model: churn, metric: auc, below: 0.8}", "the live metric of a served model is one of accuracy"),
    ("performance: {step: noop, metric: accuracy, below: 0.8, min_labels: 5}", "'min_labels' and 'window' belong to"),
])
def test_bad_live_triggers_are_refused_with_the_field(project, trigger, message):
    write_pipeline(project["root"], trigger)
    with pytest.raises(SpecError, match=re.escape(message)):
        load_pipeline()
