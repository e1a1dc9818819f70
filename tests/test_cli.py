import json

import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

import mlops_nb as mlops
from mlops_nb.cli import cli
from tests.notebooks_util import write_notebook


@pytest.fixture
def project(home):
    """Two runs with models, registered as churn/1 and churn/2; churn/1 in production."""
    ids = []
    for C, acc in ((1.0, 0.9), (0.1, float("nan"))):
        with mlops.start_run(experiment="churn", name=f"lr-{C}", params={"C": C}) as run:
            mlops.log_metric("accuracy", acc)
            mlops.log_model(LogisticRegression(C=C).fit([[0], [1]], [0, 1]), "model")
        mlops.register_model(run, "churn")
        ids.append(run.id)
    mlops.set_alias("churn", 1, "production")
    return ids


def invoke(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_runs_ls_shows_runs_with_metrics_and_params(project):
    code, out = invoke("runs", "ls")
    assert code == 0
    assert "lr-1.0" in out and "lr-0.1" in out and "accuracy" in out and "0.9" in out and "NaN" in out


def test_runs_ls_json_is_strict_json_with_nan_as_string(project):
    code, out = invoke("runs", "ls", "--json", "-f", "params.C < 0.5")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == ["lr-0.1"]
    assert rows[0]["metrics"] == {"accuracy": "NaN"}


def test_runs_show_and_compare(project):
    code, out = invoke("runs", "show", project[0][:6])
    assert code == 0 and "lr-1.0" in out and "models/model.pkl" in out and "churn/1" in out
    code, out = invoke("runs", "compare", project[0], project[1], "--json")
    assert code == 0 and [r["params"]["C"] for r in json.loads(out)] == [1.0, 0.1]


def test_models_promote_and_rollback_move_the_alias(project):
    code, out = invoke("models", "promote", "churn", "2")
    assert code == 0 and "churn@production -> version 2 (was version 1)" in out
    code, out = invoke("models", "rollback", "churn", "--json")
    assert code == 0 and json.loads(out) == {"name": "churn", "alias": "production", "version": 1, "previous": 2,
                                             "gate": None}  # version 1 never went through a gate
    code, out = invoke("models", "show", "churn")
    assert code == 0 and "rollback" in out and "production" in out


def test_models_and_experiments_ls_json(project):
    code, out = invoke("models", "ls", "--json")
    assert json.loads(out)[0]["aliases"] == {"production": 1}
    code, out = invoke("experiments", "ls", "--json")
    assert [(e["name"], e["runs"]) for e in json.loads(out)] == [("churn", 2)]


@pytest.mark.parametrize("args, message", [
    (["runs", "show", "zzzz"], "Error: no run with id, id prefix or name 'zzzz'"),
    (["runs", "ls", "-f", "metrics.accuracy >"], "Error: expected a number or a quoted string at column 19"),
    (["runs", "ls", "-e", "nope"], "Error: no experiment named 'nope'"),
    (["models", "show", "nope"], "Error: no model named 'nope'; registered models: 'churn'"),
    (["models", "promote", "churn", "9"], "Error: model 'churn' has no version 9; its versions: 1, 2"),
    (["models", "rollback", "churn", "--alias", "staging"], "Error: model 'churn' has no alias 'staging'"),
    (["models", "rollback", "churn"], "has no earlier version to roll back to"),
    (["runs", "ls", "-f", " and ".join(["params.C = 1"] * 1200)], "more than 400 comparisons"),
    (["runs", "ls", "-f", "metrics.accuracy > " + "9" * 5000], "has more than 30 digits"),
    (["runs", "ls", "-f", "(" * 40 + "status = 'x'" + ")" * 40], "too deeply (over 32 levels)"),
])
def test_user_mistakes_are_one_line_errors_with_exit_code_1(project, args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_registry_is_explained(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["runs", "ls"])
    assert result.exit_code == 1 and "no mlops-nb registry" in result.output
    assert not (tmp_path / ".mlops").exists()


def test_not_a_registry_is_one_line_error(tmp_path):
    (tmp_path / "registry.db").write_text("hello")
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "runs", "ls"])
    assert result.exit_code == 1 and "is not an mlops-nb registry" in result.output
    assert (tmp_path / "registry.db").read_text() == "hello"


def test_help_lists_its_topics_and_prints_each_flush_left():
    from click.testing import CliRunner

    from mlops_nb.cli import cli

    listing = CliRunner().invoke(cli, ["help"])
    assert listing.exit_code == 0 and "filter" in listing.output and "triggers" in listing.output
    for topic, first in (("pipeline", "name: churn"), ("triggers", "triggers:")):
        result = CliRunner().invoke(cli, ["help", topic])
        assert result.exit_code == 0 and result.output.startswith(first), result.output[:80]


def test_datasets_show_versions_and_what_used_them(home):
    import pandas as pd

    first = pd.DataFrame({"age": [20, 30, 40, 50], "churned": [0, 0, 1, 1]})
    for name, frame in (("a", first), ("b", first.copy()), ("c", first.assign(age=first.age + 1))):
        with mlops.start_run(experiment="data", name=name) as run:
            mlops.log_dataset(frame, "customers")
            mlops.log_model(LogisticRegression().fit(frame[["age"]], frame.churned), "model")
        mlops.register_model(run, "churn")
    code, out = invoke("datasets", "ls", "--json")
    assert code == 0 and json.loads(out) == [{**json.loads(out)[0], "name": "customers", "versions": 2, "runs": 3,
                                              "n_rows": 4, "n_cols": 2}]
    code, out = invoke("datasets", "show", "customers", "--json")
    newest, oldest = json.loads(out)["versions"]  # the same content logged twice is one version
    assert [r["name"] for r in oldest["runs"]] == ["a", "b"] and [r["role"] for r in oldest["runs"]] == ["train"] * 2
    assert [m["version"] for m in oldest["models"]] == [1, 2] and [m["version"] for m in newest["models"]] == [3]
    code, out = invoke("datasets", "show", "customers")
    assert code == 0 and "2 version(s)" in out and "churn/3" in out
    code, out = invoke("datasets", "show", "nope")
    assert code == 1 and "no dataset 'nope'; logged datasets: 'customers'" in out


def test_looking_at_triggers_creates_no_registry(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    write_notebook(tmp_path / "s.ipynb", ["x = 1"], parameters="n = 1")
    (tmp_path / "pipeline.yaml").write_text("name: p\nsteps:\n  - name: s\n    notebook: s.ipynb\n"
                                            "triggers:\n  - schedule: \"0 3 * * 1\"\n")
    listed = CliRunner().invoke(cli, ["triggers", "ls", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["state"] == "not evaluated yet"
    history = CliRunner().invoke(cli, ["triggers", "history"])
    assert history.exit_code == 1 and "no mlops-nb registry" in history.output
    assert not (tmp_path / ".mlops").exists()


def test_a_huge_count_is_a_usage_error_not_a_traceback(project):
    result = CliRunner().invoke(cli, ["runs", "ls", "-n", "99999999999999999999999"])
    assert result.exit_code == 2 and "is not in the range 1<=x<=1000000" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
