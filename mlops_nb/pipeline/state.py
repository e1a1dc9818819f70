"""The state a pipeline run shares between its step threads, and what it reports.

:class:`RunOptions` says how to run; :class:`RunState` is one run in progress (its kernels, the
notebooks being watched, cached steps waiting to be recorded, steps stopped early); :class:`Trials`
lets a sweep add steps while the run goes on; :class:`StepResult` and :class:`PipelineResult` are
what :func:`mlops_nb.pipeline.runner.run_pipeline` returns.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Mapping

from mlops_nb.pipeline import record
from mlops_nb.pipeline.execute import StepFailure
from mlops_nb.pipeline.params import ParamError
from mlops_nb.pipeline.progress import Progress
from mlops_nb.pipeline.spec import Pipeline, Step
from mlops_nb.registry.store import Store


@dataclass
class StepResult:
    name: str
    status: str                      # ran | cached | pruned | failed | skipped | interrupted
    run_id: str | None = None
    seconds: float = 0.0
    attempts: int = 0
    cached_from: str | None = None
    notebook: Path | None = None
    failure: StepFailure | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ran", "cached", "pruned")


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


_import_lock = threading.Lock()


def import_execution_stack() -> None:
    """Import jupyter_client, nbclient and papermill once, in one thread at a time: step threads importing
    them at once deadlock. Only runs that execute a notebook pay for it (nbformat's jsonschema alone can
    take a second)."""
    with _import_lock:
        import jupyter_client  # noqa: F401
        import nbclient  # noqa: F401
        import papermill.execute  # noqa: F401


@dataclass(frozen=True)
class RunOptions:
    """How to run a pipeline: the same options whether the CLI, a magic, REST, a trigger or a sweep asks.

        run_pipeline("pipeline.yaml", RunOptions(params=("train.C=0.5",), jobs=2))
    """

    params: tuple[str, ...] = ()          # command-line overrides: "NAME=VALUE" or "STEP.NAME=VALUE"
    force: bool = False                   # run every step, even unchanged ones
    force_steps: tuple[str, ...] = ()     # run these steps even if unchanged
    jobs: int = 1                         # how many independent steps may run at once
    engine: str | None = None             # warm | fresh; default $MLOPS_NB_ENGINE, else warm
    executor: str | None = None           # local | dask | tcp://HOST:PORT; default $MLOPS_NB_EXECUTOR, else
                                          # the pipeline's executor:, else local
    trigger: str = "manual"               # why the run happens, kept as its tag
    tags: Mapping[str, str] = field(default_factory=dict)
    force_reason: str = "--force"         # why forced steps run again (a trigger's rerun names itself)
    run_name: str | None = None
    inputs_scope: str = "pipeline"        # where mlops.input looks: this run's steps, or "latest" producer
    lock: bool = True                     # take the pipeline's run lock (a trigger check holds it already)
    handle_sigterm: bool = True           # SIGTERM interrupts like Ctrl-C (main thread only)
    progress: Progress | None = None
    on_start: Callable[[str], None] | None = None   # called with the pipeline run's id once it exists

    def checked(self) -> "RunOptions":
        """These options with the engine decided; a one-line error for a value that cannot work."""
        if not isinstance(self.jobs, int) or isinstance(self.jobs, bool) or self.jobs < 1:
            raise ParamError(f"--jobs must be a whole number of at least 1, got {self.jobs!r}")
        engine = self.engine or os.environ.get("MLOPS_NB_ENGINE") or "warm"
        if engine not in ("warm", "fresh"):
            raise ParamError(f"engine must be warm or fresh, got {engine!r} (from --engine or MLOPS_NB_ENGINE)")
        executor = self.executor or os.environ.get("MLOPS_NB_EXECUTOR") or None
        if executor is not None:
            from mlops_nb.pipeline.spec import SpecError, check_executor

            try:
                check_executor(executor, "--executor (or MLOPS_NB_EXECUTOR)")
            except SpecError as exc:
                raise ParamError(str(exc)) from None
        return replace(self, engine=engine, executor=executor, params=tuple(self.params),
                       force_steps=tuple(self.force_steps), progress=self.progress or Progress())


class RunState:
    """The state of one pipeline run, shared by the step threads."""

    def __init__(self, pipeline: Pipeline, store: Store, run_id: str, planned: dict, options: RunOptions):
        self.pipeline, self.store, self.run_id, self.planned, self.options = pipeline, store, run_id, planned, options
        self.progress = options.progress
        self.daemon = None
        self.results: dict[str, StepResult] = {}
        self.stopping = threading.Event()
        self.watches: set = set()
        self.lock = threading.Lock()
        self.folder = store.home / "runs" / run_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.warmed = False
        self.step_runs: dict[str, str] = {}      # step -> its run, once it has one
        # Cached steps are recorded (as step runs that copy what they reuse) only once a step of this run
        # really runs or fails, since only then does anything need them; a rerun where every step is
        # cached is one pipeline run whose `reused` tag names the run each step reused.
        self.reused: dict[str, tuple] = {}       # step -> (its StepResult, what record_cached needs)
        self.recording = False
        self.pruned: dict[str, str] = {}         # step -> why it was stopped early (a sweep's pruner)
        self.executor = None                     # a DaskExecutor, or None: steps run in this process

    @property
    def slots(self) -> int:
        """How many steps may run at once: --jobs, or the Dask cluster's threads when it has more."""
        return max(self.options.jobs, self.executor.slots) if self.executor is not None else self.options.jobs

    def reuse(self, result: StepResult, record_args: tuple) -> None:
        with self.lock:
            if not self.recording:
                self.reused[result.name] = (result, record_args)
                return
        result.run_id = record.record_cached(self.store, self.pipeline, self.run_id, *record_args)

    def record_reused(self) -> None:
        """A step is about to run: record the cached steps so far as step runs, and the ones to come at once
        (a step that runs reads its inputs from the step runs of this pipeline run)."""
        with self.lock:
            if self.recording:
                return
            self.recording = True
            pending, self.reused = self.reused, {}
        for result, record_args in pending.values():
            result.run_id = record.record_cached(self.store, self.pipeline, self.run_id, *record_args)

    def prune(self, step: str, why: str) -> None:
        """Stop a running step because its intermediate metrics will not beat the others (a sweep's pruner):
        the step ends as pruned, not failed, and the run goes on."""
        with self.lock:
            self.pruned[step] = why
            watches = [w for w in self.watches if w.step == step]
        for watch in watches:
            watch.stop()

    def engine_of(self, step: Step) -> str:
        return step.engine or self.options.engine

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
            if self.executor is None:
                import_execution_stack()
            self._start_kernels(self.options.jobs)

    def _start_kernels(self, jobs: int) -> None:
        from mlops_nb.kernels.preload import preload_list
        from mlops_nb.pipeline.execute import kernel_name_of

        warm = [s for s in self.pipeline.steps if self.engine_of(s) == "warm"]
        by_kernel: dict[str, list] = {}
        for step in warm:
            by_kernel.setdefault(kernel_name_of(step), []).append(step.notebook)
        if self.executor is not None:
            self.executor.warm_up({kernel_name: (preload_list(dict.fromkeys(notebooks), self.pipeline.preload),
                                                 len(notebooks)) for kernel_name, notebooks in by_kernel.items()},
                                  self.store.home)
            return
        for kernel_name, notebooks in by_kernel.items():
            # One spare beyond --jobs while there are more steps than jobs: a kernel being reset
            # after one step never delays the next.
            self.pool_for(kernel_name).want(preload_list(dict.fromkeys(notebooks), self.pipeline.preload),
                                            size=min(jobs + 1, len(notebooks)))

    @contextmanager
    def watching(self, watch) -> Iterator[None]:
        """Stopping the run (Ctrl-C, SIGTERM) stops every notebook being watched."""
        with self.lock:
            self.watches.add(watch)
        try:
            yield
        finally:
            with self.lock:
                self.watches.discard(watch)


class Trials:
    """Steps that are decided while the run goes on (a sweep's sampler proposes each point after seeing
    the earlier ones). The runner asks for a step whenever it has a free job and tells each result."""

    def ask(self) -> tuple[Step, dict] | None:
        """The next step and its params, or None when no more are wanted."""
        raise NotImplementedError

    def tell(self, state: "RunState", result: StepResult) -> None:
        """A step the run was given has ended (``state.store`` holds its run)."""

    def running(self, state: "RunState", steps: list[str]) -> None:
        """Called about every 0.2 s with the steps running now (a pruner looks at their metrics)."""
