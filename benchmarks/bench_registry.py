"""Registry throughput, SQLite and PostgreSQL side by side: prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_registry.py [--metrics 1000000] [--create 5000] [--runs 100000]
        [--writers 8] [--writer-runs 20] [--writer-metrics 10000] [--pg-url postgresql://user@host:port/db]

Targets (issue 2; SQLite / PostgreSQL where they differ):
- log_metric inside a run, calls/s counted to run.flush(): >= 100,000 on both;
- runs created with 5 params and 5 metrics each: >= 1,000/s on SQLite, >= 500/s on PostgreSQL;
- search_runs with a two-clause filter over 100,000 runs, median of 7 (best of 7 beside): < 200 ms / < 300 ms;
- search_runs returning 10,000 runs with their params and latest metrics as a DataFrame: < 100 ms on both
  (and, for reference with no target, all the runs a broader two-clause filter matches);
- 8 concurrent writer processes lose nothing (rows found = expected; SQLite's integrity_check is ok); their
  throughput is shown beside that of 1 writer doing the same per-process work.

PostgreSQL runs on a throwaway server (tests/pg.py) started here and stopped at the end, or on the server
``--pg-url`` names (a database per measurement is created there; a schema where CREATEDB is refused).
Without PostgreSQL's binaries only SQLite is measured. Every measurement has a fresh registry and home.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import mlops_nb as mlops
from mlops_nb.registry import runs as run_store
from mlops_nb.registry.home import mask_url
from mlops_nb.registry.store import forget_stores
from mlops_nb.registry.values import encode_param

ROOT = Path(__file__).resolve().parents[1]  # for tests/pg.py
SEARCH_TARGET = "< 200 ms / < 300 ms"
SEARCHES = [  # label, filter, order_by, max_results, target
    ("two clauses (metric and param), ~2.5% match", "metrics.accuracy > 0.9 and params.model = 'rf'",
     None, None, SEARCH_TARGET),
    ("same, ordered by metric, top 100", "metrics.accuracy > 0.9 and params.model = 'rf'",
     ["metrics.accuracy DESC"], 100, SEARCH_TARGET),
    ("the newest 10,000 runs with params, latest metrics", None, None, 10_000, "< 100 ms"),
    ("two clauses, ~1/3 match, all rows returned", "metrics.accuracy > 0.5 and params.C >= 1", None, None,
     "(no target: reference)"),
]


class Postgres:
    """Fresh registries in PostgreSQL: databases on a throwaway server (tests/pg.py), or on ``url``'s."""

    def __init__(self, url: str | None):
        from tests import pg

        self.made, self.server = [], None if url else pg.Server().start()
        self.base = url or self.server.url()

    def fresh(self) -> str:
        import psycopg

        name, parts = f"bench_{uuid.uuid4().hex[:12]}", urlsplit(self.base)
        with psycopg.connect(self.base, autocommit=True) as conn:
            try:
                conn.execute(f"CREATE DATABASE {name}")
            except psycopg.errors.InsufficientPrivilege:  # no CREATEDB: a schema of its own in url's database
                conn.execute(f"CREATE SCHEMA {name}")
                self.made.append(f"SCHEMA {name} CASCADE")
                option = f"options=-csearch_path%3D{name}"
                return urlunsplit(parts._replace(query=f"{parts.query}&{option}" if parts.query else option))
        self.made.append(f"DATABASE {name} WITH (FORCE)")
        return urlunsplit(parts._replace(path=f"/{name}"))

    def stop(self) -> None:
        forget_stores()
        if self.server is not None:
            return self.server.stop()  # its databases go with it
        if self.made:
            import psycopg

            with psycopg.connect(self.base, autocommit=True) as conn:
                for what in self.made:
                    conn.execute(f"DROP {what}")


def use(home: Path, registry: str) -> None:
    """The registry of this process from now on: ``registry`` ("sqlite" or a URL), working folder ``home``."""
    forget_stores()
    mlops.set_registry(registry)
    mlops.set_home(home)


def bench_log_metric(home: Path, registry: str, calls: int) -> float:
    use(home, registry)
    with mlops.start_run(experiment="bench-metrics") as run:
        start = time.perf_counter()
        for i in range(calls):
            mlops.log_metric("loss", 1.0 / (i + 1))
        run.flush()
        elapsed = time.perf_counter() - start
    return calls / elapsed


def bench_create_runs(home: Path, registry: str, count: int) -> float:
    use(home, registry)
    params = {"C": 1.0, "model": "rf", "depth": 5, "seed": 0, "features": "all"}
    start = time.perf_counter()
    for _ in range(count):
        with mlops.start_run(experiment="bench-runs", params=params):
            mlops.log_metrics({"accuracy": 0.9, "f1": 0.8, "precision": 0.85, "recall": 0.75, "auc": 0.95})
    return count / (time.perf_counter() - start)


def populate(count: int) -> None:
    """Insert ``count`` runs through the registry's own batch writers (fast set-up, not timed)."""
    store = mlops.get_store()
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
                store.insert_many(conn, "runs", ("id", "experiment_id", "name", "kind", "status", "start_time",
                                                 "end_time"), batch_runs)
            run_store.write_batch(store, params=params, metrics=metrics)
            batch_runs, params, metrics = [], [], []
    if store.backend == "postgresql":
        # As autovacuum leaves a registry within a minute of a bulk insert: the planner's statistics, and the
        # visibility map that lets a lookup read an index alone.
        import psycopg

        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    else:
        with store.transaction() as conn:
            conn.execute("ANALYZE")  # the planner's statistics


def bench_search(home: Path, registry: str, count: int) -> list[tuple[float, float, int]]:
    """(median ms of 7, best ms of 7, rows) for each of SEARCHES over ``count`` runs."""
    use(home, registry)
    populate(count)
    figures = []
    for _, flt, order, limit, _ in SEARCHES:
        times = []
        for _ in range(7):
            start = time.perf_counter()
            frame = mlops.search_runs(flt, order_by=order, experiment="bench-search", max_results=limit)
            times.append(time.perf_counter() - start)
        figures.append((statistics.median(times) * 1000, min(times) * 1000, len(frame)))
    return figures


def machine_speed() -> str:
    """How fast this machine is just now: a fixed pure-Python loop, best of 5 (this VM's speed can swing by
    half within minutes; every figure above moves with it)."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        sum(range(2_000_000))
        times.append(time.perf_counter() - start)
    return f"{min(times) * 1000:.1f} ms (lower is faster)"


def _writer(home: str, registry: str, index: int, runs: int, metrics: int, barrier) -> None:
    use(Path(home), registry)
    mlops.get_store()  # opened (connected) before the clock starts
    barrier.wait(timeout=300)
    for r in range(runs):
        with mlops.start_run(experiment="bench-concurrency", name=f"p{index}-r{r}"):
            for i in range(metrics):
                mlops.log_metric("m", float(i))


def bench_concurrency(home: Path, registry: str, processes: int, runs: int, metrics: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    workers = [ctx.Process(target=_writer, args=(str(home), registry, i, runs, metrics, barrier))
               for i in range(processes)]
    for w in workers:
        w.start()
    try:
        barrier.wait(timeout=300)  # every writer has imported mlops-nb and opened the registry
    except threading.BrokenBarrierError:
        pass  # a writer died starting: its exit code says so
    start = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    use(home, registry)
    store = mlops.get_store()
    rows = store.query_one("SELECT COUNT(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
                           "JOIN experiments e ON e.id = r.experiment_id WHERE e.name = 'bench-concurrency'")[0]
    codes = [w.exitcode for w in workers]
    return {"rate": rows / elapsed, "rows": f"{rows:,}/{processes * runs * metrics:,}",
            "codes": "all 0" if not any(codes) else ",".join(map(str, codes)),
            "integrity": store.integrity_check() if store.dialect.name == "sqlite" else "n/a"}


def show(label: str, cells, target: str = "") -> None:
    print(f"{label:<72}" + "".join(f"{cell:>20}" for cell in cells) + (f"   {target}" if target else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=1_000_000, help="log_metric calls to time")
    parser.add_argument("--create", type=int, default=5_000, help="runs to create")
    parser.add_argument("--runs", type=int, default=100_000, help="runs to search over")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writer processes")
    parser.add_argument("--writer-runs", type=int, default=20, help="runs each writer creates")
    parser.add_argument("--writer-metrics", type=int, default=10_000, help="metrics each writer run logs")
    parser.add_argument("--pg-url", help="PostgreSQL server to use (its user creates a database per "
                                         "measurement) instead of a throwaway one from tests/pg.py")
    args = parser.parse_args()
    print(f"mlops-nb registry benchmark (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    sys.path.insert(0, str(ROOT))
    from tests import pg

    postgres, backends = None, ["SQLite"]
    if args.pg_url is None and pg.binaries() is None:
        print("PostgreSQL's server binaries are missing (apt-get install -y postgresql): measuring SQLite only")
    else:
        postgres = Postgres(args.pg_url)
        backends.append("PostgreSQL")
        print(f"PostgreSQL: {mask_url(postgres.base)}{' (throwaway server)' if postgres.server else ''}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            homes = (Path(tmp) / str(n) / ".mlops" for n in itertools.count())

            def each(measure, *sizes) -> list:
                """``measure`` on every backend, each time in a fresh registry and home."""
                return [measure(next(homes), "sqlite" if b == "SQLite" else postgres.fresh(), *sizes)
                        for b in backends]

            print(f"machine speed at the start: {machine_speed()}")
            show("", backends, "target")
            show("log_metric inside a run, calls/s", [f"{r:,.0f}" for r in each(bench_log_metric, args.metrics)],
                 ">= 100,000")
            show("runs created (5 params, 5 metrics), runs/s",
                 [f"{r:,.0f}" for r in each(bench_create_runs, args.create)], ">= 1,000 / >= 500")
            found = each(bench_search, args.runs)
            print(f"search_runs over {args.runs:,} runs, median of 7 (best) in ms:")
            for i, (label, *_, target) in enumerate(SEARCHES):
                rows = "/".join(sorted({f"{f[i][2]:,}" for f in found}))
                show(f"  {label} ({rows} rows)", [f"{f[i][0]:.1f} ({f[i][1]:.1f})" for f in found], target)
            sizes = (args.writer_runs, args.writer_metrics)
            many, one = each(bench_concurrency, args.writers, *sizes), each(bench_concurrency, 1, *sizes)
            work = f"x {args.writer_runs} runs x {args.writer_metrics:,} metrics"
            show(f"{args.writers} writers {work}, metric rows/s", [f"{r['rate']:,.0f}" for r in many])
            show(f"1 writer {work}, metric rows/s", [f"{r['rate']:,.0f}" for r in one])
            for n, results in ((args.writers, many), (1, one)):
                show(f"{n} writer{'s' * (n > 1)}: metric rows found/expected, exit codes",
                     [r["rows"] for r in results], "all found")
                show("", [r["codes"] for r in results])
            show(f"{args.writers} writers: integrity_check", [r["integrity"] for r in many], "ok")
            print(f"machine speed at the end: {machine_speed()}")
    finally:
        forget_stores()
        mlops.set_registry(None)
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    main()
