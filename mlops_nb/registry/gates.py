"""Gate decisions stored with the candidate model version, and promotion that honours them.

Decisions are an append-only history. A version's decision of record is its latest from a
pipeline's gate step (``source='pipeline'``); exploratory evaluations in a notebook
(``source='exploratory'``) are kept beside it and never replace it (a version that has only
those is judged by its latest one).
"""

from __future__ import annotations

import json
import time

from mlops_nb.errors import InvalidInputError
from mlops_nb.registry import models
from mlops_nb.registry.process import who
from mlops_nb.registry.store import Store


SOURCES = ("pipeline", "exploratory")


def record_decision(store: Store, name: str, version: int, *, baseline_version: int | None, alias: str | None,
                    passed: bool, results: list[dict], card: dict | None, source: str = "pipeline") -> int:
    if source not in SOURCES:
        raise InvalidInputError(f"a gate decision comes from {' or '.join(SOURCES)}, not {source!r}")
    models.get_version(store, name, version)
    with store.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO gate_decisions (name, version, baseline_version, alias, passed, results, card, created_at, "
            "source, user_name, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (name, version, baseline_version, alias, int(passed), json.dumps(results, allow_nan=True),
             json.dumps(card, allow_nan=True) if card else None, time.time(), source, *who()))
        return cursor.fetchone()[0]


def decisions_between(store: Store, since: float, until: float) -> list[dict]:
    """The gate decisions recorded between two times (a step's or a pipeline run's start and end), oldest first."""
    rows = store.query("SELECT name, version, baseline_version, alias, passed, results FROM gate_decisions "
                       "WHERE created_at >= ? AND created_at <= ? ORDER BY id", (since, until))
    return [{"name": n, "version": v, "baseline_version": b, "alias": a, "passed": bool(p),
             "results": json.loads(r) if r else []} for n, v, b, a, p, r in rows]


def run_outcome(store: Store, run_id: str) -> tuple[list[dict], list[dict]]:
    """What a pipeline run decided: the gate decisions recorded while it ran, and the aliases it moved."""
    from mlops_nb.registry import runs

    run = runs.get_run(store, run_id)
    until = run.end_time or time.time()
    moves = [m for m in models.alias_moves_between(store, run.start_time, until) if m["action"] == "set"]
    return decisions_between(store, run.start_time, until), moves


def latest_decision(store: Store, name: str, version: int) -> dict | None:
    """The version's decision of record: its latest from a pipeline, else its latest exploratory one."""
    row = store.query_one("SELECT id, baseline_version, alias, passed, results, card, override_reason, created_at, "
                          "source, user_name, host, override_by FROM gate_decisions WHERE name = ? AND version = ? "
                          "ORDER BY source = 'pipeline' DESC, id DESC LIMIT 1", (name, version))
    if row is None:
        return None
    keys = ("id", "baseline_version", "alias", "passed", "results", "card", "override_reason", "created_at",
            "source", "user", "host", "override_by")
    decision = dict(zip(keys, row))
    decision["passed"] = bool(decision["passed"])
    decision["results"] = json.loads(decision["results"])
    decision["card"] = json.loads(decision["card"]) if decision["card"] else None
    return decision


def promote(store: Store, name: str, version: int, alias: str = "production", *, override: str | None = None,
            reason: str | None = None, require_gate: bool = True) -> models.ModelVersion:
    """Point ``name@alias`` at ``version`` if its latest gate decision passed.

    A version whose gate failed moves only with ``override`` (the reason, which the
    alias history and the decision keep); so does one that never went through a gate,
    unless ``require_gate`` is False (a person promoting by hand from the CLI).
    """
    version = models._check_version(version)
    decision = latest_decision(store, name, version)
    if decision is not None and decision["passed"]:
        return models.set_alias(store, name, version, alias, reason=reason or f"gate {decision['id']} passed")
    if decision is None and not require_gate and not override:
        return models.set_alias(store, name, version, alias, reason=reason)
    if not override or not str(override).strip():
        why = "failed its gate" if decision is not None else "has not been through a gate"
        failed = [r for r in (decision or {}).get("results", []) if not r.get("passed")]
        detail = "; ".join(r["detail"] for r in failed[:3])
        raise InvalidInputError(f"{name}/{version} {why}{': ' + detail if detail else ''}; to promote it anyway, "
                                "give the reason (override='...', or --override in the CLI)")
    if decision is not None:
        with store.transaction() as conn:
            conn.execute("UPDATE gate_decisions SET override_reason = ?, override_by = ? WHERE id = ?",
                         (override, "@".join(who()), decision["id"]))
    return models.set_alias(store, name, version, alias, reason=f"override: {override}")


def rollback(store: Store, name: str, alias: str = "production", *, reason: str | None = None,
             override: str | None = None) -> tuple[models.ModelVersion, dict | None]:
    """Point ``name@alias`` back at the version it held before, and say which gate decision that version
    carries. A version whose gate failed is returned to only with ``override`` (the reason), as promote asks."""
    target = models.rollback_target(store, name, alias)
    decision = latest_decision(store, name, target)
    if decision is not None and not decision["passed"]:
        if not override or not str(override).strip():
            failed = "; ".join(r["detail"] for r in decision["results"] if not r.get("passed"))[:300]
            raise InvalidInputError(f"rolling {name}@{alias} back would return to {name}/{target}, whose gate failed "
                                    f"({failed}); to go back anyway, give the reason (override='...', or "
                                    "--override in the CLI)")
        reason = f"override: {override}"
    return models.rollback(store, name, alias, reason=reason), decision
