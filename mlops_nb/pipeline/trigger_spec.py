"""The ``triggers:`` list of pipeline.yaml, as typed objects.

    triggers:
      - schedule: "0 3 * * 1"                    # or {cron: "0 3 * * 1", timezone: Europe/Paris}
      - new_data: ["data/incoming/*.csv"]        # or {paths: [...], settle: 5}
      - drift: {reference: data/train.csv, current: "data/incoming/*.csv", column: age, threshold: 0.2, settle: 2}
      - drift: {reference: production, current: "data/incoming/*.csv", window: 3, model: churn}
      - performance: {step: monitor, metric: accuracy, below: 0.85}
      - performance: {model: churn, metric: accuracy, drop: 0.05, step: monitor}
      - performance: {pipeline: churn-monitor, step: monitor, metric: accuracy, below: 0.8}
      - drift: {predictions: churn, window: 1d}                 # what the served model was asked
      - performance: {model: churn, metric: accuracy, below: 0.8, min_labels: 200}   # its live accuracy
      - drift: {features: customer_stats, model: churn}         # each write of a feature view

The last two read the prediction log of the version serving at ``alias`` (default
production) and the labels that came back for it: the inputs of the last ``window``
against that version's training data (at least ``min_rows`` predictions, default 200),
and the metric on its labelled predictions (at least ``min_labels``, default 100, within
``window`` if given). After a firing, only predictions made since count for the next,
and a new version starts afresh.

``drift: {features: VIEW}`` compares the newest write of feature view VIEW (``window:`` as for
files: newest, a number of writes, all, since-production) with the values of its features the
production model of ``model`` (default: the pipeline's model_name param) was trained on.

A drift trigger reads the newest batch of ``current`` by default (``window: newest``), or
the newest N (``window: 3``), ``all`` of them, or those since the production model was
trained (``since-production``); ``reference: production`` is the data that model was
trained on, so the alarm compares like with like and re-arms after each retraining.

Any trigger written as a mapping can say which steps its firing runs again even when they
are unchanged: ``rerun: all`` or ``rerun: [train, gate]`` (a performance drop on unchanged
data still retrains). Steps marked ``cache: false`` always run.

A manual run (`mlops-nb run`, `%mlops run`) is the on-demand trigger and needs no entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops_nb.monitoring.windows import window_seconds
from mlops_nb.pipeline.spec import SpecError, suggest

KINDS = ("schedule", "new_data", "drift", "performance")


@dataclass(frozen=True)
class Trigger:
    kind: str
    index: int
    options: dict = field(default_factory=dict)
    rerun: tuple[str, ...] = ()       # steps a firing runs even if unchanged; ("all",) for every step

    @property
    def key(self) -> str:
        """A stable name: the kind and position (``new_data#2``)."""
        return f"{self.kind}#{self.index + 1}"

    def describe(self) -> str:
        rerun = f" (reruns {', '.join(self.rerun)})" if self.rerun else ""
        return self._what() + rerun

    def _what(self) -> str:
        o = self.options
        if self.kind == "schedule":
            return f"schedule {o['cron']!r}" + (f" ({o['timezone']})" if o.get("timezone") else "")
        if self.kind == "new_data":
            return f"new data in {', '.join(o['paths'])}"
        if self.kind == "drift" and o.get("features"):
            window = o.get("window", "newest")
            writes = {"newest": "the newest write", "all": "all writes", "since-production":
                      "the writes since the production model"}.get(window, f"the newest {window} writes")
            return (f"drift of feature view {o['features']} in {writes} against what "
                    f"{o.get('model') or 'the production model'} was trained on")
        if self.kind == "drift" and o.get("predictions"):
            return (f"drift of the inputs of {o['predictions']}@{o.get('alias', 'production')} in the last "
                    f"{o.get('window', '1d')} against its training data")
        if self.kind == "drift":
            target = f"column {o['column']}" if o.get("column") else "the dataset"
            window = o.get("window", "newest")
            batches = {"newest": "the newest batch", "all": "all batches",
                       "since-production": "the batches since the production model"}.get(window,
                                                                                         f"the newest {window} batches")
            return f"drift of {target} in {batches} of {o['current']} against {o['reference']}"
        rule = next(f"{k} {o[k]}" for k in ("below", "above", "drop") if k in o)
        source = (f"step {o['step']}" + (f" of {o['pipeline']}" if o.get("pipeline") else "")
                  if o.get("step") else f"{o['model']}@{o.get('alias', 'production')} in service "
                                        f"(at least {o.get('min_labels', 100)} labels)")
        return f"performance: {o['metric']} of {source} {rule}"


def parse_triggers(raw, where: str) -> list[Trigger]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError(f"{where}: field 'triggers' must be a list, e.g. - schedule: \"0 3 * * 1\"")
    return [_parse_one(entry, i, where) for i, entry in enumerate(raw)]


def _parse_one(entry, index: int, where: str) -> Trigger:
    here = f"{where}: trigger {index + 1}"
    if not isinstance(entry, dict) or len(entry) != 1:
        raise SpecError(f"{here}: expected one of {', '.join(KINDS)} with its settings, got {entry!r}")
    kind, value = next(iter(entry.items()))
    if kind not in KINDS:
        raise SpecError(f"{here}: unknown trigger {kind!r}{suggest(str(kind), KINDS)}; known: {', '.join(KINDS)}")
    rerun: tuple[str, ...] = ()
    if isinstance(value, dict) and "rerun" in value:
        value = dict(value)
        rerun = _rerun(value.pop("rerun"), f"{here} ({kind})")
    return Trigger(kind, index, globals()[f"_{kind}"](value, f"{here} ({kind})"), rerun)


def _rerun(value, here: str) -> tuple[str, ...]:
    if value == "all":
        return ("all",)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise SpecError(f"{here}: 'rerun' is all, or a list of step names to run even if unchanged, got {value!r}")
    return tuple(value)


def _schedule(value, here: str) -> dict:
    from croniter import croniter

    options = {"cron": value} if isinstance(value, str) else value
    if not isinstance(options, dict):
        raise SpecError(f"{here}: expected a cron expression or {{cron: ..., timezone: ...}}, got {value!r}")
    _known(options, ("cron", "timezone"), here)
    cron = options.get("cron")
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise SpecError(f"{here}: {cron!r} is not a cron expression (five fields: minute hour day month weekday, "
                        "e.g. \"0 3 * * 1\")")
    timezone = options.get("timezone")
    if timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SpecError(f"{here}: unknown time zone {timezone!r} (use a name such as Europe/Paris or UTC)") from None
    return {"cron": cron, "timezone": timezone}


def _new_data(value, here: str) -> dict:
    options = {"paths": value} if isinstance(value, (list, str)) else value
    if not isinstance(options, dict):
        raise SpecError(f"{here}: expected paths or globs, e.g. [\"data/incoming/*.csv\"], got {value!r}")
    _known(options, ("paths", "settle"), here)
    paths = options.get("paths")
    paths = [paths] if isinstance(paths, str) else paths
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise SpecError(f"{here}: 'paths' must be a non-empty list of paths or globs")
    settle = options.get("settle", 2.0)
    if not isinstance(settle, (int, float)) or isinstance(settle, bool) or settle < 0:
        raise SpecError(f"{here}: 'settle' is seconds a file must stay unchanged before it counts, got {settle!r}")
    return {"paths": paths, "settle": float(settle)}


def _drift(value, here: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(f"{here}: expected {{reference: ..., current: ...}} or {{predictions: <model>}}, "
                        f"got {value!r}")
    if "predictions" in value:
        return _drift_of_predictions(value, here)
    if "features" in value:
        _known(value, ("features", "window", "model", "column", "threshold", "share"), here)
        if not isinstance(value["features"], str) or not value["features"]:
            raise SpecError(f"{here}: 'features' names a feature view (declared in features.yaml)")
        _window(value.get("window", "newest"), here, "write", "writes")
        _threshold(value, here)
        return dict(value)
    _known(value, ("reference", "current", "window", "model", "column", "threshold", "share", "settle"), here)
    for key in ("reference", "current"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise SpecError(f"{here}: '{key}' is required: a file or a glob; reference may also be production "
                            "(what the production model was trained on) or a logged dataset's name")
    _window(value.get("window", "newest"), here, "batch", "batches")
    _threshold(value, here)
    return dict(value)


def _window(window, here: str, one: str, many: str) -> None:
    if not (window in ("newest", "all", "since-production") or (
            isinstance(window, int) and not isinstance(window, bool) and window >= 1)):
        raise SpecError(f"{here}: 'window' is newest (the default: the newest {one}), a number of the "
                        f"newest {many}, all, or since-production, got {window!r}")


def _threshold(value: dict, here: str) -> None:
    threshold = value.get("threshold")
    if threshold is not None and (not isinstance(threshold, (int, float)) or isinstance(threshold, bool)):
        raise SpecError(f"{here}: 'threshold' must be a number, got {threshold!r}")


def _drift_of_predictions(value: dict, here: str) -> dict:
    _known(value, ("predictions", "alias", "window", "min_rows", "column", "threshold", "share"), here)
    from mlops_nb.registry.models import check_alias, check_model_name
    from mlops_nb.errors import InvalidInputError

    try:
        check_model_name(value["predictions"])
        check_alias(value.get("alias", "production"))
        window_seconds(value.get("window", "1d"))
    except InvalidInputError as exc:
        raise SpecError(f"{here}: {exc}") from None
    _count(value, "min_rows", here)
    return {"window": "1d", "min_rows": 200, **value}


def _count(value: dict, key: str, here: str) -> None:
    given = value.get(key, 1)
    if not isinstance(given, int) or isinstance(given, bool) or given < 1:
        raise SpecError(f"{here}: '{key}' is a whole number of at least 1, got {given!r}")


def _performance(value, here: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(f"{here}: expected {{step: ..., metric: ..., below: ...}}, got {value!r}")
    _known(value, ("step", "pipeline", "model", "metric", "below", "above", "drop", "alias", "min_labels",
                   "window"), here)
    if not isinstance(value.get("metric"), str):
        raise SpecError(f"{here}: 'metric' is required: the metric or output to watch")
    if not value.get("step") and not value.get("model"):
        raise SpecError(f"{here}: say where the metric comes from: 'step' (a step's outputs or metrics) or 'model'")
    rules = [k for k in ("below", "above", "drop") if k in value]
    if len(rules) != 1:
        raise SpecError(f"{here}: give exactly one rule: below, above, or drop (relative to the production model)")
    if not isinstance(value[rules[0]], (int, float)) or isinstance(value[rules[0]], bool):
        raise SpecError(f"{here}: '{rules[0]}' must be a number, got {value[rules[0]]!r}")
    if rules[0] == "drop" and not value.get("model"):
        raise SpecError(f"{here}: 'drop' compares with a model's metric: add model: <registered model name>")
    if not value.get("step"):  # the served model's live metric
        from mlops_nb.errors import InvalidInputError
        from mlops_nb.monitoring.monitor import METRICS

        if value["metric"] not in METRICS:
            raise SpecError(f"{here}: the live metric of a served model is one of {', '.join(METRICS)}, "
                            f"got {value['metric']!r}")
        _count(value, "min_labels", here)
        if "window" in value:
            try:
                window_seconds(value["window"])
            except InvalidInputError as exc:
                raise SpecError(f"{here}: {exc}") from None
        return {"min_labels": 100, **value}
    if "min_labels" in value or "window" in value:
        raise SpecError(f"{here}: 'min_labels' and 'window' belong to a served model's live metric "
                        "(model: without step:)")
    return dict(value)


def _known(options: dict, known: tuple, here: str) -> None:
    for key in options:
        if key not in known:
            raise SpecError(f"{here}: unknown field {key!r}{suggest(str(key), known)}; known: {', '.join(known)}")
