"""Which process owns a running run, and whether it is still alive.

A run records its host, pid and the pid's start time. A run whose process is gone
(or whose pid now belongs to a newer process) was interrupted, even if nobody got
to write that down.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache


USER_VAR = "MLOPS_NB_USER"


@lru_cache(maxsize=1)
def hostname() -> str:
    return socket.gethostname()


def user() -> str:
    """Who this process works for, as the registry records it: ``$MLOPS_NB_USER`` (CI names itself, a shared
    service account names the person), else the operating system's login name."""
    chosen = os.environ.get(USER_VAR, "").strip()
    if chosen:
        return chosen
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry
        return f"uid {os.getuid()}"


def who() -> tuple[str, str]:
    """(user, host) of this process."""
    return user(), hostname()


def start_token(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after its ')'.
    fields = stat[stat.rindex(b")") + 2:].split()
    return fields[19].decode()


@lru_cache(maxsize=1)
def _own_identity(pid: int) -> tuple[str, int, str | None]:
    return hostname(), pid, start_token(pid)


def own_identity() -> tuple[str, int, str | None]:
    """(host, pid, start token) of this process; recomputed after a fork."""
    return _own_identity(os.getpid())


def is_alive(host: str | None, pid: int | None, token: str | None) -> bool | None:
    """True/False for a process on this host; None when it cannot be told (another host)."""
    if host != hostname() or not pid:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if token is not None:
        current = start_token(pid)
        if current is not None and current != token:
            return False  # the pid was reused by a newer process
    return True
