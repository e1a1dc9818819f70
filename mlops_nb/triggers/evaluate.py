"""Evaluating one trigger: did it fire, with what evidence, and what it remembers for next time. The drift
triggers are in :mod:`mlops_nb.triggers.drift`, what they all share in :mod:`mlops_nb.triggers.firing`.

Every function takes the trigger, its stored state and the current time, and returns
``(firing or None, new state, note)``; the note says what the trigger is waiting for
(shown by `mlops-nb triggers ls`). Nothing here runs a pipeline.
"""

from __future__ import annotations

import os
from datetime import datetime

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry import models, outputs, runs
from mlops_nb.registry.store import Store
from mlops_nb.pipeline.trigger_spec import Trigger
from mlops_nb.triggers.drift import drift_trigger
from mlops_nb.triggers.firing import LISTED, Firing, served_window, stat_files


def evaluate(trigger: Trigger, *, store: Store, pipeline, state: dict, now: datetime):
    kinds = {"schedule": _schedule, "new_data": _new_data, "drift": drift_trigger, "performance": _performance}
    return kinds[trigger.kind](trigger, store=store, pipeline=pipeline, state=state, now=now)


def _schedule(trigger: Trigger, *, store, pipeline, state: dict, now: datetime):
    from zoneinfo import ZoneInfo

    from croniter import croniter

    zone = ZoneInfo(trigger.options.get("timezone") or "UTC")
    local_now = now.astimezone(zone)
    if "last" not in state:  # the first look sets the baseline: a schedule fires from now on
        following = croniter(trigger.options["cron"], local_now).get_next(datetime)
        return None, {"last": local_now.isoformat()}, f"next at {following.isoformat()}"
    due = croniter(trigger.options["cron"], datetime.fromisoformat(state["last"]).astimezone(zone)).get_next(datetime)
    if local_now < due:
        return None, state, f"next at {due.isoformat()}"
    following = croniter(trigger.options["cron"], local_now).get_next(datetime)
    evidence = {"cron": trigger.options["cron"], "due": due.isoformat(), "evaluated": local_now.isoformat(),
                "timezone": str(zone)}
    return (Firing(trigger, f"schedule {trigger.options['cron']!r} was due at {due.isoformat()}", evidence),
            {"last": local_now.isoformat()}, f"next at {following.isoformat()}")


def _new_data(trigger: Trigger, *, store, pipeline, state: dict, now: datetime):
    stats = stat_files(pipeline.root, trigger.options["paths"])
    wall = now.timestamp()
    unsettled = [p for p, st in stats.items() if wall - st.st_mtime < trigger.options["settle"]]
    if unsettled and "files" in state:  # a file still being written does not count yet
        return None, state, f"waiting for {len(unsettled)} file(s) to settle"
    for path in unsettled:  # at the first look, only settled files make the baseline
        del stats[path]
    seen = state.get("files", {})
    current = {}
    prefix = str(pipeline.root) + os.sep
    for path, st in sorted(stats.items()):
        name = path[len(prefix):] if path.startswith(prefix) else path
        known = seen.get(name)
        # Size and mtime first; only a file whose either changed is read and hashed.
        if known and known[1] == st.st_size and known[2] == st.st_mtime_ns:
            current[name] = known
        else:
            current[name] = [outputs.fingerprint_file(store, path), st.st_size, st.st_mtime_ns]
    if "files" not in state:
        return None, {"files": current}, f"watching {len(current)} file(s)"
    added = sorted(set(current) - set(seen))
    removed = sorted(set(seen) - set(current))
    changed = sorted(p for p in set(current) & set(seen) if current[p][0] != seen[p][0])
    if not (added or changed or removed):
        unchanged_state = state if current == seen else {"files": current}
        return None, unchanged_state, f"watching {len(current)} file(s), unchanged"
    evidence = {"added": added[:LISTED], "changed": changed[:LISTED], "removed": removed[:LISTED],
                "counts": {"added": len(added), "changed": len(changed), "removed": len(removed)}}
    parts = [f"{len(v)} {k}" for k, v in (("new", added), ("changed", changed), ("removed", removed)) if v]
    return (Firing(trigger, f"data in {', '.join(trigger.options['paths'])}: {', '.join(parts)} file(s)", evidence),
            {"files": current}, f"watching {len(current)} file(s)")


def _live_performance(trigger: Trigger, *, store: Store, state: dict, now: datetime):
    from mlops_nb.monitoring.monitor import live_metric

    o = trigger.options
    model, alias, metric = o["model"], o.get("alias", "production"), o["metric"]
    served = served_window(store, model, alias, state, now, o.get("window"),
                     lambda version, since: live_metric(store, model, version, metric, since=since))
    if isinstance(served, str):
        return None, state, served
    version, since, live = served
    if live["labelled"] < o["min_labels"]:
        return None, state, (f"{live['labelled']} of {o['min_labels']} labels for the predictions of "
                             f"{model}/{version}")
    value = live["value"]
    coverage = live["labelled"] / live["n"] if live["n"] else 0.0
    evidence = {"model": model, "version": version, "alias": alias, "metric": metric, "value": value,
                "labelled": live["labelled"], "predictions": live["n"], "coverage": coverage, "since": since}
    on = f"{live['labelled']} labelled predictions of {model}/{version} ({coverage:.0%} of {live['n']})"
    if "below" in o:
        fired, rule = value < o["below"], f"below {o['below']:g}"
        evidence["rule"] = {"below": o["below"]}
    elif "above" in o:
        fired, rule = value > o["above"], f"above {o['above']:g}"
        evidence["rule"] = {"above": o["above"]}
    else:
        trained = runs.get_run(store, models.get_version(store, model, version).run_id).metrics.get(metric)
        if trained is None or trained == 0:
            raise NotFoundError(f"performance trigger: {model}/{version}'s run logged no {metric} to compare with")
        relative = (trained - value) / abs(trained)
        fired, rule = relative > o["drop"], (f"{relative:.1%} below its {trained:.4g} at training "
                                              f"(allowed drop {o['drop']:.1%})")
        evidence.update(baseline=trained, relative_drop=relative, rule={"drop": o["drop"]})
    note = f"live {metric} = {value:.4g} on {on}"
    if not fired:
        return None, {**state, "version": version}, note
    return (Firing(trigger, f"live {metric} {value:.4g} is {rule} on {on}", evidence),
            {"version": version, "fired_at": now.timestamp()}, note)


def _performance(trigger: Trigger, *, store: Store, pipeline, state: dict, now: datetime):
    options = trigger.options
    if not options.get("step"):
        return _live_performance(trigger, store=store, state=state, now=now)
    metric = options["metric"]
    # A cached step run repeats an earlier observation: judge the run that measured it.
    source = runs.last_measured_step(store, options.get("pipeline", pipeline.name), options["step"])
    if source is None:
        _check_watched_step(pipeline, options)
        return None, state, f"no finished run of step {options['step']} yet"
    value = _step_value(store, source, metric)
    if value is None:
        raise NotFoundError(f"performance trigger: run {source[:8]} has no metric or output {metric!r}")
    if state.get("seen") == source:
        return None, state, f"{metric} = {value:.4g} (already judged)"
    evidence = {"metric": metric, "value": value, "source_run": source}
    fired, reason = False, ""
    if "below" in options:
        fired, reason = value < options["below"], f"{metric} {value:.4g} is below {options['below']:g}"
        evidence["rule"] = {"below": options["below"]}
    elif "above" in options:
        fired, reason = value > options["above"], f"{metric} {value:.4g} is above {options['above']:g}"
        evidence["rule"] = {"above": options["above"]}
    else:
        version = models.resolve_model(store, f"{options['model']}@{options.get('alias', 'production')}")
        baseline = runs.get_run(store, version.run_id).metrics.get(metric)
        if baseline is None or baseline == 0:
            raise NotFoundError(f"performance trigger: {version.ref} has no {metric} to compare with")
        relative = (baseline - value) / abs(baseline)
        fired = relative > options["drop"]
        reason = (f"{metric} {value:.4g} is {relative:.1%} below {version.ref}'s {baseline:.4g} "
                  f"(allowed drop {options['drop']:.1%})")
        evidence.update(baseline=baseline, baseline_model=version.ref, relative_drop=relative,
                        rule={"drop": options["drop"]})
    new_state = {"seen": source, "value": value}
    return (Firing(trigger, reason, evidence) if fired else None), new_state, f"{metric} = {value:.4g}"


def _check_watched_step(pipeline, options: dict) -> None:
    """A performance trigger on another pipeline's step: that pipeline, if it is one of this project's files,
    must have the step (else the trigger would wait forever)."""
    other = options.get("pipeline")
    if not other or other == pipeline.name:
        return
    from mlops_nb.pipeline.spec import load_pipeline, project_pipelines

    for path in project_pipelines(pipeline.root):
        try:
            spec = load_pipeline(path)
        except InvalidInputError:
            continue
        if spec.name == other and options["step"] not in [s.name for s in spec.steps]:
            raise InvalidInputError(f"pipeline {other!r} ({path.name}) has no step {options['step']!r}; its steps: "
                                    f"{', '.join(s.name for s in spec.steps)}")


def _step_value(store: Store, run_id: str, metric: str):
    import json

    output = outputs.get_output(store, run_id, metric)
    if output and output["kind"] == "json":
        value = json.loads(output["value"])
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return runs.latest_metric(store, run_id, metric)


