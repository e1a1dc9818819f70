"""A run in progress: what ``with mlops.start_run() as run`` holds, and the runs of this process.

Params, tags and metrics are buffered in memory and written in one transaction
when the buffer holds ``FLUSH_ROWS`` rows, when ``FLUSH_SECONDS`` have passed since
the last write (checked as values arrive), when the run ends and at interpreter
exit (:mod:`mlops_nb.tracking.hooks`).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from mlops_nb.errors import InvalidInputError, describe_error
from mlops_nb.registry import artifacts, datasets, models, runs
from mlops_nb.registry.store import Store
from mlops_nb.registry.values import check_key, check_mapping, check_metric, encode_param, tag_text
from mlops_nb.tracking import media, modelio
from mlops_nb.tracking.frames import fingerprint_frame, frame_profile

FLUSH_ROWS = 20_000
_MAX_STEP = 1 << 63
FLUSH_SECONDS = 1.0
HEARTBEAT_SECONDS = 30.0

# Each thread has its own stack of active runs (what log_metric logs into); _all holds
# every active run of the process, for the background writer and the exit handler.
_local = threading.local()
_all: list["ActiveRun"] = []
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

    def log_figure(self, fig: Any, name: str) -> str:
        """Keep a matplotlib or plotly figure (PNG; plotly as its JSON), previewed where the run is shown."""
        return self._log_media("figure", media.figure(fig, self._name(name)))

    def log_table(self, df: Any, name: str) -> str:
        """Keep a DataFrame as Parquet (its column types kept), previewed where the run is shown."""
        return self._log_media("table", media.table(df, self._name(name)))

    def log_image(self, image: Any, name: str) -> str:
        """Keep an image: a numpy array (H x W, H x W x 3 or x 4), a PIL image, or an image file."""
        return self._log_media("image", media.image(image, self._name(name)))

    def log_text(self, text: str, name: str) -> str:
        """Keep a text (``name`` gets .txt unless it has an ending)."""
        return self._log_media("text", media.text(text, self._name(name)))

    def log_dict(self, value: dict, name: str) -> str:
        """Keep a dict as JSON (YAML when ``name`` ends .yaml or .yml)."""
        return self._log_media("dict", media.dictionary(value, self._name(name)))

    def _name(self, name: str) -> str:
        self._check_running()
        return artifacts.check_artifact_name(name)

    def _log_media(self, kind: str, made: tuple[bytes, str]) -> str:
        content, name = made
        sha, size = artifacts.put_bytes(self.store.artifacts_dir, content)
        runs.record_artifact(self.store, self.id, name, sha, size, kind)
        return name

    def log_dataset(self, df: Any, name: str, role: str = "train", *, reference: bool = False,
                    schema: Any = None) -> dict:
        """Record a DataFrame's fingerprint, shape, schema and profile, linked to this run.

        ``reference=True`` also stores its drift reference profile, so that
        ``mlops.drift(name, new_df)`` works later without the frame; ``schema`` (from ``infer_schema``, perhaps
        corrected) says which columns are numbers and which categories, instead of guessing."""
        self._check_running()
        if not (hasattr(df, "dtypes") and hasattr(df, "columns")):
            raise InvalidInputError(f"log_dataset takes a pandas DataFrame, got {type(df).__name__}")
        from mlops_nb.validation.schema import infer_schema

        fingerprint = fingerprint_frame(df)
        stored_reference = None
        if reference:
            from mlops_nb.validation.profile import profile_reference

            stored_reference = profile_reference(df, schema=schema).to_dict()
        if schema is None and len(df.columns):
            schema = infer_schema(df, name=name)
        dataset_id = datasets.record_dataset(
            self.store, self.id, name=name, fingerprint=fingerprint, role=role, n_rows=len(df),
            n_cols=len(df.columns), schema=schema.to_dict() if schema is not None else None,
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

    def flush(self, heartbeat: bool = True) -> None:
        """Write everything buffered so far."""
        with self._lock:
            # Slice, write, then delete what was written: values appended meanwhile (by
            # another thread) stay in the buffer, and a failed write loses nothing.
            n_metrics, n_params, n_tags = len(self._metrics), len(self._pending_params), len(self._pending_tags)
            if not (n_metrics or n_params or n_tags):
                return
            runs.write_batch(self.store, params=self._pending_params[:n_params], tags=self._pending_tags[:n_tags],
                             metrics=self._metrics[:n_metrics], heartbeat=(self.id,) if heartbeat else ())
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
            if len(self._metrics) > runs.BULK_ROWS:
                self.flush(heartbeat=False)  # a bulk write of its own (see runs.write_batch)
            with self.store.transaction():  # what is buffered, and the end, in one transaction
                self.flush(heartbeat=False)
                runs.finish_run(self.store, self.id, status, error)
        except Exception as exc:
            # What could not be written is lost; say so in the run rather than call it finished.
            runs.finish_run(self.store, self.id, "failed", f"could not save the values logged last: {exc}")
            self.status = "failed"
            _forget(self)
            raise
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


def forget_all() -> None:
    """Forget every active run of this process (a forked child, or a pooled kernel between steps)."""
    _all.clear()
    _local.__dict__.clear()


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
