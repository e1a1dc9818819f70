"""One run at a time per pipeline: an exclusive lock on a file under .mlops/locks/, or, on a team's
PostgreSQL registry, an advisory lock in the database that every machine sees.

The operating system drops a process's locks when it dies (even by SIGKILL), and PostgreSQL a
connection's, so a dead watcher or runner never leaves a lock that blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mlops_nb.errors import MlopsError


class PipelineBusy(MlopsError):
    """Another process is running this pipeline."""


class PipelineLock:
    def __init__(self, home: Path, pipeline: str):
        from mlops_nb.registry.home import registry_url

        self.path = Path(home) / "locks" / f"{pipeline}.lock"
        self.pipeline = pipeline
        self.handle = None
        self.shared = None
        if registry_url(home):
            from mlops_nb.registry.store import open_store

            self.shared = open_store(home).session_lock(f"pipeline:{pipeline}")

    def acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it."""
        if self.shared is not None:
            return self.shared.acquire()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle
        return True

    def holder(self) -> str:
        if self.shared is not None:
            return self.shared.holder()
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self.shared is not None:
            self.shared.release()
        if self.handle is not None:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    def __enter__(self) -> "PipelineLock":
        if not self.acquire():
            raise PipelineBusy(f"pipeline {self.pipeline!r} is already running (process {self.holder()}); wait for "
                               "it to finish, or stop it")
        return self

    def __exit__(self, *exc) -> None:
        self.release()
