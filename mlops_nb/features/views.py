"""Feature views: ``features.yaml`` (or ``features:`` in ``pipeline.yaml``) -> typed objects, one-line errors.

    customer_stats:
      entity: customer_id                 # the key column, or a list of them
      timestamp: event_time               # when each row's values became true
      ttl: 90d                            # a value older than this at an entity row's time is missing
      description: what the billing system says of each customer
      features:
        monthly_charges: {dtype: float, description: the bill of the month}
        support_calls: int                # a dtype alone
        plan: str
      source: {step: extract}             # or {files: "data/stats/*.parquet"}, or {sql: "SELECT ...", url: $DB_URL}

Dtypes: int, float, str, bool, datetime. A feature is named ``VIEW:FEATURE`` where it is read
(``mlops.training_frame(entities, ["customer_stats:monthly_charges"])``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nb.errors import InvalidInputError, NotFoundError

DTYPES = ("int", "float", "str", "bool", "datetime")
FILE_NAME = "features.yaml"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VIEW_FIELDS = ("entity", "timestamp", "ttl", "features", "source", "description")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class FeatureSpecError(InvalidInputError):
    """features.yaml is not valid; the message names the view and the field."""


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str
    description: str = ""


@dataclass(frozen=True)
class FeatureView:
    name: str
    entities: tuple[str, ...]
    timestamp: str
    features: dict[str, Feature]
    ttl: float | None = None            # seconds; None: values never expire
    source: dict = field(default_factory=dict)
    description: str = ""

    @property
    def columns(self) -> list[str]:
        return [*self.entities, self.timestamp, *self.features]


def parse_views(data: Any, where: str) -> dict[str, FeatureView]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FeatureSpecError(f"{where}: expected a mapping of feature view names to views, got {type(data).__name__}")
    return {name: _view(name, raw, where) for name, raw in data.items()}


def _view(name: Any, raw: Any, where: str) -> FeatureView:
    if not isinstance(name, str) or not _NAME.match(name):
        raise FeatureSpecError(f"{where}: feature view name {name!r} must be letters, digits and '_'")
    at = f"{where}: feature view {name!r}"
    if not isinstance(raw, dict):
        raise FeatureSpecError(f"{at}: expected a mapping with entity, timestamp and features")
    unknown = [k for k in raw if k not in _VIEW_FIELDS]
    if unknown:
        raise FeatureSpecError(f"{at}: unknown field {unknown[0]!r}; the fields are {', '.join(_VIEW_FIELDS)}")
    entities = raw.get("entity")
    entities = [entities] if isinstance(entities, str) else entities
    if not isinstance(entities, list) or not entities or not all(isinstance(e, str) and e for e in entities):
        raise FeatureSpecError(f"{at}, field 'entity': give the entity key column, or a list of them")
    timestamp = raw.get("timestamp")
    if not isinstance(timestamp, str) or not timestamp:
        raise FeatureSpecError(f"{at}, field 'timestamp': give the event-time column (when each row's values held)")
    features_raw = raw.get("features")
    if not isinstance(features_raw, dict) or not features_raw:
        raise FeatureSpecError(f"{at}, field 'features': give a mapping of feature names to their dtype")
    features = {}
    for feature, spec in features_raw.items():
        spec = {"dtype": spec} if isinstance(spec, str) else spec
        if not isinstance(feature, str) or not _NAME.match(feature):
            raise FeatureSpecError(f"{at}: feature name {feature!r} must be letters, digits and '_'")
        if not isinstance(spec, dict) or spec.get("dtype") not in DTYPES:
            got = spec.get("dtype") if isinstance(spec, dict) else spec
            raise FeatureSpecError(f"{at}, feature {feature!r}: dtype must be one of {', '.join(DTYPES)}, got {got!r}")
        if feature in entities or feature == timestamp:
            raise FeatureSpecError(f"{at}, feature {feature!r}: it is the entity or timestamp column too")
        features[feature] = Feature(feature, spec["dtype"], str(spec.get("description") or ""))
    source = raw.get("source") or {}
    if not isinstance(source, dict) or (source and len(source.keys() & {"step", "files", "sql"}) != 1):
        raise FeatureSpecError(f"{at}, field 'source': give one of step: NAME, files: GLOB or sql: QUERY (with url:)")
    unknown = [k for k in source if k not in ("step", "files", "sql", "url") or (k == "url" and "sql" not in source)]
    if unknown:
        raise FeatureSpecError(f"{at}, field 'source': unknown key {unknown[0]!r}; a source is step: NAME, "
                               "files: GLOB, or sql: QUERY with url: URL")
    wrong = [k for k, v in source.items() if not isinstance(v, str) or not v.strip()]
    if wrong:
        raise FeatureSpecError(f"{at}, field 'source': {wrong[0]} must be text, got {source[wrong[0]]!r}")
    return FeatureView(name, tuple(entities), timestamp, features, _ttl(raw.get("ttl"), at), source,
                       str(raw.get("description") or ""))


def _ttl(value: Any, at: str) -> float | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", str(value).strip())
    if not match or float(match.group(1)) <= 0:
        raise FeatureSpecError(f"{at}, field 'ttl': a duration such as 12h, 90d or 2w, got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def find_views(start: str | Path | None = None) -> tuple[dict[str, FeatureView], Path | None]:
    """The project's feature views: ``features.yaml``, else ``features:`` in ``pipeline.yaml``, in the
    nearest folder at or above ``start`` (default: the working directory) that has either; or the views of
    the file ``start`` names."""
    from mlops_nb.pipeline.safe_yaml import read_yaml

    here = Path(start or Path.cwd()).resolve()
    if here.is_file():
        data = read_yaml(here.read_text(encoding="utf-8"), here.name)
        if here.name != FILE_NAME and isinstance(data, dict) and "steps" in data:
            data = data.get("features")
        return parse_views(data, here.name), here
    for folder in (here, *here.parents):
        for name, key in ((FILE_NAME, None), ("pipeline.yaml", "features")):
            path = folder / name
            if not path.is_file():
                continue
            data = read_yaml(path.read_text(encoding="utf-8"), name)
            if key is not None:
                if not isinstance(data, dict) or "features" not in data:
                    continue
                data = data["features"]
            return parse_views(data, name), path
    return {}, None


def get_view(views: dict[str, FeatureView], name: str, where: Path | None) -> FeatureView:
    if name in views:
        return views[name]
    from mlops_nb.pipeline.spec import suggest

    if where is None:
        raise NotFoundError(f"no feature view {name!r}: there is no features.yaml (or features: in pipeline.yaml) "
                            "in this folder or above; declare the view there")
    raise NotFoundError(f"no feature view {name!r} in {where.name}{suggest(name, views)}; "
                        f"its views: {', '.join(views) or 'none'}")
