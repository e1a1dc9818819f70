"""Several processes, and processes that die: the registry keeps every flushed row and stays sound."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import mlops_nb as mlops
from mlops_nb.registry.store import Store, open_store
from tests.waiting import age

pytestmark = pytest.mark.slow


def spawn(code: str, home) -> subprocess.Popen:
    script = "import mlops_nb as mlops\nmlops.set_home(%r)\n" % str(home) + textwrap.dedent(code)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_four_writers_lose_nothing_and_never_see_locked(home):
    writer = """
        for r in range(20):
            with mlops.start_run(experiment="concurrent", name=f"r{r}"):
                for i in range(10_000):
                    mlops.log_metric("m", float(i))
    """
    procs = [spawn(writer, home) for _ in range(4)]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert "locked" not in err
    store = open_store(home)
    assert store.query_one("SELECT COUNT(*) FROM runs WHERE status = 'finished'")[0] == 80
    assert store.query_one("SELECT COUNT(*) FROM metrics")[0] == 800_000
    assert store.query_one("SELECT COUNT(*) FROM latest_metrics WHERE value = 9999.0")[0] == 80
    assert store.integrity_check() == "ok"


def test_killed_process_leaves_run_interrupted_with_flushed_metrics(home):
    proc = spawn("""
        import time
        run = mlops.start_run(name="doomed")
        for i in range(1000):
            run.log_metric("m", float(i))
        run.flush()
        for i in range(1000, 1500):
            run.log_metric("m", float(i))   # buffered, never flushed
        print(run.id, flush=True)
        time.sleep(120)
    """, home)
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    run = mlops.get_run(run_id)
    assert run.status == "interrupted"
    assert "ended without finishing" in run.error
    history = mlops.metric_history(run_id, "m")
    assert list(history["value"]) == [float(i) for i in range(1000)]
    assert open_store(home).integrity_check() == "ok"


def test_kills_during_writes_never_corrupt_the_registry_or_show_partial_artifacts(home):
    writer = """
        import os
        from mlops_nb import tracking
        tracking.run.FLUSH_ROWS = 50
        blob = os.urandom(4 << 20)
        print("ready", flush=True)
        while True:
            with mlops.start_run(experiment="killed") as run:
                for i in range(500):
                    mlops.log_metric("m", float(i))
                mlops.log_artifact(blob + os.urandom(16), "big.bin")
    """
    for delay in (0.3, 0.55, 0.8, 1.1):
        proc = spawn(writer, home)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    store = open_store(home)
    assert store.integrity_check() == "ok"
    assert mlops.search_runs("status = 'running'").empty
    blobs = [p for p in store.artifacts_dir.glob("??/*")]
    for blob in blobs:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.parent.name + blob.name
    recorded = store.query("SELECT sha256 FROM artifacts")
    for (sha,) in recorded:
        assert (store.artifacts_dir / sha[:2] / sha[2:]).exists()
    partial = list((store.artifacts_dir / "tmp").iterdir())
    age(*partial, seconds=2 * 3600)  # an hour later, the next process to open the registry sweeps them
    assert Store(home).artifacts_dir.joinpath("tmp").exists() and not list((store.artifacts_dir / "tmp").iterdir())


def test_normal_exit_without_end_saves_everything_as_finished(home):
    proc = spawn("""
        run = mlops.start_run(name="script")
        for i in range(5000):
            mlops.log_metric("m", float(i))
        print(run.id)
    """, home)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run = mlops.get_run(out.strip())
    assert run.status == "finished" and run.metrics == {"m": 4999.0}
    assert len(mlops.metric_history(run.id)) == 5000


def test_uncaught_exception_at_top_level_marks_run_failed(home):
    proc = spawn("""
        run = mlops.start_run(name="crashes")
        mlops.log_metric("m", 1.0)
        print(run.id, flush=True)
        raise RuntimeError("boom")
    """, home)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "RuntimeError: boom" in err
    run = mlops.get_run(out.strip())
    assert run.status == "failed" and run.metrics == {"m": 1.0}


def test_values_logged_before_a_long_silence_are_written_in_the_background(home):
    proc = spawn("""
        import time
        run = mlops.start_run(name="slow-fit")
        mlops.log_metric("epoch_loss", 0.5)   # then a long fit, with nothing logged
        print(run.id, flush=True)
        time.sleep(120)
    """, home)
    run_id = proc.stdout.readline().strip()
    try:
        deadline = time.time() + 10
        while time.time() < deadline and not mlops.get_run(run_id).metrics:
            time.sleep(0.2)
        assert mlops.get_run(run_id).metrics == {"epoch_loss": 0.5}
        assert mlops.get_run(run_id).status == "running"
    finally:
        proc.kill()
        proc.wait()
