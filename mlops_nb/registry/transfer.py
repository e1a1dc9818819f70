"""Copying a whole registry, SQLite to PostgreSQL or back: ``mlops-nb registry copy --from .mlops --to URL``.

Every table is copied with its ids (run ids, model versions, decision and event numbers), so what refers
to them (lineage, aliases, a trigger event's run) still holds; blobs are copied into the destination's
artifact folder, each checked against its content address. A copy can be rerun: rows already there are
left as they are (metrics, which have no key, are copied again only for a run whose count differs), so a
copy interrupted halfway finishes on the next try. At the end the rows of every table are counted on both
sides; a destination that already held another registry is refused before anything is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlops_nb.errors import InvalidInputError, RegistryError
from mlops_nb.registry import artifacts

# In the order their references need; the primary key each conflict is judged on (None: metrics, keyless).
TABLES: dict[str, tuple[str, ...] | None] = {
    "experiments": ("id",),
    "runs": ("id",),
    "params": ("run_id", "key"),
    "tags": ("run_id", "key"),
    "metrics": None,
    "latest_metrics": ("run_id", "key"),
    "artifacts": ("run_id", "name"),
    "datasets": ("id",),
    "run_datasets": ("run_id", "dataset_id", "role"),
    "logged_models": ("run_id", "name"),
    "models": ("name",),
    "model_versions": ("name", "version"),
    "aliases": ("name", "alias"),
    "alias_history": ("id",),
    "outputs": ("run_id", "name"),
    "gate_decisions": ("id",),
    "trigger_state": ("pipeline", "trigger"),
    "trigger_events": ("id",),
    "feedback": ("id",),
    "notifications": ("id",),
    "feature_versions": ("view", "version"),
    "online_features": ("view", "entity"),
}
# Checked before copying into a registry that is not empty: the same id must mean the same thing.
_IDENTITY = {"experiments": "name", "datasets": "fingerprint", "alias_history": "at", "gate_decisions": "created_at",
             "trigger_events": "fired_at", "feedback": "prediction_id", "notifications": "created_at"}
BATCH = 10_000


@dataclass
class CopyReport:
    source: str
    destination: str
    tables: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # table -> (source, destination, new)
    blobs: tuple[int, int, int] = (0, 0, 0)                                # (source, copied, bytes copied)

    @property
    def ok(self) -> bool:
        return all(src == dst for src, dst, _ in self.tables.values())


def copy_registry(source, destination) -> CopyReport:
    """Copy every row and blob of ``source`` into ``destination`` (two open stores); see the module."""
    if source.location == destination.location:
        raise InvalidInputError(f"--from and --to are the same registry ({source.location}); name two")
    _check_compatible(source, destination)
    report = CopyReport(source.location, destination.location)
    for table, key in TABLES.items():
        before = _count(destination, table)
        columns = [c for c in source.columns(table) if c in set(destination.columns(table))]
        if key is None:
            _copy_metrics(source, destination, columns)
        else:
            _copy_table(source, destination, table, columns, key)
        after = _count(destination, table)
        report.tables[table] = (_count(source, table), after, after - before)
    report.blobs = _copy_blobs(Path(source.artifacts_dir), Path(destination.artifacts_dir))
    if not report.ok:
        wrong = ", ".join(f"{t} {s} vs {d}" for t, (s, d, _) in report.tables.items() if s != d)
        raise RegistryError(f"the copy in {destination.location} does not match {source.location} ({wrong}): "
                            "rows were added on one side while copying; run the copy again")
    return report


def _check_compatible(source, destination) -> None:
    for table, column in _IDENTITY.items():
        theirs = dict(destination.query(f"SELECT id, {column} FROM {table}"))
        if not theirs:
            continue
        for batch in source.stream(f"SELECT id, {column} FROM {table}"):
            for row_id, value in batch:
                if row_id in theirs and theirs[row_id] != value:
                    raise InvalidInputError(
                        f"{destination.location} already holds another registry ({table} {row_id} is "
                        f"{theirs[row_id]!r} there, {value!r} here): copy into an empty registry")


def _copy_table(source, destination, table: str, columns: list[str], key: tuple[str, ...]) -> None:
    names = ", ".join(columns)
    sql = (f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) "
           f"ON CONFLICT ({', '.join(key)}) DO NOTHING")
    for batch in source.stream(f"SELECT {names} FROM {table}", size=BATCH):
        with destination.transaction() as conn:
            conn.executemany(sql, batch)
            if table in _IDENTITY:  # ids that count up
                destination.reset_ids(conn, table)


def _copy_metrics(source, destination, columns: list[str]) -> None:
    """Metrics have no key: copy a run's again (replacing what is there) only when its count differs."""
    theirs = dict(destination.query("SELECT run_id, COUNT(*) FROM metrics GROUP BY run_id"))
    ours = source.query("SELECT run_id, COUNT(*) FROM metrics GROUP BY run_id")
    todo = [run_id for run_id, count in ours if theirs.get(run_id) != count]
    names = ", ".join(columns)
    for start in range(0, len(todo), 500):
        chunk = todo[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        with destination.transaction() as conn:
            conn.execute(f"DELETE FROM metrics WHERE run_id IN ({marks})", chunk)
            for batch in source.stream(f"SELECT {names} FROM metrics WHERE run_id IN ({marks})", chunk, size=BATCH):
                destination.insert_many(conn, "metrics", tuple(columns), batch)


def _count(store, table: str) -> int:
    return store.query_one(f"SELECT COUNT(*) FROM {table}")[0]


def _copy_blobs(source: Path, destination: Path) -> tuple[int, int, int]:
    """Every content-addressed file of ``source`` that ``destination`` lacks, verified by its address."""
    found = copied = size = 0
    if source.resolve() == destination.resolve():
        return sum(1 for _ in _blobs(source)), 0, 0
    for path in _blobs(source):
        found += 1
        sha = path.parent.name + path.name
        if artifacts.blob_path(destination, sha).is_file():
            continue
        stored, length = artifacts.put_file(destination, path)
        if stored != sha:
            raise RegistryError(f"the blob {path} is damaged (its content hashes to {stored[:12]}, not "
                                f"{sha[:12]}); the copy kept the rows but not this file")
        copied += 1
        size += length
    return found, copied, size


def _blobs(folder: Path):
    for shard in sorted(folder.glob("[0-9a-f][0-9a-f]")):
        for path in sorted(shard.iterdir()):
            if path.is_file() and len(shard.name + path.name) == 64:
                yield path


def open_location(where: str, *, artifacts_dir: str | None = None, must_exist: bool = False):
    """A store for ``--from``/``--to``: a postgresql:// URL, or a folder (a registry's .mlops, or a project
    holding one) for the SQLite file (``must_exist``: one already there). A new PostgreSQL registry keeps
    its blobs in ``artifacts_dir``."""
    from mlops_nb.registry.home import ARTIFACTS_VAR, HOME_DIRNAME, find_home
    from mlops_nb.registry.store import Store

    if where.startswith(("postgresql://", "postgres://")):
        from mlops_nb.registry.postgres import PostgresStore

        previous = os.environ.get(ARTIFACTS_VAR)
        if artifacts_dir:
            os.environ[ARTIFACTS_VAR] = str(Path(artifacts_dir).expanduser().resolve())
        try:
            return PostgresStore(find_home(), where)
        finally:
            if artifacts_dir:
                if previous is None:
                    os.environ.pop(ARTIFACTS_VAR, None)
                else:
                    os.environ[ARTIFACTS_VAR] = previous
    path = Path(where).expanduser().resolve()
    if path.name != HOME_DIRNAME and (path / HOME_DIRNAME).is_dir():
        path = path / HOME_DIRNAME
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"{where} is a file: give a registry folder (.mlops) or a postgresql:// URL")
    if must_exist and not (path / "registry.db").is_file():
        raise InvalidInputError(f"--from {where}: there is no registry there ({path / 'registry.db'} does not "
                                "exist); give the .mlops folder of a project, or a postgresql:// URL")
    return Store(path)
