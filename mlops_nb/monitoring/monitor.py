"""A served model's health, window by window, from its prediction log and the labels that came back.

    m = monitor(store, "churn", window="1h")     # or window=500: windows of 500 predictions
    m.windows    # one row per window: traffic, latency, drift, the live metric and its label coverage

Per window: the predictions made (``n``) and the versions that made them; latency percentiles
per request; the share of input features that drifted from the training data of the version
that served the window (and which), the drift of the predictions from what that version
predicts on its own training data, and the metric on the predictions whose labels came back
(``labelled``, ``coverage``). ``markers`` are the moments the alias moved and a trigger fired.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry import models
from mlops_nb.registry.feedback import read_labelled
from mlops_nb.registry.predictions import read_predictions
from mlops_nb.registry.store import Store
from mlops_nb.registry import triggers as trigger_records
from mlops_nb.monitoring.windows import parse_window

MIN_ROWS = 30        # fewer predictions in a window than this: no drift test on them
CLASSIFICATION = ("accuracy", "precision", "recall", "f1")
REGRESSION = ("mae", "rmse", "r2")
METRICS = CLASSIFICATION + REGRESSION
WINDOW_COLUMNS = ["start", "end", "n", "versions", "p50_ms", "p95_ms", "p99_ms", "drift_share", "drifted",
                  "prediction_drift", "prediction_drifted", "metric", "labelled", "coverage"]


@dataclass
class Monitoring:
    model: str
    alias: str
    serving: int | None              # the version behind the alias now
    window: str                      # "1h", or "500 predictions"
    metric: str
    windows: Any                     # DataFrame, WINDOW_COLUMNS, oldest first
    markers: list[dict] = field(default_factory=list)   # {"time", "kind": alias|trigger, "text"}
    total: int = 0
    labelled: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        rows = json.loads(self.windows.to_json(orient="records"))
        return {"model": self.model, "alias": self.alias, "serving": self.serving, "window": self.window,
                "metric": self.metric, "total": self.total, "labelled": self.labelled, "windows": rows,
                "markers": self.markers, "notes": self.notes}


def monitor(store: Store, model: str, *, alias: str = "production", window="1h", since: float | None = None,
            metric: str | None = None, last: int | None = None) -> Monitoring:
    """The log of ``model`` (since a time) in windows, newest ``last`` of them (all by default)."""
    kind, size = parse_window(window)
    models.check_alias(alias)
    if metric is not None and metric not in METRICS:
        raise InvalidInputError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    serving = models.alias_version_or_none(store, model, alias)
    frame = read_labelled(store, model, since=since, categories=True)
    if not len(frame):
        raise NotFoundError(f"no predictions of {model!r} since {time.strftime('%Y-%m-%d %H:%M', time.localtime(since))}")
    metric = metric or default_metric(frame["prediction"])
    if kind == "time":
        keys = np.floor(frame["time"].to_numpy() / size).astype(np.int64)
    else:
        keys = np.arange(len(frame)) // int(size)
    bounds = np.flatnonzero(np.diff(keys)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(frame)]
    if last is not None:
        starts, ends = starts[-last:], ends[-last:]
    references = _References(store, model)
    inputs = [c for c in frame.columns if c.startswith("feature.")]
    named = frame.rename(columns={c: c[len("feature."):] for c in inputs})  # no copy: pandas copies on write
    names = [c[len("feature."):] for c in inputs]
    rows = [_window_row(named.iloc[a:b], names, references, metric) for a, b in zip(starts, ends)]
    import pandas as pd

    windows = pd.DataFrame(rows, columns=WINDOW_COLUMNS)
    return Monitoring(model, alias, serving, _window_name(kind, size, window), metric, windows,
                      _markers(store, model, alias, float(frame["time"].iloc[0])), total=len(frame),
                      labelled=int(frame["label"].notna().sum()), notes=references.notes)


def live_metric(store: Store, model: str, version: int, metric: str, *, since: float | None = None) -> dict:
    """The metric of ``version``'s labelled predictions (since a time): ``{"value", "labelled", "n"}``."""
    frame = read_labelled(store, model, since=since, version=version, columns=["prediction"])
    labelled = frame[frame["label"].notna()]
    value = score(metric, labelled["label"], labelled["prediction"]) if len(labelled) else None
    return {"value": value, "labelled": len(labelled), "n": len(frame)}


def input_drift(store: Store, model: str, version: int, *, since: float | None = None, share: float = 0.5):
    """The drift report of ``version``'s logged inputs (since a time) against its training data."""
    from mlops_nb.validation.drift import drift

    frame = read_predictions(store.home, model, since=since, version=version)
    if not len(frame):
        return None
    references = _References(store, model)
    reference = references.of(version)
    if reference is None:
        raise NotFoundError(references.notes[-1])
    return drift(reference["features"], features(frame), share=share)


def labelled_predictions(store: Store, model: str, *, since: float | None = None, version: int | None = None,
                         target: str | None = None):
    """The predictions whose labels came back, as training rows: the input features under their own names and
    the label under ``target`` (by default the column the serving version's training data has beyond its
    features, else ``label``). A service that filled features in from feature views (``serve --features``)
    logged the entity keys too: they come first, with ``predicted_at`` (UTC), so the rows can be entity rows
    of ``mlops.training_frame``."""
    import pandas as pd

    frame = read_labelled(store, model, since=since, version=version)
    labelled = frame[frame["label"].notna()]
    rows = features(labelled).reset_index(drop=True)
    rows[target or _target_name(store, model, list(rows.columns))] = labelled["label"].to_numpy()
    keys = [c for c in labelled.columns if c.startswith("entity.")]
    if keys:
        entities = labelled[keys].rename(columns={c: c[len("entity."):] for c in keys}).reset_index(drop=True)
        entities["predicted_at"] = pd.to_datetime(labelled["time"].to_numpy(), unit="s").floor("us")
        rows = pd.concat([entities, rows.drop(columns=[c for c in entities.columns if c in rows])], axis=1)
    return rows


def features(frame):
    """The input features of logged predictions, under their own names."""
    chosen = [c for c in frame.columns if c.startswith("feature.")]
    return frame[chosen].rename(columns={c: c[len("feature."):] for c in chosen})


def default_metric(predictions) -> str:
    sample = predictions.head(1000).tolist()
    whole = all(isinstance(p, (str, bool, int)) or (isinstance(p, float) and p.is_integer()) for p in sample)
    return "accuracy" if whole else "rmse"


def score(metric: str, labels, predictions) -> float:
    y_true, y_pred = _comparable(labels), _comparable(predictions)
    if metric == "accuracy":
        return float(np.mean(y_true == y_pred))
    from sklearn import metrics as sk

    if metric in CLASSIFICATION:
        classes = sorted(set(y_true.tolist()) | set(y_pred.tolist()), key=str)
        fn = {"precision": sk.precision_score, "recall": sk.recall_score, "f1": sk.f1_score}[metric]
        if len(classes) <= 2:
            return float(fn(y_true, y_pred, average="binary", pos_label=classes[-1], zero_division=0))
        return float(fn(y_true, y_pred, average="macro", zero_division=0))
    true, pred = y_true.astype(float), y_pred.astype(float)
    if metric == "mae":
        return float(np.mean(np.abs(true - pred)))
    if metric == "rmse":
        return float(np.sqrt(np.mean((true - pred) ** 2)))
    return float(sk.r2_score(true, pred))


def _comparable(values) -> np.ndarray:
    """Labels as they came and predictions as the model gave them, made comparable: "1", 1, 1.0 and True
    agree; text that is not a number stays text."""
    import pandas as pd

    series = pd.Series(values).reset_index(drop=True)
    if pd.api.types.infer_dtype(series, skipna=False) == "boolean":
        return series.astype(int).to_numpy()
    numbers = pd.to_numeric(series, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy(dtype=float)
    return series.astype(str).to_numpy()


class _References:
    """Per version: the drift profile of its training data and of what it predicts on that data, computed once
    and kept (:func:`~mlops_nb.monitoring.reference.reference_profiles`)."""

    def __init__(self, store: Store, model: str):
        self.store, self.model = store, model
        self._loaded: dict[int, dict | None] = {}
        self.notes: list[str] = []

    def of(self, version: int) -> dict | None:
        if version not in self._loaded:
            from mlops_nb.monitoring.reference import reference_profiles

            found = models.get_version(self.store, self.model, version)
            try:
                self._loaded[version], notes = reference_profiles(self.store, found)
            except NotFoundError as exc:
                self._loaded[version], notes = None, [f"no drift for {found.ref}: {exc}"]
            self.notes += notes
        return self._loaded[version]


def _window_row(rows, names: list[str], references: _References, metric: str) -> list:
    from mlops_nb.validation.drift import drift

    times = rows["time"].to_numpy()
    versions = rows["version"].to_numpy()
    counts = np.unique(versions, return_counts=True)
    main = int(counts[0][np.argmax(counts[1])])
    # One latency per request: the rows of one request come together and share its time and latency.
    latencies = rows["latency_ms"].to_numpy()
    requests = latencies[np.r_[True, (times[1:] != times[:-1]) | (latencies[1:] != latencies[:-1])]] \
        if len(times) else latencies
    p50, p95, p99 = np.percentile(requests, [50, 95, 99]) if len(requests) else (None, None, None)
    share = drifted = prediction_drift = prediction_drifted = None
    reference = references.of(main)
    if reference is not None and len(rows) >= MIN_ROWS:
        served = rows if len(counts[0]) == 1 else rows[versions == main]  # the version that served the most
        report = drift(reference["features"], served[names])
        share, drifted = report.share, report.drifted_columns
        if reference["predictions"] is not None:
            column = drift(reference["predictions"], served[["prediction"]]).columns.iloc[0]
            prediction_drift, prediction_drifted = _plain(column["statistic"]), bool(column["drifted"])
    has_label = rows["label"].notna().to_numpy()
    labelled = int(has_label.sum())
    value = score(metric, rows["label"][has_label], rows["prediction"][has_label]) if labelled else None
    return [float(times[0]), float(times[-1]), len(rows), ",".join(str(v) for v in counts[0]),
            _plain(p50), _plain(p95), _plain(p99), share, drifted, prediction_drift, prediction_drifted, value,
            labelled, labelled / len(rows)]


def _markers(store: Store, model: str, alias: str, since: float) -> list[dict]:
    marks = [{"time": h["at"], "kind": "alias",
              "text": f"{alias} -> {model}/{h['version']}" + (f" ({h['action']})" if h["action"] != "set" else "")}
             for h in models.alias_history(store, model, alias) if h["at"] >= since]
    for event in trigger_records.history(store, limit=500):
        evidence = event.get("evidence") or {}
        if event["fired_at"] >= since and isinstance(evidence, dict) and evidence.get("model") == model:
            marks.append({"time": event["fired_at"], "kind": "trigger",
                          "text": f"{event['pipeline']} {event['trigger']}: {event['reason']}"})
    return sorted(marks, key=lambda m: m["time"])


def _target_name(store: Store, model: str, feature_names: list[str]) -> str:
    """The name of the production version's target: the one column of its training data it takes no input
    from; "label" when that is not one column."""
    from mlops_nb.monitoring.reference import reference_profiles

    version = models.alias_version_or_none(store, model, "production")
    if version is not None:
        try:
            profiles, _ = reference_profiles(store, models.get_version(store, model, version))
        except NotFoundError:
            return "label"
        extra = [c for c in profiles["columns"] if c not in feature_names]
        if len(extra) == 1:
            return str(extra[0])
    return "label"


def _window_name(kind: str, size: float, given) -> str:
    return str(given).strip() if kind == "time" else f"{int(size)} predictions"


def _plain(value):
    if value is None:
        return None
    value = float(value)
    return None if value != value else value
