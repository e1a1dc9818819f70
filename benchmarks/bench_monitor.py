"""`mlops-nb monitor` over a big prediction log: prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_monitor.py [--rows 1000000] [--features 25] [--window 50000]

Builds a registry with a LogisticRegression trained on 10,000 rows of 20 numeric and 5
text features (its training file kept as a pipeline step keeps it), then writes ``--rows``
predictions to its prediction log through the service's own writer (PredictionLog, in
files of 20,000 rows as a busy server flushes them), the second half with three features
shifted, and labels for 30% of them. Then times, in a fresh process each (as a user runs
them): `mlops-nb monitor churn --window N` (windows of N predictions) and
`mlops-nb monitor churn --window 1h`, and in-process `mlops.predictions("churn")`.
Target: monitor over 1,000,000 predictions with 25 features in under 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MLOPS_NB = ROOT / ".venv" / "bin" / "mlops-nb"


def frame(n: int, features: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    numeric = features - 5
    data = {f"x{i}": rng.normal(shift if i < 3 else 0.0, 1.0, n) for i in range(numeric)}
    data.update({f"c{i}": rng.choice(["a", "b", "c", "d"], n) for i in range(5)})
    out = pd.DataFrame(data)
    out["y"] = (out["x0"] + out["x1"] - out["x2"] + rng.normal(0, 1, n) > 0).astype(int)
    return out


def build(folder: Path, rows: int, features: int) -> float:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import mlops_nb as mlops
    from mlops_nb.pipeline.record import record_files
    from mlops_nb.registry import artifacts
    from mlops_nb.registry.predictions import PredictionLog

    mlops.set_home(folder / ".mlops")
    train = frame(10_000, features, 0)
    path = folder / "train.csv"
    train.to_csv(path, index=False)
    X, y = train.drop(columns=["y"]), train["y"]
    text = [c for c in X.columns if c.startswith("c")]
    model = make_pipeline(ColumnTransformer([("text", OneHotEncoder(), text)], remainder="passthrough"),
                          LogisticRegression(max_iter=1000)).fit(X, y)
    with mlops.start_run() as run:
        artifacts.put_file(mlops.get_store().artifacts_dir, path)
        record_files(mlops.get_store(), run.id, folder, [path], "input")
        mlops.log_model(model, "model", X=X)
    version = mlops.register_model(run, "churn")
    mlops.set_alias("churn", version.version, "production")

    started = time.perf_counter()
    log = PredictionLog(folder / ".mlops", "churn")
    batch = 20_000
    labelled_ids, labels = [], []
    for k, start in enumerate(range(0, rows, batch)):
        part = frame(min(batch, rows - start), features, 100 + k, shift=1.0 if start >= rows // 2 else 0.0)
        inputs = part.drop(columns=["y"])
        ids = [uuid.uuid4().hex for _ in range(len(part))]
        log.add(ids=ids, version=version.version, features=inputs, predictions=model.predict(inputs).tolist(),
                probabilities=None, latency_ms=3.0)
        log.flush()
        chosen = np.flatnonzero(np.random.default_rng(k).random(len(part)) < 0.3)
        labelled_ids += [ids[i] for i in chosen]
        labels += part["y"].to_numpy()[chosen].tolist()
    mlops.log_feedback("churn", labelled_ids, labels)
    return time.perf_counter() - started


def timed(command: list[str], cwd: Path, repeat: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        out = done.stdout
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=25)
    parser.add_argument("--window", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        setup = build(folder, args.rows, args.features)
        print(f"logged {args.rows:,} predictions x {args.features} features (+30% labelled) in {setup:.1f} s")
        by_count, out = timed([str(MLOPS_NB), "monitor", "churn", "--window", str(args.window)], folder, args.repeat)
        by_time, _ = timed([str(MLOPS_NB), "monitor", "churn", "--window", "1h"], folder, args.repeat)
        as_json, _ = timed([str(MLOPS_NB), "monitor", "churn", "--window", str(args.window), "--json"], folder,
                           args.repeat)
        import mlops_nb as mlops

        reads = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            mlops.predictions("churn")
            reads.append(time.perf_counter() - started)
        print(out.rstrip())
        print()
        print(f"{'measure':<52} {'best of ' + str(args.repeat):>12}")
        print(f"{'mlops-nb monitor churn --window ' + str(args.window):<52} {by_count:>10.2f} s")
        print(f"{'mlops-nb monitor churn --window 1h':<52} {by_time:>10.2f} s")
        print(f"{'mlops-nb monitor churn --window ' + str(args.window) + ' --json':<52} {as_json:>10.2f} s")
        print(f"{'mlops.predictions(churn) (log joined with labels)':<52} {min(reads):>10.2f} s")
        print(f"target: monitor under 3 s over 1,000,000 predictions x 25 features "
              f"({'met' if max(by_count, by_time) < 3 else 'NOT met'}; median run {statistics.median([by_count, by_time]):.2f} s)")


if __name__ == "__main__":
    main()
