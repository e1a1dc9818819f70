"""The demo behind `make demo`: from notebooks to a model that retrains itself, in one sitting.

1. scaffold a project from the tabular-classification template (synthetic data);
2. run its pipeline: validate the data, train, gate, promote version 1;
3. a batch arrives whose distribution has shifted: the drift trigger retrains, the gate decides;
4. customers change why they leave: the monitor's score falls, the performance trigger retrains;
5. the registry explains why; a rollback is one command;
6. the production model is served; customers change back, and the service's own accuracy, from
   labels that come back late, retrains it; the service switches to the new version unrestarted.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path


def run_demo(directory: str | Path = "demo") -> dict:
    """Run the demo in ``directory`` (recreated each time); return what it made, for the tests."""
    import mlops_nb as mlops
    from mlops_nb.show import terminal
    from mlops_nb.show.progress import LineProgress
    from mlops_nb.registry import gates, models, runs
    from mlops_nb.registry import triggers as trigger_store
    from mlops_nb.project.scaffold import init_project, write_batch
    from mlops_nb.triggers.check import check_pipeline

    out = terminal.console()
    started = time.perf_counter()
    root = Path(directory).resolve()
    if root.exists():
        if not (root / "pipeline.yaml").exists() and any(root.iterdir()):
            raise mlops.MlopsError(f"{root} exists and is not a demo project; choose another folder")
        shutil.rmtree(root)
    init_project(root)
    home = root / ".mlops"
    mlops.set_home(home)
    progress = LineProgress()
    out.print(f"[bold]mlops-nb demo[/] in {root}\n")

    out.print("[bold]1. The project[/]: pipeline.yaml chains five notebooks (extract, validate, prepare, train, gate); "
              "a first batch of customers is in data/incoming/")
    out.print("[bold]2. First run[/]: the data becomes the schema and drift reference; version 1 is trained, "
              "gated and promoted")
    first = mlops.run_pipeline(root / "pipeline.yaml", progress=progress)
    _require(first)
    store = mlops.tracking.get_store()
    time.sleep(1.1)  # let the first batch settle, so it is part of the triggers' baseline
    check_pipeline(root / "pipeline.yaml", home=home)  # the triggers take their baselines
    out.print(f"   churn@production -> version {models.alias_version(store, 'churn', 'production')}\n")

    out.print("[bold]3. A shifted batch arrives[/]: older customers on pricier plans, calling support more")
    write_batch(root / "data" / "incoming" / "batch-002.csv", n_rows=3000, seed=2, shift=1.0)
    time.sleep(2.0)  # the triggers wait for files to settle (1 s)
    out.print("   mlops-nb triggers check (what cron or `mlops-nb watch` runs):")
    second = _check_and_run(root, home, progress, out)
    decision = gates.latest_decision(store, "churn", 2)
    verdict = "passed: promoted" if decision["passed"] else "failed: production keeps version 1"
    out.print(f"   the gate compared churn/2 with churn/1 on the new test data ({verdict})")
    for rule in decision["results"]:
        out.print(f"     {'ok  ' if rule['passed'] else 'FAIL'} {rule['detail']}", markup=False)
    out.print("   why each step ran or was reused:")
    for step in second.steps.values():
        out.print(f"     {step.name:<9} {step.status:<7} {step.reason}", markup=False, highlight=False)

    out.print("\n[bold]4. The customers change why they leave[/]: they look like the data production was trained "
              "on (no drift), but the model is wrong more often")
    write_batch(root / "data" / "incoming" / "batch-003.csv", n_rows=3000, seed=3, shift=1.0, concept=1.0)
    monitor = mlops.run_pipeline(root / "monitor.yaml")  # what `mlops-nb watch` checks first: the monitor
    _require(monitor)
    accuracy = runs.get_run(store, monitor.steps["monitor"].run_id).metrics.get("accuracy")
    out.print(f"   monitor.yaml scored churn@production on the newest batch: accuracy {accuracy:.3f}")
    time.sleep(2.0)
    third = _check_and_run(root, home, progress, out)
    retrained = gates.latest_decision(store, "churn", models.list_versions(store, "churn")[-1].version)
    production = models.alias_version(store, "churn", "production")
    out.print(f"   the retrained model's gate {'passed' if retrained['passed'] else 'failed'}: churn@production -> "
              f"version {production}")

    out.print("\n[bold]5. Why did the model change?[/] (mlops-nb triggers history)")
    events = trigger_store.history(store, "churn", 6)
    terminal.events_table(events, out)
    if len(models.alias_history(store, "churn", "production")) > 1:
        back = mlops.rollback("churn", reason="demo: one-command rollback")
        out.print(f"A bad model is rolled back in one command: mlops.rollback('churn') -> version {back.version}; "
                  f"the demo puts version {production} back")
        mlops.set_alias("churn", production, "production", reason="demo: restore")

    served = _serve_and_close_the_loop(root, home, progress, out)

    elapsed = time.perf_counter() - started
    tools = os.path.relpath(Path(sys.executable).parent, root)
    out.print(f"\nDone in {elapsed:.0f} s. Reports: {root / 'reports' / 'drift.html'}, "
              f"{root / 'reports' / 'gate.html'}\nExecuted notebooks: {home / 'runs'}/<run>/<step>.ipynb\n"
              f"Look around:  cd {root} && {tools}/mlops-nb runs ls   (and: models show churn, triggers history, "
              f"monitor churn --window 600)\n"
              f"In JupyterLab: cd {root} && {tools}/jupyter lab   (the mlops tab of the left sidebar)")
    return {"root": root, "home": home, "runs": [first.run_id, second.run_id, third.run_id], "production": production,
            "decision": decision, "events": events, "seconds": elapsed, "served": served}


def _serve_and_close_the_loop(root: Path, home: Path, progress, out) -> dict | None:
    """Step 6: `mlops-nb serve churn` in its own process, traffic over HTTP, late labels, the live
    performance trigger, the retraining, the gate, and the running service answering with the new version."""
    import json
    import subprocess

    import mlops_nb as mlops
    from mlops_nb.monitoring.monitor import monitor
    from mlops_nb.project.traffic import send_labels, send_traffic
    from mlops_nb.registry import gates, models, outputs
    from mlops_nb.show import terminal

    from importlib.util import find_spec

    missing = [name for name in ("starlette", "uvicorn", "pyarrow", "orjson") if find_spec(name) is None]
    if missing:
        out.print(f"\n[bold]6. The model in service[/] needs the serve extra ({', '.join(missing)} missing): "
                  "pip install 'mlops-nb[serve]', then run the demo again")
        return None
    store = mlops.tracking.get_store()
    serving = models.alias_version(store, "churn", "production")
    out.print(f"\n[bold]6. The model in service[/]: mlops-nb serve churn (version {serving}), in its own process")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(root / "reports" / "serve.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "--home", str(home), "serve", "churn",
                                   "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: _health(url), 60, "the prediction service did not start (see reports/serve.log)")
        out.print("   customers behave as they did before the change again (in requests of 20 rows over HTTP)")
        traffic = send_traffic(url, n_rows=3000, seed=11, shift=1.0, concept=0.0)
        out.print(f"   {len(traffic.ids):,} predictions by version {serving}; its accuracy on them is "
                  f"{traffic.accuracy:.2f}, but the service cannot know that yet")
        send_labels(url, traffic.ids[:150], traffic.truth[:150])
        waiting = check_quietly(root, home)
        out.print(f"   the first 150 labels come back: performance#5 waits ({waiting.notes['performance#5']})")
        send_labels(url, traffic.ids[150:2600], traffic.truth[150:2600])
        out.print("   2,450 more labels come back, a day later in life:")
        run = _check_and_run(root, home, progress, out)
        decision = gates.latest_decision(store, "churn", models.list_versions(store, "churn")[-1].version)
        production = models.alias_version(store, "churn", "production")
        rows = json.loads(outputs.get_output(store, run.steps["extract"].run_id, "rows")["value"])
        out.print(f"   retrained on the newest {rows:,} rows, the labelled predictions among them; the gate {'passed' if decision['passed'] else 'failed'}: churn@production "
                  f"-> version {production}")
        switched = _wait_for(lambda: _health(url)["version"] == production and _health(url), 30,
                             "the service did not switch to the new version")
        after = send_traffic(url, n_rows=600, seed=12, shift=1.0, concept=0.0)
        send_labels(url, after.ids, after.truth)
        out.print(f"   the running service switched to version {switched['version']} without a restart: "
                  f"accuracy {after.accuracy:.2f} on the next {len(after.ids)} customers")
        out.print("   mlops-nb monitor churn --window 600:")
        found = monitor(store, "churn", window=600)
        terminal.monitor_table(found, out)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"before": serving, "after": production, "switched": switched["version"], "accuracy_before":
            traffic.accuracy, "accuracy_after": after.accuracy, "decision": decision, "run": run.run_id,
            "monitor": found}


def check_quietly(root: Path, home: Path):
    from mlops_nb.triggers.check import check_pipeline

    return check_pipeline(root / "pipeline.yaml", run=False, home=home)


def _health(url: str) -> dict | None:
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


def _wait_for(probe, seconds: float, failure: str):
    from mlops_nb.errors import MlopsError

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise MlopsError(failure)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check_and_run(root: Path, home: Path, progress, out):
    """What fired (said before the run it starts), then the one run for every pending firing."""
    from mlops_nb.pipeline.runner import RunOptions
    from mlops_nb.triggers.check import check_pipeline

    seen = check_pipeline(root / "pipeline.yaml", run=False, home=home)
    for firing in seen.fired:
        out.print(f"   [bold]{firing.trigger.key}[/] fired: {firing.reason}", markup=True, highlight=False)
    result = check_pipeline(root / "pipeline.yaml", options=RunOptions(progress=progress), home=home)
    run = result.runs[0] if result.runs else None
    _require(run)
    return run


def _require(result) -> None:
    from mlops_nb.errors import MlopsError

    if result is None:
        raise MlopsError("the triggers did not start a run")
    if not result.ok:
        failures = [s.failure.describe() for s in result.steps.values() if s.failure]
        raise MlopsError("the demo pipeline failed: " + " | ".join(failures))
