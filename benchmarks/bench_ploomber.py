"""mlops-nb against Ploomber on the same 5-step notebook pipeline: prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_ploomber.py [--repeat 3] [--ploomber /tmp/ploomber-venv/bin/ploomber]

Ploomber lives in its own venv (it is not a dependency of ours):

    python3 -m venv /tmp/ploomber-venv
    /tmp/ploomber-venv/bin/pip install ploomber ipykernel pandas papermill scikit-learn

The pipeline is load -> clean -> features -> train -> report; each step is a notebook that
reads the previous step's CSV and writes its own (~5,000 rows, a LogisticRegression in
train). The steps' code is the same for both tools, using `src` and `dst` paths: for us the
parameters cell sets them (and pipeline.yaml declares them as inputs/outputs); for
Ploomber the parameters cell declares `upstream`/`product` and one more cell reads the
paths from them. Each tool is run as a user would from a terminal, in the project folder:
`ploomber build` (its default papermill executor, and `executor: ploomber-engine`, which
runs the notebook in Ploomber's own process without a kernel) and `mlops-nb run --quiet
--engine fresh|warm`, warm also with a kernel daemon started (and ready) beforehand.
Wall times of: (a) the first full run, (b) a rerun with nothing changed, (c) a rerun after
the features notebook's code changed (features, train and report must rerun). Every
repeat builds fresh project copies; the script checks from the output CSVs' mtimes that
each tool did (or skipped) the work, and prints a failing command's stderr tail.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.notebooks_util import write_notebook  # noqa: E402

MLOPS_NB = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "mlops-nb"
STEPS = ["load", "clean", "features", "train", "report"]
KERNEL = "ploomber-bench"  # a kernelspec inside the Ploomber venv, found through JUPYTER_PATH

# The code of each step, shared by both tools: `src` is the previous step's CSV, `dst` this step's.
BODY = {
    "load": """import numpy as np
import pandas as pd
rng = np.random.default_rng(0)
n = 5000
df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.integers(0, 5, n)})
df["y"] = (df["a"] + 0.5 * df["b"] * df["c"] + rng.normal(scale=0.5, size=n) > 0).astype(int)
df.loc[rng.random(n) < 0.02, "a"] = np.nan
df.to_csv(dst, index=False)""",
    "clean": """import pandas as pd
df = pd.read_csv(src)
df = df.dropna().reset_index(drop=True)
df.to_csv(dst, index=False)""",
    "features": """import pandas as pd
df = pd.read_csv(src)
df["ab"] = df["a"] * df["b"]
df = pd.get_dummies(df, columns=["c"], dtype=float)
df.to_csv(dst, index=False)""",
    "train": """import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
df = pd.read_csv(src)
X_train, X_test, y_train, y_test = train_test_split(df.drop(columns="y"), df["y"], random_state=0)
model = LogisticRegression(max_iter=1000).fit(X_train, y_train)
pd.DataFrame({"y": y_test, "proba": model.predict_proba(X_test)[:, 1]}).to_csv(dst, index=False)""",
    "report": """import pandas as pd
df = pd.read_csv(src)
accuracy = ((df["proba"] > 0.5) == df["y"]).mean()
print(f"accuracy {accuracy:.3f}")
summary = pd.DataFrame({"metric": ["accuracy", "mean_proba"], "value": [accuracy, df["proba"].mean()]})
summary.to_csv(dst, index=False)""",
}
# Scenario (c): a new feature, so the features CSV, the model's probabilities and the report all change.
CHANGE = ('df["ab"] = df["a"] * df["b"]', 'df["ab"] = df["a"] * df["b"]\ndf["b2"] = df["b"] ** 2')


def write_step(project: Path, tool: str, i: int, changed: bool = False) -> None:
    name, body = STEPS[i], BODY[STEPS[i]]
    if changed:
        body = body.replace(*CHANGE)
    prev = STEPS[i - 1] if i else None
    if tool == "ploomber":  # Ploomber reads `upstream` from the parameters cell and injects `product`
        params = f"upstream = {[prev] if prev else None}\nproduct = None"
        cells = [(f"src = upstream[{prev!r}]['data']\n" if prev else "") + "dst = product['data']", body]
    else:
        params = (f"src = 'data/{prev}.csv'\n" if prev else "") + f"dst = 'data/{name}.csv'"
        cells = [body]
    write_notebook(project / "notebooks" / f"{name}.ipynb", cells, parameters=params)


def make_project(root: Path, tool: str, executor: str = "papermill") -> Path:
    project = root / tool
    (project / "notebooks").mkdir(parents=True)
    (project / "data").mkdir()
    for i in range(len(STEPS)):
        write_step(project, tool, i)
    lines = ["tasks:"] if tool == "ploomber" else ["name: bench", "steps:"]
    for i, name in enumerate(STEPS):
        if tool == "ploomber":
            lines += [f"  - source: notebooks/{name}.ipynb", f"    name: {name}", f"    kernelspec_name: {KERNEL}",
                      f"    executor: {executor}",
                      f"    product: {{nb: products/{name}.ipynb, data: data/{name}.csv}}"]
        else:
            lines += [f"  - name: {name}", f"    notebook: notebooks/{name}.ipynb",
                      f"    outputs: [data/{name}.csv]"] + ([f"    inputs: [data/{STEPS[i - 1]}.csv]"] if i else [])
    (project / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    return project


def run(cmd: list, cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"\n`{' '.join(map(str, cmd))}` failed (exit {proc.returncode}) in {cwd}; stderr tail:")
        print("\n".join((proc.stderr or proc.stdout).splitlines()[-25:]))
        sys.exit(1)
    return seconds


def mtimes(project: Path) -> dict[str, int | None]:
    paths = {name: project / "data" / f"{name}.csv" for name in STEPS}
    return {name: p.stat().st_mtime_ns if p.exists() else None for name, p in paths.items()}


def rewritten(before: dict, after: dict) -> list[str]:
    return [name for name in STEPS if after[name] != before[name]]


def wait_for_daemon(env: dict, cwd: Path, size: int) -> None:
    """`kernels start` returns once the daemon answers; wait until its kernels have started and preloaded."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = subprocess.run([str(MLOPS_NB), "kernels", "ls", "--json"], cwd=cwd, env=env, capture_output=True,
                             text=True).stdout
        kernels = json.loads(out or "{}").get("kernels", [])
        if len(kernels) >= size and all(k["state"] == "idle" and k["preloaded"] for k in kernels):
            return
        time.sleep(0.1)
    print("  (the kernel daemon's kernels were not ready after 120 s; timing anyway)")


def one_repeat(root: Path, variant: str, ploomber: Path, base_env: dict) -> tuple[dict, dict, float | None]:
    """Runs (a), (b), (c) on a fresh project copy; returns seconds and files rewritten per scenario."""
    tool = "ploomber" if variant.startswith("ploomber") else "mlops"
    project = make_project(root / variant, tool, "ploomber-engine" if variant == "ploomber engine" else "papermill")
    env = dict(base_env)
    if tool == "ploomber":
        cmd = [ploomber, "build"]
        env.update(JUPYTER_PATH=str(ploomber.parent.parent / "share" / "jupyter"),
                   # No internet here: telemetry and the version check would only add network waits.
                   PLOOMBER_STATS_ENABLED="false", PLOOMBER_VERSION_CHECK_DISABLED="1")
    else:
        engine = "fresh" if variant == "mlops fresh" else "warm"
        cmd = [MLOPS_NB, "run", "--quiet", "--engine", engine]
        env["MLOPS_NB_HOME"] = str(root / variant / "home")
    pool_seconds = None
    if variant == "mlops warm+daemon":
        start = time.perf_counter()
        run([MLOPS_NB, "kernels", "start", "-n", "2", "--preload", "pandas", "--preload", "sklearn"], project, env)
        wait_for_daemon(env, project, 2)
        pool_seconds = time.perf_counter() - start
    seconds, changed = {}, {}
    try:
        for scenario in ("a", "b", "c"):
            if scenario == "c":
                write_step(project, tool, STEPS.index("features"), changed=True)
            before = mtimes(project)
            time.sleep(0.05)  # so a rewrite always shows as a new mtime
            seconds[scenario] = run(cmd, project, env)
            after = mtimes(project)
            missing = [name for name in STEPS if after[name] is None]
            if missing:
                print(f"\n{variant}: outputs missing after scenario ({scenario}): {missing}")
                sys.exit(1)
            changed[scenario] = rewritten(before, after)
        if tool == "ploomber" and not all((project / "products" / f"{n}.ipynb").exists() for n in STEPS):
            print(f"\n{variant}: executed notebooks missing from products/")  # they are products too
            sys.exit(1)
    finally:
        if variant == "mlops warm+daemon":
            subprocess.run([str(MLOPS_NB), "kernels", "stop"], cwd=project, env=env, capture_output=True)
    shutil.rmtree(root / variant, ignore_errors=True)
    return seconds, changed, pool_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="mlops-nb vs Ploomber on a 5-step notebook pipeline")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ploomber", type=Path, default=Path("/tmp/ploomber-venv/bin/ploomber"),
                        help="the ploomber command of a venv that also has ipykernel, pandas and scikit-learn")
    args = parser.parse_args()
    if not args.ploomber.exists():
        print(f"{args.ploomber} not found; create it with: python3 -m venv /tmp/ploomber-venv && "
              "/tmp/ploomber-venv/bin/pip install ploomber ipykernel pandas papermill scikit-learn")
        return
    venv = args.ploomber.parent.parent
    if not (venv / "share" / "jupyter" / "kernels" / KERNEL).exists():  # inside that venv only
        subprocess.run([str(venv / "bin" / "python"), "-m", "ipykernel", "install", "--prefix", str(venv),
                        "--name", KERNEL], check=True, capture_output=True)

    variants = ["ploomber", "ploomber engine", "mlops fresh", "mlops warm", "mlops warm+daemon"]
    expected = {"a": STEPS, "b": [], "c": ["features", "train", "report"]}
    times = {v: {s: [] for s in "abc"} for v in variants}
    checks = {v: {s: 0 for s in "abc"} for v in variants}
    surprises, pool_times = [], []
    print(f"mlops-nb vs Ploomber, 5-step notebook pipeline, {os.cpu_count()} cores, {args.repeat} repeats "
          f"(fresh project copies each)")
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_NB_HOME", "MLOPS_NB_ENGINE",
                                                                      "JUPYTER_PATH", "VIRTUAL_ENV")}
        for r in range(args.repeat):
            for variant in variants:  # interleaved, so drift in machine load spreads over all tools
                seconds, changed, pool = one_repeat(Path(tmp) / str(r), variant, args.ploomber, base_env)
                for s in "abc":
                    times[variant][s].append(seconds[s])
                    if changed[s] == expected[s]:
                        checks[variant][s] += 1
                    else:
                        surprises.append(f"{variant} ({s}) repeat {r + 1}: rewrote {changed[s] or 'nothing'}, "
                                         f"expected {expected[s] or 'nothing'}")
                if pool is not None:
                    pool_times.append(pool)
            print(f"  repeat {r + 1}/{args.repeat} done")

    labels = {"a": "a) first full run", "b": "b) rerun, nothing changed", "c": "c) rerun, features changed"}
    med = {v: {s: statistics.median(times[v][s]) for s in "abc"} for v in variants}
    names = {"ploomber": "ploomber (papermill)", "ploomber engine": "ploomber (ploomber-engine)",
             "mlops fresh": "mlops-nb --engine fresh", "mlops warm": "mlops-nb --engine warm",
             "mlops warm+daemon": "mlops-nb warm + daemon"}
    print("\nmedian wall seconds (x = Ploomber's default's time / this one's; above 1: faster than it)")
    print(f"  {'':<28}" + "".join(f"{labels[s]:>32}" for s in "abc"))
    for v in variants:
        cells = [f"{med[v][s]:>22.2f}s ({med['ploomber'][s] / med[v][s]:4.1f}x)" for s in "abc"]
        print(f"  {names[v]:<28}" + "".join(cells))
    print("\n  ploomber-engine: no kernel; the notebook runs in Ploomber's process (the kernelspec is unused).")
    print("  mlops warm: no daemon, so each `mlops-nb run` starts (and preloads) its own pool; its times include that.")
    print(f"  warm + daemon: `mlops-nb kernels start -n 2 --preload pandas --preload sklearn` until its kernels "
          f"were ready took {statistics.median(pool_times):.2f} s (median), not included above.")
    print("\nwork done, from the output CSVs' mtimes (a: all 5 written; b: none; c: features, train, report only):")
    for v in variants:
        print(f"  {names[v]:<28}" + ", ".join(f"{s}) as expected {checks[v][s]}/{args.repeat}" for s in "abc"))
    for line in surprises:
        print(f"  unexpected: {line}")


if __name__ == "__main__":
    main()
