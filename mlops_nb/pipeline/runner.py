"""Running a pipeline: steps in dependency order through papermill, recorded in the registry.

:func:`run_pipeline` is the one way a pipeline runs, whoever asks (CLI, magics, REST,
triggers, sweeps). Each step's notebook is executed (``.mlops/runs/<run>/<step>.ipynb``,
also kept as an artifact) unless it is unchanged, when the step is cached; what a run
leaves in the registry is written by :mod:`mlops_nb.pipeline.record`.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Mapping

from mlops_nb.errors import NotFoundError
from mlops_nb.pipeline import cache, notify, record
from mlops_nb.pipeline.watch import Watch
from mlops_nb.pipeline.execute import StepFailure, execute_step, kernel_name_of
from mlops_nb.pipeline.lock import PipelineLock
from mlops_nb.pipeline.params import ParamError, declared_defaults, parse_overrides, plan_params
from mlops_nb.pipeline.spec import Pipeline, Step, load_pipeline, order_steps
from mlops_nb.pipeline.state import (  # noqa: F401  (the runner's public names live here too)
    PipelineResult, RunOptions, RunState, StepResult, Trials, import_execution_stack)
from mlops_nb.registry import artifacts, runs
from mlops_nb.registry import triggers as trigger_store
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import Store, open_store


def run_pipeline(pipeline: str | Path | Pipeline = "pipeline.yaml", options: RunOptions = RunOptions(), *,
                 home: str | Path | None = None, planned: dict[str, dict] | None = None,
                 run_params: Mapping | None = None, trials: Trials | None = None) -> PipelineResult:
    """Run a pipeline once; return what each step did. The one way every face and trigger runs one.

    ``home`` is the registry (default: the nearest ``.mlops`` from the pipeline's folder);
    ``planned`` and ``run_params`` are for callers that resolved the steps' params themselves
    (sweeps); otherwise they come from the pipeline file and ``options.params``. ``trials`` adds steps
    while the run goes on (a sweep whose sampler learns from each point)::

        result = run_pipeline("pipeline.yaml", RunOptions(params=("train.C=0.5",), jobs=2))
        result.ok, result.steps["train"].status
    """
    started = time.monotonic()
    spec = pipeline if isinstance(pipeline, Pipeline) else load_pipeline(pipeline)
    options = options.checked()
    for name in options.force_steps:
        spec.step(name)
    if planned is None:
        planned = plan_params(spec, parse_overrides(list(options.params)))
    if run_params is None:
        run_params = {**spec.params, **{f"override.{item.split('=', 1)[0]}": item.split("=", 1)[1]
                                        for item in options.params}}
    store = open_store(find_home(home, start=spec.root))
    held = PipelineLock(store.home, spec.name).__enter__() if options.lock else None
    executor = None
    try:
        executor = _open_executor(options.executor or spec.executor or "local", options.jobs)
        state = _start(spec, store, planned, options, run_params, executor)
        status = "failed"
        try:
            with _sigterm_as_interrupt() if options.handle_sigterm else nullcontext():
                _schedule(state, trials)
            status = None  # decided by the steps
        except KeyboardInterrupt:
            status = "interrupted"
        finally:  # every run we started ends, whatever happened
            result = _finish(state, status, started)
    finally:
        if executor is not None:
            executor.close()
        if held is not None:
            held.release()
    return result


def _open_executor(choice: str, jobs: int):
    """None for local execution, else a Dask client for this command (imported only when asked for)."""
    if choice == "local":
        return None
    try:
        from mlops_nb.pipeline.dask_executor import DaskExecutor
    except ImportError as exc:
        raise ParamError(f"--executor {choice} needs Dask's distributed package ({exc}); install it with "
                         "pip install 'mlops-nb[dask]'") from None
    return DaskExecutor.open(choice, jobs)


def _start(pipeline: Pipeline, store: Store, planned: dict, options: RunOptions, run_params: Mapping,
           executor=None) -> RunState:
    run_id = record.create_pipeline_run(store, pipeline, dict(run_params), options.trigger, dict(options.tags),
                                  options.run_name)
    if options.trigger == "manual":
        trigger_store.record_event(store, pipeline.name, "manual", "manual", "run on demand", None, status="manual",
                                   run_id=run_id)
    if options.on_start is not None:
        options.on_start(run_id)
    state = RunState(pipeline, store, run_id, planned, options)
    state.progress.pipeline_started(pipeline, run_id)
    if executor is not None:
        state.executor = executor
        executor.follow(run_id, state.progress)
        state.progress.executor_started(executor.description, executor.dashboard)
    return state


def _finish(state: RunState, status: str | None, started: float) -> PipelineResult:
    failed = [r for r in state.results.values() if r.status in ("failed", "interrupted")]
    if status is None:
        status = "interrupted" if any(r.status == "interrupted" for r in failed) else ("failed" if failed else "finished")
    error = next((r.failure.summary() for r in state.results.values() if r.failure), None)
    if status == "failed" and error is None:
        error = "the run stopped on an internal error (see the traceback)"
    if state.reused and not state.recording:  # nothing ran: one row that says what it reused
        record.record_reused(state.store, state.run_id, {name: r.cached_from for name, (r, _) in state.reused.items()})
    runs.finish_run(state.store, state.run_id, status, error)
    result = PipelineResult(state.pipeline.name, state.run_id, status, {s.name: state.results.get(s.name) or StepResult(
        s.name, "interrupted" if status == "interrupted" else "skipped") for s in state.pipeline.steps},
        time.monotonic() - started)
    notify.run_events(state.store, state.pipeline, result)
    state.progress.pipeline_finished(result)
    return result


def _schedule(state: RunState, trials: Trials | None = None) -> None:
    pipeline = state.pipeline
    pending = order_steps(pipeline)
    asking = trials is not None
    with ThreadPoolExecutor(max_workers=state.slots, thread_name_prefix="mlops-step") as pool:
        futures: dict = {}
        try:
            while pending or futures or asking:
                while asking and len(futures) + len(pending) < state.slots and not state.stopping.is_set():
                    asked = trials.ask()
                    if asked is None:
                        asking = False
                        break
                    step, params = asked
                    state.pipeline = pipeline = replace(pipeline, steps=pipeline.steps + (step,))
                    state.planned[step.name] = params
                    pending.append(step)
                if state.stopping.is_set():
                    asking = False
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
                    if trials is not None:
                        trials.tell(state, state.results[step.name])
                if trials is not None and futures:
                    trials.running(state, [step.name for step in futures.values()])
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


def _run_step(state: RunState, step: Step) -> StepResult:
    store, pipeline = state.store, state.pipeline
    params = state.planned[step.name]
    started = time.monotonic()
    upstream_runs = {u: state.results[u].run_id for u in pipeline.upstream(step)}
    try:
        input_files = cache.expand_inputs(pipeline.root, pipeline.file_inputs(step))
        feature_writes = cache.feature_writes(store, pipeline.feature_inputs(step))
    except NotFoundError as exc:
        return _failed_before_start(state, step, params, str(exc), started)
    key = cache.cache_key(store, notebook=step.notebook, params=params, kernel=step.kernel, input_files=input_files,
                          upstream_runs=upstream_runs, root=pipeline.root, feature_writes=feature_writes)
    recorded = {**declared_defaults(step.notebook), **params}  # the defaults it ran with count as params too
    if not step.cache:
        why = "always runs (cache: false)"
    elif state.options.force or step.name in state.options.force_steps:
        why = f"run again: {state.options.force_reason}"
    else:
        cached_from = cache.find_cached(store, pipeline=pipeline.name, step=step.name, key=key, root=pipeline.root)
        if cached_from is not None:
            cached_from = runs.computing_run(store, cached_from)  # the run that computed it, in one hop
            why = f"reused run {cached_from[:8]}: notebook, params and inputs unchanged"
            # Until it is recorded, the step's run is the one it reuses (same outputs, so the same cache keys).
            result = StepResult(step.name, "cached", cached_from, time.monotonic() - started,
                                cached_from=cached_from, reason=why)
            state.reuse(result, (step, recorded, key, cached_from, input_files, why))
            return result
        why = cache.why_not_cached(store, pipeline=pipeline.name, step=step.name)
    state.record_reused()
    state.warm_up()
    run_id = record.create_step_run(store, pipeline, state.run_id, step, recorded, key, why=why)
    state.step_runs[step.name] = run_id
    notebook_path = state.folder / f"{step.name}.ipynb"
    failure, attempts, status, tags = None, 0, "failed", []
    try:
        record.record_files(store, run_id, pipeline.root, input_files, "input")
        state.progress.step_started(step.name, run_id)
        for attempts in range(1, step.retries + 2):
            failure = _attempt(state, step, params, run_id, notebook_path)
            if failure is not None and not failure.interrupted:  # why each attempt failed, kept with the run
                tags.append((run_id, f"mlops.attempt.{attempts}.error", failure.summary()))
            if failure is None or state.stopping.is_set() or failure.interrupted or attempts > step.retries:
                break
            state.progress.step_retrying(step.name, attempts, failure)
        if failure is None:
            failure = record.collect_outputs(store, pipeline, step, run_id)
        if notebook_path.exists():
            sha, size = artifacts.put_file(store.artifacts_dir, notebook_path)
            runs.record_artifact(store, run_id, f"notebooks/{step.name}.ipynb", sha, size)
        status = "finished" if failure is None else ("interrupted" if failure.interrupted else "failed")
        tags.append((run_id, "attempts", str(attempts)))
        if status == "interrupted" and step.name in state.pruned and not state.stopping.is_set():
            status, failure, why = "pruned", None, state.pruned[step.name]
            tags.append((run_id, "mlops.pruned", why))
        runs.write_batch(store, tags=tags)
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:  # the step run ends even when something below us broke
        error = failure.summary() if failure is not None else (
            None if status == "finished" else why if status == "pruned" else f"step {step.name!r} stopped ({status})")
        runs.finish_run(store, run_id, "interrupted" if status == "pruned" else status, error)
    return StepResult(step.name, {"finished": "ran"}.get(status, status), run_id, time.monotonic() - started,
                      attempts=attempts, notebook=notebook_path if notebook_path.exists() else None, failure=failure,
                      reason=why)


def _attempt(state: RunState, step: Step, params: dict, run_id: str, notebook_path: Path) -> StepFailure | None:
    """One execution of the step's notebook, on a pooled kernel or a fresh one, watched by the run."""
    watch = Watch(step.name, deadline=time.monotonic() + step.timeout if step.timeout else None,
                  cell_timeout=step.cell_timeout, on_cell=state.progress.cell)
    if state.executor is not None:
        with state.watching(watch):
            return state.executor.attempt(state, step, params, run_id, notebook_path, watch)
    pool = state.pool_for(kernel_name_of(step)) if state.engine_of(step) == "warm" else None
    with state.watching(watch):
        return execute_step(step, params, run_id=run_id, pipeline_run=state.run_id, home=state.store.home,
                            cwd=state.pipeline.root, output=notebook_path, watch=watch, pool=pool,
                            inputs_scope=state.options.inputs_scope, registry=getattr(state.store, "url", None))


def _failed_before_start(state: RunState, step: Step, params: dict, message: str, started: float) -> StepResult:
    state.record_reused()
    run_id = record.create_step_run(state.store, state.pipeline, state.run_id, step, params, key="")
    failure = StepFailure(step.name, f"step {step.name!r}: {message}")
    runs.finish_run(state.store, run_id, "failed", failure.summary())
    return StepResult(step.name, "failed", run_id, time.monotonic() - started, failure=failure)


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
