"""Point-in-time join speed and memory: 1,000,000 entity rows against a feature view of 10,000,000 rows and
10 features; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_features.py [--entities 1000000] [--rows 10000000] [--feast PYTHON]

Target (issue 22): mlops.training_frame in under 5 s on this machine, peak memory printed; beside it, the
same join with pandas.merge_asof on the same data, and Feast's get_historical_features on its local
offline store, with their agreement. Feast lives in its own virtual environment (it pins its own pandas
and pyarrow), run by benchmarks/feast_join.py:

    python3 -m venv /tmp/feast-venv && /tmp/feast-venv/bin/pip install feast
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd


class PeakRSS:
    """The process's peak resident memory while the block runs (DuckDB's memory is outside Python's heap)."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, _rss())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def make(entities: int, rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_keys = max(rows // 100, 1)           # each customer's values change 100 times over a year
    start = np.datetime64("2026-01-01T00:00:00", "us")
    keys = np.repeat(np.arange(n_keys), rows // n_keys)
    offsets = rng.integers(0, 365 * 86400, len(keys)) * 1_000_000
    features = pd.DataFrame({"customer_id": keys, "event_time": start + offsets.astype("timedelta64[us]")})
    for i in range(10):
        features[f"f{i}"] = rng.normal(size=len(keys))
    features = features.drop_duplicates(["customer_id", "event_time"])
    labels = pd.DataFrame({"customer_id": rng.integers(0, n_keys, entities),
                           "event_time": start + (rng.integers(0, 400 * 86400, entities) * 1_000_000)
                           .astype("timedelta64[us]"),
                           "label": rng.integers(0, 2, entities)})
    return features, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--feast", type=Path, default=Path("/tmp/feast-venv/bin/python"),
                        help="the python of a virtual environment with feast installed")
    parser.add_argument("--feast-timeout", type=float, default=900, help="seconds Feast may take")
    parser.add_argument("--feast-memory", type=float, default=12, help="GiB of memory Feast may take (it is "
                        "stopped beyond; the machine has 24)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mlops-bench-features-"))
    (folder / "features.yaml").write_text(
        "customer_stats:\n  entity: customer_id\n  timestamp: event_time\n  ttl: 30d\n  features:\n"
        + "".join(f"    f{i}: float\n" for i in range(10)))
    os.chdir(folder)
    import mlops_nb as mlops

    mlops.set_home(folder / ".mlops")
    features, labels = make(args.entities, args.rows)
    print(f"feature view: {len(features):,} rows x 10 features ({features['customer_id'].nunique():,} customers); "
          f"entity rows: {len(labels):,}")
    started = time.perf_counter()
    mlops.write_features("customer_stats", features)
    print(f"write_features (checks, Parquet, fingerprint, schema, profile, online table): "
          f"{time.perf_counter() - started:.1f} s")
    refs = [f"customer_stats:f{i}" for i in range(10)]
    mlops.training_frame(labels.head(1000), refs)   # DuckDB loaded outside the timing
    with PeakRSS() as memory:
        started = time.perf_counter()
        ours = mlops.training_frame(labels, refs)
        took = time.perf_counter() - started
    print(f"mlops.training_frame (DuckDB ASOF JOIN):   {took:6.2f} s   peak memory +{memory.mb:,.0f} MB")

    with PeakRSS() as memory:
        started = time.perf_counter()
        theirs = pd.merge_asof(labels.reset_index().sort_values("event_time"), features.sort_values("event_time"),
                               on="event_time", by="customer_id", direction="backward",
                               tolerance=pd.Timedelta(days=30)).set_index("index").sort_index()
        pandas_took = time.perf_counter() - started
    print(f"pandas.merge_asof (sorted by time first):  {pandas_took:6.2f} s   peak memory +{memory.mb:,.0f} MB")
    same = all(np.allclose(ours[f"f{i}"].to_numpy(dtype=float), theirs[f"f{i}"].to_numpy(dtype=float), equal_nan=True)
               for i in range(10))
    print(f"the two agree row for row: {same}; rows with values: {ours['f0'].notna().sum():,} of {len(ours):,}")
    if not args.feast.exists():
        print(f"Feast's local offline store: no {args.feast} (python3 -m venv /tmp/feast-venv && "
              "/tmp/feast-venv/bin/pip install feast); not measured")
        return
    if not feast(args, folder, features, labels, ours):
        # Feast could not do it in its memory or time: the same comparison at a tenth of the size
        features, labels = make(args.entities // 10, args.rows // 10, seed=1)
        mlops.set_home(folder / ".mlops-tenth")  # a registry of its own: the view holds these rows alone
        mlops.write_features("customer_stats", features)
        with PeakRSS() as memory:
            started = time.perf_counter()
            ours = mlops.training_frame(labels, refs)
            took = time.perf_counter() - started
        print(f"\nat a tenth of the size ({len(labels):,} entity rows, {len(features):,} feature rows):")
        print(f"mlops.training_frame (DuckDB ASOF JOIN):   {took:6.2f} s   peak memory +{memory.mb:,.0f} MB")
        feast(args, folder, features, labels, ours)


def feast(args, folder: Path, features, labels, ours) -> bool:
    """Feast's join of the same rows in its own process; whether it finished."""
    import resource

    limit = int(args.feast_memory * 2**30)
    features.to_parquet(folder / "features.parquet", index=False)
    labels.to_parquet(folder / "labels.parquet", index=False)
    script = Path(__file__).resolve().parent / "feast_join.py"
    try:
        done = subprocess.run([str(args.feast), str(script), str(folder)], capture_output=True, text=True,
                              timeout=args.feast_timeout,
                              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    except subprocess.TimeoutExpired:
        print(f"Feast's get_historical_features (local offline store): over {args.feast_timeout:.0f} s, stopped")
        return False
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1][:200]
        memory = done.returncode < 0 or any(sign in done.stderr for sign in (
            "MemoryError", "bad_alloc", "failed to map segment", "Cannot allocate memory"))
        print(f"Feast's get_historical_features (local offline store): "
              + (f"ran out of its {args.feast_memory:g} GiB of memory" if memory else "failed") + f" ({last})")
        return False
    figures = json.loads((folder / "feast.json").read_text())
    theirs = pd.read_parquet(folder / "feast-frame.parquet").set_index("row")
    mine = ours.iloc[theirs.index.to_numpy()]   # the entity rows Feast returned, by their position
    same = all(np.allclose(mine[f"f{i}"].to_numpy(dtype=float), theirs[f"f{i}"].to_numpy(dtype=float), equal_nan=True)
               for i in range(10))
    left_out = len(ours) - len(theirs)
    print(f"Feast {figures['feast']} get_historical_features:  {figures['seconds']:6.2f} s   "
          f"peak memory +{figures['peak_mb']:,.0f} MB (its own process)")
    print(f"  agrees on the {len(theirs):,} rows it returned: {same}; it left out {left_out:,} entity rows "
          f"(those without a value; ours has {ours['f0'].isna().sum():,} rows without one)")
    return True


if __name__ == "__main__":
    main()
