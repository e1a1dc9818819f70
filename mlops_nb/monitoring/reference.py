"""What a model version was trained on: the data its drift is measured against."""

from __future__ import annotations

from mlops_nb.errors import NotFoundError
from mlops_nb.registry import artifacts, datasets
from mlops_nb.registry.models import ModelVersion
from mlops_nb.registry.store import Store


def training_data(store: Store, version: ModelVersion):
    """The training data of ``version``: the file its run read as training input, from the registry's copy
    (the file itself may have changed since), as a DataFrame; else the reference profile of the training
    dataset it logged (``mlops.log_dataset(df, "train", reference=True)``), as a ReferenceProfile."""
    import pandas as pd

    from mlops_nb.validation.profile import ReferenceProfile

    used = datasets.run_datasets(store, version.run_id)
    inputs = [d for d in used if d["role"] == "input"]
    for chosen in [d for d in inputs if "train" in d["name"]] + [d for d in inputs if "train" not in d["name"]]:
        blob = artifacts.blob_path(store.artifacts_dir, chosen["fingerprint"])
        if blob.is_file():
            return pd.read_parquet(blob) if chosen["name"].endswith(".parquet") else pd.read_csv(blob)
    for chosen in [d for d in used if d["role"] == "train"]:
        try:
            return ReferenceProfile.from_dict(datasets.reference_profile(store, chosen["id"]))
        except NotFoundError:
            continue
    raise NotFoundError(f"{version.ref}'s run kept no training data to compare with: read it as a pipeline "
                        "step's input, or log it with mlops.log_dataset(df, 'train', reference=True)")


def reference_profiles(store: Store, version: ModelVersion) -> tuple[dict, list[str]]:
    """``({"features": profile, "predictions": profile or None, "columns": [...]}, notes)``: the drift profiles
    of ``version``'s training data (its model inputs) and of its own predictions on that data, and the names
    of all the training data's columns (its target among them), kept in the registry once computed (a version
    and its training data never change) so that monitoring loads no model and reads no training data."""
    import json

    import pandas as pd

    from mlops_nb.validation.profile import ReferenceProfile, profile_reference

    cached = store.home / "monitoring" / version.name / f"{version.version}-{version.sha256[:16]}.json"
    if cached.is_file():
        try:
            kept = json.loads(cached.read_text())
            return ({"features": ReferenceProfile.from_dict(kept["features"]),
                     "predictions": ReferenceProfile.from_dict(kept["predictions"]) if kept["predictions"] else None,
                     "columns": list(kept["columns"])},
                    kept["notes"])
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable cache is computed again
    data = training_data(store, version)
    notes: list[str] = []
    if isinstance(data, ReferenceProfile):  # a stored profile: the inputs drift, the predictions are unknown
        profiles = {"features": data, "predictions": None, "columns": list(data.columns)}
        notes.append(f"no prediction drift for {version.ref}: its training data is kept as a profile only")
    else:
        inputs = [i["name"] for i in (version.signature or {}).get("inputs", [])] or list(data.columns)
        columns = [c for c in inputs if c in data.columns]
        profiles = {"features": profile_reference(data[columns]), "predictions": None,
                    "columns": [str(c) for c in data.columns]}
        try:
            from mlops_nb.tracking import modelio

            model = modelio.deserialize_model(artifacts.read_verified(store.artifacts_dir, version.sha256))
            predicted = pd.DataFrame({"prediction": list(model.predict(data[columns]))})
            profiles["predictions"] = profile_reference(predicted)
        except Exception as exc:  # a model that cannot score its own training data: input drift still holds
            notes.append(f"no prediction drift for {version.ref}: {str(exc).splitlines()[0][:200]}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps({"features": profiles["features"].to_dict(), "notes": notes,
                                   "columns": profiles["columns"],
                                   "predictions": profiles["predictions"].to_dict() if profiles["predictions"]
                                   else None}))
        tmp.replace(cached)
    except OSError:  # a registry this user can only read: computed again next time
        pass
    return profiles, notes
