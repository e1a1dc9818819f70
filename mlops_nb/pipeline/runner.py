"""Running a pipeline: steps in dependency order through papermill, recorded in the registry.

A pipeline run is a run (kind ``pipeline``); each step is a child run (kind ``step``)
with its params, status, the executed notebook (``.mlops/runs/<run>/<step>.ipynb``
and an artifact) and what it handed on. Unchanged steps are skipped as cached.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from mlops_nb import environment, tracking
from mlops_nb.errors import NotFoundError
from mlops_nb.pipeline import cache
from mlops_nb.pipeline.execute import StepFailure, execute_step_notebook
from mlops_nb.pipeline.params import ParamError, parse_overrides, plan_params
from mlops_nb.pipeline.progress import Progress, QuietProgress
from mlops_nb.pipeline.spec import Pipeline, Step, load_pipeline, order_steps
from mlops_nb.registry import artifacts, datasets, outputs, runs
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import Store, open_store
from mlops_nb.registry.values import encode_param


@dataclass
class StepResult:
    name: str
    status: str                      # ran | cached | failed | skipped | interrupted
    run_id: str | None = None
    seconds: float = 0.0
    attempts: int = 0
    cached_from: str | None = None
    notebook: Path | None = None
    failure: StepFailure | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ran", "cached")


@dataclass
class PipelineResult:
    pipeline: str
    run_id: str
    status: str                      # finished | failed | interrupted
    steps: dict[str, StepResult] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def __repr__(self) -> str:
        states = ", ".join(f"{name}={result.status}" for name, result in self.steps.items())
        return f"PipelineResult({self.pipeline!r}, run={self.run_id[:8]!r}, status={self.status!r}, {states})"

    def _repr_html_(self) -> str:
        from mlops_nb.widgets.html import pipeline_result_html

        return pipeline_result_html(self)


_import_lock = threading.Lock()


def import_execution_stack() -> None:
    """Import jupyter_client, nbclient and papermill once, in one thread at a time: step threads importing
    them at once deadlock. Only runs that execute a notebook pay for it (nbformat's jsonschema alone can
    take a second)."""
    with _import_lock:
        import jupyter_client  # noqa: F401
        import nbclient  # noqa: F401
        import papermill.execute  # noqa: F401


class _Run:
    """The state of one pipeline run, shared by the step threads."""

    def __init__(self, pipeline: Pipeline, store: Store, run_id: str, planned: dict, force: bool,
                 force_steps: set[str], progress: Progress, inputs_scope: str = "pipeline", engine: str = "warm"):
        self.inputs_scope = inputs_scope  # where mlops.input looks: this run's steps, or the latest producer
        self.engine = engine
        self.daemon = None
        self.pipeline, self.store, self.run_id = pipeline, store, run_id
        self.planned, self.force, self.force_steps, self.progress = planned, force, force_steps, progress
        self.results: dict[str, StepResult] = {}
        self.stopping = threading.Event()
        self.watches: set = set()
        self.lock = threading.Lock()
        self.folder = store.home / "runs" / run_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.jobs = 1
        self.warmed = False

    def pool_for(self, kernel_name: str):
        """The kernel daemon's pool when one answers (`mlops-nb kernels start`), else this process's."""
        from mlops_nb.kernels.daemon import DaemonPool, running_daemon
        from mlops_nb.kernels.local import local_pool

        if self.daemon is None:
            self.daemon = running_daemon(self.store.home) or False
        if self.daemon:
            return DaemonPool(self.daemon, kernel_name)
        return local_pool(kernel_name, log_dir=self.store.home / "kernels")

    def warm_up(self) -> None:
        """Before the first step that really runs (a run where every step is cached needs none of this):
        import the execution stack, and start (and preload) the kernels the warm steps will need."""
        with self.lock:
            if self.warmed:
                return
            self.warmed = True
            import_execution_stack()
            self._start_kernels(self.jobs)

    def _start_kernels(self, jobs: int) -> None:
        from mlops_nb.kernels.preload import preload_list
        from mlops_nb.pipeline.execute import kernel_name_of

        warm = [s for s in self.pipeline.steps if (s.engine or self.engine) == "warm"]
        by_kernel: dict[str, list] = {}
        for step in warm:
            by_kernel.setdefault(kernel_name_of(step), []).append(step.notebook)
        for kernel_name, notebooks in by_kernel.items():
            # One spare beyond --jobs while there are more steps than jobs: a kernel being reset
            # after one step never delays the next.
            self.pool_for(kernel_name).want(preload_list(dict.fromkeys(notebooks), self.pipeline.preload),
                                            size=min(jobs + 1, len(notebooks)))


def run_pipeline(path: str | Path = "pipeline.yaml", *, params: list[str] | tuple = (), force: bool = False,
                 force_steps: list[str] | tuple = (), jobs: int = 1, progress: Progress | None = None,
                 trigger: str = "manual", tags: dict | None = None, engine: str | None = None) -> PipelineResult:
    """Run a pipeline once; return what each step did.

        result = run_pipeline("pipeline.yaml", params=["train.C=0.5"], jobs=2)
        result.ok, result.steps["train"].status
    """
    pipeline = load_pipeline(path)
    for name in force_steps:
        pipeline.step(name)
    planned = plan_params(pipeline, parse_overrides(list(params)))
    run_params = dict(pipeline.params)
    run_params.update({f"override.{item.split('=', 1)[0]}": item.split("=", 1)[1] for item in params})
    return execute_pipeline(pipeline, planned, run_params=run_params, force=force, force_steps=force_steps,
                            jobs=jobs, progress=progress, trigger=trigger, tags=tags, engine=engine)


def execute_pipeline(pipeline: Pipeline, planned: dict[str, dict], *, run_params: dict | None = None,
                     force: bool = False, force_steps=(), jobs: int = 1, progress: Progress | None = None,
                     trigger: str = "manual", tags: dict | None = None, run_name: str | None = None,
                     inputs_scope: str = "pipeline", engine: str | None = None, lock: bool = True,
                     on_start=None, handle_sigterm: bool = True) -> PipelineResult:
    """Run already-checked steps with their resolved params (``run_pipeline`` and sweeps come here).

    ``lock``: take the pipeline's run lock (triggers take it themselves and pass False);
    ``on_start(run_id)`` is called once the pipeline run exists."""
    started = time.monotonic()
    if not isinstance(jobs, int) or jobs < 1:
        raise ParamError(f"--jobs must be a whole number of at least 1, got {jobs!r}")
    engine = engine or os.environ.get("MLOPS_NB_ENGINE") or "warm"
    if engine not in ("warm", "fresh"):
        raise ParamError(f"engine must be warm or fresh, got {engine!r} (from --engine or MLOPS_NB_ENGINE)")
    progress = progress or QuietProgress()
    store = open_store(find_home(tracking._settings["home"], start=pipeline.root))
    held = None
    if lock:
        from mlops_nb.triggers.lock import PipelineLock

        held = PipelineLock(store.home, pipeline.name).__enter__()
    try:
        return _execute(pipeline, planned, store, started, run_params=run_params, force=force,
                        force_steps=force_steps, jobs=jobs, progress=progress, trigger=trigger, tags=tags,
                        run_name=run_name, inputs_scope=inputs_scope, engine=engine, on_start=on_start,
                        handle_sigterm=handle_sigterm)
    finally:
        if held is not None:
            held.release()


def _execute(pipeline, planned, store, started, *, run_params, force, force_steps, jobs, progress, trigger, tags,
             run_name, inputs_scope, engine, on_start, handle_sigterm) -> PipelineResult:
    run_id = _create_pipeline_run(store, pipeline, run_params or {}, trigger, tags or {}, run_name)
    if trigger == "manual":
        from mlops_nb.registry import triggers as trigger_store

        trigger_store.record_event(store, pipeline.name, "manual", "manual", "run on demand", None, status="manual",
                                   run_id=run_id)
    if on_start is not None:
        on_start(run_id)
    state = _Run(pipeline, store, run_id, planned, force, set(force_steps), progress, inputs_scope, engine)
    progress.pipeline_started(pipeline, run_id)
    status = "finished"
    try:
        with _working_dir(pipeline.root), (_sigterm_as_interrupt() if handle_sigterm else nullcontext()):
            state.jobs = jobs
            _schedule(state, jobs)
    except KeyboardInterrupt:
        status = "interrupted"
    if status != "interrupted":
        failed = [r for r in state.results.values() if r.status in ("failed", "interrupted")]
        status = "interrupted" if any(r.status == "interrupted" for r in failed) else ("failed" if failed else "finished")
    error = next((r.failure.summary() for r in state.results.values() if r.failure), None)
    runs.finish_run(store, run_id, status, error)
    result = PipelineResult(pipeline.name, run_id, status, {s.name: state.results.get(s.name) or StepResult(
        s.name, "interrupted" if status == "interrupted" else "skipped") for s in pipeline.steps},
        time.monotonic() - started)
    progress.pipeline_finished(result)
    return result


def _schedule(state: _Run, jobs: int) -> None:
    pipeline = state.pipeline
    pending = order_steps(pipeline)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="mlops-step") as pool:
        futures: dict = {}
        try:
            while pending or futures:
                for step in list(pending):
                    upstream = pipeline.upstream(step)
                    if not all(u in state.results for u in upstream):
                        continue
                    pending.remove(step)
                    blocked = [u for u in upstream if not state.results[u].ok]
                    if blocked or state.stopping.is_set():
                        reason = f"upstream step {blocked[0]} did not succeed" if blocked else "stopped"
                        state.results[step.name] = StepResult(step.name, "skipped", reason=reason)
                        state.progress.step_finished(state.results[step.name])
                    else:
                        futures[pool.submit(_run_step, state, step)] = step
                if not futures:
                    continue
                done, _ = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    step = futures.pop(future)
                    state.results[step.name] = future.result()
                    state.progress.step_finished(state.results[step.name])
        except BaseException:
            state.stopping.set()
            for watch in list(state.watches):
                watch.stop()
            for future, step in futures.items():
                try:
                    state.results[step.name] = future.result()
                except BaseException:
                    state.results[step.name] = StepResult(step.name, "interrupted")
            raise


def _run_step(state: _Run, step: Step) -> StepResult:
    store, pipeline = state.store, state.pipeline
    params = state.planned[step.name]
    started = time.monotonic()
    upstream_runs = {u: state.results[u].run_id for u in pipeline.upstream(step)}
    try:
        input_files = cache.expand_inputs(pipeline.root, pipeline.file_inputs(step))
    except NotFoundError as exc:
        return _failed_before_start(state, step, params, str(exc), started)
    key = cache.cache_key(store, notebook=step.notebook, params=params, kernel=step.kernel, input_files=input_files,
                          upstream_runs=upstream_runs, root=pipeline.root)
    if not (state.force or step.name in state.force_steps):
        cached_from = cache.find_cached(store, pipeline=pipeline.name, step=step.name, key=key, root=pipeline.root)
        if cached_from is not None:
            run_id = _record_cached(state, step, params, key, cached_from, input_files)
            return StepResult(step.name, "cached", run_id, time.monotonic() - started, cached_from=cached_from)
    state.warm_up()
    run_id = _create_step_run(state, step, params, key)
    _record_files(store, run_id, pipeline.root, input_files, "input")
    state.progress.step_started(step.name, run_id)
    notebook_path = state.folder / f"{step.name}.ipynb"
    failure, attempts = None, 0
    for attempts in range(1, step.retries + 2):
        failure = execute_step_notebook(state, step, params, run_id, notebook_path)
        if failure is None or state.stopping.is_set() or failure.interrupted or attempts > step.retries:
            break
        state.progress.step_retrying(step.name, attempts, failure)
    if failure is None:
        failure = _collect_outputs(state, step, run_id)
    if notebook_path.exists():
        sha, size = artifacts.put_file(store.artifacts_dir, notebook_path)
        runs.record_artifact(store, run_id, f"notebooks/{step.name}.ipynb", sha, size)
    status = "finished" if failure is None else ("interrupted" if failure.interrupted else "failed")
    runs.write_batch(store, tags=[(run_id, "attempts", str(attempts))])
    runs.finish_run(store, run_id, status, None if failure is None else failure.summary())
    return StepResult(step.name, {"finished": "ran"}.get(status, status), run_id, time.monotonic() - started,
                      attempts=attempts, notebook=notebook_path if notebook_path.exists() else None, failure=failure)


def _collect_outputs(state: _Run, step: Step, run_id: str) -> StepFailure | None:
    missing = [o for o in step.outputs if not (state.pipeline.root / o).is_file()]
    if missing:
        return StepFailure(step.name, f"step {step.name!r} finished but did not write its output "
                                      f"{', '.join(missing)} (declared in {state.pipeline.path.name})")
    files = [state.pipeline.root / o for o in step.outputs]
    for name, path in zip(step.outputs, files):
        sha, _ = artifacts.put_file(state.store.artifacts_dir, path)
        outputs.record_output(state.store, run_id, name, "file", sha256=sha, path=str(path.resolve()))
        outputs.fingerprint_file(state.store, path)
    _record_files(state.store, run_id, state.pipeline.root, files, "output")
    return None


def _record_files(store: Store, run_id: str, root: Path, files: list[Path], role: str) -> None:
    """Lineage: each file a step read or wrote, as a dataset named by its path."""
    for path in files:
        name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        datasets.record_dataset(store, run_id, name=name, fingerprint=outputs.fingerprint_file(store, path),
                                role=role, n_rows=None, n_cols=None, schema=None, profile=None)


def _create_pipeline_run(store: Store, pipeline: Pipeline, run_params: dict, trigger: str, tags: dict,
                         name: str | None) -> str:
    experiment_id = runs.ensure_experiment(store, pipeline.name)
    count = store.query_one("SELECT COUNT(*) FROM runs WHERE pipeline = ? AND kind = 'pipeline'", (pipeline.name,))[0]
    run_id, _ = runs.create_run(store, experiment_id=experiment_id, name=name or f"{pipeline.name}#{count + 1}",
                                kind="pipeline", git=environment.git_state(pipeline.root),
                                env=environment.python_environment(), source=str(pipeline.path),
                                pipeline=pipeline.name)
    params = [(run_id, *encode_param(k, v)) for k, v in run_params.items()]
    all_tags = {"trigger": trigger, "pipeline_file": str(pipeline.path), **tags}
    runs.write_batch(store, params=params, tags=[(run_id, k, str(v)) for k, v in all_tags.items()])
    return run_id


def _create_step_run(state: _Run, step: Step, params: dict, key: str, status: str = "running",
                     cached_from: str | None = None) -> str:
    store = state.store
    experiment_id = runs.ensure_experiment(store, state.pipeline.name)
    run_id, _ = runs.create_run(store, experiment_id=experiment_id, name=step.name, kind="step",
                                parent_id=state.run_id, git=environment.git_state(state.pipeline.root),
                                env=environment.python_environment(), source=str(step.notebook),
                                pipeline=state.pipeline.name, step=step.name, cache_key=key, cached_from=cached_from)
    runs.write_batch(store, params=[(run_id, *encode_param(k, v)) for k, v in params.items()],
                     tags=[(run_id, "notebook", str(step.notebook.relative_to(state.pipeline.root)
                                                    if step.notebook.is_relative_to(state.pipeline.root)
                                                    else step.notebook))])
    return run_id


def _record_cached(state: _Run, step: Step, params: dict, key: str, cached_from: str, input_files: list[Path]) -> str:
    store = state.store
    run_id = _create_step_run(state, step, params, key, cached_from=cached_from)
    outputs.copy_outputs(store, cached_from, run_id)
    with store.transaction() as conn:
        conn.execute("INSERT OR IGNORE INTO latest_metrics (run_id, key, value, step, timestamp) "
                     "SELECT ?, key, value, step, timestamp FROM latest_metrics WHERE run_id = ?", (run_id, cached_from))
        conn.execute("INSERT OR IGNORE INTO artifacts (run_id, name, sha256, size, created_at) "
                     "SELECT ?, name, sha256, size, created_at FROM artifacts WHERE run_id = ?", (run_id, cached_from))
    runs.write_batch(store, tags=[(run_id, "cached_from", cached_from)])
    _record_files(store, run_id, state.pipeline.root, input_files, "input")
    _record_files(store, run_id, state.pipeline.root, [state.pipeline.root / o for o in step.outputs], "output")
    runs.finish_run(store, run_id, "finished")
    return run_id


def _failed_before_start(state: _Run, step: Step, params: dict, message: str, started: float) -> StepResult:
    run_id = _create_step_run(state, step, params, key="")
    failure = StepFailure(step.name, f"step {step.name!r}: {message}")
    runs.finish_run(state.store, run_id, "failed", failure.summary())
    return StepResult(step.name, "failed", run_id, time.monotonic() - started, failure=failure)


@contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    # Once for the whole run: papermill's own per-notebook chdir races between threads.
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (cron, CI, a watcher stopping) ends the run like Ctrl-C: kernels stopped, runs interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
