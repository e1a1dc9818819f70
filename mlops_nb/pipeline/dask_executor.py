"""Steps and sweep points as tasks on a Dask cluster; the one module that imports ``distributed``.

``--executor dask`` starts a ``LocalCluster`` (one single-threaded worker process per job) for the
command's lifetime; ``--executor tcp://HOST:PORT`` uses a running scheduler (``dask scheduler``,
dask-jobqueue, Kubernetes...). The run itself stays where it is: it decides what runs, checks the
cache and records every step exactly as with local execution. A task is one attempt of one step: the
worker runs the notebook on a kernel from its own warm pool (the :class:`KernelPools` plugin) and
writes the executed notebook to the run's folder, so the project folder and the registry's folder
must be at the same path on every worker (a shared mount). The kernels write their metrics to the
registry themselves: PostgreSQL from any machine, the SQLite file only from the client's machine.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import dask
import distributed
from distributed import Client, LocalCluster, WorkerPlugin, get_client, get_worker
from distributed.scheduler import KilledWorker

from mlops_nb.errors import InvalidInputError
from mlops_nb.pipeline.execute import StepFailure, execute_step, kernel_name_of
from mlops_nb.pipeline.spec import Step

STOP_GRACE = 30.0   # seconds a worker gets to stop a step's kernel before its task is abandoned
# A task waits on a kernel in another process, so Dask's sampling profiler of the task's thread (every
# 10 ms) finds nothing to show and only takes CPU from the kernels; the clusters we start go without it.
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}


class ExecutorError(InvalidInputError):
    """The Dask executor cannot start: no scheduler at the address, or no worker that can run a step."""


@dataclass(frozen=True)
class AttemptRequest:
    """What a worker needs to run one attempt of one step (everything else is on the shared path)."""

    step: Step
    params: dict
    run_id: str
    pipeline_run: str
    home: Path
    cwd: Path
    output: Path
    inputs_scope: str
    registry: str | None          # the PostgreSQL URL, or None for the SQLite file under home
    environ: dict[str, str]       # the client's MLOPS_NB_* variables, for the kernel
    warm: bool                    # a kernel from the worker's pool, or a fresh one
    claim: str                    # names the task and, in the scheduler's metadata, the worker running it
    topic: str                    # the run's event topic: placed, cell
    host: str                     # the client's machine


class DaskExecutor:
    """A Dask client (and the LocalCluster it started, if any) for one command."""

    def __init__(self, client: Client, cluster: LocalCluster | None = None):
        self.client, self.cluster = client, cluster
        self.topics: set[str] = set()
        # The runner asks often and the cluster changes seldom: (what the scheduler said, when), kept 5 s.
        self._threads: tuple[dict, float] = ({}, -1.0)
        self._workers: tuple[list, float] = ([], -1.0)

    @classmethod
    def open(cls, choice: str, jobs: int) -> "DaskExecutor":
        cluster = None
        if choice == "dask":
            workers = jobs if jobs > 1 else (os.cpu_count() or 1)
            memory = distributed.system.MEMORY_LIMIT // workers
            with dask.config.set(WORKER_CONFIG):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=_dashboard_address(), memory_limit=memory,
                                       resources={"memory": memory}, silence_logs=logging.ERROR)
            client = Client(cluster, set_as_default=False)
        else:
            try:
                _reachable(choice)
                client = Client(choice, timeout=10, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"no Dask scheduler answers at {choice} ({str(exc).splitlines()[0][:120]}); "
                                    "start one (dask scheduler) or check --executor / MLOPS_NB_EXECUTOR") from None
        # Registering it again would tear the workers' warm kernels down: only where it is missing.
        if not all(client.run(_has_kernel_pools).values()):
            client.register_plugin(KernelPools(), name=KernelPools.name)
        return cls(client, cluster)

    @property
    def slots(self) -> int:
        """How many tasks the cluster runs at once now (its workers' threads, counted every few seconds)."""
        if time.monotonic() - self._threads[1] > 5:
            self._threads = (self.client.nthreads(), time.monotonic())
        return sum(self._threads[0].values())

    @property
    def description(self) -> str:
        threads = self.client.nthreads()
        kind = "Dask LocalCluster" if self.cluster is not None else f"Dask scheduler {self.client.scheduler.address}"
        per = sorted(set(threads.values()))
        shape = f"{len(threads)} workers" + (f" x {per[0]} thread{'s' if per[0] > 1 else ''}" if len(per) == 1 else "")
        return f"{kind}, {shape}"

    @property
    def dashboard(self) -> str | None:
        try:
            return self.client.dashboard_link
        except (KeyError, AttributeError):  # a scheduler without bokeh has no dashboard
            return None

    def follow(self, pipeline_run: str, progress) -> None:
        """Show the workers' events for one run (which worker took a step, its cells) on ``progress``."""

        def handler(event):
            message = event[1]
            if message.get("kind") == "placed":
                progress.step_placed(message["step"], message["worker"])
            elif message.get("kind") == "cell":
                progress.cell(message["step"], message["index"], message["total"])

        topic = _topic(pipeline_run)
        self.client.subscribe_topic(topic, handler)
        self.topics.add(topic)

    def warm_up(self, wants: dict[str, tuple[list[str], int]], home: Path) -> None:
        """Start warm kernels on every worker: ``{kernel name: (modules to preload, how many notebooks use
        it)}``; a worker keeps one kernel per thread, and a spare while there are more notebooks."""
        self.client.run(_warm_pools, wants, str(home))

    def attempt(self, state, step: Step, params: dict, run_id: str, notebook_path: Path, watch) -> StepFailure | None:
        """Run one attempt of ``step`` (step run ``run_id`` of the pipeline run ``state``) on a worker and wait
        for it; stopping ``watch`` stops the worker's kernel."""
        problem = self._cannot_place(step)
        if problem:
            return StepFailure(step.name, f"step {step.name!r}: {problem}")
        request = AttemptRequest(step, params, run_id, state.run_id, state.store.home, state.pipeline.root,
                                 notebook_path, state.options.inputs_scope, getattr(state.store, "url", None),
                                 {k: v for k, v in os.environ.items() if k.startswith("MLOPS_NB_")},
                                 state.engine_of(step) == "warm", new_claim(step.name), _topic(state.run_id),
                                 socket.gethostname())
        watch.kill = lambda: self._stop(request)
        future = self.client.submit(run_attempt, request, key=request.claim, pure=False,
                                    resources=step.resources or None)
        stopped_at = None
        try:
            while True:
                try:
                    failure, _worker = future.result(timeout=0.5)
                    return failure
                except TimeoutError:
                    if not watch.stopped.is_set():
                        continue
                    stopped_at = stopped_at or time.monotonic()
                    if time.monotonic() - stopped_at > STOP_GRACE:
                        future.cancel()
                        return StepFailure(step.name, f"step {step.name!r} was interrupted (its Dask task did not "
                                           f"stop within {STOP_GRACE:g} s and was cancelled)", interrupted=True)
                except KilledWorker as exc:  # the scheduler gave up on it after several lost workers
                    return _lost(step, self._claimed_by(request) or "?", str(exc))
        finally:
            future.release()
            try:
                self.client.set_metadata(_claim_key(request), None)
            except Exception:  # the scheduler may be gone (Ctrl-C while it stops)
                pass

    def _claimed_by(self, request: AttemptRequest) -> str | None:
        try:
            return self.client.get_metadata(_claim_key(request), default=None)
        except Exception:
            return None

    def _stop(self, request: AttemptRequest) -> None:
        """Tell the worker running the attempt to stop its kernel (every worker, when none has taken it yet)."""
        worker = self._claimed_by(request)
        try:
            self.client.run(_stop_claim, request.claim, workers=[worker] if worker else None)
        except Exception:  # that worker is gone: nothing runs there to stop
            pass

    def _cannot_place(self, step: Step) -> str | None:
        if not step.resources:
            return None
        if time.monotonic() - self._workers[1] > 5:
            self._workers = (list(self.client.scheduler_info(n_workers=-1)["workers"].values()), time.monotonic())
        workers = self._workers[0]
        if any(all(w.get("resources", {}).get(k, 0) >= v for k, v in step.resources.items()) for w in workers):
            return None
        asked = ", ".join(f"{k}={v:g}" for k, v in step.resources.items())
        return (f"it asks for resources {asked} and no Dask worker offers them; start workers with "
                f"dask worker SCHEDULER --resources '{asked}', or change the step's resources")

    def close(self) -> None:
        for topic in self.topics:
            try:
                self.client.unsubscribe_topic(topic)
            except Exception:
                pass
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _topic(pipeline_run: str) -> str:
    """The Dask event topic a run's workers report on: which worker took a step, its cells."""
    return f"mlops-nb-{pipeline_run}"


def _reachable(address: str) -> None:
    """Fail at once when nothing listens there (Dask's own connect keeps retrying for its whole timeout)."""
    host, port = address.split("://", 1)[1].rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=5).close()


def _dashboard_address() -> str:
    """Dask's usual port 8787 when it is free (a stable link), else any free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8787))
            return "127.0.0.1:8787"
        except OSError:
            return "127.0.0.1:0"


def _lost(step: Step, worker: str, detail: str = "") -> StepFailure:
    why = f"Dask worker {worker} was lost while running the step"
    return StepFailure(step.name, f"step {step.name!r}: {why}{' (' + detail[:160] + ')' if detail else ''}",
                       ename="WorkerLost", evalue=why)


class KernelPools(WorkerPlugin):
    """Each worker keeps its own warm kernels for its lifetime, and stops them when it closes."""

    name = "mlops-nb-kernels"

    def teardown(self, worker) -> None:
        from mlops_nb.kernels.local import shutdown_local_pools

        shutdown_local_pools()


def _has_kernel_pools(dask_worker=None) -> bool:
    return KernelPools.name in dask_worker.plugins


def _kernel_logs(home: Path) -> Path | None:
    """Where a worker's kernels write their logs: the registry's folder when the worker sees it (shared)."""
    return home / "kernels" if home.is_dir() else None


def _warm_pools(wants: dict, home: str, dask_worker=None) -> None:
    from mlops_nb.kernels.local import local_pool

    for kernel_name, (preload, notebooks) in wants.items():
        local_pool(kernel_name, log_dir=_kernel_logs(Path(home))).want(preload, size=min(dask_worker.state.nthreads + 1, notebooks))


def run_attempt(request: AttemptRequest) -> tuple[StepFailure | None, str]:
    """On a worker: one attempt of one step, on this worker's kernels. Returns (failure or None, worker)."""
    from mlops_nb.kernels.local import local_pool
    from mlops_nb.pipeline.state import import_execution_stack
    from mlops_nb.pipeline.watch import Watch

    worker, client = get_worker(), get_client()
    step = request.step
    earlier = client.get_metadata(_claim_key(request), default=None)
    if earlier and earlier != worker.address:  # the scheduler moved this task here after its worker died
        return _lost(step, earlier), worker.address
    client.set_metadata(_claim_key(request), worker.address)
    problem = _cannot_run_here(request, worker.address)
    if problem:
        return StepFailure(step.name, f"step {step.name!r}: {problem}"), worker.address
    worker.log_event(request.topic, {"kind": "placed", "step": step.name, "worker": worker.address})

    def on_cell(name, index, total):
        worker.log_event(request.topic, {"kind": "cell", "step": name, "index": index, "total": total})

    watch = Watch(step.name, deadline=time.monotonic() + step.timeout if step.timeout else None,
                  cell_timeout=step.cell_timeout, on_cell=on_cell)
    with _RUNNING_LOCK:
        if request.claim in _STOPPED:
            _STOPPED.discard(request.claim)
            return StepFailure(step.name, f"step {step.name!r} was interrupted", interrupted=True), worker.address
        _RUNNING[request.claim] = watch
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    environ.update(request.environ)
    try:
        import_execution_stack()
        pool = local_pool(kernel_name_of(step), log_dir=_kernel_logs(request.home)) if request.warm else None
        failure = execute_step(step, request.params, run_id=request.run_id, pipeline_run=request.pipeline_run,
                               home=request.home, cwd=request.cwd, output=request.output, watch=watch, pool=pool,
                               inputs_scope=request.inputs_scope, registry=request.registry, environ=environ)
        return failure, worker.address
    finally:
        with _RUNNING_LOCK:
            _RUNNING.pop(request.claim, None)


# On a worker: the attempts running now, by claim, so the client can stop one (client.run(_stop_claim)).
_RUNNING: dict[str, object] = {}
_STOPPED: set[str] = set()       # stopped before they started here
_RUNNING_LOCK = threading.Lock()


def _stop_claim(claim: str, dask_worker=None) -> None:
    with _RUNNING_LOCK:
        watch = _RUNNING.get(claim)
        if watch is None:
            _STOPPED.add(claim)
    if watch is not None:
        watch.stop()


def _cannot_run_here(request: AttemptRequest, address: str) -> str | None:
    if not request.cwd.is_dir():
        return (f"the project folder {request.cwd} is not on Dask worker {address}; mount the project at the same "
                "path on every worker")
    if request.registry is None and socket.gethostname() != request.host:
        return (f"the registry is the SQLite file under {request.home} on {request.host}, which Dask worker "
                f"{address} on another machine cannot write; use the team registry "
                "(MLOPS_NB_REGISTRY=postgresql://...) with workers on other machines")
    return None


def _claim_key(request: AttemptRequest) -> list[str]:
    """Where the scheduler keeps which worker took an attempt (a task moved after its worker died sees it)."""
    return ["mlops-nb", request.pipeline_run, request.claim]


def new_claim(step: str) -> str:
    return f"mlops-{step}-{uuid.uuid4().hex[:12]}"
