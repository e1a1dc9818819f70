import json
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mlops_nb as mlops
from mlops_nb.errors import IntegrityError, InvalidInputError, NotFoundError
from mlops_nb.registry import models
from tests.notebooks_util import notebook_html

pytestmark = pytest.mark.backends  # on the SQLite file and on PostgreSQL


@pytest.fixture
def X():
    return pd.DataFrame({"age": [20, 30, 40, 50, 60, 70], "income": [1.0, 2.5, 3.0, 4.5, 5.0, 6.5]})


@pytest.fixture
def y():
    return pd.Series([0, 0, 0, 1, 1, 1])


def train(X, y, C):
    with mlops.start_run(params={"C": C}) as run:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X, y)
        mlops.log_model(model, "model", X=X)
    return run


def test_register_versions_and_load_by_alias_and_number(home, X, y):
    v1 = mlops.register_model(train(X, y, 1.0), "churn")
    v2 = mlops.register_model(train(X, y, 0.01).id, "churn")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.signature["inputs"] == [{"name": "age", "dtype": "int64"}, {"name": "income", "dtype": "float64"}]
    assert v1.signature["outputs"] == {"classes": [0, 1]}
    mlops.set_alias("churn", 1, "production")
    assert mlops.load_model("churn@production").get_params()["logisticregression__C"] == 1.0
    assert mlops.load_model("churn/2").get_params()["logisticregression__C"] == 0.01
    assert mlops.load_model("churn").get_params()["logisticregression__C"] == 0.01  # newest
    assert list(mlops.load_model("churn@production").predict(X)) == [0, 0, 0, 1, 1, 1]
    production = mlops.get_model_version("churn@production")
    assert repr(production).startswith("ModelVersion('churn/1', run=") and "aliases=['production']" in repr(production)
    assert "version 1" in notebook_html(production) and "@production" in notebook_html(production)
    assert "inputs: age, income" in notebook_html(production)


def test_rollback_walks_back_through_promotions(home, X, y):
    for C in (1.0, 0.5, 0.1):
        mlops.register_model(train(X, y, C), "churn")
    for version in (1, 2, 3):
        mlops.set_alias("churn", version, "production")
    assert mlops.rollback("churn").version == 2
    assert mlops.rollback("churn").version == 1
    with pytest.raises(InvalidInputError, match="no earlier version to roll back to"):
        mlops.rollback("churn")
    assert mlops.get_model_version("churn@production").version == 1
    history = models.alias_history(mlops.tracking.get_store(), "churn", "production")
    assert [(h["action"], h["previous"], h["version"]) for h in history] == [
        ("set", None, 1), ("set", 1, 2), ("set", 2, 3), ("rollback", 3, 2), ("rollback", 2, 1)]


def test_aliases_are_independent(home, X, y):
    for C in (1.0, 0.5):
        mlops.register_model(train(X, y, C), "churn")
    mlops.set_alias("churn", 1, "production")
    mlops.set_alias("churn", 2, "staging")
    assert mlops.get_model_version("churn@staging").version == 2
    assert mlops.get_model_version("churn/1").aliases == ("production",)


def test_tampered_model_file_is_refused_before_unpickling(home, X, y):
    version = mlops.register_model(train(X, y, 1.0), "churn")
    blob = home / "artifacts" / version.sha256[:2] / version.sha256[2:]
    blob.write_bytes(blob.read_bytes() + b"evil")
    with pytest.raises(IntegrityError, match="changed on disk.*refusing to load it"):
        mlops.load_model("churn/1")


@pytest.mark.parametrize("ref, message", [
    ("nope", "no model named 'nope'; registered models: 'churn'"),
    ("churn/7", "model 'churn' has no version 7; its versions: 1"),
    ("churn@staging", "model 'churn' has no alias 'staging'"),
    ("churn/latest", "must be a number"),
])
def test_unknown_model_version_or_alias_is_named(home, X, y, ref, message):
    mlops.register_model(train(X, y, 1.0), "churn")
    with pytest.raises((NotFoundError, InvalidInputError), match=message):
        mlops.load_model(ref)


def test_bad_promotions_change_nothing(home, X, y):
    mlops.register_model(train(X, y, 1.0), "churn")
    mlops.set_alias("churn", 1, "production")
    with pytest.raises(NotFoundError, match="has no version 9"):
        mlops.set_alias("churn", 9, "production")
    with pytest.raises(InvalidInputError, match="alias 'bad alias' is not valid"):
        mlops.set_alias("churn", 1, "bad alias")
    with pytest.raises(InvalidInputError, match="model version must be a positive integer"):
        mlops.set_alias("churn", 0)
    with pytest.raises(NotFoundError, match="no model named 'other'"):
        mlops.rollback("other")
    assert mlops.get_model_version("churn@production").version == 1
    assert len(models.alias_history(mlops.tracking.get_store(), "churn")) == 1


def test_registering_a_run_without_model_says_how(home):
    with mlops.start_run() as run:
        pass
    with pytest.raises(NotFoundError, match=r"logged no model: call mlops.log_model"):
        mlops.register_model(run, "churn")


def test_lineage_links_dataset_run_and_model(home, X, y):
    from mlops_nb.registry.datasets import lineage

    with mlops.start_run() as run:
        mlops.log_dataset(X, "features", role="train")
        mlops.log_model(LogisticRegression().fit(X, y), "model")
    mlops.register_model(run, "churn")
    found = lineage(mlops.tracking.get_store(), run.id)
    assert found["datasets"][0]["name"] == "features" and found["datasets"][0]["role"] == "train"
    assert found["models"] == [{"name": "churn", "version": 1, "run_id": run.id}]


def test_a_model_whose_file_is_gone_or_replaced_is_refused(home, X, y):
    from mlops_nb.errors import IntegrityError, NotFoundError
    from mlops_nb.registry.artifacts import blob_path

    run = train(X, y, 1.0)
    sha = mlops.get_run(run.id).artifacts["models/model.pkl"]["sha256"]
    path = blob_path(home / "artifacts", sha)
    data = path.read_bytes()
    path.unlink()
    with pytest.raises(NotFoundError, match="is missing from the registry"):
        mlops.register_model(run, "gone")
    path.write_bytes(data)
    version = mlops.register_model(run, "gone")
    path.unlink()
    path.mkdir()  # a folder where the model file was
    with pytest.raises(IntegrityError, match="cannot be read"):
        mlops.load_model(version.ref)


def test_the_registry_records_who_ran_promoted_and_rolled_back(home, X, y, monkeypatch):
    from click.testing import CliRunner

    from mlops_nb.cli import cli
    from mlops_nb.registry.models import alias_history
    from mlops_nb.registry.process import hostname

    monkeypatch.setenv("MLOPS_NB_USER", "alice")
    first = train(X, y, 1.0)
    monkeypatch.setenv("MLOPS_NB_USER", "bob")
    second = train(X, y, 0.1)
    assert (mlops.get_run(first.id).user, mlops.get_run(second.id).user) == ("alice", "bob")
    assert mlops.get_run(first.id).host == hostname()
    listed = CliRunner().invoke(cli, ["runs", "ls", "--user", "alice", "--json"])
    assert [r["run_id"] for r in json.loads(listed.output)] == [first.id]
    assert list(mlops.search_runs("user = 'bob'")["run_id"]) == [second.id]
    shown = CliRunner().invoke(cli, ["runs", "show", first.id])
    assert f"alice on {hostname()}" in shown.output
    mlops.register_model(first, "churn")
    mlops.register_model(second, "churn")
    monkeypatch.setenv("MLOPS_NB_USER", "carol")
    mlops.set_alias("churn", 1, "production")
    mlops.set_alias("churn", 2, "production")
    monkeypatch.setenv("MLOPS_NB_USER", "dave")
    mlops.rollback("churn")
    history = alias_history(mlops.get_store(), "churn")
    assert [(h["action"], h["user"], h["host"]) for h in history] == [
        ("set", "carol", hostname()), ("set", "carol", hostname()), ("rollback", "dave", hostname())]
    assert "by dave@" in CliRunner().invoke(cli, ["models", "show", "churn"]).output
