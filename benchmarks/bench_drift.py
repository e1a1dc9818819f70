"""Drift report speed and memory on 1,000,000 rows x 25 columns: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_drift.py [--rows 1000000]

Target (issue 16): the whole drift report in at most 2 s with peak memory at most 1.3 times
the two frames' size, the 5 categorical columns being text (Python strings). For scale:
Evidently 0.7's DataDriftPreset takes about 105-125 s for this on the same machine.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd

import mlops_nb as mlops


def make(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"num{i}": rng.normal(shift * (i % 2), 1 + i / 10, rows) for i in range(20)}
    levels = np.array([f"level-{j}" for j in range(12)], dtype=object)
    for i in range(5):
        weights = np.linspace(1, 2 + shift * 3, len(levels))
        data[f"cat{i}"] = rng.choice(levels, rows, p=weights / weights.sum())  # text, not pd.Categorical
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    reference, current = make(args.rows, 0, 0.0), make(args.rows, 1, 0.2)
    frames_mb = (reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum()) / 2**20
    mlops.drift(reference.head(5000), current.head(5000))  # import scipy and friends outside the timing
    tracemalloc.start()
    start = time.perf_counter()
    report = mlops.drift(reference, current)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"drift report, {args.rows:,} rows x 25 columns (20 numeric, 5 text categorical): {elapsed:.2f} s "
          "(target <= 2 s)")
    print(f"peak memory allocated during the report: {peak / 2**20:.0f} MiB = {peak / 2**20 / frames_mb:.2f}x the "
          f"two frames' {frames_mb:.0f} MiB (target <= 1.3x)")
    print(f"dataset drift: {report.drifted} ({report.share:.0%} of columns), tests: "
          f"{', '.join(sorted(set(report.columns['test'])))}")
    profile = mlops.profile_reference(reference)
    start = time.perf_counter()
    mlops.drift(profile, current)
    print(f"the same against a stored reference profile: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
