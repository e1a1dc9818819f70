"""How often our drift verdicts agree with Evidently 0.7's, column by column: prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_drift_agreement.py [--datasets 40]

Evidently runs in its own virtual environment (it pins other versions of pandas and numpy
than ours): by default /tmp/evidently-venv, or the Python that $EVIDENTLY_PYTHON names.

    python3 -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install "evidently>=0.7,<0.8" "pandas>=2.2,<2.3"

Each data set has a reference and a current frame (300 to 3,000 rows, so both the small-sample
tests and the distances are exercised) with integer columns of every cardinality from 2 to 20,
float columns and text categories, some shifted a little, some a lot, some not at all.
Evidently's verdicts come from its DataDriftPreset (one ValueDrift per column).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import mlops_nb as mlops

EVIDENTLY = r'''
import json, sys
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

out = {}
for name in json.loads(sys.argv[2]):
    ref = pd.read_csv(f"{sys.argv[1]}/{name}-ref.csv")
    cur = pd.read_csv(f"{sys.argv[1]}/{name}-cur.csv")
    verdicts = {}
    for metric in Report([DataDriftPreset()]).run(cur, ref).dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            p_value = "p_value" in config["method"]
            value = metric["value"]
            verdicts[config["column"]] = bool(value < config["threshold"] if p_value else value >= config["threshold"])
    out[name] = verdicts
print(json.dumps(out))
'''


def make(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_ref, n_cur = [(300, 300), (800, 500), (3000, 3000), (3000, 800)][seed % 4]
    moves = [0.0, 0.02, 0.06, 0.12]
    ref, cur = {}, {}
    for k in range(2, 21):  # integer codes of every cardinality from 2 to 20
        base = rng.dirichlet(np.ones(k) * 3)
        moved = base.copy()
        shift = min(moves[(seed + k) % 4], moved[0])
        moved[0] -= shift
        moved[-1] += shift
        ref[f"int{k}"] = rng.choice(np.arange(1, k + 1), n_ref, p=base)
        cur[f"int{k}"] = rng.choice(np.arange(1, k + 1), n_cur, p=moved)
    for i, delta in enumerate([0.0, 0.05, 0.15, 0.5]):
        ref[f"float{i}"] = rng.normal(0, 1 + i, n_ref)
        cur[f"float{i}"] = rng.normal(delta * (1 + i) * (seed % 3), 1 + i, n_cur)
    levels = [f"level-{j}" for j in range(6)]
    for i, move in enumerate([0.0, 0.05, 0.2]):
        weights = np.linspace(1, 2, len(levels))
        shifted = weights.copy()
        shifted[-1] += move * (seed % 2) * weights.sum()
        ref[f"text{i}"] = rng.choice(levels, n_ref, p=weights / weights.sum())
        cur[f"text{i}"] = rng.choice(levels, n_cur, p=shifted / shifted.sum())
    return pd.DataFrame(ref), pd.DataFrame(cur)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=40)
    args = parser.parse_args()
    python = os.environ.get("EVIDENTLY_PYTHON", "/tmp/evidently-venv/bin/python")
    if not Path(python).exists():
        print(f"Evidently's environment is missing ({python}); make it as the docstring says, or set "
              "EVIDENTLY_PYTHON. Our verdicts alone prove nothing, so nothing is printed.")
        return
    names = [f"set{i:03d}" for i in range(args.datasets)]
    ours: dict[str, dict[str, bool]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for i, name in enumerate(names):
            ref, cur = make(i)
            ref.to_csv(f"{folder}/{name}-ref.csv", index=False)
            cur.to_csv(f"{folder}/{name}-cur.csv", index=False)
            columns = mlops.drift(ref, cur).columns
            ours[name] = dict(zip(columns["column"], columns["drifted"].astype(bool)))
        done = subprocess.run([python, "-c", EVIDENTLY, folder, json.dumps(names)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"Evidently failed: {done.stderr[-2000:]}")
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    pairs = [(name, column, ours[name][column], theirs[name].get(column))
             for name in names for column in ours[name]]
    compared = [p for p in pairs if p[3] is not None]
    agree = [p for p in compared if p[2] == p[3]]
    integers = [p for p in compared if p[1].startswith("int")]
    print(f"drift verdicts, ours against Evidently 0.7 (DataDriftPreset), {len(names)} data sets, "
          f"{len(compared)} columns: {len(agree)} agree = {len(agree) / len(compared):.1%} (target >= 99%)")
    print(f"  integer columns of cardinality 2-20: {sum(p[2] == p[3] for p in integers)}/{len(integers)} agree; "
          f"drifted by Evidently: {sum(p[3] for p in compared)}, by us: {sum(p[2] for p in compared)}")
    for name, column, mine, other in [p for p in compared if p[2] != p[3]][:10]:
        print(f"  differ: {name} {column}: ours {'drift' if mine else 'no drift'}, "
              f"Evidently {'drift' if other else 'no drift'}")


if __name__ == "__main__":
    main()
