"""Experiments and runs: creating, finishing, writing batches, reading back."""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry import process
from mlops_nb.registry.artifacts import blob_path
from mlops_nb.registry.store import Store
from mlops_nb.registry.values import check_key, decode_param

RUN_KINDS = ("interactive", "pipeline", "step")
RUN_STATUSES = ("running", "finished", "failed", "interrupted")
DEFAULT_EXPERIMENT = "Default"
STALE_HEARTBEAT_S = 300.0

_ADJECTIVES = ("amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "fair", "gentle", "glad",
               "keen", "lively", "lucid", "merry", "nimble", "proud", "quick", "quiet", "rapid", "sharp",
               "shy", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "young")
_NOUNS = ("otter", "heron", "lynx", "finch", "badger", "falcon", "marten", "crane", "ibex", "koala",
          "lemur", "moth", "newt", "orca", "panda", "quail", "raven", "robin", "seal", "stork",
          "tapir", "trout", "viper", "walrus", "wren", "yak", "zebra", "bison", "gecko", "hare")


@dataclass(repr=False)
class Run:
    """A run as stored: its attributes and its params, latest metrics and tags."""

    id: str
    experiment: str
    name: str
    kind: str
    status: str
    start_time: float
    end_time: float | None
    parent_id: str | None = None
    error: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    env: dict = field(default_factory=dict)
    source: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, dict] = field(default_factory=dict)
    deleted_at: float | None = None  # when `runs rm` hid it; None for a run not deleted
    user: str | None = None          # who ran it ($MLOPS_NB_USER, else the login name)
    host: str | None = None          # the machine it ran on

    @property
    def duration(self) -> float | None:
        return None if self.end_time is None else self.end_time - self.start_time

    def __repr__(self) -> str:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in list(self.metrics.items())[:4])
        return (f"Run(id={self.id[:8]!r}, name={self.name!r}, experiment={self.experiment!r}, "
                f"status={self.status!r}{', ' + metrics if metrics else ''})")


# -- experiments ---------------------------------------------------------------

def ensure_experiment(store: Store, name: str) -> int:
    """The id of experiment ``name``, created if missing."""
    check_key(name, "experiment")
    row = store.query_one("SELECT id, deleted_at FROM experiments WHERE name = ?", (name,))
    if row and row[1] is None:
        return row[0]
    with store.transaction() as conn:
        # A deleted experiment comes back, empty of its deleted runs, when a run is started in it.
        conn.execute("UPDATE experiments SET deleted_at = NULL WHERE name = ?", (name,))
        conn.execute("INSERT INTO experiments (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (name, time.time()))
        return conn.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()[0]


def experiment_id(store: Store, name: str) -> int:
    """The id of an existing experiment, or NotFoundError naming the known ones."""
    row = store.query_one("SELECT id FROM experiments WHERE name = ?", (name,))
    if row is None:
        known = [r[0] for r in store.query("SELECT name FROM experiments ORDER BY name")]
        raise NotFoundError(f"no experiment named {name!r}; known experiments: {_listing(known)}")
    return row[0]


def list_experiments(store: Store) -> list[dict]:
    rows = store.query(
        "SELECT e.id, e.name, e.created_at, COUNT(r.id), MAX(r.start_time) FROM experiments e "
        "LEFT JOIN runs r ON r.experiment_id = e.id AND r.deleted_at IS NULL WHERE e.deleted_at IS NULL "
        "GROUP BY e.id ORDER BY e.name")
    return [dict(zip(("id", "name", "created_at", "runs", "last_run"), row)) for row in rows]


# -- runs ------------------------------------------------------------------------

def new_run_id() -> str:
    return os.urandom(16).hex()


def random_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}"


def create_run(store: Store, *, experiment_id: int, name: str | None = None, kind: str = "interactive",
               parent_id: str | None = None, git: tuple[str | None, bool | None] = (None, None),
               env: dict | None = None, source: str | None = None, run_id: str | None = None,
               pipeline: str | None = None, step: str | None = None, cache_key: str | None = None,
               cached_from: str | None = None) -> tuple[str, str]:
    """Insert a running run owned by this process; return (id, name)."""
    if kind not in RUN_KINDS:
        raise InvalidInputError(f"run kind {kind!r} is not one of {', '.join(RUN_KINDS)}")
    run_id = run_id or new_run_id()
    name = name or random_run_name()
    host, pid, token = process.own_identity()
    now = time.time()
    with store.transaction() as conn:
        if parent_id is not None and conn.execute("SELECT 1 FROM runs WHERE id = ?", (parent_id,)).fetchone() is None:
            raise NotFoundError(f"parent run {parent_id!r} does not exist")
        conn.execute(
            "INSERT INTO runs (id, experiment_id, name, kind, parent_id, status, start_time, git_commit, "
            "git_dirty, env, source, host, pid, pid_start, heartbeat, pipeline, step, cache_key, cached_from, "
            "user_name) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, experiment_id, name, kind, parent_id, now, git[0], git[1],
             json.dumps(env) if env else None, source, host, pid, token, now, pipeline, step, cache_key,
             cached_from, process.user()))
    return run_id, name


def write_batch(store: Store, *, params: Iterable[tuple] = (), tags: Iterable[tuple] = (),
                metrics: list[tuple] = (), heartbeat: Iterable[str] = ()) -> None:
    """Write buffered params ``(run, key, text, num, json)``, tags ``(run, key, value)`` and
    metrics ``(run, key, step, value, timestamp)`` in one transaction (joining the caller's)."""
    latest: dict[tuple[str, str], tuple] = {}
    for row in metrics:
        key = (row[0], row[1])
        seen = latest.get(key)
        if seen is None or (row[2], row[4]) >= (seen[2], seen[4]):
            latest[key] = row
    now = time.time()
    bulk = len(metrics) > BULK_ROWS  # PostgreSQL COPYs them, which a pipelined transaction cannot
    with store.transaction(pipeline=not bulk) as conn:
        if metrics:
            store.insert_many(conn, "metrics", ("run_id", "key", "step", "value", "timestamp"), metrics)
        with store.pipelined(conn):
            # One statement per table; the last of a key's values wins, as in the order they were logged.
            store.insert_many(conn, "params", ("run_id", "key", "value", "num", "json"), _last_of_each(params, 2),
                              "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, num = excluded.num, "
                              "json = excluded.json")
            store.insert_many(conn, "tags", ("run_id", "key", "value"), _last_of_each(tags, 2),
                              "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value")
            store.insert_many(
                conn, "latest_metrics", ("run_id", "key", "step", "value", "timestamp"), list(latest.values()),
                "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
                "timestamp = excluded.timestamp WHERE excluded.step > latest_metrics.step OR "
                "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)")
            conn.executemany("UPDATE runs SET heartbeat = ? WHERE id = ?", [(now, r) for r in heartbeat])


def _last_of_each(rows: Iterable[tuple], width: int) -> list[tuple]:
    """``rows`` with one row per key (its first ``width`` values), the last one given."""
    return list({row[:width]: row for row in rows}.values())


BULK_ROWS = 1000


def finish_run(store: Store, run_id: str, status: str, error: str | None = None) -> None:
    if status not in RUN_STATUSES or status == "running":
        raise InvalidInputError(f"a run ends as finished, failed or interrupted, not {status!r}")
    now = time.time()
    with store.transaction() as conn:
        conn.execute("UPDATE runs SET status = ?, end_time = ?, error = ?, heartbeat = ? WHERE id = ?",
                     (status, now, error, now, run_id))


def reap_interrupted(store: Store) -> int:
    """Mark runs whose owning process died as interrupted; return how many."""
    running = store.query("SELECT id, host, pid, pid_start, heartbeat, start_time FROM runs "
                          "WHERE status = 'running'")
    stale = time.time() - STALE_HEARTBEAT_S
    dead = [(row[4] or row[5], row[0]) for row in running
            if _owner_gone(process.is_alive(row[1], row[2], row[3]), row[4] or row[5], stale)]
    if dead:
        with store.transaction() as conn:
            conn.executemany(
                "UPDATE runs SET status = 'interrupted', end_time = ?, "
                "error = COALESCE(error, 'the process running it ended without finishing the run') "
                "WHERE id = ? AND status = 'running'", dead)
    return len(dead)


def _owner_gone(alive: bool | None, heartbeat: float, stale: float) -> bool:
    # On this host the pid tells; a run from another host (a container, a shared disk)
    # is judged by its heartbeat, which a live tracking process renews every 30 s.
    return alive is False or (alive is None and heartbeat < stale)


def resolve_run_id(store: Store, ref: str) -> str:
    """A run's id from its full id, a unique id prefix (4+ characters) or its name (the newest run of that
    name: a notebook run twice names its runs again)."""
    if not isinstance(ref, str) or not ref:
        raise InvalidInputError(f"a run is named by its id, an id prefix or its name, got {ref!r}")
    if store.query_one("SELECT 1 FROM runs WHERE id = ?", (ref,)):
        return ref
    matches: list[str] = []
    if len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref.lower()):
        low = ref.lower()
        matches = [r[0] for r in store.query("SELECT id FROM runs WHERE id >= ? AND id < ? LIMIT 5",
                                             (low, low + "g"))]
    if not matches:
        newest = store.query_one("SELECT id FROM runs WHERE name = ? ORDER BY start_time DESC LIMIT 1", (ref,))
        matches = [newest[0]] if newest else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise InvalidInputError(f"run {ref!r} is ambiguous: it matches {', '.join(m[:12] for m in matches)}; "
                                "give more characters of the id")
    raise NotFoundError(f"no run with id, id prefix or name {ref!r}; list runs with `mlops-nb runs ls`")


def get_run(store: Store, ref: str) -> Run:
    reap_interrupted(store)
    run_id = resolve_run_id(store, ref)
    row = store.query_one(
        "SELECT r.id, e.name, r.name, r.kind, r.status, r.start_time, r.end_time, r.parent_id, r.error, "
        "r.git_commit, r.git_dirty, r.env, r.source, r.deleted_at, r.user_name, r.host FROM runs r "
        "JOIN experiments e ON e.id = r.experiment_id WHERE r.id = ?", (run_id,))
    run = Run(*row[:9], git_commit=row[9], git_dirty=None if row[10] is None else bool(row[10]),
              env=json.loads(row[11]) if row[11] else {}, source=row[12], deleted_at=row[13], user=row[14],
              host=row[15])
    run.params = {k: decode_param(v, j) for k, v, j in
                  store.query("SELECT key, value, json FROM params WHERE run_id = ? ORDER BY key", (run_id,))}
    run.metrics = {k: _nan(v) for k, v in
                   store.query("SELECT key, value FROM latest_metrics WHERE run_id = ? ORDER BY key", (run_id,))}
    run.tags = dict(store.query("SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (run_id,)))
    run.artifacts = {name: {"sha256": sha, "size": size, "kind": kind} for name, sha, size, kind in store.query(
        "SELECT name, sha256, size, kind FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,))}
    return run


def metric_history(store: Store, run_id: str, key: str | None = None) -> list[tuple[str, int, float, float]]:
    """Every logged value: (key, step, value, timestamp), ordered by key and step."""
    sql = "SELECT key, step, value, timestamp FROM metrics WHERE run_id = ?"
    args: tuple = (run_id,)
    if key is not None:
        sql += " AND key = ?"
        args += (key,)
    return [(k, s, _nan(v), t) for k, s, v, t in store.query(sql + " ORDER BY key, step, timestamp", args)]


def metric_counts(store: Store, run_id: str) -> dict[str, int]:
    """How many values each metric of a run has."""
    return dict(store.query("SELECT key, COUNT(*) FROM metrics WHERE run_id = ? GROUP BY key", (run_id,)))


def run_name_and_experiment(store: Store, run_id: str) -> tuple[str, str] | None:
    row = store.query_one("SELECT r.name, e.name FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                          "WHERE r.id = ?", (run_id,))
    return (row[0], row[1]) if row else None


def count_pipeline_runs(store: Store, pipeline: str) -> int:
    return store.query_one("SELECT COUNT(*) FROM runs WHERE pipeline = ? AND kind = 'pipeline'", (pipeline,))[0]


def recent_pipeline_runs(store: Store, pipeline: str, limit: int = 5) -> list[dict]:
    """The newest runs of a pipeline, each with its step runs in the order they started."""
    found = []
    for run_id, name, status, start, end in store.query(
            "SELECT id, name, status, start_time, end_time FROM runs WHERE pipeline = ? AND kind = 'pipeline' "
            "ORDER BY start_time DESC LIMIT ?", (pipeline, limit)):
        steps = [{"run_id": s[0], "step": s[1], "status": s[2], "cached_from": s[3]} for s in store.query(
            "SELECT id, step, status, cached_from FROM runs WHERE parent_id = ? ORDER BY start_time", (run_id,))]
        reused = store.query_one("SELECT value FROM tags WHERE run_id = ? AND key = 'reused'", (run_id,))
        if not steps and reused:  # a rerun where every step was cached: the runs its steps reused
            steps = [{"run_id": used, "step": step, "status": "finished", "cached_from": used}
                     for step, used in json.loads(reused[0]).items()]
        found.append({"run_id": run_id, "name": name, "status": status, "start_time": start, "end_time": end,
                      "steps": steps})
    return found


def find_cached_step(store: Store, pipeline: str, step: str, cache_key: str) -> str | None:
    """The newest finished run of ``step`` with ``cache_key``."""
    row = store.query_one("SELECT id FROM runs WHERE pipeline = ? AND step = ? AND cache_key = ? AND "
                          "status = 'finished' AND deleted_at IS NULL ORDER BY start_time DESC LIMIT 1",
                          (pipeline, step, cache_key))
    return row[0] if row else None


def last_finished_step(store: Store, pipeline: str, step: str) -> str | None:
    row = store.query_one("SELECT id FROM runs WHERE pipeline = ? AND step = ? AND status = 'finished' "
                          "ORDER BY start_time DESC LIMIT 1", (pipeline, step))
    return row[0] if row else None


def last_measured_step(store: Store, pipeline: str, step: str) -> str | None:
    """The run that really measured the newest finished run of ``step`` (a cached run points at it)."""
    last = last_finished_step(store, pipeline, step)
    return computing_run(store, last) if last else None


def computing_run(store: Store, run_id: str) -> str:
    """The run that computed what ``run_id`` holds: itself, or the run its cache entry reuses (older
    registries chained cached runs to cached runs; the chain is followed to its end)."""
    seen = {run_id}
    while True:
        row = store.query_one("SELECT cached_from FROM runs WHERE id = ?", (run_id,))
        if row is None or not row[0] or row[0] in seen:
            return run_id
        run_id = row[0]
        seen.add(run_id)


def step_runs(store: Store, pipeline_run: str) -> list[tuple[str, str]]:
    """(step, run id) of each step run of a pipeline run, in the order they started."""
    return [tuple(row) for row in store.query("SELECT step, id FROM runs WHERE parent_id = ? AND kind = 'step' "
                                              "ORDER BY start_time, id", (pipeline_run,))]


def pipeline_file_of(store: Store, run_id: str) -> str | None:
    """The pipeline.yaml that a step run's pipeline run ran (its ``pipeline_file`` tag), or None."""
    row = store.query_one("SELECT t.value FROM runs r JOIN tags t ON t.run_id = COALESCE(r.parent_id, r.id) "
                          "AND t.key = 'pipeline_file' WHERE r.id = ?", (run_id,))
    return row[0] if row else None


def latest_metric(store: Store, run_id: str, key: str) -> float | None:
    row = store.query_one("SELECT value FROM latest_metrics WHERE run_id = ? AND key = ?", (run_id, key))
    return float(row[0]) if row and row[0] is not None else None


def copy_results(store: Store, from_run: str, to_run: str) -> None:
    """A cached run holds what the run it reuses measured and stored: latest metrics and artifacts."""
    with store.transaction() as conn:
        conn.execute("INSERT INTO latest_metrics (run_id, key, value, step, timestamp) "
                     "SELECT ?, key, value, step, timestamp FROM latest_metrics WHERE run_id = ? ON CONFLICT DO NOTHING", (to_run, from_run))
        conn.execute("INSERT INTO artifacts (run_id, name, sha256, size, created_at, kind) "
                     "SELECT ?, name, sha256, size, created_at, kind FROM artifacts WHERE run_id = ? "
                     "ON CONFLICT DO NOTHING", (to_run, from_run))


def _nan(value: float | None) -> float:
    # SQLite stores NaN as NULL; a metric value is never NULL otherwise.
    return float("nan") if value is None else value


def _listing(names: list[str], limit: int = 10) -> str:
    if not names:
        return "none yet"
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


ARTIFACT_KINDS = ("file", "figure", "table", "image", "text", "dict")


def record_artifact(store: Store, run_id: str, name: str, sha256: str, size: int, kind: str = "file") -> None:
    """Link stored content to a run under ``name``; ``kind`` says how to preview it (one of ARTIFACT_KINDS)."""
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}")
    with store.transaction() as conn:
        conn.execute("INSERT INTO artifacts (run_id, name, sha256, size, created_at, kind) VALUES (?, ?, ?, ?, ?, ?) "
                     "ON CONFLICT (run_id, name) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, "
                     "created_at = excluded.created_at, kind = excluded.kind", (run_id, name, sha256, size,
                                                                              time.time(), kind))


def executed_notebook(store: Store, ref: str) -> Path:
    """The notebook a pipeline step executed, with its outputs (a cached step: the run it reused)."""
    run_id = resolve_run_id(store, ref)
    for _ in range(20):  # a cached step points at the run that really executed
        row = store.query_one("SELECT parent_id, step, cached_from FROM runs WHERE id = ?", (run_id,))
        if row is None or not row[2]:
            break
        run_id = row[2]
    if row is None or not row[0] or not row[1]:
        raise NotFoundError(f"run {ref} is not a pipeline step, so it has no executed notebook")
    path = store.home / "runs" / row[0] / f"{row[1]}.ipynb"
    if not path.is_file():
        # Run on another machine (a team registry), or its folder cleaned: the copy kept with the run.
        kept = store.query_one("SELECT sha256 FROM artifacts WHERE run_id = ? AND name = ?",
                               (run_id, f"notebooks/{row[1]}.ipynb"))
        if kept and blob_path(store.artifacts_dir, kept[0]).is_file():
            return blob_path(store.artifacts_dir, kept[0])
        raise NotFoundError(f"the executed notebook of run {ref} is gone ({path} does not exist)")
    # Only the registry's own files: not a link someone put in place, nor anything it points outside to.
    if path.is_symlink() or not path.resolve().is_relative_to(store.home.resolve()):
        raise NotFoundError(f"the executed notebook of run {ref} is not a file of the registry ({path} is a link)")
    return path
