"""Writing feature views, joining them into training frames as of each row's time, reading the latest values.

A write checks the frame against its view (one-line errors naming the column), appends it as a new version
of the view's offline table (a Parquet file stored by content, with the fingerprint, schema and profile
datasets get) and updates the online table of the latest values per entity, in one transaction: a write
that is refused changes nothing. A training frame takes, for each entity row and its time, each view's
latest values at or before that time and within the view's TTL: DuckDB's ``ASOF LEFT JOIN`` over every
version's file (a later version's row wins over an earlier one's for the same entity and time).
"""

from __future__ import annotations

import io
import json
import math
from typing import Any, Iterable

from mlops_nb.errors import InvalidInputError
from mlops_nb.features.views import FeatureView

_KINDS = {"int": "iu", "float": "iuf", "str": "OSU", "bool": "b", "datetime": "M"}


def check_frame(view: FeatureView, df) -> Any:
    """The frame to store: the view's columns, checked, with times as UTC without zone; one-line errors."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(f"write_features({view.name!r}, ...) takes a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in view.columns if c not in df.columns]
    if missing:
        raise InvalidInputError(f"feature view {view.name!r}: the frame has no column {missing[0]!r} (declared "
                                f"{_role(view, missing[0])}); its columns: {', '.join(map(str, df.columns))}")
    frame = df[view.columns].copy()
    frame[view.timestamp] = _times(frame[view.timestamp], f"feature view {view.name!r}, column {view.timestamp!r}")
    for name, feature in view.features.items():
        column = frame[name]
        kind = column.dtype.kind
        if feature.dtype == "str" and (str(column.dtype) in ("string", "str") or kind in "OSU"):
            if kind == "O" and not column.dropna().map(lambda v: isinstance(v, str)).all():
                raise InvalidInputError(f"feature view {view.name!r}, feature {name!r}: declared str, but it holds "
                                        "values that are not text; convert them with .astype(str)")
            continue
        if feature.dtype == "datetime":
            frame[name] = _times(column, f"feature view {view.name!r}, feature {name!r}")
            continue
        if kind not in _KINDS[feature.dtype]:
            raise InvalidInputError(f"feature view {view.name!r}, feature {name!r}: declared {feature.dtype}, but the "
                                    f"column is {column.dtype}; convert it, or change its dtype in the view")
    for entity in view.entities:
        if frame[entity].isna().any():
            raise InvalidInputError(f"feature view {view.name!r}: entity column {entity!r} has missing keys")
    duplicated = frame.duplicated([*view.entities, view.timestamp])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        key = ", ".join(f"{c}={_plain(first[c])!r}" for c in view.entities)
        count = int(duplicated.sum())
        raise InvalidInputError(f"feature view {view.name!r}: {count} row{'s repeat' if count > 1 else ' repeats'} an entity and "
                                f"time ({key} at {first[view.timestamp]}); keep one row per entity and time")
    return frame


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _role(view: FeatureView, column: str) -> str:
    return "its entity key" if column in view.entities else "its timestamp" if column == view.timestamp else \
        f"{'an' if view.features[column].dtype == 'int' else 'a'} {view.features[column].dtype} feature"


def _times(column, where: str):
    import pandas as pd

    if column.dtype.kind != "M" and not isinstance(column.dtype, pd.DatetimeTZDtype):
        try:
            column = pd.to_datetime(column, utc=True)
        except (ValueError, TypeError):
            try:  # texts of more than one form (files written apart, some with fractions of a second)
                column = pd.to_datetime(column, utc=True, format="mixed")
            except (ValueError, TypeError) as exc:
                raise InvalidInputError(f"{where}: expected times, {str(exc).splitlines()[0][:120]}") from None
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    if column.isna().any():
        raise InvalidInputError(f"{where}: {int(column.isna().sum())} rows have no time")
    return column.astype("datetime64[us]")


def write_features(store, view: FeatureView, df, run_id: str | None = None) -> dict:
    """Check ``df`` against ``view``, store it as the view's next version, update the online table."""
    from mlops_nb.registry import artifacts, datasets
    from mlops_nb.registry import features as feature_store
    from mlops_nb.tracking.frames import fingerprint_frame, frame_profile

    # Stored sorted by entity and time: the as-of joins that read it sort less (a third faster).
    frame = check_frame(view, df).sort_values([*view.entities, view.timestamp], kind="stable", ignore_index=True)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    sha, _ = artifacts.put_bytes(store.artifacts_dir, buffer.getvalue())
    from mlops_nb.validation.schema import infer_schema

    # A dataset even outside a run: the training runs that read this version link to it (lineage).
    dataset_id = datasets.record_dataset(
        store, run_id, name=f"features/{view.name}", fingerprint=fingerprint_frame(frame), role="output",
        n_rows=len(frame), n_cols=len(frame.columns), schema=infer_schema(frame, name=view.name).to_dict(),
        profile=frame_profile(frame))
    times = frame[view.timestamp]
    version = feature_store.next_version(store, view.name)
    feature_store.record_version(
        store, view.name, version, sha256=sha, dataset_id=dataset_id, n_rows=len(frame),
        min_time=_epoch(times.min()) if len(frame) else None, max_time=_epoch(times.max()) if len(frame) else None,
        run_id=run_id, online=_latest_rows(view, frame))
    return {"view": view.name, "version": version, "rows": len(frame), "sha256": sha}


def _latest_rows(view: FeatureView, frame) -> Iterable[tuple[str, float, str]]:
    """(entity key, time, values) of each entity's latest row; ``frame`` is sorted by entity and time."""
    latest = frame.drop_duplicates(list(view.entities), keep="last")   # sorted by entity and time
    names = list(view.features)
    keys = latest[list(view.entities)].to_numpy().tolist()
    epochs = (latest[view.timestamp].astype("int64") / 1e6).tolist()
    values = latest[names].astype(object).where(latest[names].notna(), None).to_numpy().tolist()
    for key, at, row in zip(keys, epochs, values):
        yield entity_key(key), at, json.dumps(dict(zip(names, row)), default=_jsonable)


def entity_key(values) -> str:
    """How an entity is named in the online table: its key values as JSON (a list for a composite key)."""
    values = [v.item() if hasattr(v, "item") else v for v in values]
    if len(values) == 1 and type(values[0]) is int:  # the common key, as json.dumps writes it, without it
        return str(values[0])
    return json.dumps(values if len(values) > 1 else values[0], default=str)


def _jsonable(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _epoch(ts) -> float:
    return ts.value / 1e9 if hasattr(ts, "value") else float(ts)


def parse_refs(refs: list[str], views: dict[str, FeatureView], where) -> dict[str, list[str]]:
    """``["view:feature", ...]`` -> {view: [features]} in the order given; unknown names are one-line errors."""
    from mlops_nb.features.views import get_view
    from mlops_nb.pipeline.spec import suggest

    if isinstance(refs, str) or not refs:
        raise InvalidInputError("features are a list such as ['customer_stats:monthly_charges', ...]")
    wanted: dict[str, list[str]] = {}
    for ref in refs:
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise InvalidInputError(f"feature {ref!r}: name it VIEW:FEATURE, e.g. 'customer_stats:monthly_charges'")
        view_name, feature = ref.split(":")
        view = get_view(views, view_name, where)
        if feature == "*":
            wanted.setdefault(view_name, []).extend(f for f in view.features if f not in wanted.get(view_name, []))
            continue
        if feature not in view.features:
            raise InvalidInputError(f"feature view {view_name!r} has no feature {feature!r}"
                                    f"{suggest(feature, view.features)}; its features: {', '.join(view.features)}")
        wanted.setdefault(view_name, []).append(feature)
    return wanted


def training_frame(store, views: dict[str, FeatureView], entities, wanted: dict[str, list[str]],
                   timestamp: str | None = None):
    """For each row of ``entities`` (its entity keys and a time), each wanted feature's value at that time."""
    import duckdb
    import pandas as pd

    from mlops_nb.registry import artifacts
    from mlops_nb.registry import features as feature_store

    if not isinstance(entities, pd.DataFrame):
        raise InvalidInputError(f"training_frame takes a DataFrame of entity rows, got {type(entities).__name__}")
    first = views[next(iter(wanted))]
    timestamp = timestamp or first.timestamp
    if timestamp not in entities.columns:
        raise InvalidInputError(f"the entity frame has no time column {timestamp!r}: name it with timestamp=... "
                                f"(its columns: {', '.join(map(str, entities.columns))})")
    names = [f for fs in wanted.values() for f in fs]
    clash = sorted({n for n in names if names.count(n) > 1} | {n for n in names if n in entities.columns})
    if clash:
        raise InvalidInputError(f"feature {clash[0]!r} is asked twice, or is a column of the entity frame already; "
                                "ask for it once")
    left = entities.copy()
    left[timestamp] = _times(left[timestamp], f"the entity frame's column {timestamp!r}")
    left["__row"] = range(len(left))
    con = duckdb.connect()
    try:
        con.register("entities", left)
        select, joins = ["e.*"], []
        for i, (view_name, features) in enumerate(wanted.items()):
            view = views[view_name]
            missing = [k for k in view.entities if k not in entities.columns]
            if missing:
                raise InvalidInputError(f"the entity frame has no column {missing[0]!r}, the key of feature view "
                                        f"{view_name!r}")
            files = [(v["version"], str(artifacts.blob_path(store.artifacts_dir, v["sha256"])))
                     for v in feature_store.versions(store, view_name)]
            alias = f"v{i}"
            columns = [*view.entities, view.timestamp, *features]
            cols = ", ".join(_q(c) for c in columns)
            if not files:  # nothing written yet: every value is missing
                source = f"(SELECT {', '.join(f'NULL::{_sql_type(view, c)} AS {_q(c)}' for c in columns)} WHERE false)"
            elif len(files) == 1:
                source = f"(SELECT {cols} FROM read_parquet({_lit(files[0][1])}))"
            else:  # the same entity and time in two versions: the later version's row
                union = " UNION ALL ".join(f"SELECT {cols}, {version} AS __version FROM read_parquet({_lit(path)})"
                                           for version, path in files)
                keys = ", ".join(_q(c) for c in [*view.entities, view.timestamp])
                source = (f"(SELECT {cols} FROM ({union}) QUALIFY row_number() OVER (PARTITION BY {keys} "
                          "ORDER BY __version DESC) = 1)")
            on = " AND ".join(f"e.{_q(k)} = {alias}.{_q(k)}" for k in view.entities)
            joins.append(f"ASOF LEFT JOIN {source} {alias} ON {on} AND e.{_q(timestamp)} >= {alias}.{_q(view.timestamp)}")
            for feature in features:
                value = f"{alias}.{_q(feature)}"
                if view.ttl is not None:
                    value = (f"CASE WHEN e.{_q(timestamp)} - {alias}.{_q(view.timestamp)} <= "
                             f"to_microseconds({int(math.ceil(view.ttl * 1e6))}) THEN {value} END")
                select.append(f"{value} AS {_q(feature)}")
        sql = f"SELECT {', '.join(select)} FROM entities e {' '.join(joins)} ORDER BY e.__row"
        frame = con.execute(sql).df()
    finally:
        con.close()
    frame = frame.drop(columns="__row").reset_index(drop=True)
    frame.index = entities.index
    return frame


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _sql_type(view: FeatureView, column: str) -> str:
    if column == view.timestamp:
        return "TIMESTAMP"
    if column in view.features:
        return {"int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR", "bool": "BOOLEAN",
                "datetime": "TIMESTAMP"}[view.features[column].dtype]
    return "VARCHAR"


def online_features(store, views: dict[str, FeatureView], entity_rows, wanted: dict[str, list[str]]):
    """The latest values of the wanted features for each entity (a key value, or a mapping of key columns),
    as a DataFrame with a row per entity in the order given; an entity never written has missing values."""
    import pandas as pd

    from mlops_nb.registry import features as feature_store

    rows = list(entity_rows.to_dict("records") if isinstance(entity_rows, pd.DataFrame) else entity_rows)
    out = [dict(r) if isinstance(r, dict) else {} for r in rows]
    for view_name, features in wanted.items():
        view = views[view_name]
        keys = []
        for given, row in zip(rows, out):
            if isinstance(given, dict):
                missing = [k for k in view.entities if k not in given]
                if missing:
                    raise InvalidInputError(f"an entity row has no {missing[0]!r}, the key of feature view {view_name!r}")
                keys.append(entity_key([given[k] for k in view.entities]))
            elif len(view.entities) == 1:
                row[view.entities[0]] = given
                keys.append(entity_key([given]))
            else:
                raise InvalidInputError(f"feature view {view_name!r} has a composite key ({', '.join(view.entities)}): "
                                        "give each entity as a mapping of those columns")
        found = feature_store.online_rows(store, view_name, list(dict.fromkeys(keys)))
        for key, row in zip(keys, out):
            values = found.get(key, (None, {}))[1]
            row.update({f: values.get(f) for f in features})
    return pd.DataFrame(out)
