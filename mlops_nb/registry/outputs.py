"""Values a step hands on (``mlops.output``), and file fingerprints that skip rehashing.

An output is a JSON value, or an artifact (a pickled DataFrame or object, or a
file's content) named by its sha256, plus the file's path for file outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from mlops_nb.errors import NotFoundError
from mlops_nb.registry.store import Store

OUTPUT_KINDS = ("json", "frame", "object", "file")


def record_output(store: Store, run_id: str, name: str, kind: str, *, value: str | None = None,
                  sha256: str | None = None, path: str | None = None) -> None:
    with store.transaction() as conn:
        conn.execute("INSERT INTO outputs (run_id, name, kind, value, sha256, path, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, name) DO UPDATE SET kind = excluded.kind, "
                     "value = excluded.value, sha256 = excluded.sha256, path = excluded.path, "
                     "created_at = excluded.created_at", (run_id, name, kind, value, sha256, path, time.time()))


def run_outputs(store: Store, run_id: str) -> list[dict]:
    rows = store.query("SELECT name, kind, value, sha256, path FROM outputs WHERE run_id = ? ORDER BY name",
                       (run_id,))
    return [dict(zip(("name", "kind", "value", "sha256", "path"), row)) for row in rows]


def find_output(store: Store, name: str, *, pipeline_run: str | None = None, step: str | None = None) -> dict:
    """The output ``name``: from a step of ``pipeline_run`` when given, else the newest finished run
    that produced it (so a step notebook also runs interactively on the last pipeline's outputs)."""
    sql = ("SELECT o.name, o.kind, o.value, o.sha256, o.path, r.id, r.step FROM outputs o JOIN runs r "
           "ON r.id = o.run_id WHERE o.name = ?")
    args: list = [name]
    if pipeline_run is not None:
        sql += " AND r.parent_id = ?"
        args.append(pipeline_run)
    else:
        sql += " AND r.status = 'finished'"
    if step is not None:
        sql += " AND r.step = ?"
        args.append(step)
    row = store.query_one(sql + " ORDER BY r.start_time DESC LIMIT 1", args)
    if row is None:
        where = f" by step {step!r}" if step else ""
        scope = " in this pipeline run: list its producer in this step's inputs" if pipeline_run else ""
        known = [r[0] for r in store.query(
            "SELECT DISTINCT o.name FROM outputs o JOIN runs r ON r.id = o.run_id WHERE r.parent_id = ?",
            (pipeline_run,))] if pipeline_run else []
        hint = f" (outputs so far: {', '.join(known)})" if known else ""
        raise NotFoundError(f"no output {name!r}{where}{scope}{hint}")
    return dict(zip(("name", "kind", "value", "sha256", "path", "run_id", "step"), row))


def last_output(store: Store, pipeline: str, step: str, name: str) -> dict | None:
    """The output ``name`` of the newest finished run of ``pipeline``'s ``step`` that wrote one, or None."""
    row = store.query_one("SELECT o.sha256, o.path, r.id FROM outputs o JOIN runs r ON r.id = o.run_id "
                          "WHERE o.name = ? AND r.pipeline = ? AND r.step = ? AND r.status = 'finished' "
                          "ORDER BY r.start_time DESC LIMIT 1", (name, pipeline, step))
    return dict(zip(("sha256", "path", "run_id"), row)) if row else None


def get_output(store: Store, run_id: str, name: str) -> dict | None:
    return next((o for o in run_outputs(store, run_id) if o["name"] == name), None)


def copy_outputs(store: Store, from_run: str, to_run: str) -> None:
    with store.transaction() as conn:
        conn.execute("INSERT INTO outputs (run_id, name, kind, value, sha256, path, created_at) "
                     "SELECT ?, name, kind, value, sha256, path, ? FROM outputs WHERE run_id = ? "
                     "ON CONFLICT (run_id, name) DO UPDATE SET kind = excluded.kind, value = excluded.value, "
                     "sha256 = excluded.sha256, path = excluded.path, created_at = excluded.created_at",
                     (to_run, time.time(), from_run))


def outputs_identity(store: Store, run_id: str) -> str:
    """A digest of what a run handed on: changes when any output's value or content does."""
    digest = hashlib.sha256()
    for name, kind, value, sha in store.query("SELECT name, kind, value, sha256 FROM outputs WHERE run_id = ? "
                                              "ORDER BY name", (run_id,)):
        digest.update(json.dumps([name, kind, value, sha]).encode())
    return digest.hexdigest()


def fingerprint_file(store: Store, path: str | os.PathLike) -> str:
    """sha256 of a file's content; a file whose size and mtime are unchanged is not read again."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise NotFoundError(f"file {path} does not exist") from None
    row = store.query_one("SELECT size, mtime_ns, sha256 FROM file_fingerprints WHERE path = ?", (str(path),))
    if row and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
        return row[2]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    sha = digest.hexdigest()
    with store.transaction() as conn:
        conn.execute("INSERT INTO file_fingerprints (path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
                     "sha256 = excluded.sha256",
                     (str(path), stat.st_size, stat.st_mtime_ns, sha))
    return sha
