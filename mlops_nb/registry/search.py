"""``search_runs``: filter, order and page runs, returned as rows or a DataFrame."""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

from mlops_nb.errors import FilterSyntaxError, InvalidInputError
from mlops_nb.registry.query import ATTRIBUTES, NAMESPACES, compile_filter, parse_filter
from mlops_nb.registry.runs import experiment_id, reap_interrupted
from mlops_nb.registry.store import Store
from mlops_nb.registry.values import decode_param

RUN_COLUMNS = ("run_id", "experiment", "name", "status", "kind", "parent_id", "start_time", "end_time")
_ORDER = re.compile(r"^\s*(?P<field>.+?)(?:\s+(?P<dir>asc|desc))?\s*$", re.IGNORECASE)


def search_run_rows(store: Store, filter: str | None = None, *, order_by: Sequence[str] | str | None = None,
                    experiment: str | Sequence[str] | None = None,
                    max_results: int | None = None) -> list[dict[str, Any]]:
    """Matching runs as dicts with run columns plus ``params``, ``metrics`` and ``tags`` dicts."""
    if max_results is not None and (not isinstance(max_results, int) or max_results < 1):
        raise InvalidInputError(f"max_results must be a positive integer, got {max_results!r}")
    reap_interrupted(store)
    where, args = [], []
    node = parse_filter(filter)
    if node is not None:
        sql, filter_args = compile_filter(node, filter)
        where.append(f"r.id IN ({sql})")
        args.extend(filter_args)
    if experiment is not None:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        ids = [experiment_id(store, name) for name in names]
        where.append(f"r.experiment_id IN ({', '.join('?' * len(ids))})")
        args.extend(ids)
    joins, order_sql = _order_clause(order_by)
    sql = ("SELECT r.id, e.name, r.name, r.status, r.kind, r.parent_id, r.start_time, r.end_time "
           f"FROM runs r JOIN experiments e ON e.id = r.experiment_id {' '.join(j for j, _ in joins)}"
           f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order_sql}")
    join_args = [a for _, a in joins]
    if max_results is not None:
        sql += f" LIMIT {int(max_results)}"
    rows = store.query(sql, join_args + args)
    runs = [dict(zip(RUN_COLUMNS, row), params={}, metrics={}, tags={}) for row in rows]
    _attach_values(store, runs)
    return runs


def search_runs(store: Store, filter: str | None = None, *, order_by: Sequence[str] | str | None = None,
                experiment: str | Sequence[str] | None = None, max_results: int | None = None):
    """Matching runs as a pandas DataFrame: one row per run, ``params.*``, ``metrics.*`` and
    ``tags.*`` columns (metrics hold each run's latest value)."""
    import pandas as pd

    runs = search_run_rows(store, filter, order_by=order_by, experiment=experiment, max_results=max_results)
    records = []
    for run in runs:
        record = {c: run[c] for c in RUN_COLUMNS}
        record.update({f"params.{k}": v for k, v in run["params"].items()})
        record.update({f"metrics.{k}": v for k, v in run["metrics"].items()})
        record.update({f"tags.{k}": v for k, v in run["tags"].items()})
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=_columns(runs))
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


def _columns(runs: list[dict]) -> list[str]:
    columns = list(RUN_COLUMNS)
    for part in ("params", "metrics", "tags"):
        keys = sorted({k for run in runs for k in run[part]})
        columns.extend(f"{part}.{k}" for k in keys)
    return columns


def _attach_values(store: Store, runs: list[dict]) -> None:
    if not runs:
        return
    by_id = {run["run_id"]: run for run in runs}
    ids = json.dumps(list(by_id))
    for run_id, key, value, json_text in store.query(
            "SELECT run_id, key, value, json FROM params WHERE run_id IN (SELECT value FROM json_each(?))", (ids,)):
        by_id[run_id]["params"][key] = decode_param(value, json_text)
    for run_id, key, value in store.query(
            "SELECT run_id, key, value FROM latest_metrics WHERE run_id IN (SELECT value FROM json_each(?))",
            (ids,)):
        by_id[run_id]["metrics"][key] = float("nan") if value is None else value
    for run_id, key, value in store.query(
            "SELECT run_id, key, value FROM tags WHERE run_id IN (SELECT value FROM json_each(?))", (ids,)):
        by_id[run_id]["tags"][key] = value


def _order_clause(order_by: Sequence[str] | str | None) -> tuple[list[tuple[str, str]], str]:
    """LEFT JOINs (sql, key) needed to sort, and the ORDER BY expression list."""
    if order_by is None:
        order_by = []
    elif isinstance(order_by, str):
        order_by = [order_by]
    joins: list[tuple[str, str]] = []
    terms: list[str] = []
    for i, item in enumerate(order_by):
        match = _ORDER.match(item or "")
        if not match:
            raise InvalidInputError(f"order_by entry {item!r} is empty: use e.g. 'metrics.accuracy DESC'")
        field, direction = match["field"], (match["dir"] or "asc").upper()
        head, _, key = field.partition(".")
        namespace = NAMESPACES.get(head.lower())
        key = key.strip("`")
        if namespace in ("metric", "param", "tag") and key:
            table = {"metric": "latest_metrics", "param": "params", "tag": "tags"}[namespace]
            alias = f"o{i}"
            joins.append((f"LEFT JOIN {table} {alias} ON {alias}.run_id = r.id AND {alias}.key = ?", key))
            column = f"COALESCE({alias}.num, {alias}.value)" if namespace == "param" else f"{alias}.value"
            # Runs without the key (and NaN metrics) sort last in either direction.
            terms.append(f"{column} IS NULL, {column} {direction}")
        elif field.lower().removeprefix("attributes.").removeprefix("run.") in ATTRIBUTES:
            column = ATTRIBUTES[field.lower().removeprefix("attributes.").removeprefix("run.")]
            terms.append(f"{column} {direction}")
        else:
            raise FilterSyntaxError(
                f"cannot order by {field!r}: use metrics.<key>, params.<key>, tags.<key> or one of "
                f"{', '.join(sorted(ATTRIBUTES))}, optionally followed by ASC or DESC")
    terms.append("r.start_time DESC")
    return joins, ", ".join(terms)
