"""Sweeps: one notebook over a grid of params, as sibling step runs under one parent run.

    mlops-nb sweep notebooks/train.ipynb -p C=0.1,1,10 -p seed=0,1 --jobs 2 --metric accuracy

Each grid point is a step of a one-off pipeline, so points run in parallel with
``--jobs``, are cached like steps, and land in the registry like pipeline runs.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path

from mlops_nb.errors import NotFoundError
from mlops_nb.pipeline.params import ParamError, coerce, declared_params, resolve_step_params
from mlops_nb.pipeline.runner import PipelineResult, RunOptions, run_pipeline
from mlops_nb.pipeline.spec import Pipeline, Step, suggest
from mlops_nb.registry import runs
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import open_store


@dataclass
class SweepResult:
    result: PipelineResult
    points: list[dict]            # {"step", "params", "status", "run_id", "metrics"}
    metric: str | None
    best: dict | None

    @property
    def ok(self) -> bool:
        return self.result.ok

    def table(self):
        """One row per grid point: its params, status, run and metrics (a pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame([{**point["params"], "status": point["status"], "run_id": point["run_id"],
                              **point["metrics"]} for point in self.points])

    def __repr__(self) -> str:
        best = "no best point" if self.best is None else (
            f"best {self.best['params']} with {self.metric}={self.best['metrics'][self.metric]:.4g}")
        return f"SweepResult({len(self.points)} points, {self.result.status}, {best})"


def parse_grid(notebook: Path, items: list[str] | dict[str, list]) -> dict[str, list]:
    """``["C=0.1,1,10", "seed=0,1"]`` or ``{"C": [0.1, 1, 10]}`` -> typed value lists, checked against the
    parameters cell."""
    declared = declared_params(notebook)
    if declared is None:
        raise ParamError(f"{notebook.name} has no cell tagged 'parameters', so it cannot be swept")
    if isinstance(items, dict):
        pairs = [(str(name), values if isinstance(values, (list, tuple)) else [values])
                 for name, values in items.items()]
    else:
        pairs = []
        for item in items:
            name, sep, values = item.partition("=")
            if not sep or not name.strip() or not values:
                raise ParamError(f"-p takes NAME=V1,V2,..., got {item!r}")
            pairs.append((name.strip(), [v.strip() for v in values.split(",")]))
    grid: dict[str, list] = {}
    for name, values in pairs:
        if name not in declared:
            raise ParamError(f"{notebook.name} has no param {name!r}{suggest(name, declared)}; its parameters "
                             f"cell declares: {', '.join(declared) or 'nothing'}")
        if not values:
            raise ParamError(f"the sweep of {name!r} has no values: give at least one")
        grid[name] = [coerce(v, declared[name], f"{name}={v}") for v in values]
    if not grid:
        raise ParamError("a sweep needs at least one param with values (-p NAME=V1,V2,... on the command line)")
    return grid


def run_sweep(notebook: str | Path, grid_items: list[str] | dict[str, list], *, metric: str | None = None,
              maximize: bool = True, options: RunOptions = RunOptions(), experiment: str | None = None,
              project: str | Path | None = None, home: str | Path | None = None) -> SweepResult:
    """Run ``notebook`` once per point of the grid. ``project`` is the folder whose registry and working
    directory the runs use (default: the current directory, like papermill); ``notebook`` is relative to it.
    ``options`` say how (``jobs``, ``force``, ``engine``, ``progress``), as for a pipeline run."""
    root = Path(project).resolve() if project is not None else Path.cwd()
    if not root.is_dir():
        raise NotFoundError(f"project folder {project} does not exist")
    notebook = (root / notebook).resolve()
    if not notebook.is_file():
        raise NotFoundError(f"notebook {notebook} does not exist")
    grid = parse_grid(notebook, grid_items)
    names = list(grid)
    points = [dict(zip(names, values)) for values in itertools.product(*grid.values())]
    steps = tuple(Step(name="_".join(f"{k}={v}" for k, v in point.items()), notebook=notebook) for point in points)
    # The project is where the command runs (like papermill): its registry, its working directory.
    pipeline = Pipeline(name=experiment or f"sweep-{notebook.stem}", path=root / f"{notebook.stem}.sweep",
                        params={}, steps=steps)
    declared = declared_params(notebook)
    planned = {step.name: resolve_step_params(step.name, notebook, declared, {}, point, [])
               for step, point in zip(steps, points)}
    options = replace(options, params=(), force_steps=(), trigger="sweep", tags={"sweep": notebook.name},
                      run_name=f"sweep {notebook.stem}", inputs_scope="latest")
    result = run_pipeline(pipeline, options, home=home, planned=planned,
                          run_params={f"grid.{k}": v for k, v in grid.items()})
    store = open_store(find_home(home, start=pipeline.root))
    rows = []
    for step, point in zip(steps, points):
        step_result = result.steps[step.name]
        metrics = runs.get_run(store, step_result.run_id).metrics if step_result.run_id else {}
        rows.append({"step": step.name, "params": point, "status": step_result.status, "run_id": step_result.run_id,
                     "metrics": metrics})
    metric = metric or next((k for row in rows for k in sorted(row["metrics"])), None)
    scored = [r for r in rows if r["status"] in ("ran", "cached") and isinstance(r["metrics"].get(metric), float)
              and not math.isnan(r["metrics"][metric])]
    best = (max if maximize else min)(scored, key=lambda r: r["metrics"][metric]) if scored else None
    if best is not None:
        runs.write_batch(store, tags=[(result.run_id, "best_run", best["run_id"]),
                                      (result.run_id, "best_metric", f"{metric}={best['metrics'][metric]}")])
    return SweepResult(result, rows, metric, best)
