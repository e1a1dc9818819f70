"""Evaluating one trigger: did it fire, with what evidence, and what it remembers for next time.

Every function takes the trigger, its stored state and the current time, and returns
``(firing or None, new state, note)``; the note says what the trigger is waiting for
(shown by `mlops-nb triggers ls`). Nothing here runs a pipeline.
"""

from __future__ import annotations

import glob
import os
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry import models, outputs, runs
from mlops_nb.registry.store import Store
from mlops_nb.pipeline.trigger_spec import Trigger

_LISTED = 20


@dataclass
class Firing:
    trigger: Trigger
    reason: str
    evidence: dict


def evaluate(trigger: Trigger, *, store: Store, pipeline, state: dict, now: datetime):
    return globals()[f"_{trigger.kind}"](trigger, store=store, pipeline=pipeline, state=state, now=now)


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


def matching_files(root: Path, patterns: list[str]) -> list[Path]:
    return [Path(p) for p in sorted(_stat_files(root, patterns))]


def _stat_files(root: Path, patterns: list[str]) -> dict[str, os.stat_result]:
    """{path: stat} of the regular files matching the patterns (plain strings: this runs every few seconds)."""
    found: dict[str, os.stat_result] = {}
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else os.path.join(str(root), pattern)
        for path in glob.glob(full, recursive=True):
            if path not in found:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found[path] = st
    return found


def _new_data(trigger: Trigger, *, store, pipeline, state: dict, now: datetime):
    stats = _stat_files(pipeline.root, trigger.options["paths"])
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
    evidence = {"added": added[:_LISTED], "changed": changed[:_LISTED], "removed": removed[:_LISTED],
                "counts": {"added": len(added), "changed": len(changed), "removed": len(removed)}}
    parts = [f"{len(v)} {k}" for k, v in (("new", added), ("changed", changed), ("removed", removed)) if v]
    return (Firing(trigger, f"data in {', '.join(trigger.options['paths'])}: {', '.join(parts)} file(s)", evidence),
            {"files": current}, f"watching {len(current)} file(s)")


_frames: dict[tuple, object] = {}  # (path, size, mtime) -> frame: a watcher reads only changed files again


def _read_files(files: list[Path]):
    import pandas as pd

    frames = []
    for path in files:
        info = path.stat()
        key = (str(path), info.st_size, info.st_mtime_ns)
        frame = _frames.get(key)
        if frame is None:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            if len(_frames) >= 64:
                _frames.pop(next(iter(_frames)))
            _frames[key] = frame
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _read_frames(root: Path, pattern: str):
    files = matching_files(root, [pattern])
    if not files:
        raise NotFoundError(f"no file matches {pattern!r} (in {root})")
    return _read_files(files), files


def _window(files: list[Path], window, store: Store, model: str | None) -> list[Path]:
    """The current files a drift check reads: the newest batch (default), the newest N, every one, or those
    that arrived after the production model was trained (``since-production``)."""
    arrived = sorted(files, key=lambda p: (p.stat().st_mtime, p.name))
    if window == "all":
        return arrived
    if window == "newest":
        return arrived[-1:]
    if isinstance(window, int):
        return arrived[-window:]
    trained = runs.get_run(store, _production(store, model).run_id).start_time
    return [p for p in arrived if p.stat().st_mtime > trained]


def _production(store: Store, model: str | None):
    if not model:
        raise InvalidInputError("drift trigger: reference: production and window: since-production need the "
                                "model: add model: <registered model name> (or a model_name pipeline param)")
    return models.resolve_model(store, f"{model}@production")


def _drift(trigger: Trigger, *, store, pipeline, state: dict, now: datetime):
    from mlops_nb.monitoring.reference import training_data
    from mlops_nb.validation.drift import drift

    options = trigger.options
    if options.get("predictions"):
        return _drift_of_predictions(trigger, store=store, state=state, now=now)
    if options.get("features"):
        return _drift_of_features(trigger, store=store, pipeline=pipeline, state=state)
    model = options.get("model") or pipeline.params.get("model_name")
    every_file = matching_files(pipeline.root, [options["current"]])
    if not every_file:
        return None, state, f"no current data matches {options['current']}"
    settle = float(options.get("settle", 2.0))
    writing = [p for p in every_file if now.timestamp() - p.stat().st_mtime < settle]
    if writing:  # never judge a half-written file
        return None, state, f"waiting for {len(writing)} file(s) to settle"
    window = options.get("window", "newest")
    current_files = _window(every_file, window, store, model)
    if not current_files:
        return None, state, "no data arrived since the production model was trained"
    signature = {_relative(p, pipeline.root): outputs.fingerprint_file(store, p) for p in current_files}
    reference_name = options["reference"]
    if reference_name == "production":
        try:
            version = _production(store, model)
        except NotFoundError:  # nothing in production yet: there is nothing to drift from
            return None, state, f"waiting for a production model of {model!r} to compare with"
        identity = version.ref
    else:
        identity = reference_name
    if state.get("current") == signature and state.get("reference", reference_name) == identity:
        return None, state, "current data unchanged since the last drift check"
    reference_path = pipeline.root / reference_name
    if reference_name == "production":
        reference = training_data(store, version)
    elif glob.has_magic(reference_name) or reference_path.exists():
        reference, _ = _read_frames(pipeline.root, reference_name)
    elif "/" in reference_name or Path(reference_name).suffix in (".csv", ".parquet"):
        raise NotFoundError(f"reference {reference_name} does not exist (in {pipeline.root}); give a file, a "
                            "glob, production, or the name of a dataset logged with reference=True")
    else:
        from mlops_nb.registry.datasets import reference_profile
        from mlops_nb.validation.profile import ReferenceProfile

        # a dataset logged with reference=True
        reference = ReferenceProfile.from_dict(reference_profile(store, reference_name))
    current = _read_files(current_files)
    report = drift(reference, current, share=options.get("share", 0.5))
    fired, reason = _drifted(report, options, "in both reference and current data", "column {}",
                             f"dataset drift: {report.share:.0%} of columns drifted")
    where = {"newest": "the newest batch", "all": "all batches", "since-production":
             "the data since the production model"}.get(window, f"the newest {window} batches")
    reason += f" in {where} against {identity}"
    evidence = {**_report_evidence(report), "current_files": list(signature)[:_LISTED], "window": window,
                "reference": identity}
    new_state = {"current": signature, "reference": identity, "last_share": report.share}
    note = f"last share drifted {report.share:.0%} ({where} against {identity})"
    return (Firing(trigger, reason, evidence) if fired else None), new_state, note


def _report_evidence(report) -> dict:
    columns = report.columns.sort_values("drifted", ascending=False).head(_LISTED)
    return {"share": report.share, "drifted": report.drifted, "drifted_columns": report.drifted_columns,
            "columns": [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
                        for r in columns[["column", "test", "statistic", "p_value", "threshold", "drifted"]]
                        .to_dict(orient="records")],
            "n_reference": report.n_reference, "n_current": report.n_current}


def _drift_of_features(trigger: Trigger, *, store: Store, pipeline, state: dict):
    """The newest write(s) of a feature view against the values of its features the production model was
    trained on (its training frame's profile)."""
    from mlops_nb.features.monitor import reference_of, write_drift
    from mlops_nb.features.views import find_views, get_view
    from mlops_nb.registry import features as feature_store

    o = trigger.options
    views, where = find_views(pipeline.root)
    view = get_view(views, o["features"], where)
    model = o.get("model") or pipeline.params.get("model_name")
    written = feature_store.versions(store, view.name)
    if not written:
        return None, state, f"waiting for a first write of feature view {view.name}"
    try:
        production = _production(store, model)
    except NotFoundError:
        return None, state, f"waiting for a production model of {model!r} to compare with"
    window = o.get("window", "newest")
    if window == "since-production":
        trained = runs.get_run(store, production.run_id).start_time
        chosen = [w for w in written if w["created_at"] > trained]
    else:
        chosen = written if window == "all" else written[-(1 if window == "newest" else window):]
    if not chosen:
        return None, state, f"no write of {view.name} since the production model was trained"
    signature = [w["version"] for w in chosen]
    if state.get("current") == signature and state.get("reference") == production.ref:
        return None, state, f"no new write of {view.name} since the last drift check"
    report = write_drift(store, view, chosen, reference_of(store, view, production), share=o.get("share", 0.5))
    fired, reason = _drifted(report, o, f"a feature of {view.name} in {production.ref}'s training frame",
                             f"feature {{}} of {view.name}", f"{report.share:.0%} of the features of {view.name} "
                             "drifted")
    writes = (f"write {signature[0]}" if len(signature) == 1 else f"writes {signature[0]}-{signature[-1]}")
    reason += f" in {writes} against what {production.ref} was trained on"
    evidence = {**_report_evidence(report), "view": view.name, "versions": signature, "window": window,
                "reference": production.ref}
    note = f"last share drifted {report.share:.0%} ({writes} of {view.name} against {production.ref})"
    new_state = {"current": signature, "reference": production.ref, "last_share": report.share}
    return (Firing(trigger, reason, evidence) if fired else None), new_state, note


def _drifted(report, options: dict, where: str, named: str, share_reason: str) -> tuple[bool, str]:
    """Whether a drift report fires the trigger, and why: its ``column`` (``named.format(column)`` names it)
    drifted or went over the ``threshold``; without one, the report's share of drifted columns."""
    column = options.get("column")
    if column is None:
        return report.drifted, f"{share_reason} ({', '.join(report.drifted_columns[:5])})"
    rows = report.columns[report.columns["column"] == column]
    if rows.empty:
        raise InvalidInputError(f"drift trigger: column {column!r} is not {where}")
    row = rows.iloc[0]
    threshold = options.get("threshold")
    fired = bool(row["drifted"]) if threshold is None else float(row["statistic"]) >= float(threshold)
    return fired, f"{named.format(column)} drifted: {row['test']} {row['statistic']:.4g}"


def _served(store: Store, model: str, alias: str, state: dict, now: datetime, window: str | None, read):
    """What ``read(version, since)`` gives for the version serving at ``alias`` and the time from which its
    predictions count (the window's start, or the last firing on that version if later: what fired once does
    not fire again), as ``(version, since, read)``; or, while there is nothing to read, what it waits for."""
    from mlops_nb.monitoring.windows import window_seconds

    version = models.alias_version_or_none(store, model, alias)
    if version is None:
        return f"waiting for a version of {model!r} at {alias}"
    since = now.timestamp() - window_seconds(window) if window else None
    if state.get("version") == version and state.get("fired_at"):
        since = max(since or 0.0, state["fired_at"])
    try:
        return version, since, read(version, since)
    except NotFoundError as exc:
        if "logged yet" in str(exc):
            return f"waiting for predictions of {model} (serve it with `mlops-nb serve {model}`)"
        raise


def _drift_of_predictions(trigger: Trigger, *, store: Store, state: dict, now: datetime):
    from mlops_nb.monitoring.monitor import input_drift

    o = trigger.options
    model, alias = o["predictions"], o.get("alias", "production")
    served = _served(store, model, alias, state, now, o["window"],
                     lambda version, since: input_drift(store, model, version, since=since, share=o.get("share", 0.5)))
    if isinstance(served, str):
        return None, state, served
    version, since, report = served
    n = report.n_current if report is not None else 0
    if n < o["min_rows"]:
        return None, state, f"{n} of {o['min_rows']} predictions of {model}/{version} to judge drift on"
    fired, reason = _drifted(report, o, f"an input of {model}/{version}", f"input {{}} of {model}/{version}",
                             f"{report.share:.0%} of the inputs of {model}/{version} drifted")
    reason += f" over {n} predictions against its training data"
    evidence = {"model": model, "version": version, "alias": alias, "share": report.share,
                "drifted_columns": report.drifted_columns, "n_current": n, "n_reference": report.n_reference,
                "since": since, "window": o["window"]}
    note = f"last share drifted {report.share:.0%} over {n} predictions of {model}/{version}"
    if not fired:
        return None, {**state, "version": version}, note
    return Firing(trigger, reason, evidence), {"version": version, "fired_at": now.timestamp()}, note


def _live_performance(trigger: Trigger, *, store: Store, state: dict, now: datetime):
    from mlops_nb.monitoring.monitor import live_metric

    o = trigger.options
    model, alias, metric = o["model"], o.get("alias", "production"), o["metric"]
    served = _served(store, model, alias, state, now, o.get("window"),
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


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def utcnow() -> datetime:
    return datetime.fromtimestamp(time.time(), tz=timezone.utc)
