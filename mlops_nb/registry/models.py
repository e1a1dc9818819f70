"""Models, their versions and aliases, with an alias history that makes rollback possible.

A model version points at a model logged by a run (its artifact's sha256 and its
signature). An alias (``production``, ``staging``, any name) points at one version;
every change is appended to ``alias_history``, and rollback replays that history
as a stack: ``set`` pushes, ``rollback`` pops, so rolling back twice walks back
two promotions.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry.artifacts import blob_path
from mlops_nb.registry.process import who
from mlops_nb.registry.runs import resolve_run_id
from mlops_nb.registry.store import Store

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run_id: str
    source: str
    flavor: str
    sha256: str
    signature: dict | None
    created_at: float
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def __repr__(self) -> str:
        aliases = f", aliases={list(self.aliases)}" if self.aliases else ""
        return (f"ModelVersion({self.ref!r}, run={self.run_id[:8]!r}, source={self.source!r}, "
                f"flavor={self.flavor!r}{aliases})")


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            f"model name {name!r} is not valid: use letters, digits, '_', '-' and '.', without '/' or '@'")
    return name


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias == "latest":
        raise InvalidInputError(
            f"alias {alias!r} is not valid: start with a letter, then letters, digits, '_' or '-' "
            "('latest' is reserved for the newest version)")
    return alias


def record_logged_model(store: Store, run_id: str, name: str, flavor: str, sha256: str,
                        signature: dict | None) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO logged_models (run_id, name, flavor, sha256, signature, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, name) DO UPDATE SET flavor = excluded.flavor, "
            "sha256 = excluded.sha256, signature = excluded.signature, created_at = excluded.created_at",
            (run_id, name, flavor, sha256, json.dumps(signature) if signature else None, time.time()))


def register_model(store: Store, run_ref: str, name: str, *, source: str | None = None) -> ModelVersion:
    """Register the model a run logged as a new version of model ``name``.

    ``source`` picks one of the run's logged models; by default the one called
    ``name``, else the run's only one.
    """
    check_model_name(name)
    run_id = resolve_run_id(store, run_ref)
    logged = store.query("SELECT name, flavor, sha256, signature FROM logged_models WHERE run_id = ? ORDER BY name",
                         (run_id,))
    if not logged:
        raise NotFoundError(f"run {run_id[:8]} logged no model: call mlops.log_model(estimator, name) in the run first")
    names = [row[0] for row in logged]
    wanted = source or (name if name in names else names[0] if len(names) == 1 else None)
    if wanted not in names:
        raise NotFoundError(f"run {run_id[:8]} logged models {', '.join(map(repr, names))}; pass "
                            f"source=<one of them> to choose which becomes {name!r}")
    _, flavor, sha, signature = logged[names.index(wanted)]
    if not blob_path(store.artifacts_dir, sha).is_file():
        raise NotFoundError(f"the model {wanted!r} that run {run_id[:8]} logged is missing from the registry "
                            f"({blob_path(store.artifacts_dir, sha)}); log it again, then register it")
    now = time.time()
    with store.transaction(lock=f"model:{name}") as conn:  # one version number per version
        conn.execute("INSERT INTO models (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, now))
        version = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?",
                               (name,)).fetchone()[0]
        conn.execute("INSERT INTO model_versions (name, version, run_id, source, flavor, sha256, signature, "
                     "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (name, version, run_id, wanted, flavor, sha, signature, now))
    return get_version(store, name, version)


def get_version(store: Store, name: str, version: int) -> ModelVersion:
    row = store.query_one("SELECT name, version, run_id, source, flavor, sha256, signature, created_at "
                          "FROM model_versions WHERE name = ? AND version = ?", (name, version))
    if row is None:
        _require_model(store, name)
        known = [r[0] for r in store.query("SELECT version FROM model_versions WHERE name = ? ORDER BY version",
                                           (name,))]
        raise NotFoundError(f"model {name!r} has no version {version}; its versions: "
                            f"{', '.join(map(str, known)) or 'none'}")
    aliases = tuple(r[0] for r in store.query("SELECT alias FROM aliases WHERE name = ? AND version = ? "
                                              "ORDER BY alias", (name, version)))
    return ModelVersion(*row[:6], json.loads(row[6]) if row[6] else None, row[7], aliases)


def resolve_model(store: Store, ref: str) -> ModelVersion:
    """``name@alias``, ``name/3`` or ``name`` (its newest version) -> the version."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInputError(f"a model is named 'name@alias', 'name/version' or 'name', got {ref!r}")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        if alias == "latest":
            return get_version(store, name, _latest_version(store, name))
        return get_version(store, name, alias_version(store, name, alias))
    if "/" in ref:
        name, version = ref.rsplit("/", 1)
        if not re.fullmatch(r"[0-9]{1,18}", version):
            raise InvalidInputError(f"model version in {ref!r} must be a number, e.g. {name}/3")
        return get_version(store, name, int(version))
    return get_version(store, ref, _latest_version(store, ref))


def alias_version(store: Store, name: str, alias: str) -> int:
    row = store.query_one("SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias))
    if row is None:
        _require_model(store, name)
        known = [r[0] for r in store.query("SELECT alias FROM aliases WHERE name = ? ORDER BY alias", (name,))]
        raise NotFoundError(f"model {name!r} has no alias {alias!r}; its aliases: {', '.join(known) or 'none yet'}"
                            f" (set one with `mlops-nb models promote {name} <version> --alias {alias}`)")
    return row[0]


def alias_version_or_none(store: Store, name: str, alias: str) -> int | None:
    """The version ``name@alias`` points at, or None when the alias is not set."""
    row = store.query_one("SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias))
    return row[0] if row else None


def versions_with_metrics(store: Store, name: str) -> tuple[list[ModelVersion], dict[int, dict]]:
    """Every version of ``name``, and the latest metrics of the run that logged each one."""
    from mlops_nb.registry.runs import get_run

    versions = list_versions(store, name)
    return versions, {v.version: get_run(store, v.run_id).metrics for v in versions}


def set_alias(store: Store, name: str, version: int, alias: str = "production", *,
              reason: str | None = None) -> ModelVersion:
    """Point ``alias`` at ``version`` and record the change."""
    check_alias(alias)
    version = _check_version(version)
    get_version(store, name, version)
    now = time.time()
    with store.transaction(lock=f"alias:{name}@{alias}") as conn:
        previous = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias)).fetchone()
        conn.execute("INSERT INTO aliases (name, alias, version, updated_at) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, "
                     "updated_at = excluded.updated_at", (name, alias, version, now))
        conn.execute("INSERT INTO alias_history (name, alias, action, version, previous, at, reason, user_name, host) "
                     "VALUES (?, ?, 'set', ?, ?, ?, ?, ?, ?)",
                     (name, alias, version, previous[0] if previous else None, now, reason, *who()))
    return get_version(store, name, version)


def alias_moves_between(store: Store, since: float, until: float) -> list[dict]:
    """Every alias change (set or rollback) of any model between two times, oldest first."""
    rows = store.query("SELECT name, alias, action, version, previous, at FROM alias_history WHERE at >= ? AND "
                       "at <= ? ORDER BY id", (since, until))
    return [dict(zip(("name", "alias", "action", "version", "previous", "at"), row)) for row in rows]


def rollback_target(store: Store, name: str, alias: str = "production") -> int:
    """The version a rollback of ``name@alias`` would return to (nothing moves)."""
    check_alias(alias)
    current = alias_version(store, name, alias)
    stack = _stack_of(store.query(_HISTORY_SQL, (name, alias)))
    if len(stack) < 2:
        raise InvalidInputError(f"{name}@{alias} (version {current}) has no earlier version to roll back to")
    return stack[-2]


def rollback(store: Store, name: str, alias: str = "production", *, reason: str | None = None) -> ModelVersion:
    """Point ``alias`` back at the version it held before the current one."""
    check_alias(alias)
    with store.transaction(lock=f"alias:{name}@{alias}") as conn:
        current = alias_version(store, name, alias)
        stack = _alias_stack(conn, name, alias)
        if len(stack) < 2:
            raise InvalidInputError(f"{name}@{alias} (version {current}) has no earlier version to roll back to")
        target = stack[-2]
        now = time.time()
        conn.execute("UPDATE aliases SET version = ?, updated_at = ? WHERE name = ? AND alias = ?",
                     (target, now, name, alias))
        conn.execute("INSERT INTO alias_history (name, alias, action, version, previous, at, reason, user_name, host) "
                     "VALUES (?, ?, 'rollback', ?, ?, ?, ?, ?, ?)", (name, alias, target, current, now, reason, *who()))
    return get_version(store, name, target)


def alias_history(store: Store, name: str, alias: str | None = None) -> list[dict]:
    _require_model(store, name)
    sql = "SELECT alias, action, version, previous, at, reason, user_name, host FROM alias_history WHERE name = ?"
    args: tuple = (name,)
    if alias is not None:
        sql += " AND alias = ?"
        args += (alias,)
    rows = store.query(sql + " ORDER BY id", args)
    return [dict(zip(("alias", "action", "version", "previous", "at", "reason", "user", "host"), row)) for row in rows]


def list_models(store: Store) -> list[dict]:
    rows = store.query(
        "SELECT m.name, m.created_at, COUNT(v.version), MAX(v.version), MAX(v.created_at) FROM models m "
        "LEFT JOIN model_versions v ON v.name = m.name GROUP BY m.name ORDER BY m.name")
    aliases: dict[str, dict[str, int]] = {}
    for name, alias, version in store.query("SELECT name, alias, version FROM aliases ORDER BY alias"):
        aliases.setdefault(name, {})[alias] = version
    return [{"name": name, "created_at": created, "versions": count, "latest_version": latest,
             "updated_at": updated, "aliases": aliases.get(name, {})}
            for name, created, count, latest, updated in rows]


def list_versions(store: Store, name: str) -> list[ModelVersion]:
    _require_model(store, name)
    versions = [r[0] for r in store.query("SELECT version FROM model_versions WHERE name = ? ORDER BY version",
                                          (name,))]
    return [get_version(store, name, v) for v in versions]


_HISTORY_SQL = "SELECT action, version FROM alias_history WHERE name = ? AND alias = ? ORDER BY id"


def _alias_stack(conn, name: str, alias: str) -> list[int]:
    return _stack_of(conn.execute(_HISTORY_SQL, (name, alias)).fetchall())


def _stack_of(history: list[tuple]) -> list[int]:
    """The versions an alias returns to, newest last: ``set`` pushes, ``rollback`` pops."""
    stack: list[int] = []
    for action, version in history:
        if action == "set":
            if not stack or stack[-1] != version:
                stack.append(version)
        elif action == "rollback" and stack:
            stack.pop()
    return stack


def _latest_version(store: Store, name: str) -> int:
    _require_model(store, name)
    row = store.query_one("SELECT MAX(version) FROM model_versions WHERE name = ?", (name,))
    if row[0] is None:
        raise NotFoundError(f"model {name!r} has no versions yet")
    return row[0]


def _require_model(store: Store, name: str) -> None:
    if store.query_one("SELECT 1 FROM models WHERE name = ?", (name,)) is None:
        known = [r[0] for r in store.query("SELECT name FROM models ORDER BY name LIMIT 20")]
        raise NotFoundError(f"no model named {name!r}; registered models: {', '.join(map(repr, known)) or 'none yet'}")


def _check_version(version: object) -> int:
    if isinstance(version, str) and re.fullmatch(r"[0-9]{1,18}", version):
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 1 << 62:
        raise InvalidInputError(f"model version must be a positive integer, got {version!r}")
    return version
