"""Deleting runs and experiments, and collecting the garbage they leave.

Deleting is soft: a deleted run (and the runs inside it) is hidden from searches and from
cache lookups, and ``restore`` brings it back. ``collect_garbage`` then removes deleted
runs for good (their params, metrics, tags, artifacts' rows, outputs, executed notebooks)
and every stored file that no run, logged or registered model, step output or dataset
still names. A run that registered a model version is never removed (the version's
lineage needs it), and a version's file is always kept.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from mlops_nb.errors import InvalidInputError
from mlops_nb.registry.runs import experiment_id, resolve_run_id
from mlops_nb.registry.store import Store

GRACE_SECONDS = 60.0  # a file younger is left alone: a run may have stored it and not named it yet

# Everything a run owns, by the table that holds it (its column naming the run).
RUN_TABLES = ("params", "tags", "metrics", "latest_metrics", "artifacts", "run_datasets", "logged_models", "outputs")


def _with_descendants(store: Store, run_ids: list[str]) -> list[str]:
    found, frontier = list(dict.fromkeys(run_ids)), list(run_ids)
    while frontier:
        marks = ", ".join("?" * len(frontier))
        frontier = [r[0] for r in store.query(f"SELECT id FROM runs WHERE parent_id IN ({marks})", frontier)
                    if r[0] not in found]
        found += frontier
    return found


def _aliased_versions(store: Store, run_ids: list[str]) -> list[str]:
    marks = ", ".join("?" * len(run_ids))
    return [f"{name}/{version} is {name}@{alias}" for name, version, alias in store.query(
        f"SELECT v.name, v.version, a.alias FROM model_versions v JOIN aliases a ON a.name = v.name AND "
        f"a.version = v.version WHERE v.run_id IN ({marks}) ORDER BY v.name, v.version", run_ids)]


def delete_runs(store: Store, refs: list[str]) -> list[str]:
    """Soft-delete the runs ``refs`` name and the runs inside them; the ids deleted. A run whose model
    version an alias points at is refused (point the alias elsewhere first)."""
    if not refs:
        raise InvalidInputError("name the runs to delete (ids, id prefixes or names)")
    chosen = _with_descendants(store, [resolve_run_id(store, ref) for ref in refs])
    aliased = _aliased_versions(store, chosen)
    if aliased:
        raise InvalidInputError(f"not deleted: {aliased[0]}; point the alias at another version first "
                                "(mlops-nb models promote or rollback)")
    marks = ", ".join("?" * len(chosen))
    with store.transaction() as conn:
        conn.execute(f"UPDATE runs SET deleted_at = ? WHERE id IN ({marks}) AND deleted_at IS NULL",
                     [time.time(), *chosen])
    return chosen


def restore_runs(store: Store, refs: list[str]) -> list[str]:
    """Bring deleted runs back (with the runs inside them, and their experiment if it was deleted)."""
    if not refs:
        raise InvalidInputError("name the runs to restore (ids, id prefixes or names)")
    chosen = _with_descendants(store, [resolve_run_id(store, ref) for ref in refs])
    marks = ", ".join("?" * len(chosen))
    with store.transaction() as conn:
        conn.execute(f"UPDATE runs SET deleted_at = NULL WHERE id IN ({marks})", chosen)
        conn.execute(f"UPDATE experiments SET deleted_at = NULL WHERE id IN (SELECT experiment_id FROM runs "
                     f"WHERE id IN ({marks}))", chosen)
    return chosen


def delete_experiment(store: Store, name: str) -> int:
    """Soft-delete an experiment and its runs; how many runs. Starting a run in it brings it back, empty."""
    found = experiment_id(store, name)
    runs = [r[0] for r in store.query("SELECT id FROM runs WHERE experiment_id = ? AND deleted_at IS NULL",
                                      (found,))]
    aliased = _aliased_versions(store, runs) if runs else []
    if aliased:
        raise InvalidInputError(f"experiment {name!r} not deleted: {aliased[0]}; point the alias at another "
                                "version first")
    with store.transaction() as conn:
        conn.execute("UPDATE runs SET deleted_at = ? WHERE experiment_id = ? AND deleted_at IS NULL",
                     (time.time(), found))
        conn.execute("UPDATE experiments SET deleted_at = ? WHERE id = ?", (time.time(), found))
    return len(runs)


def collect_garbage(store: Store, *, older_than: float | None = None, dry_run: bool = False) -> dict:
    """Remove for good the runs deleted more than ``older_than`` seconds ago (all deleted runs by default),
    then the stored files nothing names any more. ``dry_run``: only say what would go."""
    cutoff = time.time() - (older_than or 0.0)
    deleted = [r[0] for r in store.query("SELECT id FROM runs WHERE deleted_at IS NOT NULL AND deleted_at <= ?",
                                         (cutoff,))]
    registered = {r[0] for r in store.query("SELECT DISTINCT run_id FROM model_versions")}
    kept = sorted(set(deleted) & registered)
    purged = [r for r in deleted if r not in registered]
    if purged and not dry_run:
        with store.transaction() as conn:
            for start in range(0, len(purged), 500):
                chunk = purged[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                for table in RUN_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk)
                conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
        for run_id in purged:
            shutil.rmtree(store.home / "runs" / run_id, ignore_errors=True)  # its executed notebooks
    named = _named_files(store, exclude=set(purged) if dry_run else set())
    files, size = [], 0
    young = time.time() - GRACE_SECONDS
    for path in _stored_files(store.artifacts_dir):
        if path.parent.name + path.name not in named:
            stat = path.stat()
            if stat.st_mtime < young:
                files.append(path)
                size += stat.st_size
    if not dry_run:
        for path in files:
            path.unlink(missing_ok=True)
    return {"runs": purged, "kept_runs": kept, "files": len(files), "bytes": size, "dry_run": dry_run}


def _named_files(store: Store, exclude: set[str]) -> set[str]:
    """The sha256 of every stored file something still names (leaving out what the runs ``exclude`` name)."""
    named: set[str] = set()
    for table in ("artifacts", "logged_models", "outputs"):
        for run_id, sha in store.query(f"SELECT run_id, sha256 FROM {table} WHERE sha256 IS NOT NULL"):
            if run_id not in exclude:
                named.add(sha)
    named.update(r[0] for r in store.query("SELECT sha256 FROM model_versions"))
    named.update(r[0] for r in store.query("SELECT sha256 FROM feature_versions"))  # the offline tables
    # A file read as a step's input is kept under its content's hash (the dataset's fingerprint), for drift.
    for run_id, fingerprint in store.query("SELECT rd.run_id, d.fingerprint FROM run_datasets rd "
                                           "JOIN datasets d ON d.id = rd.dataset_id"):
        if run_id not in exclude:
            named.add(fingerprint)
    return named


def _stored_files(artifacts_dir: Path):
    """The content-addressed files: ``<2 hex>/<62 hex>`` (temporary files being written are left alone)."""
    if not artifacts_dir.is_dir():
        return
    for folder in os.scandir(artifacts_dir):
        if folder.is_dir() and len(folder.name) == 2:
            for entry in os.scandir(folder.path):
                if entry.is_file() and len(entry.name) == 62 and not entry.name.startswith("."):
                    yield Path(entry.path)
