"""Kernel managers that talk over Unix sockets (IPC) rather than TCP ports.

Kernels started at the same moment (parallel steps, a pool filling up) can pick the
same free TCP port and fail with "Address already in use"; socket files cannot
collide. They live in a private folder (0700) with short names, under the limit
of a socket path's length.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path


def socket_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"mlops-nb-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def new_kernel_manager(kernel_name: str, *, asynchronous: bool = False):
    from jupyter_client import AsyncKernelManager, KernelManager

    cls = AsyncKernelManager if asynchronous else KernelManager
    km = cls(kernel_name=kernel_name, transport="ipc")
    km.ip = str(socket_folder() / f"k-{uuid.uuid4().hex[:12]}")
    return km
