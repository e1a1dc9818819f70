"""Sweeps: one notebook over a grid of params, as sibling step runs under one parent run.

    mlops-nb sweep notebooks/train.ipynb -p C=0.1,1,10 -p seed=0,1 --jobs 2 --metric accuracy

Each grid point is a step of a one-off pipeline, so points run in parallel with
``--jobs``, are cached like steps, and land in the registry like pipeline runs.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from mlops_nb import tracking
from mlops_nb.errors import NotFoundError
from mlops_nb.pipeline.params import ParamError, coerce, declared_params, resolve_step_params
from mlops_nb.pipeline.runner import PipelineResult, execute_pipeline
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


def parse_grid(notebook: Path, items: list[str]) -> dict[str, list]:
    """``["C=0.1,1,10", "seed=0,1"]`` -> typed value lists, checked against the parameters cell."""
    declared = declared_params(notebook)
    if declared is None:
        raise ParamError(f"{notebook.name} has no cell tagged 'parameters', so it cannot be swept")
    grid: dict[str, list] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name or not values:
            raise ParamError(f"-p takes NAME=V1,V2,..., got {item!r}")
        if name not in declared:
            raise ParamError(f"{notebook.name} has no param {name!r}{suggest(name, declared)}; its parameters "
                             f"cell declares: {', '.join(declared) or 'nothing'}")
        grid[name] = [coerce(v.strip(), declared[name], f"-p {name}={v.strip()}") for v in values.split(",")]
    if not grid:
        raise ParamError("a sweep needs at least one -p NAME=V1,V2,...")
    return grid


def run_sweep(notebook: str | Path, grid_items: list[str], *, metric: str | None = None, maximize: bool = True,
              jobs: int = 1, force: bool = False, progress=None, experiment: str | None = None,
              engine: str | None = None) -> SweepResult:
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise NotFoundError(f"notebook {notebook} does not exist")
    grid = parse_grid(notebook, grid_items)
    names = list(grid)
    points = [dict(zip(names, values)) for values in itertools.product(*grid.values())]
    steps = tuple(Step(name="_".join(f"{k}={v}" for k, v in point.items()), notebook=notebook) for point in points)
    # The project is where the command runs (like papermill): its registry, its working directory.
    pipeline = Pipeline(name=experiment or f"sweep-{notebook.stem}", path=Path.cwd() / f"{notebook.stem}.sweep",
                        params={}, steps=steps)
    declared = declared_params(notebook)
    planned = {step.name: resolve_step_params(step.name, notebook, declared, {}, point, [])
               for step, point in zip(steps, points)}
    result = execute_pipeline(pipeline, planned, run_params={f"grid.{k}": v for k, v in grid.items()}, force=force,
                              jobs=jobs, progress=progress, trigger="sweep", tags={"sweep": notebook.name},
                              run_name=f"sweep {notebook.stem}", inputs_scope="latest", engine=engine)
    store = open_store(find_home(tracking._settings["home"], start=pipeline.root))
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
