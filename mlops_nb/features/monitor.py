"""Feature views over time: each write's drift from the feature values a model was trained on.

A model trained on ``mlops.training_frame`` keeps that frame's drift reference profile, so a write of a view
is compared with what the model saw of the view's features (one row per training row, as the model saw
them), not with an earlier write. ``mlops-nb features show`` lists it per write; the drift trigger
``drift: {features: VIEW}`` fires on it.
"""

from __future__ import annotations

from mlops_nb.errors import NotFoundError
from mlops_nb.features.views import FeatureView
from mlops_nb.registry import artifacts, datasets
from mlops_nb.registry import features as feature_store


def declared_schema(frame, views: list[FeatureView]):
    """``frame``'s schema with the views' int and float features numeric, as declared: a count with few
    distinct values (support calls) is compared as a distribution, not as categories of a small sample."""
    from mlops_nb.validation.schema import infer_schema

    schema = infer_schema(frame)
    for view in views:
        for name, feature in view.features.items():
            if name in schema.columns and feature.dtype in ("int", "float"):
                schema.columns[name].kind = "numeric"
    return schema


def reference_of(store, view: FeatureView, version):
    """The drift reference of ``view``'s features in model ``version``'s training frame (a ReferenceProfile
    restricted to them), or NotFoundError saying how to keep one."""
    from mlops_nb.validation.profile import ReferenceProfile

    for used in datasets.run_datasets(store, version.run_id):
        if used["role"] != "train":
            continue
        try:
            profile = ReferenceProfile.from_dict(datasets.reference_profile(store, used["id"]))
        except NotFoundError:
            continue
        if any(name in profile.columns for name in view.features):
            return profile
    raise NotFoundError(f"{version.ref} was not trained on a training frame of feature view {view.name!r}: build "
                        f"its training data with mlops.training_frame(entities, ['{view.name}:*']) in its run")


def read_writes(store, view: FeatureView, written: list[dict]):
    """The rows of the given writes (rows of :func:`registry.features.versions`), as one DataFrame."""
    import pandas as pd

    frames = [pd.read_parquet(artifacts.blob_path(store.artifacts_dir, w["sha256"])) for w in written]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def write_drift(store, view: FeatureView, written: list[dict], reference, *, share: float = 0.5):
    """The drift report of the given writes' features against ``reference`` (from :func:`reference_of`)."""
    from mlops_nb.validation.drift import SMALL, drift

    columns = [name for name in view.features if name in reference.columns]
    current = read_writes(store, view, written)[columns]
    # A declared number is compared as a distribution even with few distinct values (calls: 0-6), as the
    # drift of any numeric column is: a count one higher than the training data saw is no new category.
    tests = {name: "ks" if reference.n_rows <= SMALL else "wasserstein" for name in columns
             if view.features[name].dtype in ("int", "float") and reference.columns[name].kind == "numeric"}
    return drift(reference, current, declared_schema(current, [view]), columns=columns, tests=tests, share=share)


def history(store, view: FeatureView, *, last: int = 10) -> dict:
    """The view's writes (newest ``last``), the models trained on it, and each write's drift share against the
    production model among them (the newest one in production), when it kept its training frame's profile."""
    from mlops_nb.registry import models

    written = feature_store.versions(store, view.name)
    using = feature_store.models_using(store, view.name)
    judge = next((m for m in using if "production" in m["aliases"]), None)
    reference, note = None, None
    if judge is not None:
        version = models.get_version(store, judge["name"], judge["version"])
        try:
            reference = reference_of(store, view, version)
        except NotFoundError as exc:
            note = str(exc)
    elif using:
        note = "no model trained on it is in production: its writes are not compared with anything yet"
    rows = []
    for write in written[-last:]:
        row = {k: write[k] for k in ("version", "n_rows", "min_time", "max_time", "created_at", "run_id")}
        if reference is not None:
            row.update(_kept_drift(store, view, write, f"{judge['name']}-{judge['version']}", reference))
        rows.append(row)
    return {"writes": rows, "versions": len(written), "models": using,
            "reference": f"{judge['name']}/{judge['version']}" if reference is not None else None, "note": note}


def _kept_drift(store, view: FeatureView, write: dict, judged_by: str, reference) -> dict:
    """A write's drift share and drifted features against a model version's training frame, kept in the
    registry's folder once computed: neither a write nor a version's training frame ever changes, and the
    sidebar asks again every minute."""
    import json

    path = store.home / "monitoring" / "features" / view.name / f"{write['version']}-{write['sha256'][:16]}-{judged_by}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    report = write_drift(store, view, [write], reference)
    found = {"drift_share": report.share, "drifted": report.drifted_columns}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(found))
        tmp.replace(path)
    except OSError:  # a registry folder that cannot be written: computed again next time
        pass
    return found
