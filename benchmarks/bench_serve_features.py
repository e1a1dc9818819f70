"""`mlops-nb serve --features`: what filling each request in from the online table costs, against a client
that sends the full rows; prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_serve_features.py [--seconds 5] [--entities 100000]

The model of bench_serve.py (a LogisticRegression on 10 numeric features), trained on a feature view of
``--entities`` customers; two servers on the same registry, one uvicorn worker each, both with their
prediction log on: `mlops-nb serve bench` answering full rows, and `mlops-nb serve bench --features stats`
answering requests that name only the customer. The same 4-thread keep-alive load as bench_serve.py:
single-row requests (requests/s, p50/p99) and 1,000-row requests (rows/s). Both servers must give the
same predictions for the same customers before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import BATCH, COLUMNS, Connection, free_port, measure, request_bytes, start  # noqa: E402

MLOPS_NB = Path(sys.executable).parent / "mlops-nb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--entities", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-serve-features-"))
    (tmp / "features.yaml").write_text("stats:\n  entity: customer_id\n  timestamp: event_time\n  features:\n"
                                       + "".join(f"    {c}: float\n" for c in COLUMNS))
    os.chdir(tmp)
    import mlops_nb as mlops
    from sklearn.linear_model import LogisticRegression

    mlops.set_home(tmp / ".mlops")
    rng = np.random.default_rng(0)
    values = pd.DataFrame(rng.normal(size=(args.entities, len(COLUMNS))), columns=COLUMNS)
    values.insert(0, "event_time", pd.Timestamp("2026-12-01"))
    values.insert(0, "customer_id", np.arange(args.entities))
    mlops.write_features("stats", values)
    labels = pd.DataFrame({"customer_id": rng.integers(0, args.entities, 5000), "event_time": pd.Timestamp("2026-12-02")})
    with mlops.start_run() as run:
        frame = mlops.training_frame(labels, ["stats:*"])
        X = frame[COLUMNS]
        y = (X.to_numpy() @ rng.normal(size=len(COLUMNS)) > 0).astype(int)
        mlops.log_model(LogisticRegression(max_iter=1000).fit(X, y), "model", X=X)
    mlops.set_alias("bench", mlops.register_model(run, "bench").version, "production")

    env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_NB_REGISTRY", "MLOPS_NB_PREDICTION_LOG")}
    env["MLOPS_NB_HOME"] = str(tmp / ".mlops")
    servers = {}
    try:
        for name, extra in (("full rows", []), ("--features", ["--features", "stats"])):
            port = free_port()
            servers[name] = (port, start([MLOPS_NB, "serve", "bench", "--port", port, *extra], env,
                                         tmp / f"{name.strip('-')}.log", port, f"mlops-nb serve {name}"))
        ids = rng.integers(0, args.entities, 4000)
        rows = values.set_index("customer_id").loc[ids, COLUMNS]
        full = {"dataframe_split": {"columns": COLUMNS, "data": rows.to_numpy().tolist()}}
        keys = {"dataframe_split": {"columns": ["customer_id"], "data": [[int(i)] for i in ids]}}
        answers = []
        for name, body in (("full rows", full), ("--features", keys)):
            status, answer = Connection(servers[name][0]).send(request_bytes(servers[name][0], body))
            answers.append(json.loads(answer)["predictions"])
        if answers[0] != answers[1]:
            sys.exit("the two servers disagree on the same customers")
        print(f"{args.entities:,} customers online; both servers give the same {len(ids):,} predictions")
        for name, body_of in (("full rows", lambda i: [rows.iloc[i].tolist()]),
                              ("--features", lambda i: [[int(ids[i])]])):
            port = servers[name][0]
            columns = COLUMNS if name == "full rows" else ["customer_id"]
            singles = [request_bytes(port, {"dataframe_split": {"columns": columns, "data": body_of(i)}})
                       for i in range(200)]
            batch_rows = (rows.to_numpy()[:BATCH].tolist() if name == "full rows" else [[int(i)] for i in ids[:BATCH]])
            batches = [request_bytes(port, {"dataframe_split": {"columns": columns, "data": batch_rows}})]
            figures = measure(port, singles, batches, args.seconds)
            print(f"serve {name:10s}  {figures['rps']:7.0f} requests/s (p50 {figures['p50']:.1f} ms, p99 "
                  f"{figures['p99']:.1f} ms)   {figures['rows']:9,.0f} rows/s in {BATCH:,}-row requests")
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
