"""`mlops-nb predict`, `feedback add` and `monitor`: batch scoring into the log, late labels, the windows."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from tests.monitoring.test_monitor import customers, train_version
from tests.test_magics import ip  # noqa: F401 - the IPython shell fixture


def invoke(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def trained(home, tmp_path):
    version, model = train_version(tmp_path, customers(800, 0))
    batch = customers(400, 1)
    batch.drop(columns=["churned"]).assign(customer=range(400)).to_csv(tmp_path / "new.csv", index=False)
    return {"version": version, "model": model, "truth": batch["churned"]}


def test_predict_scores_a_file_and_logs_what_it_predicted(trained, tmp_path):
    code, out = invoke("predict", "churn", str(tmp_path / "new.csv"), "-o", str(tmp_path / "scored.csv"))
    assert code == 0 and "scored 400 rows with churn/1" in out
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert list(scored.columns) == ["age", "charges", "calls", "plan", "customer", "prediction", "proba_0",
                                    "proba_1", "prediction_id"]
    expected = trained["model"].predict(scored[["age", "charges", "calls", "plan"]])
    assert (scored["prediction"] == expected).all() and scored["prediction_id"].is_unique
    logged = mlops.predictions("churn")
    assert list(logged["id"]) == list(scored["prediction_id"]) and (logged["version"] == 1).all()
    assert list(logged["prediction"]) == list(expected)


def test_feedback_add_finds_the_model_by_its_ids_and_reports_unknown_ones(trained, tmp_path):
    invoke("predict", "churn", str(tmp_path / "new.csv"), "-o", str(tmp_path / "scored.csv"))
    scored = pd.read_csv(tmp_path / "scored.csv")
    labels = pd.DataFrame({"prediction_id": scored["prediction_id"], "churned": trained["truth"]}).head(300)
    labels.loc[0, "prediction_id"] = "not-an-id"
    labels.loc[1, "churned"] = None
    labels.to_csv(tmp_path / "labels.csv", index=False)
    code, out = invoke("feedback", "add", str(tmp_path / "labels.csv"), "--label-column", "churned")
    assert code == 0, out
    assert "stored 298 label(s) for churn" in out and "skipped 1 row(s) without a label" in out
    assert "1 id(s) match no logged prediction (e.g. not-an-id)" in out
    frame = mlops.predictions("churn")
    assert frame["label"].notna().sum() == 298


def test_feedback_add_names_a_missing_column(trained, tmp_path):
    pd.DataFrame({"id": ["x"], "y": [1]}).to_csv(tmp_path / "labels.csv", index=False)
    result = CliRunner().invoke(cli, ["feedback", "add", str(tmp_path / "labels.csv"), "--label-column", "y"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: " + str(tmp_path / "labels.csv") + " has no column 'prediction_id' "
                                     "(--id-column); its columns: id, y")


def test_predict_names_the_columns_the_file_lacks(trained, tmp_path):
    pd.DataFrame({"age": [40]}).to_csv(tmp_path / "few.csv", index=False)
    result = CliRunner().invoke(cli, ["predict", "churn", str(tmp_path / "few.csv"), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 1 and "lacks column(s) charges, calls, plan that churn/1 takes" in result.output
    assert "Traceback" not in result.output


def test_monitor_prints_the_windows_and_json_for_scripts(trained, tmp_path):
    invoke("predict", "churn", str(tmp_path / "new.csv"), "-o", str(tmp_path / "scored.csv"))
    scored = pd.read_csv(tmp_path / "scored.csv")
    mlops.log_feedback("churn", scored["prediction_id"][:100].tolist(), trained["truth"][:100].tolist())
    code, out = invoke("monitor", "churn", "--window", "200")
    assert code == 0
    assert "churn@production: version 1 serving; 400 predictions, 100 labelled (25%); windows of 200 predictions" in out
    assert "100 (50%)" in out and "0 (0%)" in out
    code, out = invoke("monitor", "churn", "--window", "200", "--json")
    data = json.loads(out)
    assert [w["n"] for w in data["windows"]] == [200, 200] and data["labelled"] == 100
    assert data["windows"][0]["metric"] == pytest.approx(
        (trained["model"].predict(scored.iloc[:100][["age", "charges", "calls", "plan"]]) == trained["truth"][:100]).mean())


@pytest.mark.parametrize("args, message", [
    (["--window", "2x"], "window '2x' is a duration (30m, 1h, 1d, 1w) or a number of predictions (500)"),
    (["--since", "soon"], "--since 'soon' is a duration back from now"),
    (["--metric", "auc"], "unknown metric 'auc'; choose from accuracy"),
])
def test_monitor_bad_options_get_one_line(trained, tmp_path, args, message):
    invoke("predict", "churn", str(tmp_path / "new.csv"), "-o", str(tmp_path / "scored.csv"))
    result = CliRunner().invoke(cli, ["monitor", "churn", *args])
    assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_monitor_before_any_prediction_says_how_to_get_some(trained):
    result = CliRunner().invoke(cli, ["monitor", "churn"])
    assert result.exit_code == 1 and "no predictions of 'churn' are logged yet (serve it with" in result.output


def test_a_notebook_shows_the_monitor_as_charts_and_the_magic_speaks_it(trained, tmp_path, ip, capsys):
    invoke("predict", "churn", str(tmp_path / "new.csv"), "-o", str(tmp_path / "scored.csv"))
    mlops.set_alias("churn", 1, "production")  # a marker: the alias set again
    monitored = mlops.monitor("churn", window=200)
    html = ip.display_formatter.formatters["text/html"].lookup(monitored)(monitored)  # what a kernel shows
    assert html.count("<polyline") == 6 and "churn@production: version 1 serving; 400 predictions" in html
    assert 'class="mark"' in html and "alias: production -&gt; churn/1" in html
    result = ip.run_cell("%mlops monitor churn --window 200 --json")
    assert result.error_in_exec is None and '"total": 400' in capsys.readouterr().out
