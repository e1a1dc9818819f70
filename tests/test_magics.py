"""The magics in real notebooks executed by papermill on a real kernel, and in an IPython shell."""

import json
import subprocess
import sys

import nbformat
import papermill
import pytest
from IPython.core.error import UsageError

import mlops_nb as mlops
from mlops_nb.registry.store import open_store
from tests.notebooks_util import write_notebook

TRAIN = """%%track fit --tag team=ml
import mlops_nb as mlops
from sklearn.linear_model import LogisticRegression
import pandas as pd
X_train = pd.DataFrame({"age": [20, 30, 40, 50, 60, 70], "income": [1.0, 2.0, 3.5, 4.0, 5.5, 6.0]})
y_train = [0, 0, 0, 1, 1, 1]
clf = LogisticRegression(C=C, max_iter=max_iter).fit(X_train, y_train)
for step in range(3):
    mlops.log_metric("loss", 1.0 / (step + 1))
mlops.log_metric("accuracy", clf.score(X_train, y_train))
"""


def execute(tmp_path, name, cells, params_cell=None, **kwargs):
    source = write_notebook(tmp_path / name, cells, parameters=params_cell)
    output = tmp_path / f"out-{name}"
    papermill.execute_notebook(str(source), str(output), kernel_name="python3", cwd=str(tmp_path),
                               progress_bar=False, **kwargs)
    return nbformat.read(str(output), as_version=4)


def execute_cli(tmp_path, name, cells, params_cell, *args):
    """Run papermill's own command line, as a user or cron would."""
    source = write_notebook(tmp_path / name, cells, parameters=params_cell)
    output = tmp_path / f"out-{name}"
    done = subprocess.run([sys.executable, "-m", "papermill", str(source), str(output), "-k", "python3",
                           "--cwd", str(tmp_path), "--no-progress-bar", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return nbformat.read(str(output), as_version=4)


def outputs_of(cell, mimetype):
    return "".join(str(o.get("data", {}).get(mimetype, "")) for o in cell.outputs if o.output_type != "stream")


@pytest.mark.slow
@pytest.mark.backends  # on the SQLite file and on PostgreSQL
def test_tracked_cell_logs_injected_params_metrics_and_fitted_model(home, tmp_path):
    nb = execute_cli(tmp_path, "train.ipynb", ["%load_ext mlops_nb", "%mlops experiment churn", TRAIN, "%mlops runs ls",
                                               "%%track only-c --params C\nx = C * 2"],
                     "C = 1.0\nmax_iter = 100\nlabel = 'x'", "-p", "C", "0.5", "--inject-paths")
    runs = mlops.search_runs(experiment="churn", order_by=["start_time ASC"])
    assert list(runs["name"]) == ["fit", "only-c"] and list(runs["status"]) == ["finished", "finished"]
    assert mlops.get_run("only-c").params == {"C": 0.5}  # --params names the values that matter, and only them
    run = mlops.get_run(runs.loc[0, "run_id"])
    assert run.params["C"] == 0.5 and run.params["max_iter"] == 100 and run.params["label"] == "x"
    assert run.params["clf.C"] == 0.5 and run.params["clf.max_iter"] == 100
    assert run.tags == {"team": "ml"}
    assert run.metrics["loss"] == pytest.approx(1 / 3) and run.metrics["accuracy"] == 1.0
    assert "models/clf.pkl" in run.artifacts
    assert "clf = LogisticRegression(C=C" in open_store(home).query_one(
        "SELECT source FROM runs WHERE id = ?", (run.id,))[0]
    datasets = open_store(home).query("SELECT d.name, d.n_rows, rd.role FROM datasets d JOIN run_datasets rd "
                                      "ON rd.dataset_id = d.id WHERE rd.run_id = ?", (run.id,))
    assert datasets == [("X_train", 6, "train")]
    version = mlops.register_model(run.id, "churn")
    assert version.signature["inputs"][0] == {"name": "age", "dtype": "int64"}
    # The output notebook shows readable HTML, not only a widget placeholder.
    track_cell = next(c for c in nb.cells if c.source.startswith("%%track"))
    table_cell = next(c for c in nb.cells if c.source == "%mlops runs ls")
    assert "fit" in outputs_of(track_cell, "text/html") and "accuracy=1" in outputs_of(track_cell, "text/html")
    # The summary names the run's own params and counts the estimator's instead of listing them all.
    assert "params C=0.5" in outputs_of(track_cell, "text/html") and "clf.C=" not in outputs_of(track_cell, "text/html")
    assert "clf (" in outputs_of(track_cell, "text/html") and "estimator params)" in outputs_of(track_cell, "text/html")
    assert "<table" in outputs_of(table_cell, "text/html") and ">fit<" in outputs_of(table_cell, "text/html")
    assert "application/vnd.jupyter.widget-view+json" in json.dumps(table_cell.outputs)


@pytest.mark.slow
def test_failing_tracked_cell_is_a_failed_run_and_stops_the_notebook(home, tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as info:
        execute(tmp_path, "fails.ipynb", ["%load_ext mlops_nb", "%%track boom\nimport mlops_nb as mlops\n"
                                          "mlops.log_metric('before', 1.0)\nraise ValueError('bad data')",
                                          "print('never runs')"], params_cell="n = 1", parameters={"n": 2})
    assert info.value.ename == "ValueError"
    run = mlops.get_run("boom")
    assert run.status == "failed" and run.error.startswith("ValueError: bad data")
    assert run.metrics == {"before": 1.0}
    assert run.params == {"n": 2}  # injected by papermill, found without the notebook's path


@pytest.fixture
def ip(home):
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "mlops_nb")
    yield shell
    shell.user_ns.pop("clf", None)


def test_track_in_a_shell_returns_the_last_expression_and_logs(ip):
    result = ip.run_cell("%%track quick --params k\nk = 3\nimport mlops_nb as mlops\nmlops.log_metric('m', 2.0)\nk * 2")
    assert result.result == 6
    run = mlops.get_run("quick")
    assert run.params == {"k": 3} and run.metrics == {"m": 2.0} and run.status == "finished"


def test_refit_in_a_later_cell_is_logged_again_but_untouched_estimators_are_not(ip):
    ip.run_cell("from sklearn.dummy import DummyClassifier\nclf = DummyClassifier().fit([[0], [1]], [0, 1])")
    ip.run_cell("%%track untouched\nx = 1")
    assert mlops.get_run("untouched").artifacts == {}
    ip.run_cell("%%track refit\nclf.fit([[0], [1], [2]], [0, 1, 1])")
    assert "models/clf.pkl" in mlops.get_run("refit").artifacts


@pytest.mark.parametrize("line, message", [
    ("--tag nokey", "--tag takes KEY=VALUE"),
    ("--params 'a b'", "--params takes variable names"),
    ("--bogus", "unrecognized arguments"),
])
def test_track_usage_errors_are_one_line_and_start_no_run(ip, line, message):
    result = ip.run_cell(f"%%track {line}\nx = 1")
    assert isinstance(result.error_in_exec, UsageError) and message in str(result.error_in_exec)
    assert mlops.search_runs().empty


@pytest.mark.backends  # on the SQLite file and on PostgreSQL
def test_mlops_magic_speaks_the_cli_commands(ip, capsys):
    ip.run_cell("%%track one\nimport mlops_nb as mlops\nmlops.log_metric('acc', 0.5)")
    capsys.readouterr()
    result = ip.run_cell("%mlops runs ls --json")
    assert result.error_in_exec is None
    assert json.loads(capsys.readouterr().out)[0]["metrics"] == {"acc": 0.5}
    result = ip.run_cell("%mlops runs ls -f 'metrics.acc >'")
    assert isinstance(result.error_in_exec, UsageError)
    assert "expected a number or a quoted string" in str(result.error_in_exec)
    result = ip.run_cell("%mlops models show nope")
    assert "no model named 'nope'" in str(result.error_in_exec)
    result = ip.run_cell("%mlops runs --help")
    assert result.error_in_exec is None and "Usage: %mlops runs" in capsys.readouterr().out
    result = ip.run_cell("%mlops runs")  # a group alone: its help, not an error
    assert result.error_in_exec is None and "Usage: %mlops runs" in capsys.readouterr().out
    result = ip.run_cell("%mlops runs ls --bad")
    assert str(result.error_in_exec) == "No such option '--bad'. (see %mlops runs ls --help)"


def test_mlops_experiment_sets_the_sessions_experiment(ip):
    ip.run_cell("%mlops experiment tuning")
    ip.run_cell("%%track in-tuning\nx = 1")
    assert mlops.get_run("in-tuning").experiment == "tuning"
    assert isinstance(ip.run_cell("%mlops experiment").error_in_exec, UsageError)


def test_track_line_is_split_like_a_shell(ip):
    ip.run_cell('%%track "baseline rf" -e "my exp" --tag "team=ml ops"\nx = 1')
    run = mlops.get_run("baseline rf")
    assert run.experiment == "my exp" and run.tags == {"team": "ml ops"}


def test_estimator_in_a_non_ascii_variable_is_logged(ip):
    result = ip.run_cell("%%track uni\nfrom sklearn.dummy import DummyClassifier\n"
                         "modèle = DummyClassifier().fit([[0], [1]], [0, 1])")
    assert result.error_in_exec is None
    run = mlops.get_run("uni")
    assert run.status == "finished" and "models/mod_le.pkl" in run.artifacts


@pytest.mark.slow
def test_commands_and_results_show_as_html_in_a_notebook(home, tmp_path):
    (tmp_path / "pipeline.yaml").write_text("name: p\nsteps:\n  - name: s\n    notebook: s.ipynb\n"
                                            "triggers:\n  - schedule: \"0 3 * * 1\"\n")
    write_notebook(tmp_path / "s.ipynb", ["x = n + 1"], parameters="n = 1")
    commands = ["%mlops triggers ls", "%mlops triggers history", "%mlops kernels ls", "%mlops help"]
    run = "import mlops_nb as mlops\nmlops.run_pipeline()"
    nb = execute(tmp_path, "look.ipynb", ["%load_ext mlops_nb", run, *commands])
    cells = {c.source: c for c in nb.cells}
    for source in commands:
        streams = "".join(o.get("text", "") for o in cells[source].outputs if o.output_type == "stream")
        assert outputs_of(cells[source], "text/html") and "─" not in streams, (source, cells[source].outputs)
    assert "schedule &#x27;0 3 * * 1&#x27;" in outputs_of(cells["%mlops triggers ls"], "text/html")
    assert "no kernel daemon is running" in outputs_of(cells["%mlops kernels ls"], "text/html")
    shown = outputs_of(cells[run], "text/html")  # a capability's result, rendered by show/ in the kernel
    assert "<table" in shown and "pipeline p" in shown and ">ran<" in shown


@pytest.mark.parametrize("search, candidates", [
    ("GridSearchCV(LogisticRegression(max_iter=500), {'C': [0.01, 1.0, 100.0], 'fit_intercept': [True, False]}, cv=3)",
     6),
    ("RandomizedSearchCV(LogisticRegression(max_iter=500), {'C': [0.01, 0.1, 1.0, 10.0]}, n_iter=3, cv=3, "
     "random_state=0)", 3),
])
def test_an_autologged_search_logs_each_candidate_as_a_child_run(ip, search, candidates):
    cell = ("%%track searched\n"
            "from sklearn.datasets import make_classification\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "from sklearn.model_selection import GridSearchCV, RandomizedSearchCV\n"
            "X, y = make_classification(n_samples=120, n_features=5, random_state=0)\n"
            f"search = {search}.fit(X, y)")
    assert ip.run_cell(cell).success
    results = ip.user_ns.pop("search").cv_results_
    parent = mlops.get_run("searched")
    children = mlops.search_runs("tags.mlops.search = 'search'", order_by="start_time asc")
    assert len(children) == candidates and set(children["parent_id"]) == {parent.id}
    for i, child_id in enumerate(children["run_id"]):
        child = mlops.get_run(child_id)
        assert child.params == results["params"][i]
        for key in ("mean_test_score", "std_test_score", "rank_test_score", "split0_test_score", "split2_test_score",
                    "mean_fit_time"):
            assert child.metrics[key] == pytest.approx(float(results[key][i]), rel=1e-12, abs=1e-12)
    assert parent.metrics["search.best_score"] == pytest.approx(max(results["mean_test_score"]))
    assert "models/search.pkl" in parent.artifacts  # the refit best estimator, as before
