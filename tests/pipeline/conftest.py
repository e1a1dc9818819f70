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
