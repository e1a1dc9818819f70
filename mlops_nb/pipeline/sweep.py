"""Sweeps: one notebook over a search space, as sibling step runs under one parent run.

    mlops-nb sweep notebooks/train.ipynb -p C=0.1,1,10 -p seed=0,1 --jobs 2 --metric accuracy
    mlops-nb sweep notebooks/train.ipynb --space space.yaml --search optuna --trials 20 -m accuracy

Each point is a step of a one-off pipeline, so points run in parallel with ``--jobs``, are
cached like steps, and land in the registry like pipeline runs. A grid runs every point and
random search a sample of them, both planned ahead; Optuna proposes each point after seeing the
earlier ones, and its pruner stops a point whose intermediate metric (logged with ``step=``)
falls behind the others: the point ends as ``pruned``, and its run says at which step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from mlops_nb.errors import NotFoundError
from mlops_nb.pipeline import search as spaces
from mlops_nb.pipeline.params import ParamError, declared_params, resolve_step_params
from mlops_nb.pipeline.runner import run_pipeline
from mlops_nb.pipeline.state import PipelineResult, RunOptions, StepResult, Trials
from mlops_nb.pipeline.spec import Pipeline, Step
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


def parse_grid(items: list[str] | dict[str, list]) -> dict[str, list]:
    """``["C=0.1,1,10", "seed=0,1"]`` or ``{"C": [0.1, 1, 10]}`` -> {name: values} (still untyped)."""
    if isinstance(items, dict):
        return {str(name): list(values) if isinstance(values, (list, tuple)) else [values]
                for name, values in items.items()}
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip() or not values:
            raise ParamError(f"-p takes NAME=V1,V2,..., got {item!r}")
        grid[name.strip()] = [v.strip() for v in values.split(",")]
    return grid


def run_sweep(notebook: str | Path, grid_items: list[str] | dict[str, list] | None = None, *,
              metric: str | None = None, maximize: bool = True, options: RunOptions = RunOptions(),
              experiment: str | None = None, project: str | Path | None = None, home: str | Path | None = None,
              space: str | Path | dict | None = None, search: str = "grid", trials: int | None = None,
              seed: int | None = None) -> SweepResult:
    """Run ``notebook`` over a search space: the grid's every point, or ``trials`` points that random
    search or Optuna choose. The space is ``grid_items`` (values per param) and/or ``space`` (a YAML file
    or its dict: see :mod:`mlops_nb.pipeline.search`). ``project`` is the folder whose registry and working
    directory the runs use (default: the current directory, like papermill); ``notebook`` is relative to it.
    ``options`` say how (``jobs``, ``force``, ``engine``, ``progress``), as for a pipeline run."""
    root = Path(project).resolve() if project is not None else Path.cwd()
    if not root.is_dir():
        raise NotFoundError(f"project folder {project} does not exist")
    notebook = (root / notebook).resolve()
    if not notebook.is_file():
        raise NotFoundError(f"notebook {notebook} does not exist")
    if search not in spaces.SEARCHES:
        raise ParamError(f"--search is grid, random or optuna, not {search!r}")
    declared = declared_params(notebook)
    if declared is None:
        raise ParamError(f"{notebook.name} has no cell tagged 'parameters', so it cannot be swept")
    dimensions = _space(notebook, declared, grid_items, space, root)
    if search != "grid" and (trials is None or trials < 1):
        raise ParamError(f"a {search} sweep needs --trials N (how many points to run), at least 1")
    if search == "optuna" and not metric:
        raise ParamError("an optuna sweep needs -m METRIC: the metric it learns from (and prunes on)")
    sampler = None
    if search == "grid":
        points = spaces.grid_points(dimensions)
        names = ["_".join(f"{k}={v}" for k, v in point.items()) for point in points]
    elif search == "random":
        points = spaces.random_points(dimensions, trials, seed)
        names = [f"trial-{i:03d}" for i in range(len(points))]
    else:
        points, names = [], []
        sampler = OptunaTrials(notebook, declared, dimensions, trials, metric, maximize, seed)
    steps = tuple(Step(name=name, notebook=notebook) for name in names)
    # The project is where the command runs (like papermill): its registry, its working directory.
    pipeline = Pipeline(name=experiment or f"sweep-{notebook.stem}", path=root / f"{notebook.stem}.sweep",
                        params={}, steps=steps)
    planned = {step.name: resolve_step_params(step.name, notebook, declared, {}, point, [])
               for step, point in zip(steps, points)}
    options = replace(options, params=(), force_steps=(), trigger="sweep",
                      tags={"sweep": notebook.name, "search": search}, run_name=f"sweep {notebook.stem}",
                      inputs_scope="latest")
    run_params = {f"space.{d.name}": list(d.values) if d.kind == "choice" else f"{d.kind}[{d.low:g}, {d.high:g}]"
                  for d in dimensions}
    if search != "grid":
        run_params.update({"search.trials": trials, "search.seed": seed})
    result = run_pipeline(pipeline, options, home=home, planned=planned, run_params=run_params, trials=sampler)
    if sampler is not None:
        points = [sampler.points[name] for name in sampler.points]
        names = list(sampler.points)
    store = open_store(find_home(home, start=pipeline.root))
    rows = []
    for name, point in zip(names, points):
        step_result = result.steps.get(name) or StepResult(name, "skipped")
        metrics = runs.get_run(store, step_result.run_id).metrics if step_result.run_id else {}
        rows.append({"step": name, "params": point, "status": step_result.status, "run_id": step_result.run_id,
                     "metrics": metrics})
    metric = metric or next((k for row in rows for k in sorted(row["metrics"])), None)
    scored = [r for r in rows if r["status"] in ("ran", "cached") and isinstance(r["metrics"].get(metric), float)
              and not math.isnan(r["metrics"][metric])]
    best = (max if maximize else min)(scored, key=lambda r: r["metrics"][metric]) if scored else None
    if best is not None:
        runs.write_batch(store, tags=[(result.run_id, "best_run", best["run_id"]),
                                      (result.run_id, "best_metric", f"{metric}={best['metrics'][metric]}")])
    return SweepResult(result, rows, metric, best)


def _space(notebook: Path, declared: dict, grid_items, space, root: Path) -> list[spaces.Dimension]:
    """The dimensions from ``-p`` values and the space file; ``-p`` wins for a param in both."""
    dimensions: dict[str, spaces.Dimension] = {}
    if space is not None:
        loaded = (spaces.parse_space(space, declared, "the search space") if isinstance(space, dict)
                  else spaces.load_space(root / space, declared))
        dimensions.update((d.name, d) for d in loaded)
    if grid_items:
        dimensions.update((d.name, d) for d in spaces.parse_space(parse_grid(grid_items), declared, notebook.name))
    if not dimensions:
        raise ParamError("a sweep needs a search space: -p NAME=V1,V2,... (repeatable) or --space FILE.yaml")
    return list(dimensions.values())


class OptunaTrials(Trials):
    """Optuna's study behind the runner's :class:`Trials`: it proposes each point (TPE, seeded), learns
    from its metric, and prunes a running point on the intermediate values it logged with ``step=``
    (optuna's median pruner)."""

    def __init__(self, notebook: Path, declared: dict, space: list, trials: int, metric: str, maximize: bool,
                 seed: int | None):
        try:
            import optuna
        except ImportError:
            raise ParamError("--search optuna needs Optuna: pip install 'mlops-nb[optuna]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.study = optuna.create_study(direction="maximize" if maximize else "minimize",
                                         sampler=optuna.samplers.TPESampler(seed=seed),
                                         pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
        self.notebook, self.declared, self.space, self.trials, self.metric = notebook, declared, space, trials, metric
        self.points: dict[str, dict] = {}
        self.live: dict[str, tuple] = {}          # step -> (optuna trial, steps reported)

    def ask(self):
        if len(self.points) >= self.trials:
            return None
        trial = self.study.ask()
        point = {d.name: d.suggest(trial) for d in self.space}
        name = f"trial-{trial.number:03d}"
        self.points[name] = point
        self.live[name] = (trial, set())
        return Step(name=name, notebook=self.notebook), resolve_step_params(
            name, self.notebook, self.declared, {}, point, [])

    def tell(self, state, result: StepResult) -> None:
        trial, _ = self.live.pop(result.name)
        states = self.optuna.trial.TrialState
        if result.status == "pruned":
            self.study.tell(trial, state=states.PRUNED)
            return
        value = None
        if result.ok and result.run_id:
            value = runs.get_run(state.store, result.run_id).metrics.get(self.metric)
        if isinstance(value, float) and not math.isnan(value):
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=states.FAIL)

    def running(self, state, steps: list[str]) -> None:
        for name in steps:
            run_id = state.step_runs.get(name)
            if run_id is None or name not in self.live or name in state.pruned:
                continue
            trial, reported = self.live[name]
            for _, step, value, _ in runs.metric_history(state.store, run_id, self.metric):
                if step in reported or math.isnan(value):
                    continue
                reported.add(step)
                trial.report(value, step)
                if trial.should_prune():
                    state.prune(name, f"pruned by optuna at step {step}: {self.metric}={value:.4g} is behind "
                                      f"the median of the earlier trials")
                    break
