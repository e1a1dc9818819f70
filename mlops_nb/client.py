"""Reading the registry and managing models from Python: the verbs behind the CLI too."""

from __future__ import annotations

from typing import Any, Sequence

from mlops_nb import modelio
from mlops_nb.registry import artifacts, models, runs, search
from mlops_nb.registry.models import ModelVersion
from mlops_nb.tracking import ActiveRun, flush_active, get_store


def search_runs(filter: str | None = None, *, order_by: Sequence[str] | str | None = None,
                experiment: str | Sequence[str] | None = None, max_results: int | None = None):
    """Runs matching ``filter`` as a pandas DataFrame, one row per run.

    Columns: ``run_id, experiment, name, status, kind, parent_id, start_time,
    end_time`` then ``params.<key>``, ``metrics.<key>`` (latest value) and
    ``tags.<key>``. The filter grammar is documented in :mod:`mlops_nb.registry.query`::

        mlops.search_runs("metrics.accuracy > 0.9 and params.model = 'rf'",
                          order_by=["metrics.accuracy DESC"], max_results=10)
    """
    flush_active()
    return search.search_runs(get_store(), filter, order_by=order_by, experiment=experiment,
                              max_results=max_results)


def get_run(run: str | ActiveRun) -> runs.Run:
    """One run by id, id prefix or name, with params, latest metrics, tags and artifacts."""
    flush_active()
    return runs.get_run(get_store(), run.id if isinstance(run, ActiveRun) else run)


def metric_history(run: str | ActiveRun, key: str | None = None):
    """Every value logged for ``key`` (or all metrics) in a run, as a DataFrame."""
    import pandas as pd

    flush_active()
    store = get_store()
    run_id = runs.resolve_run_id(store, run.id if isinstance(run, ActiveRun) else run)
    return pd.DataFrame(runs.metric_history(store, run_id, key), columns=["key", "step", "value", "timestamp"])


def list_experiments() -> list[dict]:
    return runs.list_experiments(get_store())


def register_model(run: str | ActiveRun, name: str, *, source: str | None = None) -> ModelVersion:
    """Register the model a run logged as the next version of ``name``; return that version."""
    if isinstance(run, ActiveRun):
        run.flush()
        run = run.id
    return models.register_model(get_store(), run, name, source=source)


def set_alias(name: str, version: int, alias: str = "production", *, reason: str | None = None) -> ModelVersion:
    """Point ``name@alias`` at ``version`` (promotion); the change is kept in the alias history."""
    return models.set_alias(get_store(), name, version, alias, reason=reason)


def rollback(name: str, alias: str = "production", *, reason: str | None = None) -> ModelVersion:
    """Point ``name@alias`` back at the version it held before; return that version."""
    return models.rollback(get_store(), name, alias, reason=reason)


def get_model_version(ref: str) -> ModelVersion:
    return models.resolve_model(get_store(), ref)


def load_model(ref: str) -> Any:
    """Load ``"name@alias"``, ``"name/3"`` or ``"name"`` (newest version).

    The artifact's sha256 is checked against the registry before it is unpickled;
    a file changed on disk is refused with :class:`~mlops_nb.errors.IntegrityError`.
    Only load models from registries you trust: unpickling runs code.
    """
    store = get_store()
    version = models.resolve_model(store, ref)
    data = artifacts.read_verified(store.artifacts_dir, version.sha256)
    return modelio.deserialize_model(data)


def trigger_history(pipeline: str | None = None, limit: int = 20):
    """Trigger events, newest first, as a DataFrame: ``fired_at, pipeline, trigger, kind, status, run_id,
    reason, evidence`` (a dict: for drift, the drifted columns and their statistics)."""
    import pandas as pd

    from mlops_nb.registry import triggers

    events = triggers.history(get_store(), pipeline, limit)
    columns = ["fired_at", "pipeline", "trigger", "kind", "status", "run_id", "reason", "evidence"]
    frame = pd.DataFrame(events, columns=["id", *columns])[columns]
    frame["fired_at"] = pd.to_datetime(frame["fired_at"], unit="s").dt.round("s")
    return frame
