"""Trigger state (what each trigger saw last) and trigger events (each firing, with its evidence).

Event statuses: ``pending`` (fired, waiting for the pipeline to be free), ``started``
(started run ``run_id``), ``coalesced`` (joined run ``run_id``, started for another
event), ``manual`` (an on-demand run), ``retried`` (its run was interrupted, by a kill,
a reboot or Ctrl-C, so a new pending event, whose ``retry_of`` names the first one,
fires it again).
"""

from __future__ import annotations

import json
import time

from mlops_nb.registry.process import who
from mlops_nb.registry.store import Store


def get_state(store: Store, pipeline: str, trigger: str) -> dict:
    row = store.query_one("SELECT state FROM trigger_state WHERE pipeline = ? AND trigger = ?", (pipeline, trigger))
    return json.loads(row[0]) if row else {}


def set_state(store: Store, pipeline: str, trigger: str, state: dict) -> None:
    with store.transaction() as conn:
        conn.execute("INSERT INTO trigger_state (pipeline, trigger, state, updated_at) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (pipeline, trigger) DO UPDATE SET state = excluded.state, "
                     "updated_at = excluded.updated_at", (pipeline, trigger, json.dumps(state), time.time()))


def record_event(store: Store, pipeline: str, trigger: str, kind: str, reason: str, evidence: dict | None,
                 status: str = "pending", run_id: str | None = None, at: float | None = None) -> int:
    with store.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO trigger_events (pipeline, trigger, kind, fired_at, reason, evidence, status, run_id, "
            "user_name, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (pipeline, trigger, kind, at or time.time(), reason, json.dumps(evidence, default=str) if evidence else None,
             status, run_id, *who()))
        return cursor.fetchone()[0]


MAX_RETRIES = 3


def retry_interrupted(store: Store, pipeline: str, max_retries: int = MAX_RETRIES) -> list[int]:
    """Fire again each event whose run was interrupted: the work it stood for was not done. Returns
    the new pending events' ids; an event already retried ``max_retries`` times is left (a crash loop)."""
    found = store.query(
        "SELECT e.id, COALESCE(e.retry_of, e.id) FROM trigger_events e JOIN runs r ON r.id = e.run_id "
        "WHERE e.pipeline = ? AND e.status IN ('started', 'coalesced') AND r.status = 'interrupted' "
        "ORDER BY e.id", (pipeline,))
    retried = []
    for event_id, first in found:
        with store.transaction() as conn:
            if conn.execute("UPDATE trigger_events SET status = 'retried' WHERE id = ? AND status IN "
                            "('started', 'coalesced')", (event_id,)).rowcount == 0:
                continue  # another checker got there first
            if conn.execute("SELECT COUNT(*) FROM trigger_events WHERE retry_of = ?", (first,)).fetchone()[0] \
                    >= max_retries:
                continue
            cursor = conn.execute(
                "INSERT INTO trigger_events (pipeline, trigger, kind, fired_at, reason, evidence, status, run_id, "
                "retry_of, user_name, host) SELECT pipeline, trigger, kind, ?, reason, evidence, 'pending', NULL, ?, "
                "?, ? FROM trigger_events WHERE id = ? RETURNING id", (time.time(), first, *who(), event_id))
            retried.append(cursor.fetchone()[0])
    return retried


def pending_events(store: Store, pipeline: str) -> list[dict]:
    return _events(store, "WHERE pipeline = ? AND status = 'pending' ORDER BY id", (pipeline,))


def attach_events(store: Store, event_ids: list[int], run_id: str) -> None:
    """The first event started the run; the others are coalesced into it."""
    if not event_ids:
        return
    with store.transaction() as conn:
        conn.execute("UPDATE trigger_events SET status = 'started', run_id = ? WHERE id = ?", (run_id, event_ids[0]))
        conn.executemany("UPDATE trigger_events SET status = 'coalesced', run_id = ? WHERE id = ?",
                         [(run_id, i) for i in event_ids[1:]])


def history(store: Store, pipeline: str | None = None, limit: int = 50) -> list[dict]:
    if pipeline is None:
        return _events(store, "ORDER BY id DESC LIMIT ?", (limit,))
    return _events(store, "WHERE pipeline = ? ORDER BY id DESC LIMIT ?", (pipeline, limit))


def last_event(store: Store, pipeline: str, trigger: str) -> dict | None:
    found = _events(store, "WHERE pipeline = ? AND trigger = ? ORDER BY id DESC LIMIT 1", (pipeline, trigger))
    return found[0] if found else None


def events_of_run(store: Store, run_id: str) -> list[dict]:
    return _events(store, "WHERE run_id = ? ORDER BY id", (run_id,))


def _events(store: Store, where: str, args: tuple) -> list[dict]:
    keys = ("id", "pipeline", "trigger", "kind", "fired_at", "reason", "evidence", "status", "run_id", "retry_of",
            "user_name", "host")
    rows = store.query(f"SELECT {', '.join(keys)} FROM trigger_events {where}", args)
    events = [dict(zip(keys[:-2] + ("user", "host"), row)) for row in rows]
    for event in events:
        event["evidence"] = json.loads(event["evidence"]) if event["evidence"] else None
    return events
