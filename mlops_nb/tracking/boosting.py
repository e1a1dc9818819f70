"""XGBoost and LightGBM in a ``%%track`` cell: their eval curves, best iterations and native boosters.

Their scikit-learn models (``XGBClassifier``, ``LGBMRegressor``, ...) are estimators that
:mod:`mlops_nb.tracking.autolog` finds by comparing snapshots; this module adds what it
cannot see. Their fitted state lives in the private ``_Booster`` (an ``XGBRegressor`` has
no public ``attr_`` at all, an LGBM model only ``fitted_ = True``, which a refit leaves
unchanged), so :func:`booster_state` makes a fit visible. When the model was fitted with
an ``eval_set``, each evaluation set's metrics become stepped metrics named
``<variable>.<eval set>.<metric>``, step = iteration, and early stopping's best iteration
and score become ``<variable>.best_iteration`` / ``<variable>.best_score``.

``xgboost.train`` and ``lightgbm.train`` return a bare ``Booster`` whose eval history is
gone once they return, so a snapshot cannot find it. Only while the cell runs,
:class:`record_training` replaces the ``train`` attribute of the imported module by a
wrapper that asks the library to record its evaluations (xgboost's ``evals_result``
dict, lightgbm's ``record_evaluation`` callback) and keeps each call; the originals are
put back when the cell ends, also when it fails. After the cell, :func:`log_trained`
names each booster after the variable holding it (else ``xgboost``, ``lightgbm``) and
logs its params, eval curves and the pickled booster as a model.

Neither library is ever imported here: a library missing from ``sys.modules`` was not used
by the notebook and is skipped. The wrapper patches ``xgboost.train`` as the module
attribute, so ``import xgboost as xgb; xgb.train(...)`` is recorded but a ``train`` imported
by name before the cell (``from xgboost import train``) is not; the libraries' own
scikit-learn models call their module's ``train`` directly, so a fit is never counted twice.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

LIBRARIES = ("xgboost", "lightgbm")
_MAX_PARAM_TEXT = 500


@dataclass
class TrainCall:
    """One ``xgboost.train`` / ``lightgbm.train`` call the cell made, and what it returned."""

    library: str
    params: dict[str, Any]
    evals: dict = field(default_factory=dict)  # {eval set: {metric: [value per iteration]}}, filled by the library
    booster: Any = None


def _library(model: Any) -> str | None:
    root = (type(model).__module__ or "").split(".")[0]
    return root if root in LIBRARIES and root in sys.modules else None


# -- scikit-learn models ---------------------------------------------------------

def booster_state(estimator: Any) -> tuple:
    """The booster an XGBoost or LightGBM scikit-learn model holds once fitted (a refit makes a new one)."""
    if _library(estimator) is None:
        return ()
    booster = vars(estimator).get("_Booster")
    return () if booster is None else (booster,)


def estimator_evals(estimator: Any) -> dict:
    """``{eval set: {metric: [values]}}`` of a model fitted with an ``eval_set`` (else empty)."""
    library = _library(estimator)
    try:
        if library == "xgboost":
            return estimator.evals_result()
        if library == "lightgbm":
            return estimator.evals_result_ or {}
    except Exception:  # xgboost raises XGBoostError when no eval_set was given
        pass
    return {}


def log_estimator(run, name: str, estimator: Any) -> None:
    """Log a fitted XGBoost/LightGBM model's eval curves and early-stopping result (nothing for others)."""
    library = _library(estimator)
    if library is None:
        return
    log_evals(run, name, estimator_evals(estimator))
    booster = vars(estimator).get("_Booster")
    if booster is not None:
        run.log_metrics(best_values(name, booster))


# -- the values both faces share -------------------------------------------------

def log_evals(run, name: str, evals: Mapping[str, Mapping[str, list]]) -> None:
    """Each eval set's metric as ``<name>.<set>.<metric>``, one value per iteration (step = iteration).

    The values go into the run's buffer and reach the registry in one batch write (when the
    buffer is flushed or the run ends), not one write per iteration."""
    for set_name, metrics in evals.items():
        for metric, values in metrics.items():
            key = f"{name}.{set_name}.{metric}"
            for step, value in enumerate(values):
                if isinstance(value, (tuple, list)):  # xgboost.cv's (mean, std) pairs: not a train curve
                    break
                run.log_metric(key, float(value), step)


def best_values(name: str, booster: Any) -> dict[str, float]:
    """``<name>.best_iteration`` and its score(s), when early stopping set them (else empty).

    XGBoost keeps one best score; LightGBM one per eval set and metric
    (``<name>.best_score.<set>.<metric>``)."""
    library = _library(booster)
    if library == "xgboost":
        try:  # both raise AttributeError unless early stopping was used
            return {f"{name}.best_iteration": float(booster.best_iteration),
                    f"{name}.best_score": float(booster.best_score)}
        except AttributeError:
            return {}
    if library == "lightgbm" and getattr(booster, "best_iteration", 0) > 0:  # 0 without early stopping
        best = {f"{name}.best_iteration": float(booster.best_iteration)}
        for set_name, scores in (getattr(booster, "best_score", None) or {}).items():
            for metric, value in scores.items():
                best[f"{name}.best_score.{set_name}.{metric}"] = float(value)
        return best
    return {}


def storable(value: Any) -> Any:
    """``value`` if it can be stored as a param, else its (shortened) repr."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)[:_MAX_PARAM_TEXT]
    return value


# -- native train APIs -----------------------------------------------------------

class record_training:
    """While in the ``with`` block, record every ``xgboost.train`` / ``lightgbm.train`` call.

        with record_training() as calls:
            booster = xgboost.train(params, dtrain, 20, evals=[(dval, "val")])
        calls[0].evals["val"]["rmse"]   # one value per round

    Only the libraries already imported are patched; the originals are restored on exit,
    whatever happened inside. ``enabled=False`` records nothing and patches nothing.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.calls: list[TrainCall] = []
        self._originals: list[tuple[Any, Any]] = []

    def __enter__(self) -> list[TrainCall]:
        if self.enabled:
            for library in _PREPARE:
                module = sys.modules.get(library)
                original = getattr(module, "train", None)
                if callable(original):
                    self._originals.append((module, original))
                    module.train = _wrap(library, module, original, self.calls)
        return self.calls

    def __exit__(self, *exc_info) -> None:
        while self._originals:
            module, original = self._originals.pop()
            module.train = original


def _params(params: Any) -> dict[str, Any]:
    """The params of a train call as a dict; xgboost also takes a list of pairs, repeating keys
    (``[("eval_metric", "auc"), ("eval_metric", "logloss")]``), which become lists."""
    if isinstance(params, Mapping):
        return {str(k): storable(v) for k, v in params.items()}
    found: dict[str, Any] = {}
    for key, value in params or ():
        key = str(key)
        if key in found:
            found[key] = (found[key] if isinstance(found[key], list) else [found[key]]) + [storable(value)]
        else:
            found[key] = storable(value)
    return found


def _bind(signature: inspect.Signature, args: tuple, kwargs: dict):
    """A train call's arguments with their defaults, and its params to record (with ``num_boost_round``);
    ``(None, None)`` when the call does not fit the signature (the library itself then says why)."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None, None
    bound.apply_defaults()
    params = _params(bound.arguments.get("params"))
    params["num_boost_round"] = bound.arguments.get("num_boost_round")
    return bound, params


def _wrap(library: str, module, original, calls: list[TrainCall]):
    """``original`` (the library's ``train``) recording each call's params, evaluation curves and booster."""
    signature = inspect.signature(original)
    prepare = _PREPARE[library]

    @functools.wraps(original)
    def train(*args, **kwargs):
        bound, params = _bind(signature, args, kwargs)
        if bound is None:
            return original(*args, **kwargs)  # the library says what is wrong with the call
        evals = prepare(module, bound.arguments, params)
        booster = original(*bound.args, **bound.kwargs)
        calls.append(TrainCall(library, params, evals, booster))
        return booster

    return train


def _prepare_xgboost(module, arguments: dict, params: dict) -> dict:
    """The dict xgboost fills with the curves (the user's own, if they passed one)."""
    if arguments.get("early_stopping_rounds") is not None:
        params["early_stopping_rounds"] = arguments["early_stopping_rounds"]
    if arguments.get("evals_result") is None:
        arguments["evals_result"] = {}
    return arguments["evals_result"]


def _prepare_lightgbm(module, arguments: dict, params: dict) -> dict:
    """A dict lightgbm's record_evaluation callback fills, added to a new list of callbacks (the caller's
    own list is left as it was)."""
    evals: dict = {}
    arguments["callbacks"] = [*(arguments.get("callbacks") or ()), module.record_evaluation(evals)]
    return evals


_PREPARE = {"xgboost": _prepare_xgboost, "lightgbm": _prepare_lightgbm}


def booster_names(calls: list[TrainCall], namespace: Mapping[str, Any], taken: set[str] = frozenset()) -> list[str]:
    """A name per call: the variable holding its booster after the cell, else the library's name
    (``xgboost``, ``xgboost-2``, ... when several calls have none)."""
    holders: dict[int, str] = {}
    for variable, value in list(namespace.items()):
        if not variable.startswith("_") and _library(value) is not None:
            holders.setdefault(id(value), variable)
    used = set(taken)
    names = []
    for call in calls:
        name = holders.get(id(call.booster))
        if name is None or name in used:
            name, n = call.library, 1
            while name in used:
                n += 1
                name = f"{call.library}-{n}"
        used.add(name)
        names.append(name)
    return names


def log_trained(run, calls: list[TrainCall], namespace: Mapping[str, Any], taken: set[str] = frozenset()) -> list[str]:
    """Log each native train call: ``<name>.<param>`` params, eval curves, best iteration, the booster
    as model ``<name>``; return the names used. ``taken`` holds names already logged in the run."""
    from mlops_nb.tracking.autolog import model_name

    names = booster_names(calls, namespace, taken)
    for name, call in zip(names, calls):
        for key, value in call.params.items():
            if f"{name}.{key}" not in run.params:
                run.log_param(f"{name}.{key}", value)
        log_evals(run, name, call.evals)
        run.log_metrics(best_values(name, call.booster))
        run.log_model(call.booster, model_name(name))
    return names
