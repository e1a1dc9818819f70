"""Runs from user code: ``with mlops.start_run(): mlops.log_metric(...)``, and this process's settings.

The run itself is :class:`~mlops_nb.tracking.run.ActiveRun`; an exception inside the
``with`` block flushes what was logged, marks the run failed with the error, and
re-raises. ``client`` holds the verbs that read the registry and manage models.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping

from mlops_nb.errors import InvalidInputError, NoActiveRunError
from mlops_nb.registry import runs
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import Store, open_store
from mlops_nb.registry.values import check_key, check_mapping, encode_param, tag_text
from mlops_nb.tracking import environment
from mlops_nb.tracking import hooks as process_hooks
from mlops_nb.tracking.run import ActiveRun, _all, _local, _push, _stack, forget_all

_settings: dict[str, Any] = {"home": None, "experiment": None}
_forget_callbacks: list = []


# -- module-level API ----------------------------------------------------------

def set_home(home: str | os.PathLike | None) -> None:
    """Use the registry in ``home`` (a ``.mlops`` folder) for this process; None to search again."""
    _settings["home"] = home


def configured_home() -> str | os.PathLike | None:
    """The registry :func:`set_home` chose for this process (None: found from the working directory)."""
    return _settings["home"]


def on_forget(callback) -> None:
    """Call ``callback()`` whenever :func:`forget_process_state` runs (the step context uses it)."""
    _forget_callbacks.append(callback)


def forget_process_state() -> None:
    """Write what is buffered, then forget every run, the registry and the experiment chosen: what a
    pooled kernel does between two steps, so the next one starts clean."""
    try:
        flush_active()
    finally:
        forget_all()
        _settings.update(home=None, experiment=None)
        for callback in _forget_callbacks:
            callback()


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


def log_figure(fig: Any, name: str) -> str:
    """Keep a matplotlib or plotly figure in the active run, e.g. ``mlops.log_figure(fig, "roc")``."""
    return _current_or_start().log_figure(fig, name)


def log_table(df: Any, name: str) -> str:
    """Keep a DataFrame in the active run as Parquet, e.g. ``mlops.log_table(errors, "worst")``."""
    return _current_or_start().log_table(df, name)


def log_image(image: Any, name: str) -> str:
    """Keep an image (a numpy array, a PIL image or an image file) in the active run."""
    return _current_or_start().log_image(image, name)


def log_text(text: str, name: str) -> str:
    """Keep a text in the active run."""
    return _current_or_start().log_text(text, name)


def log_dict(value: dict, name: str) -> str:
    """Keep a dict in the active run as JSON (YAML when the name ends .yaml)."""
    return _current_or_start().log_dict(value, name)


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
