"""The pools a process keeps for its own lifetime (one per kernel name), when no daemon serves one."""

from __future__ import annotations

import atexit
import os
import threading

from mlops_nb.kernels.pool import KernelPool

_pools: dict[str, KernelPool] = {}
_lock = threading.Lock()
_owner = os.getpid()


def local_pool(kernel_name: str, *, log_dir=None) -> KernelPool:
    global _owner
    with _lock:
        if _owner != os.getpid():  # a forked child does not own its parent's kernels
            _pools.clear()
            _owner = os.getpid()
        pool = _pools.get(kernel_name)
        if pool is None or pool.closed:
            pool = _pools[kernel_name] = KernelPool(kernel_name, log_dir=log_dir, idle_timeout=300)
        return pool


def shutdown_local_pools() -> None:
    with _lock:
        pools = list(_pools.values()) if _owner == os.getpid() else []
        _pools.clear()
    for pool in pools:
        pool.shutdown()


atexit.register(shutdown_local_pools)
