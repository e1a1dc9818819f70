import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry import models

pytestmark = pytest.mark.backends  # on the SQLite file and on PostgreSQL


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "region": rng.choice(["north", "south"], n)})
    frame["y"] = ((frame["x1"] + 0.5 * frame["x2"] + rng.normal(0, 0.3, n)) > 0).astype(int)
    return frame.iloc[:400], frame.iloc[400:]


def register(train, model, name="churn"):
    X = train[["x1", "x2"]]
    with mlops.start_run() as run:
        mlops.log_model(model.fit(X, train["y"]), "model", X=X)
    return mlops.register_model(run, name).version


@pytest.fixture
def versions(home, data):
    train, _ = data
    good = register(train, LogisticRegression())
    bad = register(train, DummyClassifier(strategy="most_frequent"))
    mlops.set_alias("churn", good, "production")
    return good, bad


RULES = {"accuracy": {"min": 0.6, "max_regression": 0.01}, "roc_auc": {"max_regression": 0.02}}


def test_a_worse_candidate_fails_with_every_rule_explained(versions, data):
    _, test = data
    decision = mlops.gate("churn/2", "production", test, RULES, target="y")
    assert not decision.passed and decision.baseline == "churn/1"
    results = decision.results.set_index(["metric", "rule"])
    assert not results.loc[("accuracy", "max_regression"), "passed"]
    assert results.loc[("accuracy", "max_regression"), "baseline"] > 0.8
    assert "worse by" in results.loc[("accuracy", "max_regression"), "detail"]


def test_promotion_happens_only_on_pass_and_override_needs_a_reason(versions, data, home):
    _, test = data
    mlops.gate("churn/2", "production", test, RULES, target="y")
    with pytest.raises(InvalidInputError, match="churn/2 failed its gate: accuracy"):
        mlops.promote("churn", 2)
    with pytest.raises(InvalidInputError, match="give the reason"):
        mlops.promote("churn", 2, override="  ")
    assert mlops.get_model_version("churn@production").version == 1
    mlops.promote("churn", 2, override="hotfix: the old model rejects new regions")
    assert mlops.get_model_version("churn@production").version == 2
    history = models.alias_history(mlops.tracking.get_store(), "churn")
    assert history[-1]["reason"] == "override: hotfix: the old model rejects new regions"
    assert mlops.model_card("churn/2").decision["override_reason"].startswith("hotfix")


def test_a_better_candidate_passes_and_is_promoted(home, data):
    train, test = data
    register(train, DummyClassifier(strategy="most_frequent"))
    register(train, LogisticRegression())
    mlops.set_alias("churn", 1, "production")
    decision = mlops.gate("churn/2", "production", test, RULES, target="y")
    assert decision.passed
    assert mlops.promote("churn", 2).version == 2


def test_rules_hold_per_segment(versions, data):
    _, test = data
    decision = mlops.gate("churn/1", None, test, {"accuracy": {"min": 0.6}}, target="y", segment="region")
    assert set(decision.results["segment"]) == {"all", "north", "south"}
    assert decision.passed
    card = mlops.model_card("churn/1")
    assert set(card.decision["card"]["segments"]) == {"north", "south"}
    features = [i["feature"] for i in card.decision["card"]["importance"]]
    assert features[0] == "x1"  # the feature that drives y most
    strict = mlops.gate("churn/2", None, test, {"accuracy": {"min": 0.99}}, target="y", segment="region")
    assert not strict.passed and {"north", "south"} <= set(strict.results.loc[~strict.results["passed"], "segment"])
    assert "gate" in card._repr_html_() and "permutation feature importance" in card._repr_html_()


def test_no_model_behind_the_alias_is_a_clear_error(home, data):
    train, test = data
    register(train, LogisticRegression())
    with pytest.raises(NotFoundError, match="no baseline model: .*has no alias 'production'.*baseline=None"):
        mlops.gate("churn/1", "production", test, RULES, target="y")
    assert mlops.gate("churn/1", None, test, {"accuracy": {"min": 0.6}}, target="y").passed


@pytest.mark.parametrize("rules, kwargs, message", [
    ({"acuracy": {"min": 0.5}}, {"target": "y"}, "unknown gate metric 'acuracy'"),
    ({"accuracy": {"minimum": 0.5}}, {"target": "y"}, "must use min, max, max_regression"),
    ({"accuracy": {"min": 0.5}}, {"target": "label"}, "target column 'label' is not in eval_data"),
    ({"accuracy": {"min": 0.5}}, {"target": "y", "segment": "zone"}, "segment column 'zone'"),
    (None, {"target": "y"}, "gate needs rules"),
])
def test_bad_gate_input_is_refused(versions, data, rules, kwargs, message):
    _, test = data
    with pytest.raises(InvalidInputError, match=message):
        mlops.gate("churn/2", "production", test, rules, **kwargs)


def test_cli_promote_respects_a_failed_gate(versions, data):
    _, test = data
    mlops.gate("churn/2", "production", test, RULES, target="y")
    result = CliRunner().invoke(cli, ["models", "promote", "churn", "2"])
    assert result.exit_code == 1 and "failed its gate" in result.output and "--override" in result.output
    result = CliRunner().invoke(cli, ["models", "promote", "churn", "2", "--override", "tested by hand"])
    assert result.exit_code == 0 and "churn@production -> version 2" in result.output


def test_an_exploratory_gate_never_replaces_the_pipelines_decision(versions, data, home):
    from mlops_nb.registry import gates

    _, test = data
    store = mlops.tracking.get_store()
    record = gates.record_decision(store, "churn", 2, baseline_version=1, alias="production", passed=True,
                                   results=[], card=None, source="pipeline")  # what the pipeline's gate step stored
    exploring = mlops.gate("churn/2", "production", test, RULES, target="y")  # by hand in a notebook: it fails
    assert not exploring.passed and exploring.source == "exploratory"
    kept = gates.latest_decision(store, "churn", 2)
    assert (kept["id"], kept["passed"], kept["source"]) == (record, True, "pipeline")
    assert mlops.promote("churn", 2).version == 2  # promotion reads the pipeline's decision
    assert mlops.model_card("churn/2").decision["id"] == record


def test_rollback_says_the_gate_it_returns_to_and_refuses_a_failed_one(versions, data, home):
    from mlops_nb.registry import gates

    _, test = data
    store = mlops.tracking.get_store()
    gates.record_decision(store, "churn", 1, baseline_version=None, alias=None, passed=False,
                          results=[{"passed": False, "detail": "accuracy = 0.5, at least 0.9"}], card=None)
    mlops.set_alias("churn", 2, "production")
    with pytest.raises(InvalidInputError, match=r"would return to churn/1, whose gate failed \(accuracy = 0.5, at "
                                                r"least 0.9\); to go back anyway, give the reason"):
        mlops.rollback("churn")
    assert mlops.get_model_version("churn@production").version == 2
    result = CliRunner().invoke(cli, ["models", "rollback", "churn", "--override", "v2 rejects every order"])
    assert result.exit_code == 0, result.output
    assert "churn@production -> version 1 (was version 2); its gate failed (decision" in result.output
    assert models.alias_history(store, "churn")[-1]["reason"] == "override: v2 rejects every order"


def test_a_better_candidate_is_said_to_be_better(versions, data):
    _, test = data
    decision = mlops.gate("churn/1", "churn/2", test, RULES, target="y")  # the good model against the dummy
    details = decision.results.set_index(["metric", "rule"]).loc[("accuracy", "max_regression"), "detail"]
    assert "better by 0." in details and "worse by 0" not in details
