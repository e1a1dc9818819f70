"""`mlops-nb serve` against `mlflow models serve` on the same model: prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_serve.py [--seconds 5] [--repeat 2] [--mlflow /tmp/mlflow-venv/bin/python]

MLflow lives in its own venv (it is not a dependency of ours):

    python3 -m venv /tmp/mlflow-venv
    /tmp/mlflow-venv/bin/pip install "mlflow==3.17.2" scikit-learn pandas

The model: a LogisticRegression on 10 numeric features (5,000 rows, written once to a CSV that
both sides read). MLflow's venv trains it and logs it to an MLflow sqlite store in a temp
folder; ours trains it the same way and registers it in a temp mlops-nb home. Three servers,
each one uvicorn worker on 127.0.0.1: `mlflow models serve --env-manager local`, and `mlops-nb
serve` with its prediction log on and off (MLOPS_NB_PREDICTION_LOG=off). uvicorn takes the HTTP
parser and event loop its venv has: MLflow's, installed as above, has h11 on asyncio; ours has
httptools on uvloop from the serve extra (printed with the figures).
Both answer `POST /invocations` with MLflow's `dataframe_split` form, and get the same request
bodies; the script checks that both give the same predictions before timing anything.

The load: 4 client threads, each with its own keep-alive connection (a small raw-socket HTTP
client, so that the client costs little), sending (1) single-row requests, for requests/s and
p50/p99 latency, and (2) 1,000-row requests, for rows/s. Each server is warmed up first; the
repeats are interleaved across the servers and the better repeat of each is printed (another
process on the machine slows a repeat, never speeds one up). The client and the server share
the machine's cores, so the figures are what one machine does with both; what the client alone
can do is measured against a trivial server (fixed answer, no parsing) and printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
THREADS = 4
BATCH = 1_000
COLUMNS = [f"f{i}" for i in range(10)]

# Run by MLflow's python: the same model from the same CSV, logged to an MLflow sqlite store.
MLFLOW_TRAIN = """
import sys
import mlflow
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

data, uri = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
frame = pd.read_csv(data)
X, y = frame.drop(columns="y"), frame["y"]
model = LogisticRegression(max_iter=1000).fit(X, y)
with mlflow.start_run():
    info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)))
print(info.model_uri)
"""

# The client's ceiling: a server that reads each request and answers the same bytes, nothing else.
TRIVIAL_SERVER = """
import asyncio, sys
ANSWER = b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 18\\r\\n\\r\\n" \\
         b'{"predictions":[]}'
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\\r\\n")
                           if line.startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def uvicorn_stack(python: Path) -> str:
    """What uvicorn's http="auto" and loop="auto" pick in that venv."""
    found = subprocess.run([str(python), "-c", "import importlib.util as u; "
                            "print(bool(u.find_spec('httptools')), bool(u.find_spec('uvloop')))"],
                           capture_output=True, text=True).stdout.split()
    return f"{'httptools' if found[0] == 'True' else 'h11'} + {'uvloop' if found[1] == 'True' else 'asyncio'}"


def make_data(path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(5_000, len(COLUMNS))), columns=COLUMNS)
    weights = rng.normal(size=len(COLUMNS))
    X["y"] = (X.to_numpy() @ weights + rng.normal(scale=1.0, size=len(X)) > 0).astype(int)
    X.to_csv(path, index=False)
    return pd.read_csv(path)  # what both sides train on, read back the same way


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_bytes(port: int, body: dict) -> bytes:
    data = json.dumps(body).encode()
    head = (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n")
    return head.encode() + data


class Connection:
    """One keep-alive HTTP/1.1 connection: send prepared request bytes, read one answer (Content-Length bodies)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def send(self, raw: bytes) -> tuple[int, bytes]:
        self.sock.sendall(raw)
        data = self.pending
        while b"\r\n\r\n" not in data:
            data += self._recv()
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:"))
        while len(data) < length:
            data += self._recv()
        self.pending = data[length:]
        return int(lines[0].split()[1]), data[:length]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def load(port: int, bodies: list[bytes], seconds: float) -> tuple[int, list[float]]:
    """THREADS threads sending ``bodies`` in turn for ``seconds``: (requests answered, latencies in seconds)."""
    stop_at = time.perf_counter() + seconds
    counts, latencies, errors = [0] * THREADS, [[] for _ in range(THREADS)], []

    def worker(n: int) -> None:
        connection = Connection(port)
        try:
            i = n
            while True:
                started = time.perf_counter()
                if started >= stop_at:
                    return
                status, answer = connection.send(bodies[i % len(bodies)])
                latencies[n].append(time.perf_counter() - started)
                if status != 200:
                    errors.append(f"HTTP {status}: {answer[:200]!r}")
                    return
                counts[n] += 1
                i += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        sys.exit(f"port {port} answered {errors[0]}")
    return sum(counts), [t for part in latencies for t in part]


def measure(port: int, singles: list[bytes], batches: list[bytes], seconds: float) -> dict:
    load(port, singles, 1.0)  # warm up: connections, caches, the first predictions
    load(port, batches, 1.0)
    started = time.perf_counter()
    count, latencies = load(port, singles, seconds)
    single_seconds = time.perf_counter() - started
    started = time.perf_counter()
    batch_count, batch_latencies = load(port, batches, seconds)
    batch_seconds = time.perf_counter() - started
    ms = sorted(t * 1000 for t in latencies)
    return {"rps": count / single_seconds, "p50": ms[len(ms) // 2], "p99": ms[int(len(ms) * 0.99)],
            "rows": batch_count * BATCH / batch_seconds, "batch_p50": statistics.median(batch_latencies) * 1000}


def wait_for(port: int, proc: subprocess.Popen, log: Path, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} stopped (exit {proc.returncode}); its output:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(f"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
                if sock.recv(1024).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"{what} did not answer within {timeout:.0f} s; its output:\n{log.read_text()[-3000:]}")


def start(cmd: list, env: dict, log: Path, port: int, what: str) -> subprocess.Popen:
    with open(log, "w") as out:
        proc = subprocess.Popen([str(c) for c in cmd], env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for(port, proc, log, what)
    return proc


def register_mlops(home: Path, frame: pd.DataFrame) -> None:
    """The same model registered in an mlops-nb home, promoted to production."""
    from sklearn.linear_model import LogisticRegression

    import mlops_nb as mlops

    mlops.set_home(home)
    X, y = frame.drop(columns="y"), frame["y"]
    with mlops.start_run() as run:
        mlops.log_model(LogisticRegression(max_iter=1000).fit(X, y), "model", X=X)
    version = mlops.register_model(run, "bench")
    mlops.set_alias("bench", version.version, "production")


def start_servers(tmp: Path, frame: pd.DataFrame, mlflow_python: Path, servers: dict) -> None:
    """Fills ``servers`` (name -> (port, process)) as they answer, so that the caller stops every one started."""
    base_env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_NB_HOME", "MLOPS_NB_PREDICTION_LOG",
                                                                  "VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    trained = subprocess.run([str(mlflow_python), "-c", MLFLOW_TRAIN, str(tmp / "data.csv"), uri],
                             capture_output=True, text=True, cwd=tmp)
    if trained.returncode != 0:
        sys.exit(f"training in MLflow's venv failed:\n{trained.stderr[-3000:]}")
    model_uri = trained.stdout.strip().splitlines()[-1]
    port = free_port()
    # MLflow starts `uvicorn` by name: its venv's bin first on PATH, as if that venv were activated.
    env = dict(base_env, MLFLOW_TRACKING_URI=uri, PATH=f"{mlflow_python.parent}{os.pathsep}{base_env['PATH']}")
    servers["mlflow"] = (port, start([mlflow_python.parent / "mlflow", "models", "serve", "-m", model_uri,
                                      "--env-manager", "local", "-h", "127.0.0.1", "-p", port, "-w", "1"],
                                     env, tmp / "mlflow.log", port, "mlflow models serve"))
    home = tmp / "home"
    register_mlops(home, frame)
    for name, extra in (("mlops-nb log on", {}), ("mlops-nb log off", {"MLOPS_NB_PREDICTION_LOG": "off"})):
        port = free_port()
        servers[name] = (port, start([ROOT / ".venv" / "bin" / "mlops-nb", "--home", home, "serve", "bench",
                                      "--port", port], dict(base_env, **extra), tmp / f"{name}.log".replace(" ", "-"),
                                     port, name))
    port = free_port()
    servers["trivial"] = (port, start([sys.executable, "-c", TRIVIAL_SERVER, port], base_env, tmp / "trivial.log",
                                      port, "the trivial server"))


def same_predictions(servers: dict, batch: dict) -> None:
    answers = {}
    for name, (port, _) in servers.items():
        connection = Connection(port)
        status, body = connection.send(request_bytes(port, batch))
        connection.close()
        if status != 200:
            sys.exit(f"{name} answered HTTP {status}: {body[:300]!r}")
        answers[name] = json.loads(body)["predictions"]
    if len({json.dumps(a) for a in answers.values()}) != 1:
        sys.exit(f"the servers disagree on the same rows: {({k: v[:5] for k, v in answers.items()})}")


MLFLOW_CLIENT = """
import json, sys
import pandas as pd
from mlflow.pyfunc.scoring_server.client import ScoringServerClient
rows = pd.DataFrame(json.loads(sys.argv[2]), columns=json.loads(sys.argv[3]))
print(json.dumps(ScoringServerClient("127.0.0.1", int(sys.argv[1])).invoke(rows).get_predictions().iloc[:, 0].tolist()))
"""


def mlflow_client_agrees(mlflow_python: Path, servers: dict, rows: list) -> str:
    """MLflow's own scoring client (mlflow.pyfunc.scoring_server.client), unchanged, against mlops-nb serve:
    the same predictions as MLflow's server gives for the same rows."""
    answers = {}
    for name in ("mlflow", "mlops-nb log on"):
        done = subprocess.run([str(mlflow_python), "-c", MLFLOW_CLIENT, str(servers[name][0]), json.dumps(rows),
                               json.dumps(COLUMNS)], capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"MLflow's client against {name} failed: {done.stderr[-1500:]}")
        answers[name] = json.loads(done.stdout)
    if answers["mlflow"] != answers["mlops-nb log on"]:
        sys.exit(f"MLflow's client got different predictions: {({k: v[:5] for k, v in answers.items()})}")
    return f"MLflow's own client (ScoringServerClient.invoke) gets the same {len(rows)} predictions from both servers"


def main() -> None:
    parser = argparse.ArgumentParser(description="mlops-nb serve vs mlflow models serve, one LogisticRegression")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement")
    parser.add_argument("--repeat", type=int, default=2, help="measurements of each server (the better is shown)")
    parser.add_argument("--mlflow", type=Path, default=Path("/tmp/mlflow-venv/bin/python"),
                        help="the python of a venv with mlflow 3.x, scikit-learn and pandas")
    args = parser.parse_args()
    if not args.mlflow.exists():
        print(f"{args.mlflow} not found; create it with: python3 -m venv /tmp/mlflow-venv && "
              '/tmp/mlflow-venv/bin/pip install "mlflow==3.17.2" scikit-learn pandas')
        return
    mlflow_version = subprocess.run([str(args.mlflow), "-c", "import mlflow; print(mlflow.__version__)"],
                                    capture_output=True, text=True).stdout.strip()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        frame = make_data(tmp / "data.csv")
        rows = frame[COLUMNS].to_numpy().tolist()
        single_bodies = [{"dataframe_split": {"columns": COLUMNS, "data": [row]}} for row in rows[:200]]
        batch_bodies = [{"dataframe_split": {"columns": COLUMNS, "data": rows[i:i + BATCH]}}
                        for i in range(0, 4 * BATCH, BATCH)]
        print(f"mlops-nb serve vs mlflow models serve {mlflow_version}: LogisticRegression, {len(COLUMNS)} numeric "
              f"features, {THREADS} client threads with keep-alive connections, {os.cpu_count()} cores, "
              f"{args.seconds:g} s per figure, better of {args.repeat}")
        servers: dict[str, tuple[int, subprocess.Popen]] = {}
        try:
            start_servers(tmp, frame, args.mlflow, servers)
            same_predictions({k: v for k, v in servers.items() if k != "trivial"}, batch_bodies[0])
            client_check = mlflow_client_agrees(args.mlflow, servers, rows[:50])
            results: dict[str, list[dict]] = {name: [] for name in servers}
            for r in range(args.repeat):
                for name, (port, _) in servers.items():  # interleaved, so drift in machine load spreads over all
                    singles = [request_bytes(port, body) for body in single_bodies]
                    batches = [request_bytes(port, body) for body in batch_bodies]
                    results[name].append(measure(port, singles, batches, args.seconds))
                print(f"  repeat {r + 1}/{args.repeat} done (load average {os.getloadavg()[0]:.2f})")
        finally:
            for _, proc in servers.values():
                proc.terminate()
            for _, proc in servers.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    best = {name: {"rps": max(runs, key=lambda m: m["rps"]), "rows": max(runs, key=lambda m: m["rows"])}
            for name, runs in results.items()}
    print(f"\n  {'':<28}{'1-row req/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'1,000-row rows/s':>19}{'batch p50 ms':>14}")
    for name in ("mlflow", "mlops-nb log on", "mlops-nb log off", "trivial"):
        single, batch = best[name]["rps"], best[name]["rows"]
        label = {"mlflow": f"mlflow models serve {mlflow_version}",
                 "trivial": "client alone (trivial server)"}.get(name, name)
        print(f"  {label:<28}{single['rps']:>12,.0f}{single['p50']:>9.1f}{single['p99']:>9.1f}"
              f"{batch['rows']:>19,.0f}{batch['batch_p50']:>14.1f}")

    mlflow, on, off = (best[n] for n in ("mlflow", "mlops-nb log on", "mlops-nb log off"))
    print("\nratios (mlops-nb with its prediction log on; targets in brackets)")
    print(f"  single-row req/s vs MLflow   {on['rps']['rps'] / mlflow['rps']['rps']:6.2f}x   (>= 4x)")
    print(f"  p99 latency vs MLflow        {on['rps']['p99'] / mlflow['rps']['p99']:6.2f}x   (<= 1x)")
    print(f"  1,000-row rows/s vs MLflow   {on['rows']['rows'] / mlflow['rows']['rows']:6.2f}x   (>= 2x)")
    print(f"  log on / log off, single-row {on['rps']['rps'] / off['rps']['rps']:6.2f}    (>= 0.90)")
    print(f"  log on / log off, batches    {on['rows']['rows'] / off['rows']['rows']:6.2f}    (>= 0.90)")
    print(f"\n  {client_check}.")
    print(f"  uvicorn's HTTP parser and event loop: MLflow's venv {uvicorn_stack(args.mlflow)}, "
          f"ours {uvicorn_stack(Path(sys.executable))} (the serve extra).")
    trivial = best["trivial"]
    print(f"  the client alone sends {trivial['rps']['rps']:,.0f} single-row requests/s and "
          f"{trivial['rows']['rows']:,.0f} rows/s in 1,000-row requests to a trivial server "
          f"({trivial['rps']['rps'] / max(on['rps']['rps'], mlflow['rps']['rps']):.1f}x and "
          f"{trivial['rows']['rows'] / max(on['rows']['rows'], mlflow['rows']['rows']):.1f}x the fastest figures "
          "above), on the same cores as the server.")


if __name__ == "__main__":
    main()
