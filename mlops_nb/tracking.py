"""Runs from user code: ``with mlops.start_run(): mlops.log_metric(...)``.

Params, tags and metrics are buffered in memory and written in one transaction
when the buffer holds ``FLUSH_ROWS`` rows, when ``FLUSH_SECONDS`` have passed since
the last write (checked as values arrive), when the run ends and at interpreter
exit. An exception inside the ``with`` block flushes what was logged, marks the
run failed with the error, and re-raises.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from mlops_nb import environment, modelio, process_hooks
from mlops_nb.datasets import fingerprint_frame, frame_profile
from mlops_nb.errors import InvalidInputError, NoActiveRunError, describe_error
from mlops_nb.registry import artifacts, datasets, models, runs
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import Store, open_store
from mlops_nb.registry.values import check_key, check_mapping, check_metric, encode_param, tag_text

FLUSH_ROWS = 20_000
_MAX_STEP = 1 << 63
FLUSH_SECONDS = 2.0
HEARTBEAT_SECONDS = 30.0

# Each thread has its own stack of active runs (what log_metric logs into); _all holds
# every active run of the process, for the background writer and the exit handler.
_local = threading.local()
_all: list["ActiveRun"] = []
_settings: dict[str, Any] = {"home": None, "experiment": None}


class ActiveRun:
    """A run in progress. Use it as a context manager, or call :meth:`end`."""

    def __init__(self, store: Store, run_id: str, name: str, experiment: str):
        self.store = store
        self.id = run_id
        self.name = name
        self.experiment = experiment
        self.status = "running"
        self._params: dict[str, tuple] = {}
        self._pending_params: list[tuple] = []
        self._pending_tags: list[tuple] = []
        self._metrics: list[tuple] = []
        self._next_step: dict[str, int] = {}
        self._flushed_at = self._heartbeat_at = time.time()
        self._lock = threading.Lock()
        self._stack: list[ActiveRun] | None = None
        self.attached = False  # logging into a run another process owns (a pipeline step)

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id[:8]!r}, name={self.name!r}, experiment={self.experiment!r}, status={self.status!r})"

    @property
    def params(self) -> dict[str, str]:
        """The params logged in this process so far, as text."""
        return {key: value[0] for key, value in self._params.items()}

    # -- logging -------------------------------------------------------------

    def _check_running(self) -> None:
        if self.status != "running":
            raise InvalidInputError(f"run {self.name!r} has ended ({self.status}); start a new run to log more")

    def log_param(self, key: str, value: Any) -> None:
        self._check_running()
        row = encode_param(key, value)
        seen = self._params.get(row[0])
        if seen is not None and seen != row[1:]:
            raise InvalidInputError(
                f"param {key!r} of run {self.name!r} is already {seen[0]!r}; params are fixed once logged: "
                "start a new run to try another value, or log changing values as metrics")
        self._params[row[0]] = row[1:]
        self._pending_params.append((self.id, *row))

    def log_params(self, params: Mapping[str, Any]) -> None:
        for key, value in check_mapping(params, "params").items():
            self.log_param(key, value)

    def set_tag(self, key: str, value: Any) -> None:
        self._check_running()
        self._pending_tags.append((self.id, *tag_text(key, value)))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in check_mapping(tags, "tags").items():
            self.set_tag(key, value)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one value; ``step`` defaults to the key's previous step + 1 (0 first)."""
        if self.status != "running":
            self._check_running()
        if type(value) is not float:
            value = check_metric(key, value)
        next_step = self._next_step.get(key)
        if next_step is None:
            check_key(key, "metric")
            next_step = 0
        if step is None:
            step = next_step
        elif type(step) is not int or not -_MAX_STEP <= step < _MAX_STEP:
            if isinstance(step, bool) or not hasattr(step, "__index__") or not -_MAX_STEP <= int(step) < _MAX_STEP:
                raise InvalidInputError(f"metric {key!r} step must be an integer that fits in 64 bits, got {step!r}")
            step = int(step)
        self._next_step[key] = step + 1 if step >= next_step else next_step
        now = time.time()
        self._metrics.append((self.id, key, step, value, now))
        if len(self._metrics) >= FLUSH_ROWS or now - self._flushed_at > FLUSH_SECONDS:
            self.flush()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in check_mapping(metrics, "metrics").items():
            self.log_metric(key, value, step)

    def log_artifact(self, data: bytes | str | os.PathLike, name: str | None = None) -> str:
        """Store a file or bytes under ``name``; return its sha256."""
        self._check_running()
        if isinstance(data, (bytes, bytearray, memoryview)):
            if name is None:
                raise InvalidInputError("log_artifact(bytes) needs a name, e.g. log_artifact(data, 'report.html')")
            name = artifacts.check_artifact_name(name)
            sha, size = artifacts.put_bytes(self.store.artifacts_dir, bytes(data))
        elif isinstance(data, (str, os.PathLike)):
            name = artifacts.check_artifact_name(name if name is not None else Path(data).name)
            sha, size = artifacts.put_file(self.store.artifacts_dir, data)
        else:
            raise InvalidInputError(f"log_artifact takes a file path or bytes, got {type(data).__name__}")
        runs.record_artifact(self.store, self.id, name, sha, size)
        return sha

    def log_dataset(self, df: Any, name: str, role: str = "train", *, reference: bool = False) -> dict:
        """Record a DataFrame's fingerprint, shape, schema and profile, linked to this run.

        ``reference=True`` also stores its drift reference profile, so that
        ``mlops.drift(name, new_df)`` works later without the frame."""
        self._check_running()
        if not (hasattr(df, "dtypes") and hasattr(df, "columns")):
            raise InvalidInputError(f"log_dataset takes a pandas DataFrame, got {type(df).__name__}")
        from mlops_nb.validation.schema import infer_schema

        fingerprint = fingerprint_frame(df)
        stored_reference = None
        if reference:
            from mlops_nb.validation.profile import profile_reference

            stored_reference = profile_reference(df).to_dict()
        dataset_id = datasets.record_dataset(
            self.store, self.id, name=name, fingerprint=fingerprint, role=role, n_rows=len(df),
            n_cols=len(df.columns), schema=infer_schema(df, name=name).to_dict() if len(df.columns) else None,
            profile=frame_profile(df), reference=stored_reference)
        return {"id": dataset_id, "name": name, "fingerprint": fingerprint, "role": role}

    def log_model(self, model: Any, name: str = "model", *, X: Any = None) -> str:
        """Store a fitted model (pickled) with its signature; return its sha256."""
        self._check_running()
        models.check_model_name(name)
        data = modelio.serialize_model(model, name)
        sha, size = artifacts.put_bytes(self.store.artifacts_dir, data)
        runs.record_artifact(self.store, self.id, f"models/{name}.pkl", sha, size)
        models.record_logged_model(self.store, self.id, name, modelio.model_flavor(model), sha,
                                   modelio.infer_signature(model, X))
        return sha

    # -- writing -------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered so far."""
        with self._lock:
            # Slice, write, then delete what was written: values appended meanwhile (by
            # another thread) stay in the buffer, and a failed write loses nothing.
            n_metrics, n_params, n_tags = len(self._metrics), len(self._pending_params), len(self._pending_tags)
            if not (n_metrics or n_params or n_tags):
                return
            runs.write_batch(self.store, params=self._pending_params[:n_params], tags=self._pending_tags[:n_tags],
                             metrics=self._metrics[:n_metrics], heartbeat=(self.id,))
            del self._metrics[:n_metrics], self._pending_params[:n_params], self._pending_tags[:n_tags]
            self._flushed_at = self._heartbeat_at = time.time()

    def _has_pending(self) -> bool:
        return bool(self._metrics or self._pending_params or self._pending_tags)

    def end(self, status: str = "finished", error: str | None = None) -> None:
        if self.status != "running":
            return
        # Children left open (started without `with`) end with their parent.
        if self._stack is not None and self in self._stack:
            for child in reversed(self._stack[self._stack.index(self) + 1:]):
                child.end(status, error)
        if self.attached:  # the owner finishes the run; we only hand over what we logged
            try:
                self.flush()
            finally:
                self.status = status
                _forget(self)
            return
        try:
            self.flush()
        except Exception as exc:
            # What could not be written is lost; say so in the run rather than call it finished.
            runs.finish_run(self.store, self.id, "failed", f"could not save the values logged last: {exc}")
            self.status = "failed"
            _forget(self)
            raise
        runs.finish_run(self.store, self.id, status, error)
        self.status = status
        _forget(self)

    def __enter__(self) -> "ActiveRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or (issubclass(exc_type, SystemExit) and exc.code in (None, 0)):
            self.end("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("interrupted", "KeyboardInterrupt")
        else:
            self.end("failed", describe_error(exc_type, exc, tb))


# -- module-level API ----------------------------------------------------------

def set_home(home: str | os.PathLike | None) -> None:
    """Use the registry in ``home`` (a ``.mlops`` folder) for this process; None to search again."""
    _settings["home"] = home


def set_experiment(name: str) -> None:
    """Make ``name`` the experiment that new runs go to."""
    check_key(name, "experiment")
    _settings["experiment"] = name


def current_experiment() -> str:
    return _settings["experiment"] or os.environ.get("MLOPS_NB_EXPERIMENT") or runs.DEFAULT_EXPERIMENT


def get_store(must_exist: bool = False) -> Store:
    return open_store(find_home(_settings["home"], must_exist=must_exist))


def start_run(experiment: str | None = None, name: str | None = None, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None, *, kind: str = "interactive", parent: str | None = None,
              source: str | None = None) -> ActiveRun:
    """Start a run; use it as ``with mlops.start_run(...) as run:``.

    A run started while another is active becomes its child unless ``parent`` says
    otherwise. Example::

        with mlops.start_run(experiment="churn", params={"C": 1.0}) as run:
            mlops.log_metric("accuracy", 0.93)
    """
    # Check inputs before anything is written, so bad input leaves no trace.
    param_rows = [encode_param(k, v) for k, v in check_mapping(params, "params").items()]
    tag_rows = [tag_text(k, v) for k, v in check_mapping(tags, "tags").items()]
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidInputError(f"run name must be a non-empty string, got {name!r}")
    if kind not in runs.RUN_KINDS:
        raise InvalidInputError(f"run kind {kind!r} is not one of {', '.join(runs.RUN_KINDS)}")
    store = get_store()
    stack = _stack()
    # Nest under this thread's active run when it lives in the same registry.
    active = stack[-1] if stack and stack[-1].store is store else None
    if experiment is None:
        experiment = active.experiment if active is not None else current_experiment()
    check_key(experiment, "experiment")
    if parent is None and active is not None:
        parent = active.id
    elif parent is not None:
        parent = runs.resolve_run_id(store, parent)
    experiment_id = _experiment_id(store, experiment)
    run_id, name = runs.create_run(store, experiment_id=experiment_id, name=name, kind=kind, parent_id=parent,
                                   git=environment.git_state(), env=environment.python_environment(),
                                   source=source)
    run = ActiveRun(store, run_id, name, experiment)
    for key, text, num, json_text in param_rows:
        run._params[key] = (text, num, json_text)
        run._pending_params.append((run_id, key, text, num, json_text))
    run._pending_tags.extend((run_id, k, v) for k, v in tag_rows)
    process_hooks.install()
    _push(run)
    process_hooks.ensure_background_writer()
    return run


def _stack() -> list[ActiveRun]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _push(run: ActiveRun) -> None:
    run._stack = _stack()
    run._stack.append(run)
    _all.append(run)


def _forget(run: ActiveRun) -> None:
    if run._stack is not None and run in run._stack:
        run._stack.remove(run)
    if run in _all:
        _all.remove(run)


def attach(store: Store, run_id: str, name: str, experiment: str) -> ActiveRun:
    """Log into an existing run owned by another process (the pipeline runner)."""
    run = ActiveRun(store, run_id, name, experiment)
    run.attached = True
    process_hooks.install()
    _push(run)
    process_hooks.ensure_background_writer()
    return run


def active_run() -> ActiveRun | None:
    """This thread's innermost active run, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def end_run(status: str = "finished") -> None:
    run = _current()
    run.end(status)


def _current() -> ActiveRun:
    stack = getattr(_local, "stack", None)
    if not stack:
        raise NoActiveRunError("no active run: wrap the code in `with mlops.start_run():` (or `%%track` in a notebook)")
    return stack[-1]


def _current_or_start() -> ActiveRun:
    """The active run; with none, start one (as MLflow does) that ends with the process."""
    stack = getattr(_local, "stack", None)
    if stack:
        return stack[-1]
    run = start_run()
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    in_kernel = type(shell).__name__ == "ZMQInteractiveShell"  # a notice, not an error: notebooks show stderr red
    ends = "the kernel stops" if in_kernel else "this process does"
    print(f"mlops-nb: logging into a new run {run.name!r} ({run.id[:8]}, experiment {run.experiment!r}); it ends "
          f"when {ends}, or with mlops.end_run()", file=sys.stdout if in_kernel else sys.stderr)
    return run


def log_param(key: str, value: Any) -> None:
    _current_or_start().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _current_or_start().log_params(params)


def set_tag(key: str, value: Any) -> None:
    _current_or_start().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _current_or_start().set_tags(tags)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    stack = getattr(_local, "stack", None)
    (stack[-1] if stack else _current_or_start()).log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _current_or_start().log_metrics(metrics, step)


def log_artifact(data: bytes | str | os.PathLike, name: str | None = None) -> str:
    return _current_or_start().log_artifact(data, name)


def log_dataset(df: Any, name: str, role: str = "train", *, reference: bool = False) -> dict:
    return _current_or_start().log_dataset(df, name, role, reference=reference)


def log_model(model: Any, name: str = "model", *, X: Any = None) -> str:
    return _current_or_start().log_model(model, name, X=X)


def flush_active() -> None:
    """Write what every active run of this process has buffered."""
    for run in list(_all):
        run.flush()


def _experiment_id(store: Store, name: str) -> int:
    cached = store.experiment_ids.get(name)
    if cached is None:
        cached = store.experiment_ids[name] = runs.ensure_experiment(store, name)
    return cached
