"""Kernel managers that talk over Unix sockets (IPC) rather than TCP ports.

Kernels started at the same moment (parallel steps, a pool filling up) can pick the
same free TCP port and fail with "Address already in use"; socket files cannot
collide. They live in a private folder (0700) with short names, under the limit
of a socket path's length; a name carries the id of the process that started the
kernel, so the files of a killed process are swept away by the next one.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import uuid
from pathlib import Path


_folder: Path | None = None


def socket_folder() -> Path:
    """This user's private folder for kernel sockets, made once per process (and swept of dead sockets)."""
    global _folder
    if _folder is None:
        _folder = _private_folder()
        sweep_stale_sockets(_folder)
    return _folder


def _private_folder() -> Path:
    """``$XDG_RUNTIME_DIR/mlops-nb`` or ``$TMPDIR/mlops-nb-<uid>``, if it is ours and closed to others.

    Another local user could make that folder first, open to all, and then remove our sockets or put
    theirs in place (and so receive our code and params): such a folder is refused, with a warning,
    and a fresh one from ``mkdtemp`` (which only we can have made) is used instead."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    candidates = ([Path(runtime) / "mlops-nb"] if runtime else []) + \
        [Path(tempfile.gettempdir()) / f"mlops-nb-{os.getuid()}"]
    for folder in candidates:
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            problem = folder_problem(folder)
        except OSError:
            continue  # e.g. a runtime folder we cannot write: the next place will do
        if problem is None:
            return folder
        fresh = Path(tempfile.mkdtemp(prefix=f"mlops-nb-{os.getuid()}-"))
        print(f"mlops-nb: not using {folder} for kernel sockets: {problem}; using {fresh} (remove {folder} if "
              "you did not make it)", file=sys.stderr)
        return fresh
    return Path(tempfile.mkdtemp(prefix=f"mlops-nb-{os.getuid()}-"))


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a private folder of this user's (None when it is one)."""
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder (a symlink?)"
    if info.st_uid != os.getuid():
        return f"it belongs to another user (uid {info.st_uid})"
    if info.st_mode & 0o077:
        return f"others may use it (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def sweep_stale_sockets(folder: Path) -> int:
    """Remove the socket files of kernels whose starting process is gone (killed before it could clean
    up): names carry that process's id, ``k-<pid>-<random>-<n>``. Returns how many went."""
    from mlops_nb.kernels.lease import pid_alive

    removed = 0
    alive: dict[int, bool] = {}
    for path in folder.glob("k-*-*-*"):
        owner = path.name.split("-")[1]
        if not owner.isdigit():
            continue
        if alive.setdefault(int(owner), pid_alive(int(owner))):
            continue
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def new_kernel_manager(kernel_name: str, *, asynchronous: bool = False):
    from jupyter_client import AsyncKernelManager, KernelManager

    cls = AsyncKernelManager if asynchronous else KernelManager
    km = cls(kernel_name=kernel_name, transport="ipc")
    km.ip = str(socket_folder() / f"k-{os.getpid()}-{uuid.uuid4().hex[:10]}")
    return km


def kernel_problem(exc: Exception, kernel_name: str) -> str:
    """Why a kernel could not start, in one line that says how to fix it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    if not isinstance(exc, NoSuchKernel):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        known = sorted(KernelSpecManager().find_kernel_specs())
    except Exception:  # listing kernels is only a hint
        known = []
    return (f"no kernel named {kernel_name!r} is installed (installed: {', '.join(known) or 'none'}); install it "
            "(python -m ipykernel install --user --name NAME) or set kernel: for the step in pipeline.yaml")
