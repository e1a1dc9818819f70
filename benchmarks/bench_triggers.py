"""Trigger evaluation cost: prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_triggers.py [--seconds 20]

Target (issue 6): evaluating triggers is cheap; an idle watcher uses well under 1%
of a core. Measures one `triggers check` over 1,000 unchanged files, and the CPU
a `mlops-nb watch` process uses while nothing changes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mlops_nb as mlops  # noqa: E402
from mlops_nb.triggers.check import check_pipeline  # noqa: E402
from tests.notebooks_util import write_notebook  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "notebooks").mkdir()
        (root / "data" / "incoming").mkdir(parents=True)
        for i in range(1000):
            (root / "data" / "incoming" / f"part-{i:04d}.csv").write_text("x,y\n" + f"{i},{i % 2}\n" * 200)
        write_notebook(root / "notebooks" / "step.ipynb", ["x = n"], parameters="n = 1")
        (root / "pipeline.yaml").write_text(
            "name: bench\nsteps:\n  - name: s\n    notebook: notebooks/step.ipynb\n"
            "triggers:\n  - new_data: {paths: [\"data/incoming/*.csv\"], settle: 0}\n"
            "  - schedule: \"0 3 * * 1\"\n")
        mlops.set_home(root / ".mlops")
        os.chdir(root)
        start = time.perf_counter()
        check_pipeline(run=False)
        first = time.perf_counter() - start
        times = []
        for _ in range(5):
            start = time.perf_counter()
            check_pipeline(run=False)
            times.append(time.perf_counter() - start)
        print(f"triggers check over 1,000 files: first (hashes every file) {first * 1000:.0f} ms, "
              f"then unchanged {sorted(times)[2] * 1000:.0f} ms (sizes and mtimes only)")
        watcher = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "--home", str(root / ".mlops"), "watch"],
                                   cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(5)  # start-up and the first check
            before, started = cpu_seconds(watcher.pid), time.perf_counter()
            time.sleep(args.seconds)
            share = (cpu_seconds(watcher.pid) - before) / (time.perf_counter() - started)
        finally:
            watcher.terminate()
            watcher.wait(timeout=30)
        print(f"idle `mlops-nb watch` (5 s interval, 1,000 files watched): {share:.2%} of one core over "
              f"{args.seconds:.0f} s (target well under 1%)")


if __name__ == "__main__":
    main()
