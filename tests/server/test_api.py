"""The REST API against a real Jupyter server process on a real registry."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.dummy import DummyClassifier

import mlops_nb as mlops
from tests.jupyter_util import ONLY_MLOPS_NB, running_server
from tests.notebooks_util import write_notebook

pytestmark = pytest.mark.slow
TOKEN = "mlops-nb-api-token"


@pytest.fixture
def project(tmp_path, home, monkeypatch):
    root = tmp_path / "root"
    (root / "churn" / "notebooks").mkdir(parents=True)
    monkeypatch.setenv("MLOPS_NB_HOME", str(home))
    for name, acc in (("first", 0.8), ("second", 0.9)):
        with mlops.start_run(experiment="exp", name=name, params={"C": acc}) as run:
            mlops.log_metric("accuracy", acc)
            mlops.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "model")
        mlops.register_model(run, "churn")
    mlops.set_alias("churn", 1, "production")
    write_notebook(root / "churn" / "notebooks" / "step.ipynb", ["import mlops_nb as mlops\nmlops.log_metric('m', n)"],
                   parameters="n = 1")
    (root / "churn" / "pipeline.yaml").write_text(
        "name: churn-pipe\nsteps:\n  - name: step\n    notebook: notebooks/step.ipynb\n"
        "triggers:\n  - schedule: \"0 3 * * 1\"\n")
    return root


def _server(project, tmp_path, home, args=ONLY_MLOPS_NB):
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), MLOPS_NB_HOME=str(home))
    return running_server("jupyter_server", project, TOKEN, tmp_path / "server.log", env, args)


@pytest.fixture
def server(project, tmp_path, home):
    """A Jupyter server with our extension alone."""
    with _server(project, tmp_path, home) as base:
        yield base


@pytest.fixture
def lab_server(project, tmp_path, home):
    """A Jupyter server with every installed extension, JupyterLab's pages among them."""
    with _server(project, tmp_path, home, args=()) as base:
        yield base


def call(base, path, method="GET", body=None, token=TOKEN):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    request = urllib.request.Request(f"{base}/mlops-nb/api{path}", method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text.decode(errors="replace")


@pytest.mark.backends  # the REST API on the SQLite file and on PostgreSQL
def test_runs_and_one_run(server):
    status, data = call(server, "/runs?filter=metrics.accuracy%20%3E%200.85&order_by=metrics.accuracy%20desc")
    assert status == 200 and [r["name"] for r in data["runs"]] == ["second"]
    assert data["runs"][0]["metrics"] == {"accuracy": 0.9} and data["runs"][0]["params"] == {"C": 0.9}
    status, run = call(server, f"/runs/{data['runs'][0]['run_id']}")
    assert status == 200 and run["metric_history"]["accuracy"][0]["value"] == 0.9
    assert run["lineage"]["models"][0]["name"] == "churn"


def test_without_the_token_everything_is_refused(server):
    assert call(server, "/runs", token=None)[0] == 403
    status, _ = call(server, "/models/churn/aliases/production", "POST", {"version": 2}, token=None)
    assert status == 403
    assert mlops.get_model_version("churn@production").version == 1


# Each list of cases runs against one server: starting one per case was most of this file's time.
BAD_INPUT = [
    ("/runs/zzzz", 404, "no run with id, id prefix or name 'zzzz'"),
    ("/runs?filter=metrics.accuracy%20%3E", 400, "expected a number or a quoted string"),
    ("/runs?max_results=lots", 400, "max_results must be a whole number from 1 to 10,000"),
    ("/runs?max_results=%C2%B2", 400, "max_results must be a whole number from 1 to 10,000, got '²'"),
    ("/runs?max_results=99999999999999999999999", 400, "max_results must be a whole number from 1 to 10,000"),
    ("/runs?max_results=0", 400, "max_results must be a whole number"),
    ("/triggers/events?max_results=0", 400, "max_results must be a whole number"),
    ("/triggers/events?max_results=%C2%B2", 400, "max_results must be a whole number"),
    ("/models/nope", 404, "no model named 'nope'"),
    ("/models/churn/monitor", 404, "no predictions of 'churn' are logged yet (serve it with `mlops-nb serve churn`)"),
    ("/models/churn/monitor?window=soon", 400, "window 'soon' is a duration (30m, 1h, 1d, 1w)"),
    ("/models/churn/monitor?last=0", 400, "last must be a whole number from 1 to 1,000"),
]


def test_bad_input_is_a_4xx_json_error(server):
    for path, code, message in BAD_INPUT:
        status, data = call(server, path)
        assert status == code and message in data["error"] and "\n" not in data["error"], (path, status, data)


def test_monitor_gives_the_windows_of_a_served_models_log(server, home):
    import pandas as pd

    from mlops_nb.registry.predictions import PredictionLog

    log = PredictionLog(home, "churn")
    for k in range(3):
        log.add(ids=[f"{k}-{i}" for i in range(100)], version=1, features=pd.DataFrame({"x": range(100)}),
                predictions=[i % 2 for i in range(100)], latency_ms=2.0 + k)
        log.flush()
    mlops.log_feedback("churn", [f"0-{i}" for i in range(50)], [i % 2 for i in range(50)])
    status, data = call(server, "/models/churn/monitor?window=100")
    assert status == 200 and data["serving"] == 1 and data["total"] == 300 and data["labelled"] == 50
    assert [w["n"] for w in data["windows"]] == [100, 100, 100] and data["windows"][0]["metric"] == 1.0
    assert [w["p50_ms"] for w in data["windows"]] == [2.0, 3.0, 4.0] and data["metric"] == "accuracy"


@pytest.mark.backends  # the REST API on the SQLite file and on PostgreSQL
def test_promote_and_rollback_change_the_registry(server):
    status, data = call(server, "/models/churn/aliases/production", "POST", {"version": 2})
    assert status == 200 and data == {"name": "churn", "alias": "production", "version": 2, "previous": 1}
    assert mlops.get_model_version("churn@production").version == 2
    status, data = call(server, "/models/churn/aliases/production/rollback", "POST", {})
    assert status == 200 and data["version"] == 1
    assert mlops.get_model_version("churn@production").version == 1
    status, model = call(server, "/models/churn")
    assert [h["action"] for h in model["alias_history"]] == ["set", "set", "rollback"]
    assert call(server, "/models/churn/aliases/production", "POST", {"version": "two"})[0] == 400
    assert call(server, "/models/churn/aliases/production", "POST", {"version": 9})[0] == 404
    status, models = call(server, "/models")
    assert status == 200 and models["models"][0]["aliases"] == {"production": 1}


@pytest.mark.backends  # the REST API on the SQLite file and on PostgreSQL
def test_pipelines_start_a_run_and_show_its_steps(server, home):
    status, data = call(server, "/pipelines")
    assert status == 200 and data["pipelines"][0]["name"] == "churn-pipe"
    status, started = call(server, "/pipelines/churn-pipe/runs", "POST", {})
    assert status == 202 and started["run_id"]
    deadline = time.time() + 60
    while time.time() < deadline and mlops.get_run(started["run_id"]).status == "running":
        time.sleep(0.3)
    run = mlops.get_run(started["run_id"])
    assert run.status == "finished" and run.tags["trigger"] == "manual"
    status, data = call(server, "/pipelines")
    steps = data["pipelines"][0]["runs"][0]["steps"]
    assert steps[0]["step"] == "step" and steps[0]["state"] in ("ran", "cached")
    # The executed notebook, which lives in the hidden registry folder, as a read-only page.
    request = urllib.request.Request(f"{server}/mlops-nb/api/runs/{steps[0]['run_id']}/notebook",
                                     headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        page = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html")
        assert "script-src" not in response.headers["Content-Security-Policy"]  # no scripts run in it
    assert "log_metric" in page and "# Parameters" in page  # the step's cells, with papermill's injected one
    status, error = call(server, "/runs/first/notebook")
    assert status == 404 and "is not a pipeline step" in error["error"]
    assert call(server, "/pipelines/nope/runs", "POST", {})[0] == 404
    status, events = call(server, "/triggers/events")
    assert events["events"][0]["kind"] == "manual" and events["events"][0]["run_id"] == started["run_id"]
    status, triggers = call(server, "/triggers")
    assert status == 200 and triggers["triggers"][0]["description"] == "schedule '0 3 * * 1'"


def test_server_extension_is_enabled_on_install():
    done = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"], capture_output=True,
                          text=True, timeout=60)
    text = done.stdout + done.stderr
    assert "mlops_nb" in text and "enabled" in text and "mlops_nb 0.1.0 OK" in text.replace("\x1b[32m", "").replace(
        "\x1b[0m", "")


def test_lab_extension_is_installed_prebuilt():
    done = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True,
                          timeout=120)
    text = (done.stdout + done.stderr).replace("\x1b[32m", "").replace("\x1b[0m", "")
    assert "mlops-nb v0.1.0 enabled OK" in text


def test_a_cross_site_post_with_a_login_cookie_is_refused(lab_server):
    server = lab_server
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{server}/lab?token={TOKEN}", timeout=30)  # logs in: a session cookie, as a browser gets
    assert any(c.name.startswith("username") for c in jar)
    request = urllib.request.Request(f"{server}/mlops-nb/api/models/churn/aliases/production", method="POST",
                                     data=json.dumps({"version": 2}).encode(),
                                     headers={"Content-Type": "application/json", "Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(request, timeout=30)
    assert info.value.code in (403, 404)
    assert mlops.get_model_version("churn@production").version == 1
    status, _ = call(server, "/models", token=None)
    assert status == 403


def test_registries_below_the_root_can_be_picked(server, project, home):
    other = project / "other" / ".mlops"
    mlops.set_home(other)
    try:
        with mlops.start_run(experiment="elsewhere", name="other-run"):
            mlops.log_metric("m", 1.0)
    finally:
        mlops.set_home(None)
    status, data = call(server, "/registries")
    assert status == 200 and [r["id"] for r in data["registries"]] == ["$MLOPS_NB_HOME", "other"]  # the root's own first
    assert all(r["exists"] for r in data["registries"])
    status, runs = call(server, "/runs?registry=other")
    assert status == 200 and [r["name"] for r in runs["runs"]] == ["other-run"]
    status, runs = call(server, "/runs")
    assert "other-run" not in [r["name"] for r in runs["runs"]]
    status, error = call(server, "/runs?registry=..%2Fsomewhere")
    assert status == 404 and "no registry '../somewhere'" in error["error"]


def test_looking_at_a_folder_without_registry_creates_none(tmp_path):
    root = tmp_path / "empty-root"
    (root / "project" / "notebooks").mkdir(parents=True)  # a pipeline with triggers, never run
    write_notebook(root / "project" / "notebooks" / "s.ipynb", ["x = 1"], parameters="n = 1")
    (root / "project" / "pipeline.yaml").write_text("name: p\nsteps:\n  - name: s\n    notebook: notebooks/s.ipynb\n"
                                                    "triggers:\n  - schedule: \"0 3 * * 1\"\n")
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_NB_HOME"}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"))
    with running_server("jupyter_server", root, TOKEN, tmp_path / "server.log", env, ONLY_MLOPS_NB) as base:
        status, data = call(base, "/runs")
        assert status == 200 and data["runs"] == [] and "no mlops-nb registry in" in data["message"]
        assert call(base, "/models")[1]["models"] == [] and call(base, "/triggers/events")[1]["events"] == []
        status, triggers = call(base, "/triggers")
        assert status == 200 and triggers["triggers"][0]["state"] == "not evaluated yet"
        assert call(base, "/pipelines")[1]["pipelines"][0]["runs"] == []
        status, registries = call(base, "/registries")
        assert registries["registries"][0] == {"id": ".", "home": str(root / ".mlops"), "exists": False}
    assert not list(root.rglob(".mlops"))


def pipeline_runs():
    frame = mlops.search_runs()
    return frame[frame["kind"] == "pipeline"]


BAD_RUN_REQUESTS = [
    ({"params": [1]}, 'params is a list of "NAME=VALUE" or "STEP.NAME=VALUE" strings'),
    ({"params": "n=2"}, 'params is a list of "NAME=VALUE"'),
    ({"params": ["zz=1"]}, "no step of pipeline 'churn-pipe' declares a param 'zz'"),
    ({"force": "yes"}, "force is true or false"),
    ({"parms": ["n=2"]}, "unknown field(s) parms"),
]


def test_a_run_request_is_checked_before_anything_runs(server, home):
    for body, message in BAD_RUN_REQUESTS:
        status, data = call(server, "/pipelines/churn-pipe/runs", "POST", body)
        assert status == 400 and message in data["error"] and "\n" not in data["error"], (body, status, data)
        assert pipeline_runs().empty


def test_a_run_from_jupyterlab_keeps_its_overrides(server, home):
    status, started = call(server, "/pipelines/churn-pipe/runs", "POST", {"params": ["n=3"]})
    assert status == 202
    deadline = time.time() + 60
    while time.time() < deadline and mlops.get_run(started["run_id"]).status == "running":
        time.sleep(0.3)
    run = mlops.get_run(started["run_id"])
    assert run.status == "finished" and run.params["override.n"] == "3"
    assert run.tags["started_from"] == "jupyterlab"
    step = mlops.search_runs("params.n = 3 and tags.notebook = 'notebooks/step.ipynb'")
    assert len(step) == 1 and step.loc[0, "metrics.m"] == 3


def test_a_step_notebook_that_is_not_json_is_a_400(server, project, home):
    (project / "churn" / "notebooks" / "step.ipynb").write_text('{"cells": [')
    status, data = call(server, "/pipelines/churn-pipe/runs", "POST", {})
    assert status == 400 and "step.ipynb is not valid notebook JSON" in data["error"]
    assert pipeline_runs().empty


def test_the_executed_notebook_is_a_read_only_page(server, project, home):
    first = mlops.run_pipeline(project / "churn" / "pipeline.yaml")
    again = mlops.run_pipeline(project / "churn" / "pipeline.yaml")  # cached: its page is the run it reused
    assert first.ok and again.steps["step"].status == "cached"
    for step_run in (first.steps["step"].run_id, again.steps["step"].run_id):
        request = urllib.request.Request(f"{server}/mlops-nb/api/runs/{step_run}/notebook",
                                         headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            page = response.read().decode()
            assert response.headers["Content-Type"].startswith("text/html")
            policy = response.headers["Content-Security-Policy"]
        assert "script-src" not in policy and "default-src 'none'" in policy  # nothing in it runs
        assert "log_metric" in page and "# Parameters" in page and "mlops-nb: step" in page
    assert call(server, "/runs/first/notebook")[0] == 404
    status, error = call(server, "/runs/zzzz/notebook")
    assert status == 404 and "no run with id" in error["error"]
    assert call(server, f"/runs/{first.steps['step'].run_id}/notebook", token=None)[0] == 403


def page(base, run_id):
    request = urllib.request.Request(f"{base}/mlops-nb/api/runs/{run_id}/notebook",
                                     headers={"Authorization": f"token {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_executed_notebook_page_is_sanitised(server, project, home):
    write_notebook(project / "churn" / "notebooks" / "step.ipynb",
                   ['# md <meta http-equiv="refresh" content="0;url=https://elsewhere.example"> read on',
                    "from IPython.display import HTML\nHTML('<meta http-equiv=\"refresh\" content=\"0;url=https://x.example\">')"],
                   parameters="n = 1")
    result = mlops.run_pipeline(project / "churn" / "pipeline.yaml")
    assert result.ok
    status, html = page(server, result.steps["step"].run_id)
    assert status == 200 and "read on" in html
    assert not re.search(r"<meta[^>]*refresh", html, re.IGNORECASE)  # no tag that moves the reader's browser


def test_a_link_in_the_registry_is_not_served(server, project, home, tmp_path):
    result = mlops.run_pipeline(project / "churn" / "pipeline.yaml")
    executed = home / "runs" / result.run_id / "step.ipynb"
    outside = tmp_path / "secret.ipynb"
    write_notebook(outside, ["secret_value = 'outside the registry'"])
    executed.unlink()
    executed.symlink_to(outside)
    status, body = page(server, result.steps["step"].run_id)
    assert status == 404 and "outside the registry" not in body
    assert "is not a file of the registry" in json.loads(body)["error"]


def test_an_executed_notebook_that_is_not_json_is_a_4xx(server, project, home):
    result = mlops.run_pipeline(project / "churn" / "pipeline.yaml")
    (home / "runs" / result.run_id / "step.ipynb").write_text("{broken")
    status, body = page(server, result.steps["step"].run_id)
    assert status == 400 and "cannot be read" in json.loads(body)["error"]


def test_starting_a_run_never_stalls_the_server(server, home):
    import sqlite3

    mlops.search_runs()  # the registry exists
    blocker = sqlite3.connect(home / "registry.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock: the run cannot start yet
    try:
        status, started = call(server, "/pipelines/churn-pipe/runs", "POST", {})
        assert status == 202 and started["status"] == "starting" and started["run_id"] is None
        request = urllib.request.Request(f"{server}/api/status", headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:  # the server still answers
            assert response.status == 200
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    deadline = time.time() + 60
    while time.time() < deadline and (pipeline_runs().empty or "running" in set(pipeline_runs()["status"])):
        time.sleep(0.3)
    assert list(pipeline_runs()["status"]) == ["finished"]  # and then it ran


WRONG_SHAPES = [
    ("/models/churn/aliases/production", {"version": 2, "reason": {"why": 1}}, "reason is text"),
    ("/models/churn/aliases/production", {"version": 2, "reason": ["a"]}, "reason is text"),
    ("/models/churn/aliases/production", {"version": 2, "override": {"x": 1}}, "override is text"),
    ("/models/churn/aliases/production/rollback", {"reason": 5}, "reason is text"),
    ("/pipelines/churn-pipe/runs", {"params": [None]}, "params is a list of"),
    ("/pipelines/churn-pipe/runs", {"params": [{"x": 1}]}, "params is a list of"),
]


def test_bodies_of_the_wrong_shape_are_400s_that_change_nothing(server, home):
    for path, body, message in WRONG_SHAPES:
        status, data = call(server, path, "POST", body)
        assert status == 400 and message in data["error"] and "\n" not in data["error"], (path, body, data)
        assert mlops.get_model_version("churn@production").version == 1 and pipeline_runs().empty


def test_a_body_nested_too_deeply_is_a_400(server):
    deep = "[" * 100_000 + "]" * 100_000
    request = urllib.request.Request(f"{server}/mlops-nb/api/pipelines/churn-pipe/runs", method="POST",
                                     data=deep.encode(), headers={"Authorization": f"token {TOKEN}",
                                                                  "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400 and "nests too deeply" in json.loads(caught.value.read())["error"]


query_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filter_=st.one_of(query_text, st.sampled_from(["metrics.accuracy > 0.85", "(" * 40 + "status = 'x'" + ")" * 40,
                                                      " and ".join(["params.C = 1"] * 500), "metrics.accuracy > " +
                                                      "9" * 5000])),
       order_by=st.one_of(query_text, st.sampled_from(["metrics.accuracy desc", "name"])),
       max_results=st.one_of(query_text, st.integers(min_value=-10, max_value=10**25).map(str)),
       path=st.sampled_from(["/runs", "/triggers/events"]))
def test_any_query_gives_json_or_a_one_line_4xx(server, filter_, order_by, max_results, path):
    from urllib.parse import urlencode

    query = urlencode({"filter": filter_, "order_by": order_by, "max_results": max_results})
    status, data = call(server, f"{path}?{query}")
    assert status in (200, 400, 404), (status, data)
    if status != 200:
        assert isinstance(data, dict) and data["error"] and "\n" not in data["error"]


def raw(base, path, token=TOKEN):
    request = urllib.request.Request(f"{base}/mlops-nb/api{path}", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_a_runs_figures_tables_and_texts_are_served_for_the_dashboard(server):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import plotly.graph_objects as go

    fig, ax = plt.subplots()
    ax.plot([1, 2])
    with mlops.start_run(experiment="exp", name="media") as run:
        mlops.log_figure(fig, "plots/curve")
        mlops.log_figure(go.Figure(go.Bar(y=[1, 2])), "bars")
        mlops.log_table(pd.DataFrame({"n": range(60), "who": ["x"] * 60}), "rows")
        mlops.log_text("<script>alert(1)</script>", "notes.html")
    status, headers, body = raw(server, f"/runs/{run.id}/artifacts/plots/curve.png")
    assert status == 200 and headers["Content-Type"] == "image/png" and body[:4] == b"\x89PNG"
    status, table = call(server, f"/runs/{run.id}/artifacts/rows.parquet?view=table")
    assert status == 200 and table["n_rows"] == 60 and table["columns"] == ["n", "who"]
    assert len(table["rows"]) == 50 and table["rows"][0] == [0, "x"] and table["types"][0] == "int64"
    status, headers, body = raw(server, f"/runs/{run.id}/artifacts/notes.html")
    assert headers["Content-Type"].startswith("text/plain") and headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = raw(server, f"/runs/{run.id}/artifacts/bars.plotly.json?view=page")
    assert status == 200 and b"Plotly.newPlot" in body and "script-src 'unsafe-inline'" in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]  # plotly.js inline, nothing fetched
    status, error = call(server, f"/runs/{run.id}/artifacts/nothing.png")
    assert status == 404 and "has no artifact 'nothing.png'" in error["error"] and "rows.parquet" in error["error"]
    status, error = call(server, f"/runs/{run.id}/artifacts/plots/curve.png?view=table")
    assert status == 400 and error["error"].startswith("the artifact is not a table")
    status, model = call(server, "/models/churn")
    assert model["versions"][0]["datasets"] == [] and "run_name" in model["versions"][0]
