"""Reading the registry and managing models from Python: the verbs behind the CLI too."""

from __future__ import annotations

from typing import Any, Sequence

from mlops_nb.tracking import modelio
from mlops_nb.registry import artifacts, models, runs, search
from mlops_nb.registry.models import ModelVersion
from mlops_nb.tracking import ActiveRun, active_run, flush_active, get_store


def search_runs(filter: str | None = None, *, order_by: Sequence[str] | str | None = None,
                experiment: str | Sequence[str] | None = None, max_results: int | None = None,
                deleted: bool = False):
    """Runs matching ``filter`` as a pandas DataFrame, one row per run.

    Columns: ``run_id, experiment, name, status, kind, parent_id, start_time,
    end_time`` then ``params.<key>``, ``metrics.<key>`` (latest value) and
    ``tags.<key>``. The filter grammar is documented in :mod:`mlops_nb.registry.query`::

        mlops.search_runs("metrics.accuracy > 0.9 and params.model = 'rf'",
                          order_by=["metrics.accuracy DESC"], max_results=10)

    ``deleted=True``: the runs deleted with ``mlops-nb runs rm`` instead (hidden otherwise).
    """
    flush_active()
    return search.search_runs(get_store(), filter, order_by=order_by, experiment=experiment,
                              max_results=max_results, deleted=deleted)


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


def rollback(name: str, alias: str = "production", *, reason: str | None = None,
             override: str | None = None) -> ModelVersion:
    """Point ``name@alias`` back at the version it held before; return that version. A version whose gate
    failed is returned to only with ``override="why"``, as :func:`mlops.promote` asks."""
    from mlops_nb.registry import gates

    return gates.rollback(get_store(), name, alias, reason=reason, override=override)[0]


def get_model_version(ref: str) -> ModelVersion:
    return models.resolve_model(get_store(), ref)


def load_model(ref: str) -> Any:
    """Load ``"name@alias"``, ``"name/3"`` or ``"name"`` (newest version).

    The artifact's sha256 is checked against the registry before it is unpickled;
    a file changed on disk is refused with :class:`~mlops_nb.errors.IntegrityError`.
    Only load models from registries you trust: unpickling runs code.
    """
    store = get_store()
    return _load(store, models.resolve_model(store, ref))


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


def reference_profile(name: str):
    """The drift reference stored with dataset ``name`` (``mlops.log_dataset(df, name, reference=True)``)."""
    from mlops_nb.registry.datasets import reference_profile as stored
    from mlops_nb.validation.profile import ReferenceProfile

    return ReferenceProfile.from_dict(stored(get_store(), name))


def gate(candidate: str, baseline: str | None = "production", eval_data=None, rules: dict | None = None, *,
         target: str | None = None, segment: str | None = None, importance: bool = True,
         sensitive: str | None = None):
    """Load the candidate version and the baseline's model, judge them (:func:`~mlops_nb.validation.gate.
    evaluate_gate`), and store the decision with the candidate version."""
    from mlops_nb.errors import InvalidInputError, NotFoundError
    from mlops_nb.registry import gates
    from mlops_nb.validation.gate import evaluate_gate

    store = get_store()
    if not isinstance(candidate, str) or "/" not in candidate:
        raise InvalidInputError(f"gate's candidate is a registered version such as 'churn/4', got {candidate!r}")
    version = models.resolve_model(store, candidate)
    base_version = None
    if baseline is not None:
        ref = baseline if ("/" in baseline or "@" in baseline) else f"{version.name}@{baseline}"
        try:
            base_version = models.resolve_model(store, ref)
        except NotFoundError as exc:
            raise NotFoundError(f"no baseline model: {exc}; for a first model pass baseline=None "
                                "(absolute rules only)") from None
    decision = evaluate_gate(version, _load(store, version), base_version,
                             _load(store, base_version) if base_version is not None else None, eval_data, rules,
                             target=target, segment=segment, importance=importance, sensitive=sensitive)
    # A gate inside a pipeline step is the version's record; one run by hand in a notebook is exploratory
    # and is kept beside it, never replacing it.
    active = active_run()
    decision.source = "pipeline" if active is not None and active.attached else "exploratory"
    decision.id = gates.record_decision(
        store, version.name, version.version, baseline_version=base_version.version if base_version else None,
        alias=baseline if baseline and "/" not in baseline and "@" not in baseline else None,
        passed=decision.passed, results=decision.results.to_dict(orient="records"), card=decision.card,
        source=decision.source)
    return decision


def model_card(ref: str, eval_data=None, *, target: str | None = None, segment: str | None = None,
               sensitive: str | None = None, importance: bool = True):
    """The card of a registered version: its run's metrics, its latest gate decision, its signature; with
    ``eval_data``, the version evaluated on it (metrics, per-segment metrics, permutation importance, and
    fairness across the ``sensitive`` column's groups)."""
    from mlops_nb.errors import InvalidInputError
    from mlops_nb.registry import gates
    from mlops_nb.validation.card import ModelCard
    from mlops_nb.validation.gate import describe_model

    store = get_store()
    version = models.resolve_model(store, ref)
    if eval_data is None and (segment or sensitive):
        raise InvalidInputError("segment= and sensitive= are measured on evaluation rows: pass eval_data= "
                                "(with target=)")
    evaluation = (describe_model(version, _load(store, version), eval_data, target=target, segment=segment,
                                 sensitive=sensitive, importance=importance) if eval_data is not None else None)
    return ModelCard(version.ref, version.run_id, version.aliases, runs.get_run(store, version.run_id).metrics,
                     gates.latest_decision(store, version.name, version.version), version.signature, evaluation)


def _load(store, version: ModelVersion) -> Any:
    return modelio.deserialize_model(artifacts.read_verified(store.artifacts_dir, version.sha256))


def predictions(model: str, *, since: float | None = None, version: int | None = None):
    """The predictions a service of ``model`` made (``mlops-nb serve``), oldest first, as a DataFrame: ``id,
    time, model, version, latency_ms, prediction, proba``, the input features as ``feature.<name>``, and the
    feedback: ``label`` (the last one that came, or None) and ``labelled_at``."""
    from mlops_nb.registry.feedback import read_labelled

    return read_labelled(get_store(), model, since=since, version=version)


def log_feedback(model: str, ids: list, labels: list) -> dict:
    """The true labels of predictions ``model`` made (by their ids), as they arrive; several for one id:
    the last counts. Returns ``{"stored": n, "unknown": [ids no logged prediction has]}``."""
    from mlops_nb.registry.feedback import record_feedback

    return record_feedback(get_store(), model, list(ids), list(labels))
