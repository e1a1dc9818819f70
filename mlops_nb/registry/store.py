"""The SQLite file at the centre: opening, checking, migrating, and transactions.

One :class:`Store` per registry file per process (see :func:`open_store`). Writes
go through :meth:`Store.transaction`, which takes SQLite's write lock up front
(``BEGIN IMMEDIATE``) so that concurrent writers queue on the busy timeout instead
of failing with ``database is locked`` halfway through.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator

from mlops_nb.errors import RegistryError
from mlops_nb.registry.dialect import SQLITE
from mlops_nb.registry.schema import APPLICATION_ID, LATEST_VERSION, MIGRATIONS

DB_NAME = "registry.db"
BUSY_TIMEOUT_S = 60.0

_GITIGNORE = "# Created by mlops-nb: the registry is local state, not source.\n*\n"


class Store:
    """A registry file: a SQLite database plus the content-addressed artifact folder.

    :class:`mlops_nb.registry.postgres.PostgresStore` is the same for a team's PostgreSQL database; the
    rest of ``registry/`` uses either through ``transaction``, ``query``, ``query_one`` and ``dialect``.
    """

    backend = "sqlite"
    dialect = SQLITE

    def __init__(self, home: str | os.PathLike):
        self.home = Path(home)
        self.db_path = self.home / DB_NAME
        self.artifacts_dir = self.home / "artifacts"
        self._lock = threading.RLock()
        self._depth = 0
        self.experiment_ids: dict[str, int] = {}  # a cache for callers; dies with this connection
        self._readers = threading.local()         # each reading thread's connection (query_all)
        self._read_conns: list[sqlite3.Connection] = []
        self._prepare_home()
        self.conn = self._connect()
        self._check_and_migrate()
        from mlops_nb.registry.artifacts import clean_stale_tmp

        clean_stale_tmp(self.artifacts_dir)  # what writers that died left half-written

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    @property
    def location(self) -> str:
        """Where the database is, as messages name it."""
        return str(self.db_path)

    # -- opening -------------------------------------------------------------

    def _prepare_home(self) -> None:
        prepare_home(self.home)
        try:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
            if not self.db_path.exists():
                _make_private(self.db_path, folder=False)  # SQLite gives its -wal and -shm files the same mode
        except OSError as exc:
            raise RegistryError(f"cannot create the registry folder {self.home}: {exc.strerror}") from None

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot open the registry {self.db_path}: {exc}") from None
        try:
            _retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA cache_size=-32000")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "readonly" in str(exc) or "unable to open" in str(exc):
                raise RegistryError(f"cannot open the registry {self.db_path} for writing ({exc}): check its owner "
                                    "and permissions, or point --home/MLOPS_NB_HOME elsewhere") from None
            raise RegistryError(
                f"{self.db_path} is not an mlops-nb registry ({exc}); move it away or point "
                "--home/MLOPS_NB_HOME at another folder") from None
        return conn

    def _check_and_migrate(self) -> None:
        app_id, version = self._identity()
        if version > LATEST_VERSION:
            raise RegistryError(
                f"{self.db_path} was written by a newer mlops-nb (schema version {version}; this "
                f"mlops-nb knows up to {LATEST_VERSION}): upgrade with `pip install -U mlops-nb`")
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and self._has_foreign_tables()):
            raise RegistryError(
                f"{self.db_path} is a SQLite file but not an mlops-nb registry; move it away or "
                "point --home/MLOPS_NB_HOME at another folder")
        if version < LATEST_VERSION:
            self._migrate()

    def _identity(self) -> tuple[int, int]:
        app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        return app_id, version

    def _has_foreign_tables(self) -> bool:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'").fetchall()
        return bool(rows)

    def _migrate(self) -> None:
        # One transaction per migration, re-reading the version inside it: another
        # process may have migrated while we waited for the lock.
        while True:
            with self.transaction() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version >= LATEST_VERSION:
                    return
                if version == 0:
                    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    conn.execute("CREATE TABLE IF NOT EXISTS _migrations ("
                                 "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
                name, statements = MIGRATIONS[version]
                for statement in filter(None, map(SQLITE.ddl, statements)):
                    conn.execute(statement)
                conn.execute("INSERT INTO _migrations VALUES (?, ?, ?)", (version + 1, name, time.time()))
                conn.execute(f"PRAGMA user_version={version + 1}")

    # -- using ---------------------------------------------------------------

    @contextmanager
    def transaction(self, lock: str | None = None, pipeline: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested calls join the outer one. ``lock`` names what the transaction must
        have to itself (a model's version numbers); SQLite's transactions already have the whole file.
        ``pipeline`` matters to PostgreSQL only (see ``PostgresStore.transaction``)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            try:
                _retry_busy(lambda: self.conn.execute("BEGIN IMMEDIATE"))
            except sqlite3.OperationalError as exc:
                raise self._write_error(exc) from None
            self._depth = 1
            try:
                yield self.conn
                _retry_busy(lambda: self.conn.execute("COMMIT"))
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.OperationalError):
                    raise self._write_error(exc) from None
                raise
            finally:
                self._depth = 0

    def _rollback(self) -> None:
        # SQLite may have rolled back by itself (a full disk does): a second ROLLBACK would
        # replace its message with "no transaction is active".
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _write_error(self, exc: sqlite3.OperationalError) -> Exception:
        """What a failed write means for the user, in one line; anything else stays a bug."""
        text = str(exc)
        if "full" in text:
            return RegistryError(f"cannot write to the registry {self.db_path}: the disk is full ({text}); free "
                                 "some space and try again (nothing stored before was lost)")
        if "readonly" in text or "read-only" in text:
            return RegistryError(f"cannot write to the registry {self.db_path}: it is read-only for you ({text}); "
                                 "check its owner and permissions, or point --home/MLOPS_NB_HOME elsewhere")
        return exc

    def insert_many(self, conn, table: str, columns: tuple[str, ...], rows, conflict: str = "") -> None:
        """Insert many rows in the transaction ``conn``, ``conflict`` being an ``ON CONFLICT ...`` clause
        (PostgreSQL COPYs them, or sends one array per column; no two rows may then hit the same key)."""
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                         f"{conflict}", rows)

    def pipelined(self, conn):
        """Statements in this block whose results nobody reads go out together (PostgreSQL's pipeline mode;
        SQLite has no round trips to save)."""
        return nullcontext()

    def columns(self, table: str) -> list[str]:
        """The table's columns, in order."""
        return [row[1] for row in self.query(f"PRAGMA table_info({table})")]

    def stream(self, sql: str, params: tuple | list = (), size: int = 10_000) -> Iterator[list[tuple]]:
        """The rows of a large query in batches of ``size``, read through a connection of their own."""
        conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S)
        try:
            cursor = conn.execute(sql, params)
            while batch := cursor.fetchmany(size):
                yield batch
        finally:
            conn.close()

    def reset_ids(self, conn, table: str) -> None:
        """After rows were inserted with their ids: new rows count on from the largest (SQLite always does)."""

    def query(self, sql: str, params: tuple | list | dict = ()) -> list[tuple]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def query_all(self, statements: list[tuple[str, tuple]]) -> list[list[tuple]]:
        """The rows of several reads, run at once (:meth:`start_reads`)."""
        return [future.result() for future in self.start_reads(statements)]

    def start_reads(self, statements: list[tuple[str, tuple]]) -> list[Future]:
        """Reads started at once, each on a connection of its own (SQLite computes each in its own thread
        while Python builds another's rows): the futures of their rows. In a write transaction, they are
        run one after the other on its connection."""
        if self._depth:
            return [done(self.query(sql, params)) for sql, params in statements]
        return [_readers().submit(self._read, sql, params) for sql, params in statements]

    def _read(self, sql: str, params) -> list[tuple]:
        readers = self._readers.__dict__
        conn = readers.get("conn")
        if conn is None:
            conn = readers["conn"] = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            conn.execute("PRAGMA temp_store=MEMORY")  # as the main connection: sorts and pages in memory
            conn.execute("PRAGMA cache_size=-32000")
            self._read_conns.append(conn)
        return conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list | dict = ()) -> tuple | None:
        with self._lock:
            return self.conn.execute(sql, params).fetchone()

    def integrity_check(self) -> str:
        return self.query_one("PRAGMA integrity_check")[0]

    def close(self) -> None:
        with self._lock:
            self.conn.close()
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()


GROUP_VAR = "MLOPS_NB_GROUP"


def prepare_home(home: Path) -> None:
    """Make the home folder (private to its owner, or its group) with a .gitignore that keeps it out of git."""
    if home.exists() and not home.is_dir():
        raise RegistryError(f"{home} is a file, not a registry folder: point --home/MLOPS_NB_HOME at a folder")
    try:
        if not home.exists():
            _make_private(home, folder=True)
    except OSError as exc:
        raise RegistryError(f"cannot create the registry folder {home}: {exc.strerror}") from None
    ignore = home / ".gitignore"
    if not ignore.exists():
        try:
            ignore.write_text(_GITIGNORE)
        except OSError:
            pass  # read-only checkouts still work; the file is a courtesy


def _make_private(path: Path, *, folder: bool) -> None:
    """Make a registry's folder or file readable by its owner only, or by the group ``$MLOPS_NB_GROUP``
    names (for a team sharing one machine)."""
    group = os.environ.get(GROUP_VAR) or None
    gid = -1
    if group is not None:
        import grp

        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise RegistryError(f"{GROUP_VAR}={group}: no such group on this machine; create it or unset "
                                f"{GROUP_VAR} for a registry of your own") from None
    mode = (0o2770 if group else 0o700) if folder else (0o660 if group else 0o600)
    if folder:
        path.mkdir(parents=True, exist_ok=True)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, mode))
    if group is not None:
        os.chown(path, -1, gid)
    os.chmod(path, mode)  # mkdir and open are limited by the umask; say exactly what we mean


def _retry_busy(action, deadline_s: float = BUSY_TIMEOUT_S) -> Any:
    """Run ``action``, retrying while SQLite reports the database busy or locked.

    The connection's busy timeout already waits; this catches the cases where SQLite
    gives up at once (e.g. a lock upgrade during WAL recovery) so the user never sees
    ``database is locked`` for ordinary contention.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if "locked" not in message and "busy" not in message:
                raise
            if time.monotonic() > deadline:
                raise RegistryError(f"the registry stayed locked for over {deadline_s:.0f} s by another "
                                    "process; is a run stuck? ({message})") from None
            time.sleep(random.uniform(0.005, 0.05))


_pool = None
_pool_lock = threading.Lock()


def done(value) -> Future:
    """A future that already has its result."""
    future: Future = Future()
    future.set_result(value)
    return future


def _readers():
    """A few threads for reads that run at once (``query_all``), started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(3, thread_name_prefix="mlops-nb-read")
        return _pool


_stores: dict[tuple[Path, str | None, int], Store] = {}
_stores_lock = threading.Lock()


def open_store(home: str | os.PathLike) -> Store:
    """The process's store for ``home``, opened once (and again after a fork): the SQLite file in it, or the
    PostgreSQL registry that ``$MLOPS_NB_REGISTRY`` or the project's ``mlops-nb.yaml`` names for it."""
    from mlops_nb.registry.home import registry_url

    path = Path(home).resolve()
    url = registry_url(path)
    key = (path, url, os.getpid())
    with _stores_lock:
        store = _stores.get(key)
        if store is not None and url is None and not store.db_path.exists():
            # The folder was deleted under us: start a new registry rather than write into a ghost.
            store.close()
            store = None
        if store is None:
            if url is None:
                store = Store(path)
            else:
                from mlops_nb.registry.postgres import PostgresStore

                store = PostgresStore(path, url)
            _stores[key] = store
        return store


def forget_stores() -> None:
    """Close every store this process opened (tests; switching homes)."""
    with _stores_lock:
        for (_, _, owner), store in _stores.items():
            if owner == os.getpid():
                store.close()
        _stores.clear()
