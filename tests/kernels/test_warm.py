"""Warm kernels: isolation between runs, dead kernels, recycling, the daemon."""

import json
import os
import stat
import subprocess
import sys

import nbformat
import pytest

from mlops_nb.kernels.daemon import request, running_daemon, socket_path, start_daemon, stop_daemon
from mlops_nb.kernels.pool import KernelPool
from mlops_nb import run_pipeline
from mlops_nb.registry.store import open_store
from tests.notebooks_util import write_notebook
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

DIRTY = """import os, sys
secret = 42
os.chdir("/tmp")
os.environ["LEAK"] = "1"
sys.path.append("/nowhere")
import mlops_nb as mlops
mlops.output("pid", os.getpid())"""

CHECK = """import os, sys
import mlops_nb as mlops
mlops.output("pid", os.getpid())
mlops.output("seen", {"secret": "secret" in dir(), "cwd": os.getcwd(), "leak": "LEAK" in os.environ,
                      "path": "/nowhere" in sys.path})"""


def outputs(home, run_id):
    return {name: json.loads(value) for name, value in open_store(home).query(
        "SELECT name, value FROM outputs WHERE run_id = ?", (run_id,))}


@pytest.fixture
def project(tmp_path, home, monkeypatch):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


def pipeline(root, *steps):
    lines = ["name: warm", "steps:"]
    for i, (name, cells, extra) in enumerate(steps):
        write_notebook(root / "notebooks" / f"{name}.ipynb", cells, parameters="n = 1")
        lines += [f"  - name: {name}", f"    notebook: notebooks/{name}.ipynb"] + [f"    {e}" for e in extra]
    (root / "pipeline.yaml").write_text("\n".join(lines) + "\n")


def test_next_run_on_the_same_kernel_starts_clean(project, home):
    # The pool keeps a spare kernel, so steps alternate between two: check the ones that
    # ran on the kernel the dirty step used.
    # Five checks: however slow a reset is on a loaded machine, the dirty kernel comes round again.
    pipeline(project, ("dirty", [DIRTY], []), ("check1", [CHECK], ["after: [dirty]"]),
             *[(f"check{i}", [CHECK], [f"after: [check{i - 1}]"]) for i in range(2, 6)])
    result = run_pipeline(engine="warm")
    assert result.ok, [s.failure.describe() for s in result.steps.values() if s.failure]
    dirty = outputs(home, result.steps["dirty"].run_id)
    checks = [outputs(home, result.steps[f"check{i}"].run_id) for i in range(1, 6)]
    assert any(check["pid"] == dirty["pid"] for check in checks)  # the dirty kernel ran again
    for check in checks:
        assert check["seen"] == {"secret": False, "cwd": str(project), "leak": False, "path": False}


def test_warm_notebook_matches_what_papermill_writes(project, home):
    cells = ["x = n * 2", "print(x)", "x"]
    pipeline(project, ("same", cells, []))
    fresh = run_pipeline(engine="fresh", force=True)
    run_pipeline(engine="warm", force=True)
    warm = run_pipeline(engine="warm", force=True)  # on a kernel that ran before

    def shape(result):
        nb = nbformat.read(str(result.steps["same"].notebook), as_version=4)
        return [(c.execution_count, [{k: v for k, v in o.items() if k != "metadata"} for o in c.outputs])
                for c in nb.cells if c.cell_type == "code"]

    assert shape(warm) == shape(fresh)
    assert [count for count, _ in shape(warm)] == [1, 2, 3, 4, 5, 6]


def test_a_killed_kernel_fails_its_run_with_the_reason_and_is_replaced(project, home):
    pipeline(project, ("boom", ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"], []))
    result = run_pipeline(engine="warm")
    failure = result.steps["boom"].failure
    assert result.status == "failed" and "died while running a cell" in failure.message
    assert "os.kill" in failure.source
    pipeline(project, ("fine", ["import os, mlops_nb as mlops\nmlops.output('pid', os.getpid())"], []))
    assert run_pipeline(engine="warm").ok


def test_pool_replaces_a_kernel_after_its_run_limit(tmp_path):
    pool = KernelPool("python3", max_runs=2)
    try:
        pids = []
        for _ in range(3):
            kernel = pool.acquire(timeout=60)
            pool.prepare(kernel, str(tmp_path), dict(os.environ))
            pids.append(kernel.pid)
            pool.release(kernel)
        assert pids[0] == pids[1] != pids[2]
    finally:
        pool.shutdown()


def test_kernel_isolation_gets_a_kernel_that_never_ran_user_code(tmp_path):
    pool = KernelPool("python3")
    try:
        used = pool.acquire(timeout=60)
        pool.prepare(used, str(tmp_path), dict(os.environ))
        pool.release(used)
        pristine = pool.acquire(isolation="kernel", timeout=60)
        assert pristine.pid != used.pid and pristine.fresh
        pool.release(pristine, isolation="kernel")
        assert pristine.state == "retired"
    finally:
        pool.shutdown()


def test_memory_ceiling_replaces_a_kernel(tmp_path):
    pool = KernelPool("python3", memory_limit_mb=1)
    try:
        first = pool.acquire(timeout=60)
        pool.release(first)
        second = pool.acquire(timeout=60)
        assert second.pid != first.pid
        pool.release(second)
    finally:
        pool.shutdown()


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(")")[-1].split()[0] != "Z"


def test_daemon_is_owner_only_serves_runs_and_leaves_nothing_after_stop(project, home):
    reply = start_daemon(home, size=1, idle_timeout=60)
    try:
        path = socket_path(home)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        pipeline(project, ("where", ["import os, mlops_nb as mlops\nmlops.output('pid', os.getpid())"], []))
        result = run_pipeline(engine="warm")
        assert result.ok
        kernels = request(path, {"op": "ls"})["kernels"]
        assert outputs(home, result.steps["where"].run_id)["pid"] in {k["pid"] for k in kernels}
    finally:
        assert stop_daemon(home)
    wait_for(lambda: not alive(reply["pid"]), "the daemon to exit")
    assert not any(alive(k["pid"]) for k in kernels if k["pid"])
    assert running_daemon(home) is None and not socket_path(home).exists()


def test_daemon_exits_by_itself_after_its_idle_timeout(home):
    reply = start_daemon(home, size=1, idle_timeout=1.5)
    wait_for(lambda: not alive(reply["pid"]), "the idle daemon to exit by itself", timeout=30)
    assert running_daemon(home) is None


def test_papermill_engine_is_registered(project, home):
    write_notebook(project / "p.ipynb", ["y = n + 1", "y"], parameters="n = 1")
    done = subprocess.run([sys.executable, "-m", "papermill", "--engine", "mlops-nb", "p.ipynb", "out.ipynb",
                           "-p", "n", "41", "--no-progress-bar"], capture_output=True, text=True, cwd=project)
    assert done.returncode == 0, done.stderr[-2000:]
    nb = nbformat.read(str(project / "out.ipynb"), as_version=4)
    assert nb.cells[-1].outputs[0]["data"]["text/plain"] == "42"
