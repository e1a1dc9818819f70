"""Datasets (content fingerprint, shape, schema, profile) and lineage: dataset -> run -> model."""

from __future__ import annotations

import json
import time

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry.store import Store
from mlops_nb.registry.values import check_key

ROLES = ("train", "test", "eval", "validation", "input", "output", "reference", "current")


def record_dataset(store: Store, run_id: str | None, *, name: str, fingerprint: str, role: str, n_rows: int | None,
                   n_cols: int | None, schema: dict | None, profile: dict | None,
                   reference: dict | None = None) -> int:
    """Store a dataset (once per name and content) and link it to the run in ``role`` (none: outside a run).

    ``reference`` is a drift reference profile (validation.profile) to keep with it."""
    check_key(name, "dataset name")
    if role not in ROLES:
        raise InvalidInputError(f"dataset role {role!r} is not one of {', '.join(ROLES)}")
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO datasets (name, fingerprint, n_rows, n_cols, schema, profile, reference, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, fingerprint) DO UPDATE SET "
            "reference = COALESCE(excluded.reference, datasets.reference)",
            (name, fingerprint, n_rows, n_cols, json.dumps(schema) if schema else None,
             json.dumps(profile, allow_nan=True) if profile else None,
             json.dumps(reference, allow_nan=True) if reference else None, time.time()))
        dataset_id = conn.execute("SELECT id FROM datasets WHERE name = ? AND fingerprint = ?",
                                  (name, fingerprint)).fetchone()[0]
        if run_id is not None:
            conn.execute("INSERT INTO run_datasets (run_id, dataset_id, role) VALUES (?, ?, ?) "
                         "ON CONFLICT DO NOTHING", (run_id, dataset_id, role))
    return dataset_id


def get_dataset(store: Store, ref: str | int) -> dict:
    """A dataset by id, ``name`` (its newest content) or ``name@fingerprint-prefix``."""
    if isinstance(ref, int):
        row = store.query_one(_SELECT + " WHERE id = ?", (ref,))
    elif "@" in ref:
        name, prefix = ref.split("@", 1)
        row = store.query_one(_SELECT + " WHERE name = ? AND fingerprint >= ? AND fingerprint < ? ORDER BY id DESC",
                              (name, prefix, prefix + "g"))
    else:
        row = store.query_one(_SELECT + " WHERE name = ? ORDER BY id DESC", (ref,))
    if row is None:
        known = [r[0] for r in store.query("SELECT DISTINCT name FROM datasets ORDER BY name LIMIT 20")]
        raise NotFoundError(f"no dataset {ref!r}; logged datasets: {', '.join(map(repr, known)) or 'none yet'}")
    return _dataset(row)


def reference_profile(store: Store, ref: str | int) -> dict:
    """The stored drift reference profile of a dataset (``name``, ``name@fingerprint`` or id)."""
    found = get_dataset(store, ref)
    row = store.query_one("SELECT reference FROM datasets WHERE id = ?", (found["id"],))
    if not row or not row[0]:
        raise NotFoundError(f"dataset {found['name']!r} ({found['fingerprint'][:12]}) has no stored reference "
                            "profile: log it with mlops.log_dataset(df, name, reference=True)")
    return json.loads(row[0])


def list_datasets(store: Store) -> list[dict]:
    return [_dataset(row) for row in store.query(_SELECT + " ORDER BY name, id")]


def run_datasets(store: Store, run_id: str) -> list[dict]:
    rows = store.query(
        "SELECT d.id, d.name, d.fingerprint, d.n_rows, d.n_cols, d.schema, d.profile, d.created_at, rd.role "
        "FROM datasets d JOIN run_datasets rd ON rd.dataset_id = d.id WHERE rd.run_id = ? ORDER BY rd.role, d.name",
        (run_id,))
    return [dict(_dataset(row[:-1]), role=row[-1]) for row in rows]


def lineage(store: Store, run_id: str) -> dict:
    """What went into a run and what came out: datasets by role, child runs (a pipeline's steps,
    ran or cached), and the model versions registered from the run or its children."""
    parent = store.query_one("SELECT parent_id FROM runs WHERE id = ?", (run_id,))
    if parent is None:
        raise NotFoundError(f"no run {run_id!r}")
    children = store.query("SELECT id, name, step, status, cached_from FROM runs WHERE parent_id = ? "
                           "ORDER BY start_time", (run_id,))
    family = [run_id] + [c[0] for c in children] + [c[4] for c in children if c[4]]
    marks = ", ".join("?" * len(family))
    found = store.query(
        f"SELECT DISTINCT d.name, d.fingerprint, rd.role FROM datasets d JOIN run_datasets rd ON rd.dataset_id = d.id "
        f"WHERE rd.run_id IN ({marks}) ORDER BY rd.role, d.name", family)
    models = store.query(f"SELECT name, version, run_id FROM model_versions WHERE run_id IN ({marks}) "
                         "ORDER BY name, version", family)
    return {
        "run_id": run_id,
        "parent_id": parent[0],
        "children": [{"run_id": c[0], "name": c[1], "step": c[2], "status": c[3],
                      "cached_from": c[4]} for c in children],
        "datasets": [{"name": n, "fingerprint": f, "role": r} for n, f, r in found],
        "models": [{"name": n, "version": v, "run_id": r} for n, v, r in models],
    }


_SELECT = "SELECT id, name, fingerprint, n_rows, n_cols, schema, profile, created_at FROM datasets"


def _dataset(row: tuple) -> dict:
    id_, name, fingerprint, n_rows, n_cols, schema, profile, created_at = row
    return {"id": id_, "name": name, "fingerprint": fingerprint, "n_rows": n_rows, "n_cols": n_cols,
            "schema": json.loads(schema) if schema else None, "profile": json.loads(profile) if profile else None,
            "created_at": created_at}


def dataset_summaries(store: Store) -> list[dict]:
    """One row per dataset name: how many versions (contents), the newest one, and how many runs used it."""
    rows = store.query(
        "SELECT d.name, COUNT(DISTINCT d.id), MAX(d.created_at), COUNT(DISTINCT rd.run_id) FROM datasets d "
        "LEFT JOIN run_datasets rd ON rd.dataset_id = d.id GROUP BY d.name ORDER BY d.name")
    out = []
    for name, versions, updated, used in rows:
        newest = get_dataset(store, name)
        out.append({"name": name, "versions": versions, "fingerprint": newest["fingerprint"],
                    "n_rows": newest["n_rows"], "n_cols": newest["n_cols"], "updated_at": updated, "runs": used})
    return out


def dataset_history(store: Store, name: str) -> list[dict]:
    """Every version (content) of dataset ``name``, newest first, with the runs that used it (and in which
    role) and the model versions registered from those runs: which data a model was trained on."""
    get_dataset(store, name)  # a one-line error naming the known datasets
    versions = store.query(_SELECT + " WHERE name = ? ORDER BY id DESC", (name,))
    out = []
    for row in versions:
        version = _dataset(row)
        version.pop("profile")
        used = store.query(
            "SELECT r.id, r.name, e.name, rd.role, r.start_time FROM run_datasets rd JOIN runs r ON r.id = rd.run_id "
            "JOIN experiments e ON e.id = r.experiment_id WHERE rd.dataset_id = ? ORDER BY r.start_time",
            (version["id"],))
        version["runs"] = [{"run_id": r[0], "name": r[1], "experiment": r[2], "role": r[3], "start_time": r[4]}
                           for r in used]
        ids = [r[0] for r in used]
        marks = ", ".join("?" * len(ids))
        version["models"] = [{"name": m[0], "version": m[1], "run_id": m[2]} for m in store.query(
            f"SELECT name, version, run_id FROM model_versions WHERE run_id IN ({marks}) ORDER BY name, version",
            ids)] if ids else []
        out.append(version)
    return out
