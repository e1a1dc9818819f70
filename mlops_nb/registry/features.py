"""Feature views' versions (each write: an append-only Parquet file, stored by content) and their online
table (the latest values of each entity), for training frames, serving and monitoring."""

from __future__ import annotations

import json
import time
from typing import Iterable

from mlops_nb.registry.store import Store


def next_version(store: Store, view: str) -> int:
    row = store.query_one("SELECT MAX(version) FROM feature_versions WHERE view = ?", (view,))
    return (row[0] or 0) + 1


def record_version(store: Store, view: str, version: int, *, sha256: str, dataset_id: int | None, n_rows: int,
                   min_time: float | None, max_time: float | None, run_id: str | None,
                   online: Iterable[tuple[str, float, str]]) -> None:
    """A new version of ``view`` and, in the same transaction, the online table's rows it makes newest:
    ``online`` is (entity key, event time, row JSON) per entity; an entity keeps a newer stored row."""
    now = time.time()
    with store.transaction(lock=f"features:{view}") as conn:
        conn.execute("INSERT INTO feature_versions (view, version, sha256, dataset_id, n_rows, min_time, max_time, "
                     "run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (view, version, sha256, dataset_id, n_rows, min_time, max_time, run_id, now))
        conn.executemany(
            "INSERT INTO online_features (view, entity, event_time, version, row, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (view, entity) DO UPDATE SET event_time = excluded.event_time, "
            "version = excluded.version, row = excluded.row, updated_at = excluded.updated_at "
            "WHERE excluded.event_time >= online_features.event_time",
            [(view, entity, at, version, row, now) for entity, at, row in online])


def versions(store: Store, view: str) -> list[dict]:
    keys = ("version", "sha256", "dataset_id", "n_rows", "min_time", "max_time", "run_id", "created_at")
    rows = store.query(f"SELECT {', '.join(keys)} FROM feature_versions WHERE view = ? ORDER BY version", (view,))
    return [dict(zip(keys, row)) for row in rows]


def online_rows(store: Store, view: str, entities: list[str]) -> dict[str, tuple[float, dict]]:
    """entity key -> (event time, the row's values) for those of ``entities`` the online table holds."""
    found = {}
    for start in range(0, len(entities), 500):
        chunk = entities[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for entity, at, row in store.query(f"SELECT entity, event_time, row FROM online_features WHERE view = ? "
                                           f"AND entity IN ({marks})", (view, *chunk)):
            found[entity] = (at, _loads(row))
    return found


def _loads(text: str) -> dict:
    """A stored row: orjson where installed (a service reads a row per request row), json for what only it
    reads (NaN, Infinity)."""
    try:
        import orjson
    except ImportError:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def link_version(store: Store, run_id: str, dataset_id: int) -> None:
    """Lineage: the run read this feature view version (its dataset) as an input."""
    with store.transaction() as conn:
        conn.execute("INSERT INTO run_datasets (run_id, dataset_id, role) VALUES (?, ?, 'input') "
                     "ON CONFLICT DO NOTHING", (run_id, dataset_id))


def view_names(store: Store) -> list[str]:
    """The views written at least once."""
    return [row[0] for row in store.query("SELECT DISTINCT view FROM feature_versions ORDER BY view")]


def summaries(store: Store) -> dict[str, dict]:
    """view -> its versions, rows over all versions, entities online, first and last write."""
    found = {view: {"versions": n, "rows": rows, "first_write": first, "last_write": last, "newest_time": newest}
             for view, n, rows, first, last, newest in store.query(
                 "SELECT view, COUNT(*), SUM(n_rows), MIN(created_at), MAX(created_at), MAX(max_time) "
                 "FROM feature_versions GROUP BY view")}
    for view, entities in store.query("SELECT view, COUNT(*) FROM online_features GROUP BY view"):
        found.setdefault(view, {})["entities"] = entities
    return found


def models_using(store: Store, view: str) -> list[dict]:
    """The model versions whose training run read a version of ``view`` (a training frame), newest first,
    with the aliases pointing at each."""
    rows = store.query(
        "SELECT DISTINCT mv.name, mv.version, mv.created_at FROM model_versions mv "
        "JOIN run_datasets rd ON rd.run_id = mv.run_id AND rd.role = 'input' "
        "JOIN feature_versions fv ON fv.dataset_id = rd.dataset_id WHERE fv.view = ? "
        "ORDER BY mv.created_at DESC", (view,))
    aliases: dict[tuple[str, int], list[str]] = {}
    for name, alias, version in store.query("SELECT name, alias, version FROM aliases ORDER BY alias"):
        aliases.setdefault((name, version), []).append(alias)
    return [{"name": name, "version": version, "aliases": aliases.get((name, version), [])}
            for name, version, _ in rows]
