"""A small real project: notebooks that read and write files, a pipeline.yaml, a registry."""

import textwrap

import pytest

from tests.notebooks_util import write_notebook

PREPARE = """
import csv
with open("data/raw.csv") as f:
    rows = [r for r in csv.DictReader(f)][:limit]
with open("data/prepared.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["x", "y"]); w.writeheader(); w.writerows(rows)
import mlops_nb as mlops
mlops.output("n_rows", len(rows))
"""

TRAIN = """
import csv, mlops_nb as mlops
with open("data/prepared.csv") as f:
    rows = list(csv.DictReader(f))
accuracy = round(min(1.0, 0.5 + C / 10 + len(rows) / 1000), 4)
mlops.log_metric("accuracy", accuracy)
mlops.output("accuracy", accuracy)
"""

EVALUATE = """
import mlops_nb as mlops
accuracy = mlops.input("accuracy")
mlops.output("passed", accuracy >= threshold)
"""

REPORT = """
import mlops_nb as mlops
with open("report.txt", "w") as f:
    f.write(f"rows: {mlops.input('n_rows')} ({title})")
"""

PIPELINE = """
name: churn
params: {limit: 50}
steps:
  - name: prepare
    notebook: notebooks/prepare.ipynb
    inputs: [data/raw.csv]
    outputs: [data/prepared.csv]
  - name: train
    notebook: notebooks/train.ipynb
    params: {C: 1.0}
    inputs: [data/prepared.csv]
  - name: evaluate
    notebook: notebooks/evaluate.ipynb
    inputs: [train]
  - name: report
    notebook: notebooks/report.ipynb
    inputs: [prepare]
    outputs: [report.txt]
"""


def write_raw(root, n=100, offset=0):
    lines = ["x,y"] + [f"{i + offset},{(i + offset) % 2}" for i in range(n)]
    (root / "data" / "raw.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def project(tmp_path, home, monkeypatch):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "data").mkdir()
    write_raw(root)
    write_notebook(root / "notebooks" / "prepare.ipynb", [PREPARE], parameters="limit = 10")
    write_notebook(root / "notebooks" / "train.ipynb", [TRAIN], parameters="C = 0.1\nmax_iter = 100")
    write_notebook(root / "notebooks" / "evaluate.ipynb", [EVALUATE], parameters="threshold = 0.6")
    write_notebook(root / "notebooks" / "report.ipynb", [REPORT], parameters="title = 'weekly'")
    (root / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE))
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="session")
def scheduler(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes (one thread each) on 127.0.0.1, as a team runs them."""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    distributed = pytest.importorskip("distributed", reason="the Dask executor needs distributed: "
                                                            "pip install -e '.[dask]'")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask")
    dask = str(Path(sys.executable).parent / "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "w"))]
    for name in ("w1", "w2"):
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                                       "--no-dashboard", "--name", name],
                                      stdout=subprocess.DEVNULL, stderr=open(logs / f"{name}.log", "w")))
    try:
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
