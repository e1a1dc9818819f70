"""``search_runs``: filter, order and page runs, returned as rows or a DataFrame."""

from __future__ import annotations

import gc
import re
import sqlite3
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from mlops_nb.errors import FilterSyntaxError, InvalidInputError
from mlops_nb.registry.query import ATTRIBUTES, NAMESPACES, compile_filter, parse_filter
from mlops_nb.registry.runs import experiment_id, reap_interrupted
from mlops_nb.registry.store import Store
from mlops_nb.registry.values import decode_param

RUN_COLUMNS = ("run_id", "experiment", "name", "status", "kind", "parent_id", "start_time", "end_time", "user")
_ORDER = re.compile(r"^\s*(?P<field>.+?)(?:\s+(?P<dir>asc|desc))?\s*$", re.IGNORECASE)


MAX_RESULTS = 10_000_000


def search_run_rows(store: Store, filter: str | None = None, *, order_by: Sequence[str] | str | None = None,
                    experiment: str | Sequence[str] | None = None, max_results: int | None = None,
                    deleted: bool = False, user: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Matching runs as dicts with run columns plus ``params``, ``metrics`` and ``tags`` dicts; ``deleted``:
    the deleted runs instead of the others; ``user``: only the runs of these users."""
    rows = _select_runs(store, filter, order_by, experiment, max_results, deleted, user)
    runs = [dict(zip(RUN_COLUMNS, row), params={}, metrics={}, tags={}) for row in rows]
    for part, key, positions, values in _run_values(store, rows):
        for position, value in zip(positions.tolist(), values.tolist() if part == "metrics" else values):
            runs[position][part][key] = value
    return runs


def search_runs(store: Store, filter: str | None = None, *, order_by: Sequence[str] | str | None = None,
                experiment: str | Sequence[str] | None = None, max_results: int | None = None,
                deleted: bool = False, user: str | Sequence[str] | None = None):
    """Matching runs as a pandas DataFrame: one row per run, ``params.*``, ``metrics.*`` and
    ``tags.*`` columns (metrics hold each run's latest value); ``deleted``: the deleted runs instead;
    ``user``: only the runs of these users. The frame is built a column at a time."""
    with _collector_paused():
        return _frame(store, _select_runs(store, filter, order_by, experiment, max_results, deleted, user))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while a big result's many objects are made: a pass would walk them all, for
    nothing (they are all still in use), and take longer than the reads."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _frame(store: Store, rows: list[tuple]):
    import numpy as np
    import pandas as pd

    n = len(rows)
    found = _run_values(store, rows)  # the reads run while the run columns are made
    columns = dict(zip(RUN_COLUMNS, map(list, zip(*rows)))) if rows else {c: [] for c in RUN_COLUMNS}
    data: dict[str, Any] = {}
    for name, column in columns.items():
        if name in ("start_time", "end_time"):
            data[name] = pd.to_datetime(pd.Series(column, dtype=float), unit="s", utc=True)
        else:
            data[name] = pd.Series(column)
    extra: dict[tuple[str, str], Any] = {}
    for part, key, positions, values in found:
        column = extra.get((part, key))
        if column is None:
            column = extra[(part, key)] = np.full(n, np.nan) if part == "metrics" else np.full(n, None, dtype=object)
        if part == "metrics":
            column[positions] = values
        elif isinstance(values[0], (list, dict)):  # numpy would spread a list over the positions
            for position, value in zip(positions, values):
                column[position] = value
        else:  # one value, shared
            column[positions] = values[0]
    for part in ("params", "metrics", "tags"):
        for key in sorted(k for p, k in extra if p == part):
            column = extra[(part, key)]
            data[f"{part}.{key}"] = column if part == "metrics" else column.tolist()  # dtypes inferred as before
    return pd.DataFrame(data)


def _select_runs(store: Store, filter: str | None, order_by, experiment, max_results,
                 deleted: bool = False, user: str | Sequence[str] | None = None) -> list[tuple]:
    if max_results is not None and (not isinstance(max_results, int) or isinstance(max_results, bool)
                                    or not 1 <= max_results <= MAX_RESULTS):
        raise InvalidInputError(f"max_results must be a whole number from 1 to {MAX_RESULTS:,}, got "
                                f"{str(max_results)[:40]}")
    reap_interrupted(store)
    where, args = ["r.deleted_at IS NOT NULL" if deleted else "r.deleted_at IS NULL"], []
    node = parse_filter(filter)
    if node is not None:
        sql, filter_args = compile_filter(node, filter, store.dialect)
        where.append(sql)
        args.extend(filter_args)
    if experiment is not None:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        ids = [experiment_id(store, name) for name in names]
        where.append(f"r.experiment_id IN ({', '.join('?' * len(ids))})")
        args.extend(ids)
    if user is not None:
        users = [user] if isinstance(user, str) else list(user)
        where.append(f"r.user_name IN ({', '.join('?' * len(users))})")
        args.extend(users)
    joins, order_sql = _order_clause(order_by)
    sql = ("SELECT r.id, e.name, r.name, r.status, r.kind, r.parent_id, r.start_time, r.end_time, r.user_name "
           f"FROM runs r JOIN experiments e ON e.id = r.experiment_id {' '.join(j for j, _ in joins)}"
           f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order_sql}")
    if max_results is not None:
        sql += f" LIMIT {int(max_results)}"
    try:
        return store.query(sql, [key for _, key in joins] + args)
    except Exception as exc:  # sqlite3.OperationalError, or psycopg's StatementTooComplex
        if not isinstance(exc, sqlite3.OperationalError) and type(exc).__name__ != "StatementTooComplex":
            raise
        if any(words in str(exc) for words in ("too complex", "stack overflow", "too many", "stack depth")):
            raise FilterSyntaxError(f"the filter is too complex for the database ({exc}): use fewer "
                                    "parentheses, or `in (...)` for lists of values", filter or "", 0) from None
        raise


def _run_values(store: Store, rows: list[tuple]):
    """(part, key, positions, values): the params, latest metrics and tags of ``rows``, a key at a time, as
    the positions in ``rows`` (a numpy array) of the runs that have it and their values. Params and tags
    come grouped by value (few distinct values, each decoded once). The three reads start at once, before
    the first value is asked for, each whole in itself (a run logging meanwhile changes no read's
    alignment); the ids go in sorted, so that their lookups walk each table's index in order."""
    if not rows:
        return iter(())
    import numpy as np

    dialect = store.dialect
    run_ids = [row[0] for row in rows]
    order = sorted(range(len(run_ids)), key=run_ids.__getitem__)  # sorted index -> position
    ids = (dialect.ids_param([run_ids[i] for i in order]),)
    reads = store.start_reads([
        (f"SELECT p.key, p.value, p.json, {dialect.positions('j.key')} FROM "
         f"{dialect.rows_of_ids('params', 'p', 'key, value, json')} GROUP BY p.key, p.value, p.json", ids),
        (f"SELECT t.key, t.value, {dialect.positions('j.key')} FROM "
         f"{dialect.rows_of_ids('tags', 't', 'key, value')} GROUP BY t.key, t.value", ids),
        (dialect.latest_metrics(), ids)])
    return _read_values(dialect, np.array(order), *reads)


def _read_values(dialect, order, params, tags, metrics):
    for key, text, json_text, positions in params.result():
        positions = order[dialect.read_positions(positions)]
        value = decode_param(text, json_text)
        if isinstance(value, (list, dict)):  # no two runs share a mutable value
            values = [decode_param(text, json_text) for _ in positions]
        else:
            values = [value] * len(positions)
        yield "params", key, positions, values
    for key, value, positions in tags.result():
        positions = order[dialect.read_positions(positions)]
        yield "tags", key, positions, [value] * len(positions)
    for key, positions, values in dialect.read_latest_metrics(metrics.result()):
        yield "metrics", key, order[positions], values


def _order_clause(order_by: Sequence[str] | str | None) -> tuple[list[tuple[str, str]], str]:
    """LEFT JOINs (sql, key) needed to sort, and the ORDER BY expression list."""
    if order_by is None:
        order_by = []
    elif isinstance(order_by, str):
        order_by = [order_by]
    # "metrics.acc desc, start_time" is two keys, as in SQL.
    order_by = [part for item in order_by for part in (item.split(",") if isinstance(item, str) else [item])]
    joins: list[tuple[str, str]] = []
    terms: list[str] = []
    for i, item in enumerate(order_by):
        match = _ORDER.match(item or "")
        if not match:
            raise InvalidInputError(f"order_by entry {item!r} is empty: use e.g. 'metrics.accuracy DESC'")
        field, direction = match["field"], (match["dir"] or "asc").upper()
        if any(ch.isspace() for ch in field.replace("`", "")) and "`" not in field:
            raise FilterSyntaxError(f"cannot order by {item.strip()!r}: give a field and optionally asc or desc, "
                                    "e.g. 'metrics.accuracy desc'")
        head, _, key = field.partition(".")
        namespace = NAMESPACES.get(head.lower())
        key = key.strip("`")
        if namespace in ("metric", "param", "tag") and key:
            table = {"metric": "latest_metrics", "param": "params", "tag": "tags"}[namespace]
            alias = f"o{i}"
            joins.append((f"LEFT JOIN {table} {alias} ON {alias}.run_id = r.id AND {alias}.key = ?", key))
            # Runs without the key (and NaN metrics) sort last in either direction; a param's numbers
            # sort before its texts (after them, descending), as SQLite orders mixed values.
            if namespace == "param":
                terms.append(f"{alias}.value IS NULL, {alias}.num IS NULL {direction}, {alias}.num {direction}, "
                             f"{alias}.value {direction}")
            else:
                terms.append(f"{alias}.value IS NULL, {alias}.value {direction}")
        elif field.lower().removeprefix("attributes.").removeprefix("run.") in ATTRIBUTES:
            column = ATTRIBUTES[field.lower().removeprefix("attributes.").removeprefix("run.")]
            terms.append(f"{column} {direction}")
        else:
            raise FilterSyntaxError(
                f"cannot order by {field!r}: use metrics.<key>, params.<key>, tags.<key> or one of "
                f"{', '.join(sorted(ATTRIBUTES))}, optionally followed by ASC or DESC")
    terms.append("r.start_time DESC")
    return joins, ", ".join(terms)
