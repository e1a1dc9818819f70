"""A team's registry in PostgreSQL: the same schema and SQL as the SQLite file, through psycopg 3.

Every client (notebooks, CLI, a trigger watcher, CI, workers) talks to the database directly through a
small connection pool; there is no server of ours to run. The schema is migrated with the same numbered
migrations as SQLite (:mod:`mlops_nb.registry.schema`, translated by :mod:`mlops_nb.registry.dialect`),
its version kept in ``_registry`` and checked on connect. Where SQLite's single writer made a
read-then-write safe (a model's next version number), the transaction takes an advisory lock on what it
numbers. Artifacts live in a shared folder whose path the registry stores, so every client finds it.

Credentials come from the URL, ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads both); none is stored, and
every message names the database by its URL with the password masked.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

from mlops_nb.errors import RegistryError
from mlops_nb.registry.dialect import POSTGRES
from mlops_nb.registry.home import ARTIFACTS_VAR, mask_url, project_setting
from mlops_nb.registry.schema import APPLICATION_ID, LATEST_VERSION, MIGRATIONS

POOL_SIZE = 4
CONNECT_TIMEOUT_S = 10


class PostgresStore:
    """A registry in a PostgreSQL database; ``home`` is this machine's working folder (executed notebooks,
    kernel logs). The same interface as :class:`mlops_nb.registry.store.Store`."""

    backend = "postgresql"
    dialect = POSTGRES
    db_path = None

    def __init__(self, home: str | os.PathLike, url: str):
        try:
            import psycopg  # noqa: F401  (here to say what is missing, before anything else fails)
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise RegistryError(f"the registry {mask_url(url)} is PostgreSQL, which needs psycopg: "
                                "pip install 'mlops-nb[postgres]'") from None
        from mlops_nb.registry.store import prepare_home

        self.home = Path(home)
        self.url = url
        self.experiment_ids: dict[str, int] = {}
        self._types: dict[str, dict[str, str]] = {}
        self._local = threading.local()
        prepare_home(self.home)
        with self._errors("open"):
            self._check_and_migrate()
            self.artifacts_dir = self._artifact_root()
            self.pool = self._open_pool()
        try:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot create the registry's artifact folder {self.artifacts_dir} "
                                f"({exc.strerror}): mount the shared folder there, or set {ARTIFACTS_VAR} to "
                                "where it is mounted on this machine") from None

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r})"

    @property
    def location(self) -> str:
        return mask_url(self.url)

    # -- opening -------------------------------------------------------------

    def _connect(self):
        import psycopg

        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        _configure(conn)
        return conn

    def _open_pool(self):
        from psycopg_pool import ConnectionPool

        pool = ConnectionPool(self.url, min_size=1, max_size=POOL_SIZE, open=False, configure=_configure,
                              kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
                              name=f"mlops-nb {self.location}")
        pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        return pool

    def _check_and_migrate(self) -> None:
        with self._connect() as conn:
            version = self._version(conn)
            if version > LATEST_VERSION:
                raise RegistryError(
                    f"the registry {self.location} was written by a newer mlops-nb (schema version {version}; "
                    f"this mlops-nb knows up to {LATEST_VERSION}): upgrade with `pip install -U mlops-nb`")
            if version < LATEST_VERSION:
                with conn.transaction():
                    # One migrator at a time; another client may have migrated while we waited.
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (APPLICATION_ID,))
                    version = self._version(conn)
                    if version == 0:
                        conn.execute("CREATE TABLE _registry (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                        conn.execute("CREATE TABLE _migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, "
                                     "applied_at DOUBLE PRECISION NOT NULL)")
                        conn.execute("INSERT INTO _registry VALUES ('application_id', %s), ('schema_version', '0')",
                                     (str(APPLICATION_ID),))
                    for number in range(version, LATEST_VERSION):
                        name, statements = MIGRATIONS[number]
                        for statement in statements:
                            conn.execute(POSTGRES.ddl(statement), ())
                        conn.execute("INSERT INTO _migrations VALUES (%s, %s, %s)", (number + 1, name, time.time()))
                    conn.execute("UPDATE _registry SET value = %s WHERE key = 'schema_version'",
                                 (str(LATEST_VERSION),))

    def _version(self, conn) -> int:
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        if "_registry" not in tables:
            if tables:
                raise RegistryError(
                    f"{self.location} is a PostgreSQL database but not an mlops-nb registry (it has tables such "
                    f"as {sorted(tables)[0]!r}): create an empty database for the registry, e.g. "
                    "`createdb mlops`, and point MLOPS_NB_REGISTRY at it")
            return 0
        rows = dict(conn.execute("SELECT key, value FROM _registry WHERE key IN "
                                 "('application_id', 'schema_version')").fetchall())
        if rows.get("application_id") != str(APPLICATION_ID):
            raise RegistryError(f"{self.location} has a _registry table but is not an mlops-nb registry; "
                                "point MLOPS_NB_REGISTRY at another database")
        return int(rows.get("schema_version", 0))

    def _artifact_root(self) -> Path:
        """The shared artifact folder the registry names (set by its first client: ``$MLOPS_NB_ARTIFACTS``,
        the project's ``artifacts:`` line, else this home's ``artifacts``); ``$MLOPS_NB_ARTIFACTS`` on a
        machine that mounts it elsewhere says where."""
        chosen = os.environ.get(ARTIFACTS_VAR) or project_setting(self.home, "artifacts")
        with self._connect() as conn:
            conn.execute("INSERT INTO _registry VALUES ('artifact_root', %s) ON CONFLICT (key) DO NOTHING",
                         (str(Path(chosen or self.home / "artifacts").expanduser().resolve()),))
            stored = conn.execute("SELECT value FROM _registry WHERE key = 'artifact_root'").fetchone()[0]
        return Path(os.environ.get(ARTIFACTS_VAR) or stored).expanduser()

    # -- using ---------------------------------------------------------------

    @contextmanager
    def transaction(self, lock: str | None = None, pipeline: bool = True) -> Iterator["_Connection"]:
        """A write transaction on one of the pool's connections; nested calls (in the same thread) join the
        outer one. ``lock`` names what the transaction must have to itself until it ends (two clients
        numbering a model's next version at once would both pick the same). In pipeline mode (unless
        ``pipeline=False``, for a COPY), BEGIN, the statements whose results nobody reads, and COMMIT go out
        together."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            if lock:
                current.lock(lock)
            yield current
            return
        with self._errors("write to"), self.pool.connection() as raw, \
                (raw.pipeline() if pipeline else nullcontext()), raw.transaction():
            self._local.conn = conn = _Connection(raw)
            try:
                if lock:
                    conn.lock(lock)
                yield conn
            finally:
                self._local.conn = None

    def insert_many(self, conn: "_Connection", table: str, columns: tuple[str, ...], rows,
                    conflict: str = "") -> None:
        """Insert many rows in the transaction ``conn`` with a binary COPY, or, in a pipelined transaction
        (which cannot COPY), one statement per 50,000 rows with each column sent as an array; NaN as NULL,
        as SQLite stores it."""
        rows = list(rows)
        if not rows:
            return
        types = self._column_types(conn, table)
        if conn.raw._pipeline is None and not conflict:
            binary = {"text": "text", "bigint": "int8", "double precision": "float8"}
            doubles = [i for i, c in enumerate(columns) if types[c] == "double precision"]
            with conn.raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([binary[types[c]] for c in columns])
                for row in rows:
                    if any(row[i] != row[i] for i in doubles):  # NaN
                        row = [None if i in doubles and v != v else v for i, v in enumerate(row)]
                    copy.write_row(row)
            return
        arrays = ", ".join(f"?::{types[c]}[]" for c in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) {conflict}"
        doubles = [types[c] == "double precision" for c in columns]
        for start in range(0, len(rows), 50_000):
            arrays = [[None if v != v else v for v in column] if double else list(column)  # NaN != NaN
                      for column, double in zip(zip(*rows[start:start + 50_000]), doubles)]
            conn.execute(sql, arrays)

    def _column_types(self, conn: "_Connection", table: str) -> dict[str, str]:
        known = self._types.get(table)
        if known is None:
            known = self._types[table] = dict(conn.raw.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s", (table,)).fetchall())
        return known

    def pipelined(self, conn: "_Connection"):
        """Statements in this block whose results nobody reads go to the server together (a pipelined
        transaction's already do: a nested pipeline would wait for the server as it ends)."""
        return nullcontext() if conn.raw._pipeline is not None else conn.raw.pipeline()

    def columns(self, table: str) -> list[str]:
        return [row[0] for row in self.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? ORDER BY ordinal_position", (table,))]

    def stream(self, sql: str, params: tuple | list = (), size: int = 10_000) -> Iterator[list[tuple]]:
        """The rows of a large query in batches of ``size``, through a server-side cursor."""
        with self._errors("read"), self.pool.connection() as raw, raw.transaction():
            with raw.cursor(name="mlops_nb_stream") as cursor:
                cursor.execute(POSTGRES.sql(sql), _clean(params))
                while batch := cursor.fetchmany(size):
                    yield batch

    def reset_ids(self, conn: "_Connection", table: str) -> None:
        """After rows were inserted with their ids: the identity sequence counts on from the largest."""
        conn.raw.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"GREATEST((SELECT MAX(id) FROM {table}), 1))")

    def query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        current = getattr(self._local, "conn", None)
        if current is not None:
            return current.execute(sql, params).fetchall()
        with self._errors("read"), self.pool.connection() as raw:
            return _Connection(raw).execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list = ()) -> tuple | None:
        current = getattr(self._local, "conn", None)
        if current is not None:
            return current.execute(sql, params).fetchone()
        with self._errors("read"), self.pool.connection() as raw:
            return _Connection(raw).execute(sql, params).fetchone()

    def session_lock(self, name: str) -> "SessionLock":
        """A lock on ``name`` that every client of this registry sees (one pipeline run at a time)."""
        return SessionLock(self, name)

    def query_all(self, statements: list[tuple[str, tuple]]) -> list[list[tuple]]:
        """The rows of several reads, run at once (:meth:`start_reads`)."""
        return [future.result() for future in self.start_reads(statements)]

    def start_reads(self, statements: list[tuple[str, tuple]]) -> list:
        """Reads started at once on connections of the pool (each its own server process): the futures of
        their rows. In a write transaction, they are run one after the other on its connection."""
        from mlops_nb.registry.store import _readers, done

        if getattr(self._local, "conn", None) is not None:
            return [done(self.query(sql, params)) for sql, params in statements]
        return [_readers().submit(self.query, sql, params) for sql, params in statements]

    def close(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """A database that cannot be reached, or refuses, in one line naming it (password masked)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            yield
        except PoolTimeout:
            raise RegistryError(f"cannot {doing} the registry {self.location}: no connection within "
                                f"{CONNECT_TIMEOUT_S} s; is the server up and reachable?") from None
        except (psycopg.OperationalError, psycopg.errors.InsufficientPrivilege) as exc:
            first = mask_url(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            hint = "; is the server up, and does it take connections from here?" if "refused" in first else ""
            raise RegistryError(f"cannot {doing} the registry {self.location}: {first}{hint}") from None


class SessionLock:
    """An advisory lock held by a connection of its own: PostgreSQL drops it when that connection ends, so
    a holder that dies (even by SIGKILL, or its machine by TCP keepalive) never leaves it held."""

    def __init__(self, store: PostgresStore, name: str):
        self.store, self.name = store, name
        self.conn = None

    def acquire(self) -> bool:
        """Take the lock if it is free; False when another client holds it."""
        import psycopg

        from mlops_nb.registry.process import hostname

        # The holder says who it is in its application name, for holder() on the other side.
        label = f"mlops-nb {os.getpid()}@{hostname()}"[:63]
        with self.store._errors("lock"):
            conn = psycopg.connect(self.store.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name=label, keepalives=1, keepalives_idle=10,
                                   keepalives_interval=5, keepalives_count=3)
            if not conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self.name,)).fetchone()[0]:
                conn.close()
                return False
        self.conn = conn
        return True

    def holder(self) -> str:
        """Who holds the lock: "PID on HOST", or "?" if it was just released."""
        key = self.store.query_one("SELECT hashtextextended(?, 0)", (self.name,))[0] & 0xFFFFFFFFFFFFFFFF
        row = self.store.query_one(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = CAST(? AS oid) "
            "AND l.objid = CAST(? AS oid) LIMIT 1", (key >> 32, key & 0xFFFFFFFF))
        if not row or not (row[0] or "").startswith("mlops-nb "):
            return "?"
        pid, _, host = row[0].removeprefix("mlops-nb ").partition("@")
        return f"{pid} on {host}"

    def release(self) -> None:
        if self.conn is not None:
            self.conn.close()  # the lock goes with the connection
            self.conn = None


class _Connection:
    """A pooled connection as the registry's SQL uses it: ``?`` placeholders, ``execute``/``executemany``."""

    def __init__(self, raw):
        self.raw = raw

    def execute(self, sql: str, params: tuple | list = ()):
        return _Cursor(self.raw.execute(POSTGRES.sql(sql), _clean(params)), self.raw)

    def executemany(self, sql: str, rows) -> None:
        rows = [_clean(row) for row in rows]
        if not rows:
            return
        sql = POSTGRES.sql(sql)
        if self.raw._pipeline is not None and len(rows) <= 100:
            for row in rows:  # queued in the pipeline (executemany would wait for the server at its end)
                self.raw.execute(sql, row)
        else:
            self.raw.cursor().executemany(sql, rows)

    def lock(self, name: str) -> None:
        self.raw.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))


class _Cursor:
    """A cursor of a pipelined transaction: fetching waits for its results, and so does its rowcount."""

    def __init__(self, cursor, raw):
        self._cursor, self._raw = cursor, raw

    @property
    def rowcount(self) -> int:
        if self._raw._pipeline is not None:
            self._raw._pipeline.sync()
        return self._cursor.rowcount

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()

    def __iter__(self):
        return iter(self._cursor)


def _clean(params):
    """SQLite's way with values: NaN is stored as NULL, and booleans are the integers 0 and 1."""
    if isinstance(params, dict):
        return params
    return [None if type(v) is float and v != v else int(v) if type(v) is bool else v for v in params]


def _configure(conn) -> None:
    """Numbers come back as Python floats and ints, as from SQLite (SUM and AVG of integers are NUMERIC).
    No JIT compilation: the registry's statements take milliseconds, less than compiling them would."""
    from psycopg.types.numeric import FloatLoader

    conn.adapters.register_loader("numeric", FloatLoader)
    conn.execute("SET jit = off")
