"""Pipeline runner overhead: prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_pipeline.py

Targets (issue 4): a rerun of an unchanged 5-step pipeline in < 2 s; the runner's
per-step overhead over the notebook's own execution is shown beside papermill's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import papermill  # noqa: E402

import mlops_nb as mlops  # noqa: E402
from mlops_nb import run_pipeline  # noqa: E402
from tests.notebooks_util import write_notebook  # noqa: E402

STEP = "import mlops_nb as mlops\nvalue = n * 2\nmlops.output('value_{i}', value)"


def cells_seconds(path: Path) -> float:
    """The notebook's own execution time: the sum of its cells' durations."""
    nb = json.loads(path.read_text())
    return sum(c["metadata"].get("papermill", {}).get("duration") or 0 for c in nb["cells"])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "notebooks").mkdir()
        lines = ["name: bench", "steps:"]
        for i in range(5):
            write_notebook(root / "notebooks" / f"s{i}.ipynb", [STEP.format(i=i)], parameters="n = 1")
            lines += [f"  - name: s{i}", f"    notebook: notebooks/s{i}.ipynb"] + (
                [f"    after: [s{i - 1}]"] if i else [])
        (root / "pipeline.yaml").write_text("\n".join(lines) + "\n")
        os.chdir(root)
        mlops.set_home(root / ".mlops")

        started = time.perf_counter()
        first = run_pipeline(force=True)
        total_first = time.perf_counter() - started
        assert first.ok
        overheads = []
        for name, step in first.steps.items():
            own = cells_seconds(step.notebook)
            overheads.append(step.seconds - own)
        print(f"first run of a 5-step pipeline: {total_first:.2f} s; per step: median "
              f"{statistics.median(s.seconds for s in first.steps.values()):.2f} s wall, of which the cells took "
              f"{statistics.median(cells_seconds(s.notebook) for s in first.steps.values()) * 1000:.0f} ms")
        papermill_times = []
        for _ in range(3):
            t = time.perf_counter()
            papermill.execute_notebook(str(root / "notebooks" / "s0.ipynb"), str(root / "pm.ipynb"),
                                       parameters={"n": 2}, progress_bar=False)
            papermill_times.append(time.perf_counter() - t)
        pm = statistics.median(papermill_times)
        pm_own = cells_seconds(root / "pm.ipynb")
        print(f"per-step overhead over the cells' own time: ours {statistics.median(overheads):.2f} s, "
              f"papermill alone {pm - pm_own:.2f} s (kernel start and shutdown dominate both)")

        rerun_times = []
        for _ in range(5):
            t = time.perf_counter()
            again = run_pipeline()
            rerun_times.append(time.perf_counter() - t)
            assert set(s.status for s in again.steps.values()) == {"cached"}
        print(f"rerun of the unchanged 5-step pipeline (all cached), in process: median "
              f"{statistics.median(rerun_times) * 1000:.0f} ms (target < 2 s)")
        cli = Path(sys.executable).parent / "mlops-nb"
        cli_times = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([str(cli), "--home", str(root / ".mlops"), "run", "--quiet"], check=True)
            cli_times.append(time.perf_counter() - t)
        print(f"the same rerun as a command (`mlops-nb run`, Python start-up included): median "
              f"{statistics.median(cli_times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
