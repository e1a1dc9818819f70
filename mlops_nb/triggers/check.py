"""Checking a pipeline's triggers once, and running it when any fired.

    result = check_pipeline("pipeline.yaml")     # what `mlops-nb triggers check` does
    result.fired, result.runs, result.errors

Every firing becomes a trigger event with its evidence; an event whose run was
interrupted (killed, rebooted) is fired again, so no firing is lost. If the pipeline is free,
one run starts for all pending events (the first event "started" it, the others
are "coalesced" into it); events that fire while it runs (here or in another
process) are picked up by one follow-up run. If another process holds the
pipeline, the events stay pending for that process's follow-up, or the next check.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from mlops_nb.errors import MlopsError
from mlops_nb.pipeline.lock import PipelineLock
from mlops_nb.pipeline.runner import RunOptions, run_pipeline
from mlops_nb.pipeline.spec import load_pipeline
from mlops_nb.registry import runs
from mlops_nb.registry import triggers as trigger_store
from mlops_nb.registry.home import find_home, has_registry
from mlops_nb.registry.store import open_store
from mlops_nb.triggers.evaluate import evaluate
from mlops_nb.triggers.firing import Firing, utcnow


@dataclass
class CheckResult:
    pipeline: str
    fired: list[Firing] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)      # trigger key -> why it could not be evaluated
    notes: dict[str, str] = field(default_factory=dict)       # trigger key -> what it waits for
    runs: list = field(default_factory=list)                  # PipelineResult of each run started
    busy: str | None = None                                   # set when another process held the pipeline
    retried: list = field(default_factory=list)               # events fired again: their run was interrupted

    def __repr__(self) -> str:
        fired = ", ".join(f.trigger.key for f in self.fired) or "nothing"
        return f"CheckResult({self.pipeline!r}, fired: {fired}, runs: {[r.status for r in self.runs]})"


def evaluate_triggers(pipeline, store, now: datetime | None = None) -> CheckResult:
    """Evaluate every trigger once, record the firings as pending events, keep each trigger's state."""
    now = now or utcnow()
    result = CheckResult(pipeline.name)
    for trigger in pipeline.triggers:
        state = trigger_store.get_state(store, pipeline.name, trigger.key)
        try:
            firing, new_state, note = evaluate(trigger, store=store, pipeline=pipeline, state=state, now=now)
        except (MlopsError, OSError, ValueError, KeyError) as exc:
            # One broken trigger is reported and skipped; the others still count.
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            result.errors[trigger.key] = message
            trigger_store.set_state(store, pipeline.name, trigger.key, {**state, "error": message})
            continue
        new_state.pop("error", None)
        result.notes[trigger.key] = note
        if {**new_state, "note": note} != state:  # an idle watcher writes nothing
            trigger_store.set_state(store, pipeline.name, trigger.key, {**new_state, "note": note})
        if firing is not None:
            result.fired.append(firing)
            trigger_store.record_event(store, pipeline.name, trigger.key, trigger.kind, firing.reason,
                                       firing.evidence, at=now.timestamp())
    return result


def check_pipeline(path: str | Path = "pipeline.yaml", *, now: datetime | None = None, run: bool = True,
                   options: RunOptions = RunOptions(), home: str | Path | None = None) -> CheckResult:
    """Evaluate the triggers once and run the pipeline for whatever is pending; ``options`` say how
    the run goes (engine, progress, SIGTERM handling), as for any pipeline run."""
    from mlops_nb.pipeline.params import plan_params

    pipeline = load_pipeline(path)
    store = open_store(find_home(home, start=pipeline.root))
    result = evaluate_triggers(pipeline, store, now)
    runs.reap_interrupted(store)  # a run whose process was killed is interrupted, not running forever
    for event_id in trigger_store.retry_interrupted(store, pipeline.name):
        result.retried.append(event_id)
    if not run or not trigger_store.pending_events(store, pipeline.name):
        return result
    lock = PipelineLock(store.home, pipeline.name)
    if not lock.acquire():
        result.busy = lock.holder()
        return result
    try:
        planned = plan_params(pipeline, [])
        # The first run, then one follow-up for whatever fired while it ran.
        for _ in range(2):
            events = trigger_store.pending_events(store, pipeline.name)
            if not events:
                break
            ids = [e["id"] for e in events]
            kinds = sorted({e["kind"] for e in events})
            outcome = run_pipeline(pipeline, replace(
                options, params=(), trigger=",".join(kinds), lock=False, **_reruns(pipeline, events),
                tags={"trigger_events": ",".join(map(str, ids)),
                      "reason": "; ".join(dict.fromkeys(e["reason"] for e in events))[:1000]},
                on_start=lambda run_id, events=events: _started(store, pipeline, events, run_id)),
                home=store.home, planned=planned)
            result.runs.append(outcome)
            if outcome.status == "interrupted":
                break
    finally:
        lock.release()
    return result


def _started(store, pipeline, events: list[dict], run_id: str) -> None:
    """The run for these events started: they say so, and the pipeline's notify targets hear it fired
    (on a thread of its own: a slow webhook does not hold the retraining back)."""
    import threading

    from mlops_nb.pipeline import notify

    trigger_store.attach_events(store, [e["id"] for e in events], run_id)
    if pipeline.notify:
        reason = "; ".join(dict.fromkeys(e["reason"] for e in events))
        details = {"triggers": [e["trigger"] for e in events], "kinds": sorted({e["kind"] for e in events})}
        threading.Thread(target=notify.notify, args=(store, pipeline, "fired"), name="mlops-notify",
                         kwargs={"run_id": run_id, "reason": reason, "details": details}).start()


def _reruns(pipeline, events: list[dict]) -> dict:
    """The steps the firings ask to run again even if unchanged (their triggers' ``rerun:``)."""
    by_key = {trigger.key: trigger for trigger in pipeline.triggers}
    asked = [(event["trigger"], step) for event in events for step in getattr(by_key.get(event["trigger"]), "rerun", ())]
    if not asked:
        return {}
    keys = ", ".join(dict.fromkeys(key for key, _ in asked))
    if any(step == "all" for _, step in asked):
        return {"force": True, "force_reason": f"rerun: all, asked by trigger {keys}"}
    return {"force_steps": tuple(dict.fromkeys(step for _, step in asked)), "force_reason": f"rerun by trigger {keys}"}


def trigger_status(path: str | Path = "pipeline.yaml", *, home: str | Path | None = None) -> list[dict]:
    """Each trigger's description, state note, last error and last firing (for `triggers ls`)."""
    pipeline = load_pipeline(path)
    found = find_home(home, start=pipeline.root)
    store = open_store(found) if has_registry(found) else None  # looking creates no registry
    rows = []
    for trigger in pipeline.triggers:
        state = trigger_store.get_state(store, pipeline.name, trigger.key) if store else {}
        last = trigger_store.last_event(store, pipeline.name, trigger.key) if store else None
        rows.append({"pipeline": pipeline.name, "trigger": trigger.key, "description": trigger.describe(),
                     "state": state.get("note", "not evaluated yet"), "error": state.get("error"),
                     "last_fired": last["fired_at"] if last else None,
                     "last_reason": last["reason"] if last else None})
    return rows
