"""notify: in pipeline.yaml: each event kind reaches a real HTTP server on 127.0.0.1, with retries recorded."""

import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb.pipeline.notify import parse_notify
from mlops_nb.pipeline.spec import SpecError
from mlops_nb.registry import notifications
from mlops_nb.registry.store import open_store
from mlops_nb.triggers.check import check_pipeline
from tests.notebooks_util import write_notebook
from tests.waiting import age, wait_for

TRAIN = """
import numpy as np, pandas as pd, mlops_nb as mlops
from sklearn.linear_model import LogisticRegression
if boom:
    raise RuntimeError("boom: asked to fail")
rng = np.random.default_rng(seed)
X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
y = (X.a + 0.3 * rng.normal(size=200) > 0).astype(int)
mlops.log_model(LogisticRegression().fit(X, y), "model", X=X)
mlops.output("model_version", mlops.register_model(mlops.active_run(), "m").version)
"""

GATE = """
import numpy as np, pandas as pd, mlops_nb as mlops
version = mlops.input("model_version")
rng = np.random.default_rng(1)
test = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
test["y"] = (test.a > 0).astype(int)
try:
    mlops.get_model_version("m@production")
    baseline = "production"
except mlops.MlopsError:
    baseline = None
decision = mlops.gate(f"m/{version}", baseline, test, {"accuracy": {"min": min_accuracy}}, target="y")
if decision.passed:
    mlops.promote("m", version)
"""

PIPELINE = """
name: notified
steps:
  - name: train
    notebook: train.ipynb
    inputs: ["data/*.csv"]
  - name: gate
    notebook: gate.ipynb
    inputs: [train]
triggers:
  - new_data: {paths: ["data/*.csv"], settle: 0}
"""


class Hooks:
    """A webhook receiver: records each POST; /flaky answers 500 twice, then 200."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        self.flaky = 0
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hooks.received.append((self.path, body))
                status = 200
                if self.path == "/flaky":
                    hooks.flaky += 1
                    status = 500 if hooks.flaky <= 2 else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kinds(self, path):
        return [body["event"] for p, body in self.received if p == path]


@pytest.fixture
def hooks():
    server = Hooks()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def notified(tmp_path, home, monkeypatch):
    root = tmp_path / "notified"
    (root / "data").mkdir(parents=True)
    (root / "data" / "batch-1.csv").write_text("a\n1\n")
    write_notebook(root / "train.ipynb", [TRAIN], parameters="boom = False\nseed = 0")
    write_notebook(root / "gate.ipynb", [GATE], parameters="min_accuracy = 0.6")
    (root / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE))
    monkeypatch.chdir(root)
    return root


def _notify(root, text):
    (root / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE) + textwrap.dedent(text))


@pytest.mark.slow
def test_each_event_kind_reaches_its_webhook_once_with_run_reason_and_verdict(notified, home, hooks):
    first = mlops.run_pipeline()          # m/1 promoted before anything listens
    assert first.ok, [s.failure.describe() for s in first.steps.values() if s.failure]
    check_pipeline(run=False)             # the new_data trigger's baseline
    events = ("fired", "failed", "gate_failed", "promoted", "rolled_back")
    _notify(notified, "notify:\n" + "".join(f"  - {{webhook: '{hooks.url}/{e}', on: [{e}]}}\n" for e in events))

    (notified / "data" / "batch-2.csv").write_text("a\n2\n")
    age(notified / "data" / "batch-2.csv")
    fired = check_pipeline()              # fired -> retrain -> gate passes -> m/2 promoted
    assert [r.ok for r in fired.runs] == [True]
    refused = mlops.run_pipeline(params=["gate.min_accuracy=1.1"], force=True)  # m/3: the gate refuses it
    broken = mlops.run_pipeline(params=["train.boom=True"], force=True)         # the run fails
    assert refused.ok and not broken.ok
    rolled = CliRunner().invoke(cli, ["models", "rollback", "m"])                 # m@production back to 1
    assert rolled.exit_code == 0, rolled.output
    wait_for(lambda: hooks.kinds("/fired"), "the fired notification", timeout=10)  # sent on its own thread

    for event in events:
        assert hooks.kinds(f"/{event}") == [event], (event, hooks.received)
    body = {p[1:]: b for p, b in hooks.received}
    assert body["fired"]["run_id"] == fired.runs[0].run_id and "new file" in body["fired"]["reason"]
    assert body["fired"]["kinds"] == ["new_data"]
    assert body["promoted"]["run_id"] == fired.runs[0].run_id
    assert body["promoted"]["reason"] == "m@production now points at version 2 (was version 1)"
    assert body["promoted"]["verdict"]["passed"] is True and body["promoted"]["verdict"]["model"] == "m/2"
    assert body["gate_failed"]["run_id"] == refused.run_id
    assert body["gate_failed"]["verdict"] == {"model": "m/3", "passed": False, "baseline_version": 2,
                                              "failed_rules": body["gate_failed"]["verdict"]["failed_rules"]}
    assert "accuracy" in body["gate_failed"]["verdict"]["failed_rules"][0]
    assert body["gate_failed"]["reason"].startswith("the gate refused m/3: accuracy")
    assert body["failed"]["run_id"] == broken.run_id and "boom: asked to fail" in body["failed"]["reason"]
    assert body["failed"]["failed_steps"] == ["train"]
    assert body["rolled_back"]["reason"] == "m@production rolled back to version 1 (was version 2)"
    assert body["rolled_back"]["run_id"] == first.steps["train"].run_id   # the run that trained m/1
    recorded = wait_for(lambda: [r for r in notifications.history(open_store(home), "notified")
                                 if len(notifications.history(open_store(home), "notified")) == 5], "5 records")
    assert sorted(r["event"] for r in recorded) == sorted(events)
    assert all(r["status"] == "sent" and len(r["attempts"]) == 1 for r in recorded)


@pytest.mark.slow
def test_a_flaky_webhook_gets_three_attempts_and_a_dead_one_never_fails_the_run(notified, home, hooks, tmp_path):
    out = tmp_path / "events.txt"
    _notify(notified, f"""
        notify:
          - {{webhook: '{hooks.url}/flaky', on: [promoted], backoff: 0.05}}
          - {{webhook: 'http://127.0.0.1:9/nobody', retries: 1, backoff: 0.01, timeout: 2}}
          - {{command: 'echo "$MLOPS_NB_EVENT_EVENT $MLOPS_NB_EVENT_RUN_ID $MLOPS_NB_EVENT_VERSION" >> {out}', on: [promoted]}}
          - {{webhook: '{hooks.url}/slack', format: slack, on: [promoted]}}
    """)
    result = mlops.run_pipeline()
    assert result.ok
    assert hooks.kinds("/flaky") == ["promoted"] * 3
    recorded = {r["target"]: r for r in notifications.history(open_store(home), "notified")}
    flaky = recorded[f"webhook: {hooks.url}/flaky"]
    assert flaky["status"] == "sent" and [a["status"] for a in flaky["attempts"]] == [500, 500, 200]
    assert flaky["attempts"][0]["error"] == "HTTP 500 Internal Server Error" and flaky["attempts"][2]["error"] is None
    dead = recorded["webhook: http://127.0.0.1:9/nobody"]
    assert dead["status"] == "failed" and len(dead["attempts"]) == 2 and dead["event"] == "promoted"
    assert "ConnectionRefusedError" in dead["attempts"][0]["error"] or "URLError" in dead["attempts"][0]["error"]
    assert out.read_text().split() == ["promoted", result.run_id, "1"]
    slack = next(b for p, b in hooks.received if p == "/slack")
    assert slack["text"].startswith("*mlops-nb: notified: a model was promoted*")
    listed = CliRunner().invoke(cli, ["notifications", "--pipeline", "notified"])
    assert listed.exit_code == 0 and "failed" in listed.output and "sent" in listed.output


def test_notify_entries_are_checked_with_one_line_errors():
    good = parse_notify([{"webhook": "https://example.com/h", "on": ["failed"]}, {"command": "true"}], "p.yaml")
    assert good[0].on == ("failed",) and len(good[1].on) == 5
    assert good[0].label == "webhook: https://example.com/h"
    hidden = parse_notify([{"webhook": "https://u:secret@hooks.slack.com/services/T0/B0/XXXXXXXXXXXXXXXX?k=1"}], "p")
    assert "secret" not in hidden[0].label and "XXXX" not in hidden[0].label and "k=1" not in hidden[0].label
    for entry, message in [
        ({"webhook": "https://x/h", "on": ["exploded"]}, "'exploded' is not an event; the events are fired, failed"),
        ({"webhook": "https://x/h", "command": "true"}, "give exactly one of webhook: URL or command"),
        ({"webhook": "ftp://x/h"}, "field 'webhook': expected an http:// or https:// URL"),
        ({"webhook": "https://x/h", "format": "discord"}, "field 'format': expected one of json, slack, teams"),
        ({"command": "true", "retries": -1}, "field 'retries': expected a whole number from 0 to 10"),
        ({"webhok": "https://x/h"}, "unknown field 'webhok'"),
    ]:
        with pytest.raises(SpecError) as caught:
            parse_notify([entry], "pipeline.yaml")
        assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
        assert str(caught.value).startswith("pipeline.yaml: notify entry 1")
