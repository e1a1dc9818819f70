"""The step side of a pipeline: what a notebook calls while the runner executes it.

The runner injects a cell that calls :func:`attach_step`, so ``mlops.log_metric``
lands in the step's run. ``mlops.output`` hands a value on; ``mlops.input`` reads
one from an upstream step (or, outside a pipeline, from the newest run that
produced it, so a step notebook also runs interactively).
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

from mlops_nb import tracking
from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry import artifacts, outputs, runs
from mlops_nb.registry.values import check_key

_MISSING = object()
_context: dict[str, Any] = {}


def attach_step(run_id: str, home: str, pipeline_run: str, step: str, inputs: str = "pipeline",
                registry: str | None = None) -> None:
    """Make this kernel log into the step run the runner created (the runner finishes it), in the runner's
    registry: the SQLite file in ``home``, or the PostgreSQL ``registry`` (a pooled kernel may have been
    started for another).

    ``inputs`` says where ``mlops.input`` looks: ``"pipeline"`` (the steps of this
    pipeline run) or ``"latest"`` (the newest run that produced the value, for sweeps)."""
    from mlops_nb.registry.home import set_registry

    set_registry(registry or "sqlite")
    tracking.set_home(home)
    store = tracking.get_store()
    row = runs.run_name_and_experiment(store, run_id)
    if row is None:
        raise NotFoundError(f"step run {run_id!r} is not in the registry at {home}")
    tracking.attach(store, run_id, row[0], row[1])
    _context.update(run_id=run_id, pipeline_run=pipeline_run if inputs == "pipeline" else None, step=step)
    _flush_after_each_cell()


def _detach() -> None:
    for key in ("run_id", "pipeline_run", "step"):
        _context.pop(key, None)


tracking.on_forget(_detach)


def current_step() -> str | None:
    return _context.get("step")


def output(name: str, value: Any) -> Any:
    """Hand ``value`` on to later steps (and to you afterwards); returns it.

    JSON values are stored as they are, DataFrames and other objects pickled, and a
    ``pathlib.Path`` as the file's content and path::

        mlops.output("accuracy", 0.93)
        mlops.output("features", df)
        mlops.output("report", Path("report.html"))

    Outside a pipeline step or run (a step notebook opened by hand) nothing is
    recorded and the value is returned, so the notebook still runs as written.
    """
    check_key(name, "output")
    run = tracking.active_run()
    if run is None:
        if name not in _context.setdefault("unrecorded", set()):
            _context["unrecorded"].add(name)
            warnings.warn(f"mlops.output({name!r}) outside a pipeline step or run: not recorded", stacklevel=2)
        return value
    store = run.store
    if isinstance(value, Path):
        if not value.is_file():
            raise NotFoundError(f"output {name!r}: file {value} does not exist")
        sha, _ = artifacts.put_file(store.artifacts_dir, value)
        outputs.record_output(store, run.id, name, "file", sha256=sha, path=str(value.resolve()))
        return value
    if hasattr(value, "to_parquet") and hasattr(value, "dtypes"):
        kind, data = "frame", pickle.dumps(value, protocol=5)
    else:
        try:
            outputs.record_output(store, run.id, name, "json", value=json.dumps(value, allow_nan=True))
            return value
        except (TypeError, ValueError):
            try:
                kind, data = "object", pickle.dumps(value, protocol=5)
            except Exception as exc:
                raise InvalidInputError(f"output {name!r} cannot be stored ({exc}): hand on JSON values, "
                                        "DataFrames, picklable objects or a pathlib.Path") from None
    sha, _ = artifacts.put_bytes(store.artifacts_dir, data)
    outputs.record_output(store, run.id, name, kind, sha256=sha)
    return value


def input(name: str, step: str | None = None, default: Any = _MISSING) -> Any:  # noqa: A001 - the verb users expect
    """The value an upstream step handed on as ``name`` (``step`` picks the producer)."""
    store = tracking.get_store()
    try:
        found = outputs.find_output(store, name, pipeline_run=_context.get("pipeline_run"), step=step)
    except NotFoundError:
        if default is not _MISSING:
            return default
        raise
    if found["kind"] == "json":
        return json.loads(found["value"])
    if found["kind"] == "file":
        path = Path(found["path"])
        if not path.is_file():
            raise NotFoundError(f"output {name!r} was the file {path}, which no longer exists")
        return path
    return pickle.loads(artifacts.read_verified(store.artifacts_dir, found["sha256"]))


def _flush_after_each_cell() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and not _context.get("hooked"):
        shell.events.register("post_run_cell", lambda *_: tracking.flush_active())
        _context["hooked"] = True


def chdir_project(marker: str = "pipeline.yaml") -> Path:
    """Work from the project folder, as a pipeline step does, and return it.

    A step runs with the project folder (where ``pipeline.yaml`` is) as its working
    directory, so its paths are relative to it. JupyterLab starts a notebook's kernel
    in the notebook's own folder (``notebooks/``); this moves it to the nearest folder
    at or above the working directory that holds ``marker``. In a pipeline it is a no-op.
    """
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / marker).is_file():
            if folder != here:
                os.chdir(folder)
            return folder
    raise NotFoundError(f"no {marker} in {here} or its parents: open the notebook from inside an mlops-nb project "
                        "(mlops-nb init makes one)")
