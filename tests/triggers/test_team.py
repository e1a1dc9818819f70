"""Two working copies of one project (two people, or a laptop and a server) check its triggers against one
PostgreSQL registry: the pipeline runs once at a time across them, and a holder that dies frees it at once."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mlops_nb.registry.postgres import PostgresStore
from mlops_nb.registry.store import forget_stores
from tests.notebooks_util import write_notebook
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

STEP = ["import pathlib, time\npathlib.Path('started').touch()\n"
        "while not pathlib.Path('release').exists():\n    time.sleep(0.1)"]


def make_copy(root, registry):
    (root / "notebooks").mkdir(parents=True)
    (root / "data" / "incoming").mkdir(parents=True)
    write_notebook(root / "notebooks" / "step.ipynb", STEP, parameters="rows = 1")
    (root / "pipeline.yaml").write_text(textwrap.dedent("""\
        name: shared
        steps:
          - name: step
            notebook: notebooks/step.ipynb
        triggers:
          - new_data: {paths: ["data/incoming/*.csv"], settle: 0}
        """))
    (root / "mlops-nb.yaml").write_text(f"registry: {registry}\n")


def check(copy, **kwargs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    return subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "triggers", "check"], cwd=copy, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_two_working_copies_run_the_pipeline_once_and_a_killed_holder_frees_it(pg_url, tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_NB_REGISTRY", raising=False)
    alice, bob = tmp_path / "alice" / "project", tmp_path / "bob" / "project"
    make_copy(alice, pg_url)
    shutil.copytree(alice, bob)
    store = PostgresStore(tmp_path / "observer", pg_url)

    def pipeline_runs():
        return store.query("SELECT id, status, host, pid FROM runs WHERE kind = 'pipeline' ORDER BY start_time")

    assert check(alice).wait(timeout=60) == 0                       # the baseline: no data yet
    for copy in (alice, bob):
        (copy / "data" / "incoming" / "a.csv").write_text("x\n1\n")
    holder = check(alice)                                            # fires, runs, and waits in its step
    wait_for(lambda: (alice / "started").exists(), "alice's step to start", timeout=60)
    for copy in (alice, bob):
        (copy / "data" / "incoming" / "b.csv").write_text("x\n2\n")
    other = check(bob)
    out, err = other.communicate(timeout=60)
    assert other.returncode == 0, err
    assert f"process {holder.pid} on" in out and "is running it" in out, out  # bob's firing waits its turn
    assert len(pipeline_runs()) == 1 and not (bob / "started").exists()

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    (bob / "release").touch()
    started = time.monotonic()
    again = check(bob)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    assert "is running it" not in out, out                          # the dead holder's lock went with it
    runs = pipeline_runs()
    assert [status for _, status, _, _ in runs] == ["interrupted", "finished"], runs
    assert runs[1][3] != holder.pid and (bob / "started").exists()
    print(f"bob's check after the kill took {time.monotonic() - started:.1f} s")
    forget_stores()
    store.close()
