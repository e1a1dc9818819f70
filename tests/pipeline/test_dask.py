"""Pipelines and sweeps on a real Dask cluster: worker processes on 127.0.0.1 running steps on their own kernels."""

import json

import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb import run_pipeline
from mlops_nb.cli import cli
from mlops_nb.registry.store import open_store

pytest.importorskip("distributed", reason="the Dask executor needs distributed: pip install -e '.[dask]'")
pytestmark = pytest.mark.slow


def recorded(home, result):
    """What each step run left in the registry, without what differs between any two runs (ids, times)."""
    store = open_store(home)
    out = {}
    for name, step in result.steps.items():
        run = mlops.get_run(step.run_id)
        outputs = dict(store.query("SELECT name, value FROM outputs WHERE run_id = ?", (step.run_id,)))
        key = store.query("SELECT cache_key FROM runs WHERE id = ?", (step.run_id,))[0][0]
        out[name] = {"params": run.params, "metrics": run.metrics, "outputs": outputs, "cache_key": key,
                     "notebook": sorted(a for a in json.dumps(run.artifacts).split('"') if a.endswith(".ipynb"))}
    return out


def test_the_same_pipeline_locally_and_on_dask_records_the_same(project, home, capsys):
    from mlops_nb.show.progress import LineProgress

    local = run_pipeline(params=["C=0.5"], jobs=2)
    assert local.ok
    on_dask = run_pipeline(params=["C=0.5"], jobs=2, executor="dask", force=True, progress=LineProgress())
    assert on_dask.ok, [s.failure.describe() for s in on_dask.steps.values() if s.failure]
    assert {s.status for s in on_dask.steps.values()} == {"ran"}
    assert recorded(home, on_dask) == recorded(home, local)
    assert mlops.get_run(on_dask.steps["train"].run_id).metrics == {"accuracy": 0.6}
    printed = capsys.readouterr().out
    assert "on Dask LocalCluster, 2 workers x 1 thread" in printed
    assert "dashboard http://127.0.0.1:" in printed
    assert "→ train on worker tcp://127.0.0.1:" in printed
    # Unchanged, it is cached on Dask as locally: nothing is sent to the cluster.
    again = run_pipeline(params=["C=0.5"], executor="dask")
    assert {s.status for s in again.steps.values()} == {"cached"}


def test_a_bad_executor_is_one_line_and_records_nothing(project, home):
    result = CliRunner().invoke(cli, ["run", "--executor", "dusk"])
    assert result.exit_code == 1, result.output
    assert "--executor (or MLOPS_NB_EXECUTOR): expected local, dask or a Dask scheduler's address tcp://HOST:PORT, got 'dusk'" in result.output
    result = CliRunner().invoke(cli, ["run", "--executor", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1 and "no Dask scheduler answers at tcp://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output
    assert open_store(home).query("SELECT COUNT(*) FROM runs") == [(0,)]


KILLED = """
import os, pathlib, time
marker = pathlib.Path('worker.pid')
if not marker.exists():             # the first attempt: say which worker runs it, then wait to be killed
    marker.write_text(str(os.getppid()))
    time.sleep(120)
import mlops_nb as mlops
mlops.log_metric('done', 1.0)
"""


def test_a_worker_killed_mid_step_is_one_retry_on_another_worker(project, home, scheduler, monkeypatch):
    import os
    import signal

    from tests.notebooks_util import write_notebook
    from tests.waiting import wait_for

    write_notebook(project / "notebooks" / "killed.ipynb", [KILLED], parameters="n = 1")
    (project / "pipeline.yaml").write_text("name: lost\nsteps:\n  - name: k\n    notebook: notebooks/killed.ipynb\n"
                                           "    retries: 1\n")
    monkeypatch.setenv("MLOPS_NB_EXECUTOR", scheduler)
    import threading
    killed = {}

    def kill_the_worker():
        pid = int(wait_for(lambda: (project / "worker.pid").exists() and (project / "worker.pid").read_text(),
                           "the step to start on a worker"))
        os.kill(pid, signal.SIGKILL)
        killed["pid"] = pid

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    result = CliRunner().invoke(cli, ["run"])
    killer.join()
    assert result.exit_code == 0, result.output
    assert killed and f"on Dask scheduler {scheduler}, 2 workers x 1 thread" in result.output
    assert "↻ k failed on attempt 1 (WorkerLost: Dask worker tcp://127.0.0.1:" in result.output
    run = mlops.get_run(open_store(home).query("SELECT id FROM runs WHERE kind = 'step'")[0][0])
    assert run.status == "finished" and run.metrics == {"done": 1.0} and run.tags["attempts"] == "2"
    assert run.tags["mlops.attempt.1.error"].startswith("WorkerLost: Dask worker tcp://127.0.0.1:")
    assert "was lost while running the step" in run.tags["mlops.attempt.1.error"]


def test_a_sweep_and_a_timeout_on_the_scheduler_behave_as_locally(project, home, scheduler):
    (project / "data" / "prepared.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    sweep = mlops.sweep("notebooks/train.ipynb", {"C": [0.1, 2.0, 5.0]}, project=project, executor=scheduler)
    assert sweep.ok, [s.failure.describe() for s in sweep.result.steps.values() if s.failure]
    assert [p["params"] for p in sweep.points] == [{"C": 0.1}, {"C": 2.0}, {"C": 5.0}]
    assert sweep.best["params"] == {"C": 5.0}
    from tests.notebooks_util import write_notebook

    write_notebook(project / "notebooks" / "hang.ipynb", ["import time\ntime.sleep(60)"], parameters="n = 1")
    (project / "pipeline.yaml").write_text("name: hang\nsteps:\n  - name: h\n    notebook: notebooks/hang.ipynb\n"
                                           "    timeout: {cell: 2, step: 60}\n")
    result = run_pipeline(executor=scheduler)
    assert result.status == "failed" and result.steps["h"].failure.ename == "Timeout"
    assert "timed out (2 s per cell)" in result.steps["h"].failure.message
    assert "time.sleep(60)" in (result.steps["h"].failure.source or "")


def test_sigterm_on_dask_stops_the_workers_kernel_and_marks_runs_interrupted(project, home, scheduler):
    import os
    import signal
    import subprocess
    import sys

    from tests.notebooks_util import write_notebook
    from tests.waiting import wait_for

    write_notebook(project / "notebooks" / "hang.ipynb",
                   ["import os, pathlib, time\npathlib.Path('kernel.pid').write_text(str(os.getpid()))\n"
                    "time.sleep(60)"], parameters="n = 1")
    (project / "pipeline.yaml").write_text("name: stop\nsteps:\n  - name: h\n    notebook: notebooks/hang.ipynb\n")
    proc = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "run", "--quiet", "--executor", scheduler],
                            cwd=project, env=dict(os.environ, MLOPS_NB_HOME=str(home)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    pid = int(wait_for(lambda: (project / "kernel.pid").exists() and (project / "kernel.pid").read_text(),
                       "the step's cell to start on a worker"))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert dict(open_store(home).query("SELECT kind, status FROM runs")) == {"pipeline": "interrupted",
                                                                              "step": "interrupted"}

    def gone():
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    wait_for(gone, "the worker's kernel to be stopped", timeout=30)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite: every other test here
def test_workers_write_to_the_team_registry(project, home, backend, scheduler):
    """On PostgreSQL the workers' kernels write to the team registry directly (told by MLOPS_NB_REGISTRY)."""
    result = run_pipeline(params=["C=0.5"], executor=scheduler)
    assert result.ok, [s.failure.describe() for s in result.steps.values() if s.failure]
    store = open_store(home)
    assert store.backend == backend
    assert mlops.get_run(result.steps["train"].run_id).metrics == {"accuracy": 0.6}
    passed = store.query("SELECT value FROM outputs WHERE run_id = ? AND name = 'passed'",
                         (result.steps["evaluate"].run_id,))
    assert passed == [("true",)]
