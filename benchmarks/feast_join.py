"""Feast's point-in-time join, run inside Feast's own virtual environment by bench_features.py (Feast pins its
own pandas and pyarrow). Reads the feature rows and entity rows bench_features.py wrote as Parquet, times
get_historical_features on its local offline store, and writes the frame and its figures back.

    /tmp/feast-venv/bin/python benchmarks/feast_join.py FOLDER
"""

import json
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main(folder: Path) -> None:
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64

    repo = folder / "feast-repo"
    (repo / "data").mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: bench\nregistry: data/registry.db\nprovider: local\noffline_store:\n  type: file\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\nentity_key_serialization_version: 3\n")
    customer = Entity(name="customer", join_keys=["customer_id"])
    view = FeatureView(name="customer_stats", entities=[customer], ttl=timedelta(days=30),
                       schema=[Field(name=f"f{i}", dtype=Float64) for i in range(10)],
                       source=FileSource(path=str(folder / "features.parquet"), timestamp_field="event_time"))
    store = FeatureStore(repo_path=str(repo))
    store.apply([customer, view])
    labels = pd.read_parquet(folder / "labels.parquet")
    labels["row"] = range(len(labels))
    base = peak = rss()
    running = True

    def sample():
        nonlocal peak
        while running:
            peak = max(peak, rss())
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    frame = store.get_historical_features(entity_df=labels, features=[f"customer_stats:f{i}" for i in range(10)]
                                          ).to_df()
    took = time.perf_counter() - started
    running = False
    thread.join()
    frame.sort_values("row").to_parquet(folder / "feast-frame.parquet", index=False)
    (folder / "feast.json").write_text(json.dumps({"seconds": took, "peak_mb": (max(peak, rss()) - base) / 2**20,
                                                   "feast": __import__("feast").__version__}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
