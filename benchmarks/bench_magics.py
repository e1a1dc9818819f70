"""Overhead of the IPython face: prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_magics.py

Targets (issue 3): %%track on an empty cell adds < 20 ms; 100,000 log_metric calls
inside a tracked cell take < 2 s.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import mlops_nb as mlops


def timed(shell, source: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            result = shell.run_cell(source)
            times.append(time.perf_counter() - start)
        result.raise_error()
    return times


def main() -> None:
    from IPython.testing.globalipapp import get_ipython

    with tempfile.TemporaryDirectory() as tmp:
        mlops.set_home(Path(tmp) / ".mlops")
        shell = get_ipython()
        shell.run_line_magic("load_ext", "mlops_nb")
        shell.run_cell("import mlops_nb as mlops\nfrom sklearn.linear_model import LogisticRegression")
        timed(shell, "%%track\npass", 5)  # warm up: registry created, modules imported
        plain = statistics.median(timed(shell, "pass", 200))
        tracked = statistics.median(timed(shell, "%%track\npass", 200))
        print(f"%%track on an empty cell: {(tracked - plain) * 1000:.2f} ms added "
              f"(plain cell {plain * 1000:.2f} ms, tracked {tracked * 1000:.2f} ms; target < 20 ms)")
        loop = "for i in range(100_000):\n    mlops.log_metric('loss', 1.0 / (i + 1))"
        untracked = statistics.median(timed(shell, "with mlops.start_run():\n" + "\n".join(
            "    " + line for line in loop.splitlines()), 3))
        inside = statistics.median(timed(shell, "%%track\n" + loop, 3))
        print(f"100,000 log_metric calls in a %%track cell: {inside:.3f} s "
              f"(in a plain start_run block: {untracked:.3f} s; target < 2 s)")
        shell.run_cell("X = [[i % 7, i % 3] for i in range(200)]\ny = [i % 2 for i in range(200)]")
        fit = statistics.median(timed(shell, "clf = LogisticRegression().fit(X, y)", 5))
        fit_tracked = statistics.median(timed(shell, "%%track\nclf = LogisticRegression().fit(X, y)", 5))
        print(f"%%track on a cell fitting LogisticRegression (autolog: params, model, dataset): "
              f"{(fit_tracked - fit) * 1000:.1f} ms added")


if __name__ == "__main__":
    main()
