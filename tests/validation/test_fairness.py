"""Fairness in model cards and gates: fairlearn's measures, computed on a version's own decisions."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlops_nb as mlops
from mlops_nb.errors import InvalidInputError
from mlops_nb.validation.fairness import fairness


@pytest.fixture
def biased(home):
    """Group b's x1 runs higher and y follows x1, so a model of x1 selects group b far more often."""
    rng = np.random.default_rng(1)
    n = 1200
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    x1 = rng.normal(size=n) + np.where(group == "b", 1.0, 0.0)
    x2 = rng.normal(size=n)
    y = ((x1 + 0.3 * x2 + rng.normal(0, 0.7, n)) > 0.4).astype(int)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "group": group, "y": y})
    train, test = frame.iloc[:800], frame.iloc[800:].reset_index(drop=True)
    X = train[["x1", "x2"]]
    with mlops.start_run() as run:
        mlops.log_model(LogisticRegression().fit(X, train["y"]), "model", X=X)
    mlops.register_model(run, "loans")
    return test


def test_the_fairness_measures_equal_fairlearns_on_the_same_predictions(biased):
    fm = pytest.importorskip("fairlearn.metrics")
    model = mlops.load_model("loans/1")
    predicted = model.predict(biased[["x1", "x2"]])
    ours = fairness(biased["y"], predicted, biased["group"])
    frame = fm.MetricFrame(metrics={"selection_rate": fm.selection_rate, "tpr": fm.true_positive_rate,
                                    "fpr": fm.false_positive_rate}, y_true=biased["y"], y_pred=predicted,
                           sensitive_features=biased["group"])
    for group, row in frame.by_group.iterrows():
        for measure in ("selection_rate", "tpr", "fpr"):
            assert ours["groups"][group][measure] == pytest.approx(row[measure], abs=1e-12), (group, measure)
        assert ours["groups"][group]["n"] == int((biased["group"] == group).sum())
    kwargs = dict(y_true=biased["y"], y_pred=predicted, sensitive_features=biased["group"])
    assert ours["demographic_parity_difference"] == pytest.approx(fm.demographic_parity_difference(**kwargs))
    assert ours["demographic_parity_ratio"] == pytest.approx(fm.demographic_parity_ratio(**kwargs))
    assert ours["equalized_odds_difference"] == pytest.approx(fm.equalized_odds_difference(**kwargs))
    assert ours["equalized_odds_ratio"] == pytest.approx(fm.equalized_odds_ratio(**kwargs))
    assert ours["demographic_parity_difference"] > 0.2  # the bias is there to be found
    # The card of the (ungated) version, evaluated on the same rows, holds the same figures.
    card = mlops.model_card("loans/1", biased, target="y", sensitive="group", segment="group")
    assert card.fairness["demographic_parity_difference"] == ours["demographic_parity_difference"]
    assert card.fairness["groups"] == ours["groups"]


def test_a_gate_rule_on_a_fairness_measure_refuses_a_version_that_breaks_it(biased):
    rules = {"accuracy": {"min": 0.6}, "demographic_parity_difference": {"max": 0.1}}
    decision = mlops.gate("loans/1", None, biased, rules, target="y", sensitive="group")
    assert not decision.passed
    row = decision.results.set_index("metric").loc["demographic_parity_difference"]
    assert not row["passed"] and row["candidate"] > 0.1 and "at most 0.1" in row["detail"]
    assert decision.results.set_index("metric").loc["accuracy", "passed"]
    with pytest.raises(InvalidInputError, match="loans/1 failed its gate: demographic_parity_difference"):
        mlops.promote("loans", 1)
    lenient = mlops.gate("loans/1", None, biased, {"demographic_parity_difference": {"max": 0.9}}, target="y",
                         sensitive="group")
    assert lenient.passed
    assert "fairness across group" in lenient._repr_html_()


def test_a_model_card_of_any_version_is_a_notebook_display_and_a_standalone_page(biased, tmp_path):
    card = mlops.model_card("loans/1", biased, target="y", sensitive="group",
                            segment="group")
    assert card.decision is None  # never gated
    evaluation = card.evaluation
    assert set(evaluation["metrics"]["candidate"]) == {"accuracy", "f1", "roc_auc"}
    assert set(evaluation["segments"]) == {"a", "b", "c"}
    assert evaluation["importance"][0]["feature"] == "x1"  # y follows x1 most
    card.save_html(tmp_path / "card.html")
    html = (tmp_path / "card.html").read_text()
    for text in ("loans/1", "fairness across group", "selection rate", "permutation feature importance",
                 "demographic_parity_difference"):
        assert text in html
    assert card.to_dict()["evaluation"]["fairness"]["column"] == "group"
    plain = mlops.model_card("loans/1")
    assert plain.evaluation is None and plain.fairness is None


@pytest.mark.parametrize("call, message", [
    (lambda test: mlops.gate("loans/1", None, test, {"equalized_odds_difference": {"max": 0.1}}, target="y"),
     "a rule on equalized_odds_difference needs the sensitive column"),
    (lambda test: mlops.gate("loans/1", None, test, {"accuracy": {"min": 0.5}}, target="y", sensitive="gender"),
     "sensitive column 'gender' is not in the evaluation data"),
    (lambda test: mlops.model_card("loans/1", sensitive="group"), "pass eval_data="),
])
def test_fairness_asked_wrongly_is_a_one_line_error(biased, call, message):
    with pytest.raises(InvalidInputError, match=message):
        call(biased)
