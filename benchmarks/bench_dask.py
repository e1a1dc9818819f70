"""Sweeps on Dask against the same sweep on this machine's warm kernels: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_dask.py

Targets (issue 20): a 32-point scikit-learn sweep on a Dask cluster of 2 single-threaded workers within
15% of local warm kernels with --jobs 2; the per-task overhead Dask adds; tasks/s with 1 and 2 workers,
and what that predicts for 20 workers.

The clusters are started once and kept, as a team's cluster is (a worker's warm kernels outlive one
command); `--executor dask`, which starts a LocalCluster for one command, is timed too.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dask  # noqa: E402
from distributed import LocalCluster  # noqa: E402

import mlops_nb as mlops  # noqa: E402
from benchmarks.bench_kernels import SKLEARN, one_step_project  # noqa: E402
from mlops_nb import sweep as run_sweep  # noqa: E402
from mlops_nb.pipeline.dask_executor import WORKER_CONFIG  # noqa: E402

TRIVIAL = ["y = seed + 1"]


def timed(notebook: Path, points: int, repeat: int, **options) -> float:
    """Median seconds of a sweep over ``points`` seeds (after a warm-up that starts the kernels)."""
    run_sweep(notebook, ["seed=" + ",".join(str(1000 + i) for i in range(3))], force=True, **options)
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = run_sweep(notebook, ["seed=" + ",".join(str(i) for i in range(points))], force=True, **options)
        walls.append(time.perf_counter() - start)
        assert outcome.ok, outcome
    return statistics.median(walls)


def cluster(workers: int) -> LocalCluster:
    """Workers as `--executor dask` starts them (without Dask's sampling profiler, see WORKER_CONFIG)."""
    with dask.config.set(WORKER_CONFIG):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=None, silence_logs=logging.ERROR)


def main() -> None:
    parser = argparse.ArgumentParser(description="sweeps on Dask vs local warm kernels")
    parser.add_argument("--points", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mlops.set_home(root / ".mlops")
        os.chdir(root)
        sk = one_step_project(root, "sk", SKLEARN, "seed = 0\nn_estimators = 60") / "notebooks" / "nb.ipynb"
        tiny = one_step_project(root, "tiny", TRIVIAL, "seed = 0") / "notebooks" / "nb.ipynb"
        n = args.points
        print(f"Dask executor benchmark, {os.cpu_count()} cores, {n}-point sweeps, median of {args.repeat}")

        local = {(name, jobs): timed(nb, n, args.repeat, jobs=jobs)
                 for name, nb in (("sk", sk), ("tiny", tiny)) for jobs in (1, 2)}
        on_dask = {}
        for workers in (1, 2):
            with cluster(workers) as c:
                for name, nb in (("sk", sk), ("tiny", tiny)):
                    on_dask[(name, workers)] = timed(nb, n, args.repeat, executor=c.scheduler_address)
        start = time.perf_counter()
        assert run_sweep(sk, ["seed=" + ",".join(str(i) for i in range(n))], force=True, jobs=2,
                         executor="dask").ok
        per_command = time.perf_counter() - start

        print(f"\n(a) {n}-point scikit-learn sweep (RandomForest, 60 trees, 2,000 rows)")
        print(f"  local warm kernels, --jobs 1 / --jobs 2: {local[('sk', 1)]:6.2f} s / {local[('sk', 2)]:6.2f} s")
        ratio = on_dask[("sk", 2)] / local[("sk", 2)]
        print(f"  Dask, 2 workers x 1 thread (kept):       {on_dask[('sk', 2)]:6.2f} s  "
              f"({(ratio - 1) * 100:+.0f}% vs local; target within +15%)")
        print(f"  --executor dask --jobs 2 (cluster started for the command): {per_command:6.2f} s")
        overhead = (on_dask[("tiny", 1)] - local[("tiny", 1)]) / n
        noise = " (below this machine's run-to-run noise)" if overhead <= 0 else ""
        print(f"\n(b) per-task overhead Dask adds (a one-cell notebook, 1 worker vs local --jobs 1): "
              f"{overhead * 1000:.0f} ms per task{noise}: {on_dask[('tiny', 1)] / n * 1000:.0f} ms vs "
              f"{local[('tiny', 1)] / n * 1000:.0f} ms per point")

        print("\n(c) scale: tasks/s of the scikit-learn sweep")
        rates = {w: n / on_dask[("sk", w)] for w in (1, 2)}
        for w in (1, 2):
            print(f"  {w} worker{'s' if w > 1 else ' '}: {rates[w]:5.2f} tasks/s")
        task = on_dask[("sk", 1)] / n                    # seconds per task on one worker, overhead included
        client = on_dask[("tiny", 2)] / n                # what the run itself spends per point (recording)
        print(f"  model: one task takes {task:.2f} s on a worker; the run records a point every "
              f"{client * 1000:.0f} ms at best, so W workers give about min(W / {task:.2f}, 1 / {client:.3f}) "
              f"tasks/s: 20 workers -> {min(20 / task, 1 / client):.1f} tasks/s")
        print(f"  (2 workers measured {rates[2]:.2f} tasks/s, the model says {min(2 / task, 1 / client):.2f}; "
              f"this machine has {os.cpu_count()} cores, so 2 workers already share them with the run)")


if __name__ == "__main__":
    main()
