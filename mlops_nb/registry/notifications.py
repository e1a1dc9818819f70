"""Notifications sent for a pipeline's events, each with every delivery attempt (``notify:`` in pipeline.yaml).

A row per (event, target): the event's JSON, where it went (a webhook URL without credentials, or a
command), whether it got through, and its attempts, each with its time, outcome and error.
"""

from __future__ import annotations

import json
import time

from mlops_nb.registry.store import Store


def record(store: Store, pipeline: str, event: str, run_id: str | None, target: str, payload: dict, ok: bool,
           attempts: list[dict]) -> int:
    with store.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO notifications (pipeline, event, run_id, target, payload, status, attempts, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (pipeline, event, run_id, target, json.dumps(payload, default=str), "sent" if ok else "failed",
             json.dumps(attempts, default=str), time.time()))
        return cursor.fetchone()[0]


def history(store: Store, pipeline: str | None = None, limit: int = 50) -> list[dict]:
    """The newest notifications first (of one pipeline, or all)."""
    sql = "SELECT id, pipeline, event, run_id, target, payload, status, attempts, created_at FROM notifications"
    args: list = []
    if pipeline is not None:
        sql += " WHERE pipeline = ?"
        args.append(pipeline)
    rows = store.query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
    keys = ("id", "pipeline", "event", "run_id", "target", "payload", "status", "attempts", "created_at")
    found = [dict(zip(keys, row)) for row in rows]
    for row in found:
        row["payload"], row["attempts"] = json.loads(row["payload"]), json.loads(row["attempts"])
    return found
