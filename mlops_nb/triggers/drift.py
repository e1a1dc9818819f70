"""The drift triggers: a file batch against a reference (a file, a logged dataset, the production model's
training data), a feature view's newest write against the production model's training frame, and what a
served model is asked against its training data. Each returns ``(firing or None, new state, note)``."""

from __future__ import annotations

import glob
from datetime import datetime
from pathlib import Path

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.pipeline.trigger_spec import Trigger
from mlops_nb.registry import models, outputs, runs
from mlops_nb.registry.store import Store
from mlops_nb.triggers.firing import LISTED, Firing, matching_files, relative_path, served_window

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


def drift_trigger(trigger: Trigger, *, store, pipeline, state: dict, now: datetime):
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
    signature = {relative_path(p, pipeline.root): outputs.fingerprint_file(store, p) for p in current_files}
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
    evidence = {**_report_evidence(report), "current_files": list(signature)[:LISTED], "window": window,
                "reference": identity}
    new_state = {"current": signature, "reference": identity, "last_share": report.share}
    note = f"last share drifted {report.share:.0%} ({where} against {identity})"
    return (Firing(trigger, reason, evidence) if fired else None), new_state, note


def _report_evidence(report) -> dict:
    columns = report.columns.sort_values("drifted", ascending=False).head(LISTED)
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


def _drift_of_predictions(trigger: Trigger, *, store: Store, state: dict, now: datetime):
    from mlops_nb.monitoring.monitor import input_drift

    o = trigger.options
    model, alias = o["predictions"], o.get("alias", "production")
    served = served_window(store, model, alias, state, now, o["window"],
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
