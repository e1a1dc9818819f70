"""Registry throughput: prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_registry.py [--runs 100000]

Targets (issue 2): >= 100,000 log_metric calls/s inside a run; >= 1,000 runs/s
created with 5 params and 5 metrics each; search_runs with a two-clause filter
over 100,000 runs in < 200 ms; 4 concurrent writers lose nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mlops_nb as mlops
from mlops_nb.registry import runs as run_store
from mlops_nb.registry.store import open_store
from mlops_nb.registry.values import encode_param


def bench_log_metric(calls: int) -> float:
    with mlops.start_run(experiment="bench-metrics") as run:
        start = time.perf_counter()
        for i in range(calls):
            mlops.log_metric("loss", 1.0 / (i + 1))
        run.flush()
        elapsed = time.perf_counter() - start
    return calls / elapsed


def bench_create_runs(count: int) -> float:
    params = {"C": 1.0, "model": "rf", "depth": 5, "seed": 0, "features": "all"}
    start = time.perf_counter()
    for i in range(count):
        with mlops.start_run(experiment="bench-runs", params=params):
            mlops.log_metrics({"accuracy": 0.9, "f1": 0.8, "precision": 0.85, "recall": 0.75, "auc": 0.95})
    return count / (time.perf_counter() - start)


def populate(home: Path, count: int) -> None:
    """Insert ``count`` runs through the registry's own batch writer (fast set-up, not timed)."""
    store = open_store(home)
    experiment = run_store.ensure_experiment(store, "bench-search")
    rng = random.Random(0)
    models = ["rf", "svm", "lr", "gb"]
    now = time.time()
    batch_runs, params, metrics = [], [], []
    for i in range(count):
        run_id = os.urandom(16).hex()
        batch_runs.append((run_id, experiment, f"run-{i}", "interactive", "finished", now + i, now + i + 1))
        for key, value in (("model", rng.choice(models)), ("C", rng.choice([0.1, 1.0, 10.0])),
                           ("seed", i % 10), ("depth", rng.randint(2, 12)), ("features", "all")):
            params.append((run_id, *encode_param(key, value)))
        for key in ("accuracy", "f1", "precision", "recall", "auc"):
            metrics.append((run_id, key, 0, rng.random(), now + i))
        if len(batch_runs) == 10_000 or i == count - 1:
            with store.transaction() as conn:
                conn.executemany("INSERT INTO runs (id, experiment_id, name, kind, status, start_time, end_time) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", batch_runs)
            run_store.write_batch(store, params=params, metrics=metrics)
            batch_runs, params, metrics = [], [], []
    store.conn.execute("ANALYZE")


def bench_search(home: Path, count: int) -> dict[str, float]:
    populate(home, count)
    figures = {}
    queries = {
        "two clauses (metric and param), ~2.5% match": ("metrics.accuracy > 0.9 and params.model = 'rf'", None),
        "same, ordered by metric, top 100": ("metrics.accuracy > 0.9 and params.model = 'rf'",
                                             ["metrics.accuracy DESC"]),
        "two clauses, ~25% match, all rows returned": ("metrics.accuracy > 0.5 and params.C >= 1", None),
    }
    for label, (flt, order) in queries.items():
        times = []
        for _ in range(5):
            start = time.perf_counter()
            frame = mlops.search_runs(flt, order_by=order, experiment="bench-search",
                                      max_results=100 if order else None)
            times.append(time.perf_counter() - start)
        figures[f"{label} ({len(frame)} rows)"] = statistics.median(times) * 1000
    return figures


def target_note(label: str) -> str:
    return "(no target: a large result set)" if "all rows" in label else "(target < 200 ms)"


def _writer(home: str, index: int, runs_per_process: int, metrics_per_run: int) -> None:
    mlops.set_home(home)
    for r in range(runs_per_process):
        with mlops.start_run(experiment="bench-concurrency", name=f"p{index}-r{r}"):
            for i in range(metrics_per_run):
                mlops.log_metric("m", float(i))


def bench_concurrency(home: Path, processes: int, runs_per_process: int, metrics_per_run: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(home), i, runs_per_process, metrics_per_run))
               for i in range(processes)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    store = open_store(home)
    rows = store.query_one("SELECT COUNT(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
                           "JOIN experiments e ON e.id = r.experiment_id WHERE e.name = 'bench-concurrency'")[0]
    return {"seconds": elapsed, "rows": rows, "expected": processes * runs_per_process * metrics_per_run,
            "exit codes": [w.exitcode for w in workers], "integrity": store.integrity_check()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=1_000_000, help="log_metric calls to time")
    parser.add_argument("--create", type=int, default=5_000, help="runs to create")
    parser.add_argument("--runs", type=int, default=100_000, help="runs to search over")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / ".mlops"
        mlops.set_home(home)
        print(f"mlops-nb registry benchmark (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
        rate = bench_log_metric(args.metrics)
        print(f"log_metric inside a run:        {rate:>12,.0f} calls/s   (target >= 100,000)")
        rate = bench_create_runs(args.create)
        print(f"runs created (5 params, 5 metrics): {rate:>8,.0f} runs/s    (target >= 1,000)")
        search_home = Path(tmp) / "search" / ".mlops"
        mlops.set_home(search_home)
        for label, ms in bench_search(search_home, args.runs).items():
            print(f"search_runs over {args.runs:,} runs, {label}: {ms:.1f} ms   {target_note(label)}")
        result = bench_concurrency(Path(tmp) / "concurrent" / ".mlops", 4, 20, 10_000)
        print(f"4 processes x 20 runs x 10,000 metrics: {result['seconds']:.1f} s, rows {result['rows']:,} of "
              f"{result['expected']:,}, exit codes {result['exit codes']}, integrity_check {result['integrity']}")


if __name__ == "__main__":
    main()
