"""What tracking does for the whole process: a background writer, an exit handler, fork care.

The writer flushes values that waited ``FLUSH_SECONDS`` and renews the heartbeat
of idle runs; at exit every active run is ended (failed after an uncaught
exception); a forked child forgets its parent's runs.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time

from mlops_nb.tracking import run as run_module
from mlops_nb.tracking.run import forget_all
from mlops_nb.registry import runs

_hooks_installed = False
_writer_pid: int | None = None
_uncaught = threading.Event()


def _background_writer() -> None:
    """Flush values that have waited FLUSH_SECONDS, and beat the heartbeat of idle runs,
    so that a long silence (a slow fit) followed by a crash loses nothing already logged."""
    while True:
        time.sleep(run_module.FLUSH_SECONDS / 2)
        now = time.time()
        for run in list(run_module._all):
            try:
                if run._has_pending() and now - run._flushed_at >= run_module.FLUSH_SECONDS:
                    run.flush()
                elif now - run._heartbeat_at >= run_module.HEARTBEAT_SECONDS:
                    runs.write_batch(run.store, heartbeat=(run.id,))
                    run._heartbeat_at = now
            except Exception:  # the next flush in the user's thread reports the problem
                pass


def ensure_background_writer() -> None:
    global _writer_pid
    if _writer_pid != os.getpid():  # threads do not survive a fork: each process starts its own
        _writer_pid = os.getpid()
        threading.Thread(target=_background_writer, name="mlops-nb-writer", daemon=True).start()


def install() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_end_all_at_exit)
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        _uncaught.set()
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    os.register_at_fork(after_in_child=_forget_in_child)


def _end_all_at_exit() -> None:
    status = "failed" if _uncaught.is_set() else "finished"
    for run in reversed(list(run_module._all)):
        try:
            run.end(status, "the program ended with an uncaught exception" if status == "failed" else None)
        except Exception as exc:  # never hide the real exit reason behind ours
            print(f"mlops-nb: could not save run {run.name!r} at exit: {exc}", file=sys.stderr)


def _forget_in_child() -> None:
    # A forked child must not finish (or flush into) its parent's runs.
    forget_all()
