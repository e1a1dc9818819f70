"""mlops-nb serve: a real uvicorn server on 127.0.0.1, real HTTP, the real registry."""

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlops_nb as mlops
from tests.jupyter_util import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def train(C: float, seed: int):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"age": rng.integers(18, 80, 300), "charges": rng.normal(50, 20, 300),
                      "calls": rng.integers(0, 8, 300)})
    y = ((X["charges"] / 20 + X["calls"] - X["age"] / 30 + rng.normal(0, 1, 300)) > 2).astype(int)
    with mlops.start_run() as run:
        mlops.log_model(LogisticRegression(C=C, max_iter=500).fit(X, y), "model", X=X)
    return mlops.register_model(run, "churn"), X


@pytest.fixture
def registry(home):
    first, X = train(1.0, 0)
    second, _ = train(0.001, 1)
    mlops.set_alias("churn", first.version, "production")
    return {"X": X, "versions": (first.version, second.version)}


def start_server(home, tmp_path):
    """`mlops-nb serve churn` on a free port: (its URL, its process), once it answers /ping."""
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "--home", str(home), "serve", "churn",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/ping", timeout=2)
            return base, proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError((tmp_path / "serve.log").read_text())
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not answer /ping within 60 s")


@pytest.fixture
def server(registry, home, tmp_path):
    base, proc = start_server(home, tmp_path)
    yield base
    proc.terminate()
    proc.wait(timeout=30)


def post(base, path, body, raw: bytes | None = None):
    request = urllib.request.Request(f"{base}{path}", method="POST", headers={"Content-Type": "application/json"},
                                     data=raw if raw is not None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_each_mlflow_form_gets_the_models_own_predictions(server, registry):
    X = registry["X"].head(5)
    expected = mlops.load_model("churn@production").predict(X).tolist()
    records = X.to_dict(orient="records")
    forms = [{"dataframe_split": {"columns": list(X.columns), "data": X.values.tolist()}},
             {"dataframe_records": records}, {"instances": records}, {"instances": X.values.tolist()},
             {"inputs": {c: X[c].tolist() for c in X.columns}}, {"inputs": records}]
    for body in forms:
        status, answer = post(server, "/invocations", body)
        assert status == 200, (body, answer)
        assert answer["predictions"] == expected and len(set(answer["ids"])) == 5
        assert answer["model"] == {"name": "churn", "version": registry["versions"][0]}
    status, answer = post(server, "/predict", records)
    assert status == 200 and answer["predictions"] == expected
    with urllib.request.urlopen(f"{server}/health", timeout=10) as response:
        health = json.loads(response.read())
    assert (health["model"], health["alias"], health["version"]) == ("churn", "production", registry["versions"][0])


# One server for all the cases: starting one per case was most of this test's time.
BAD_REQUESTS = [
    ({"dataframe_records": [{"age": 30, "charges": 50.0}]}, 422, "calls (missing column)"),
    ({"dataframe_records": [{"age": 30, "charges": 50.0, "calls": 1, "plan": "pro"}]}, 422, "plan (unknown column"),
    ({"dataframe_records": [{"age": "thirty", "charges": 50.0, "calls": 1}]}, 422, "age (expected a number (int64), got 'thirty')"),
    ({"dataframe_records": [{"age": True, "charges": 50.0, "calls": 1}]}, 422, "expected a number"),
    ({"records": []}, 400, "names exactly one of"),
    ({"dataframe_records": [], "instances": []}, 400, "names exactly one of"),
    ({"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}}, 400, "every row needs 1 values"),
    ({"dataframe_records": []}, 400, "no rows to score"),
]


def test_a_bad_request_is_a_4xx_naming_what_is_wrong(server, registry):
    for body, status, message in BAD_REQUESTS:
        code, answer = post(server, "/invocations", body)
        assert code == status and message in answer["error"] and "\n" not in answer["error"], (body, answer)
        if status == 422:
            assert answer["fields"]
        ok, _ = post(server, "/invocations", {"dataframe_records": registry["X"].head(1).to_dict(orient="records")})
        assert ok == 200  # and it keeps serving


def test_not_json_and_too_big_are_refused(server):
    from urllib.parse import urlparse

    assert post(server, "/invocations", None, raw=b"{not json")[0] == 400
    where = urlparse(server)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    connection.putrequest("POST", "/invocations")  # a body announced at 20 MiB is refused before it is read
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(20 * 2**20))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "over 16 MiB" in json.loads(response.read())["error"]
    connection.close()


def test_promotion_during_traffic_switches_versions_at_one_point_and_fails_nothing(server, registry):
    row = {"dataframe_records": registry["X"].head(1).to_dict(orient="records")}
    first, second = registry["versions"]
    seen, failures, stop = [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            status, answer = post(server, "/invocations", row)
            (seen if status == 200 else failures).append(answer["model"]["version"] if status == 200 else answer)

    threads = [threading.Thread(target=traffic) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    mlops.set_alias("churn", second, "production", reason="test: promotion under traffic")
    deadline = time.time() + 20
    while time.time() < deadline and (not seen or seen[-1] != second):
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures and seen[0] == first and seen[-1] == second
    switch = seen.index(second)
    assert all(v == first for v in seen[:switch]) and all(v == second for v in seen[switch:])


def test_a_version_that_does_not_load_is_not_swapped_in(server, registry, home, tmp_path):
    from mlops_nb.registry.artifacts import blob_path

    first, second = registry["versions"]
    path = blob_path(home / "artifacts", mlops.get_model_version(f"churn/{second}").sha256)
    path.write_bytes(b"tampered")  # its sha256 no longer matches
    mlops.set_alias("churn", second, "production", reason="test: a broken version")
    row = {"dataframe_records": registry["X"].head(1).to_dict(orient="records")}
    deadline = time.time() + 3
    while time.time() < deadline:  # the follower looks every second: it must keep the old version
        status, answer = post(server, "/invocations", row)
        assert status == 200 and answer["model"]["version"] == first
        time.sleep(0.2)
    logged = (tmp_path / "serve.log").read_text()
    assert f"churn/{second} not swapped in, churn/{first} keeps serving: artifact" in logged


def test_every_prediction_is_logged_with_its_features_and_version(server, registry):
    X = registry["X"].head(4)
    status, answer = post(server, "/invocations", {"dataframe_records": X.to_dict(orient="records")})
    assert status == 200
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            logged = mlops.predictions("churn")
            break
        except mlops.MlopsError:
            time.sleep(0.3)
    assert list(logged["id"]) == answer["ids"] and list(logged["prediction"]) == answer["predictions"]
    assert list(logged["feature.age"]) == X["age"].tolist() and set(logged["version"]) == {registry["versions"][0]}
    assert (logged["latency_ms"] > 0).all() and len(logged["proba"].iloc[0]) == 2


def test_a_killed_server_keeps_every_flushed_prediction_readable(registry, home, tmp_path):
    import signal

    base, proc = start_server(home, tmp_path)
    row = {"dataframe_records": registry["X"].head(2).to_dict(orient="records")}
    acknowledged, stop = [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                status, answer = post(base, "/invocations", row)
            except (OSError, http.client.HTTPException):  # IncompleteRead: killed between headers and body
                return  # the server is gone
            if status == 200:
                acknowledged.append((time.time(), answer["ids"]))

    threads = [threading.Thread(target=traffic) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    cutoff = time.time()

    def flushed_since_cutoff():
        return [p for p in (home / "predictions" / "churn").glob("date=*/part-*.parquet") if p.stat().st_mtime > cutoff]

    # Two files written after the cutoff: the second flush began after it (one flush at a time), so it holds
    # everything answered before the cutoff; under load a flush may come later than its interval.
    wait_for(lambda: len(flushed_since_cutoff()) >= 2, "two flushes of the log after the cutoff")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    logged = set(mlops.predictions("churn")["id"])  # reads every partition; none is half-written
    before = [i for at, ids in acknowledged if at < cutoff for i in ids]
    assert before and set(before) <= logged


def test_feedback_over_http_names_the_predictions_it_labels(server, registry):
    status, answer = post(server, "/invocations", {"dataframe_records": registry["X"].head(3).to_dict(orient="records")})
    assert status == 200
    status, result = post(server, "/feedback", {"ids": answer["ids"][:2] + ["nope"], "labels": [1, 0, 1]})
    assert status == 200 and result == {"stored": 2, "unknown": ["nope"]}
    assert post(server, "/feedback", {"ids": ["a"]})[0] == 400
    assert post(server, "/feedback", {"ids": ["a", "b"], "labels": [1]})[0] == 422
    frame = mlops.predictions("churn").set_index("id")
    assert list(frame.loc[answer["ids"], "label"]) == [1, 0, None]
