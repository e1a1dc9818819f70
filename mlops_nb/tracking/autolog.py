"""Finding the scikit-learn estimators a block of code fitted, and logging them.

No monkey-patching: take a snapshot of the namespace's estimators and their fitted
attributes before the code runs, compare after. The snapshot holds references to
the old attribute values, so a refit's new arrays can never reuse their addresses.

A fitted search (GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV, anything with
``cv_results_``) also logs each of its candidates as a child run: the candidate's params,
and its row of ``cv_results_`` (mean, std, rank and each split's score, fit and score
times) as metrics.

XGBoost and LightGBM (their scikit-learn models and their native ``train``) add eval curves
and boosters through :mod:`mlops_nb.tracking.boosting`.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Mapping

from mlops_nb.tracking import boosting

_MAX_PARAM_TEXT = 500


def _is_estimator(value: Any) -> bool:
    base = sys.modules.get("sklearn.base")
    return base is not None and isinstance(value, base.BaseEstimator) and not isinstance(value, type)


def fitted_state(estimator: Any) -> tuple:
    """The objects that make up an estimator's fitted state (empty if unfitted)."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list):  # Pipeline: fitted when its steps are
        return tuple(v for _, step in steps if _is_estimator(step) for v in fitted_state(step))
    return tuple(v for k, v in vars(estimator).items() if k.endswith("_") and not k.startswith("_")) \
        + boosting.booster_state(estimator)


def snapshot(namespace: Mapping[str, Any]) -> dict[str, tuple[Any, tuple]]:
    """{name: (estimator, fitted state)} for the estimators in ``namespace``."""
    if "sklearn.base" not in sys.modules:
        return {}
    return {name: (value, fitted_state(value)) for name, value in list(namespace.items())
            if not name.startswith("_") and _is_estimator(value)}


def newly_fitted(before: dict[str, tuple[Any, tuple]], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Estimators in ``namespace`` that are fitted now and were not (or differently) before."""
    found = {}
    for name, (estimator, state) in snapshot(namespace).items():
        if not state:
            continue
        old = before.get(name)
        if old is None or old[0] is not estimator or len(old[1]) != len(state) or any(
                a is not b for a, b in zip(old[1], state)):
            found[name] = estimator
    return found


def estimator_params(name: str, estimator: Any) -> dict[str, Any]:
    """``get_params(deep=True)`` as storable params named ``<variable>.<param>``; nested
    estimators are left out (their own params are listed), other objects become text."""
    params = {}
    for key, value in estimator.get_params(deep=True).items():
        if _is_estimator(value) or (isinstance(value, list) and value and isinstance(value[0], tuple)):
            continue  # pipeline steps and nested estimators: their params are listed on their own
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = repr(value)[:_MAX_PARAM_TEXT]
        params[f"{name}.{key}"] = value
    return params


def training_frame(estimator: Any, namespace: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The DataFrame in ``namespace`` whose columns are the ones the estimator was fitted on."""
    columns = getattr(estimator, "feature_names_in_", None)
    if columns is None:
        return None
    wanted = [str(c) for c in columns]
    candidates = [(name, value) for name, value in namespace.items()
                  if not name.startswith("_") and hasattr(value, "columns") and hasattr(value, "dtypes")
                  and [str(c) for c in value.columns] == wanted]
    if not candidates:
        return None
    # Prefer the conventional name of a training frame, then the largest frame.
    candidates.sort(key=lambda item: ("train" not in item[0].lower(), -len(item[1])))
    return candidates[0]


def model_name(variable: str) -> str:
    """A valid model name from a variable name (which may be non-ASCII or very long)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", variable)[:120].lstrip(".-") or "model"
    return cleaned


def log_candidates(run, name: str, search: Any) -> list[str]:
    """A child run of ``run`` per row of ``search.cv_results_``; their ids."""
    import numpy as np

    from mlops_nb import tracking

    results = search.cv_results_
    numeric = [key for key, values in results.items() if key != "params" and not key.startswith("param_")
               and np.asarray(values).dtype.kind in "biuf"]
    children = []
    for i, params in enumerate(results["params"]):
        storable = {}
        for key, value in params.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                value = repr(value)[:_MAX_PARAM_TEXT]
            storable[key] = value
        child = tracking.start_run(experiment=run.experiment, name=f"{name}-{i + 1}", params=storable,
                                   tags={"mlops.search": name}, parent=run.id)
        try:
            child.log_metrics({key: float(results[key][i]) for key in numeric})
        finally:
            child.end()
        children.append(child.id)
    if getattr(search, "best_score_", None) is not None:
        run.log_metric(f"{name}.best_score", float(search.best_score_))
    return children


def log_fitted(run, before: dict, namespace: Mapping[str, Any],
               trained: list[boosting.TrainCall] = ()) -> list[str]:
    """Log every estimator fitted since ``before``: params, the model, the training frame; a search's
    candidates as child runs; then the boosters ``trained`` (see :class:`boosting.record_training`)."""
    logged = []
    for name, estimator in newly_fitted(before, namespace).items():
        if isinstance(getattr(estimator, "cv_results_", None), dict) and "params" in estimator.cv_results_:
            log_candidates(run, name, estimator)
        for key, value in estimator_params(name, estimator).items():
            if key not in run.params:
                run.log_param(key, value)
        frame = training_frame(estimator, namespace)
        if frame is not None:
            run.log_dataset(frame[1], frame[0], role="train")
        boosting.log_estimator(run, name, estimator)
        run.log_model(estimator, model_name(name), X=frame[1] if frame else None)
        logged.append(name)
    if trained:
        logged += boosting.log_trained(run, list(trained), namespace, taken=set(logged))
    return logged
