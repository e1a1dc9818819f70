"""The demo behind `make demo`: from notebooks to a model that retrains itself, in one sitting.

1. scaffold a project from the tabular-classification template (synthetic data);
2. run its pipeline: validate the data, train, gate, promote version 1;
3. a batch arrives whose distribution has shifted: the drift trigger retrains, the gate decides;
4. customers change why they leave: the monitor's score falls, the performance trigger retrains;
5. the registry explains why; a rollback is one command.
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
    write_batch(root / "data" / "incoming" / "batch-003.csv", n_rows=3000, seed=3, shift=0.5, concept=1.0)
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

    elapsed = time.perf_counter() - started
    tools = os.path.relpath(Path(sys.executable).parent, root)
    out.print(f"\nDone in {elapsed:.0f} s. Reports: {root / 'reports' / 'drift.html'}, "
              f"{root / 'reports' / 'gate.html'}\nExecuted notebooks: {home / 'runs'}/<run>/<step>.ipynb\n"
              f"Look around:  cd {root} && {tools}/mlops-nb runs ls\n"
              f"In JupyterLab: cd {root} && {tools}/jupyter lab   (the mlops tab of the left sidebar)")
    return {"root": root, "home": home, "runs": [first.run_id, second.run_id, third.run_id], "production": production,
            "decision": decision, "events": events, "seconds": elapsed}


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
