"""Warm kernels against papermill, side by side: prints figures, asserts nothing about time.

    .venv/bin/python benchmarks/bench_kernels.py [--repeat 20]

(a) a trivial notebook N times, (b) a scikit-learn training notebook N times, (c) a
16-point sweep with --jobs 1 and --jobs 2, (d) a rerun of a 5-step pipeline where
one step changed. Engines: papermill's default, Ploomber (when installed), ours
with a fresh kernel per run, ours warm.

Targets (issue 10): warm overhead <= 0.1 s over the cells' own time; the sklearn
notebook <= 0.5 s per warm run; the 16-point sweep with --jobs 2 at least 1.7x
faster than with --jobs 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import papermill  # noqa: E402

import mlops_nb as mlops  # noqa: E402
from mlops_nb import run_pipeline  # noqa: E402
from mlops_nb import sweep as run_sweep  # noqa: E402
from tests.notebooks_util import write_notebook  # noqa: E402

TRIVIAL = ["y = n + 1", "print(y)"]
SKLEARN = ["""from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
X, y = make_classification(n_samples=2000, n_features=20, random_state=seed)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
model = RandomForestClassifier(n_estimators=n_estimators, n_jobs=1, random_state=seed).fit(X_train, y_train)
accuracy = model.score(X_test, y_test)
import mlops_nb as mlops
mlops.log_metric("accuracy", accuracy)"""]


def cells_seconds(path: Path) -> float:
    nb = json.loads(Path(path).read_text())
    return sum(c["metadata"].get("papermill", {}).get("duration") or 0 for c in nb["cells"]
               if "mlops-nb-context" not in c["metadata"].get("tags", []))


def time_papermill(notebook: Path, out: Path, params: dict, repeat: int) -> tuple[float, float]:
    walls, own = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        papermill.execute_notebook(str(notebook), str(out), parameters=params, progress_bar=False)
        walls.append(time.perf_counter() - start)
        own.append(cells_seconds(out))
    return statistics.median(walls), statistics.median(own)


def time_ours(root: Path, engine: str, repeat: int) -> tuple[float, float]:
    run_pipeline(root / "pipeline.yaml", engine=engine, force=True)  # start (and preload) the pool
    walls, own = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run_pipeline(root / "pipeline.yaml", engine=engine, force=True)
        walls.append(time.perf_counter() - start)
        step = next(iter(result.steps.values()))
        assert result.ok, step.failure.describe() if step.failure else result
        own.append(cells_seconds(step.notebook))
    return statistics.median(walls), statistics.median(own)


def ploomber_available() -> bool:
    try:
        import ploomber  # noqa: F401
        return True
    except ImportError:
        return False


def one_step_project(root: Path, name: str, cells: list[str], parameters: str) -> Path:
    project = root / name
    (project / "notebooks").mkdir(parents=True)
    write_notebook(project / "notebooks" / "nb.ipynb", cells, parameters=parameters)
    (project / "pipeline.yaml").write_text(f"name: {name}\nsteps:\n  - name: nb\n    notebook: notebooks/nb.ipynb\n")
    return project


def report(label: str, rows: dict[str, tuple[float, float]]) -> None:
    base = rows["papermill"][0]
    print(f"\n({label})")
    print(f"  {'engine':<18}{'median run':>12}{'cells':>10}{'overhead':>10}{'vs papermill':>14}")
    for engine, (wall, own) in rows.items():
        print(f"  {engine:<18}{wall:>11.3f}s{own:>9.3f}s{wall - own:>9.3f}s{base / wall:>13.1f}x")
    if not ploomber_available():
        print("  ploomber          not installed (pip install ploomber to compare)")


def main() -> None:
    parser = argparse.ArgumentParser(description="warm kernels vs papermill")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mlops.set_home(root / ".mlops")
        os.chdir(root)
        print(f"warm-kernel benchmark, {os.cpu_count()} cores, {args.repeat} runs per engine")

        for label, cells, params_cell, params in (
                ("a) trivial notebook", TRIVIAL, "n = 1", {"n": 2}),
                ("b) scikit-learn training notebook", SKLEARN, "seed = 0\nn_estimators = 20",
                 {"seed": 1, "n_estimators": 20})):
            project = one_step_project(root, label[0], cells, params_cell)
            rows = {"papermill": time_papermill(project / "notebooks" / "nb.ipynb", root / "pm.ipynb", params,
                                                args.repeat),
                    "ours, fresh": time_ours(project, "fresh", args.repeat),
                    "ours, warm": time_ours(project, "warm", args.repeat)}
            report(label, rows)

        project = one_step_project(root, "c", SKLEARN, "seed = 0\nn_estimators = 60")
        grid = ["seed=" + ",".join(str(i) for i in range(16))]
        print("\n(c) 16-point sweep of the scikit-learn notebook (n_estimators=60)")
        timings = {}
        for engine in ("warm", "fresh"):
            for jobs in (1, 2):
                # Warm up with as many points as the pool will hold, so no kernel starts while timing.
                warm_grid = ["seed=" + ",".join(str(100 + i) for i in range(jobs + 1))]
                run_sweep(project / "notebooks" / "nb.ipynb", warm_grid, jobs=jobs, engine=engine, force=True)
                walls = []
                for _ in range(3 if engine == "warm" else 1):
                    start = time.perf_counter()
                    outcome = run_sweep(project / "notebooks" / "nb.ipynb", grid, jobs=jobs, engine=engine,
                                        force=True)
                    walls.append(time.perf_counter() - start)
                    assert outcome.ok
                timings[(engine, jobs)] = statistics.median(walls)
                print(f"  ours, {engine:<5} --jobs {jobs}: {timings[(engine, jobs)]:6.2f} s"
                      f"{' (median of 3)' if len(walls) > 1 else ''}")
        start = time.perf_counter()
        for seed in range(16):
            papermill.execute_notebook(str(project / "notebooks" / "nb.ipynb"), str(root / "pm.ipynb"),
                                       parameters={"seed": seed, "n_estimators": 60}, progress_bar=False)
        papermill_sweep = time.perf_counter() - start
        print(f"  papermill, one after another: {papermill_sweep:6.2f} s")
        print(f"  warm speed-up from --jobs 2: {timings[('warm', 1)] / timings[('warm', 2)]:.2f}x (target >= 1.7x); "
              f"warm --jobs 2 vs papermill: {papermill_sweep / timings[('warm', 2)]:.1f}x")

        project = root / "d"
        (project / "notebooks").mkdir(parents=True)
        lines = ["name: five", "steps:"]
        for i in range(5):
            write_notebook(project / "notebooks" / f"s{i}.ipynb", [f"import mlops_nb as mlops\nmlops.output('v{i}', n)"],
                           parameters="n = 1")
            lines += [f"  - name: s{i}", f"    notebook: notebooks/s{i}.ipynb"] + ([f"    after: [s{i - 1}]"] if i else [])
        (project / "pipeline.yaml").write_text("\n".join(lines) + "\n")
        print("\n(d) rerun of a 5-step pipeline after the last step's notebook changed")
        for offset, engine in enumerate(("fresh", "warm")):
            run_pipeline(project / "pipeline.yaml", engine=engine, force=True)
            times = []
            for k in range(5):
                change = f"import mlops_nb as mlops\nmlops.output('v4', n + {k + 10 * offset})"
                write_notebook(project / "notebooks" / "s4.ipynb", [change], parameters="n = 1")
                start = time.perf_counter()
                result = run_pipeline(project / "pipeline.yaml", engine=engine)
                times.append(time.perf_counter() - start)
                assert [s.status for s in result.steps.values()] == ["cached"] * 4 + ["ran"]
            print(f"  ours, {engine:<5}: {statistics.median(times):.3f} s (4 steps cached, 1 ran)")
        start = time.perf_counter()
        for i in range(5):
            papermill.execute_notebook(str(project / "notebooks" / f"s{i}.ipynb"), str(root / "pm.ipynb"),
                                       progress_bar=False)
        print(f"  papermill (no cache: all 5 again): {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
