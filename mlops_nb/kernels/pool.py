"""A pool of warm kernels: started ahead of need, preloaded, reset between runs, recycled.

    pool = KernelPool("python3", size=2, preload=["pandas", "sklearn"])
    kernel = pool.acquire()          # waits for a ready kernel
    ...                              # run a notebook on kernel.connection_info
    pool.release(kernel, healthy=True)

Resets and replacements happen on background threads, so the next acquire finds a
ready kernel. A kernel is replaced after ``max_runs`` runs, above ``memory_limit_mb``,
when it died, or after a run that asked for ``isolation="kernel"``. Kernels idle for
``idle_timeout`` seconds are shut down.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlops_nb.errors import MlopsError
from mlops_nb.kernels.lease import pid_alive

_ids = itertools.count(1)
INIT = "__import__('mlops_nb.kernels.inkernel', fromlist=['init']).init({preload!r})"
PREPARE = "__import__('mlops_nb.kernels.inkernel', fromlist=['prepare']).prepare({cwd!r}, {environ!r})"
RESET = "__import__('mlops_nb.kernels.inkernel', fromlist=['reset']).reset()"


class KernelPoolError(MlopsError):
    """No kernel could be had (it failed to start, or none became free in time)."""


@dataclass(eq=False)
class PooledKernel:
    id: int
    kernel_name: str
    km: object
    kc: object
    pid: int
    state: str = "starting"            # starting | idle | busy | resetting | retired
    runs: int = 0
    fresh: bool = True                 # has never run user code
    started_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    preloaded: tuple[str, ...] = ()

    @property
    def connection_info(self) -> dict:
        info = dict(self.km.get_connection_info(session=False))
        if isinstance(info.get("key"), bytes):  # JSON-able, for the daemon's socket
            info["key"] = info["key"].decode()
        return info

    def is_alive(self) -> bool:
        return pid_alive(self.pid)

    def memory_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def silent(self, code: str, timeout: float = 120) -> dict:
        """Run code without a trace in history or execution count; return the reply content."""
        from queue import Empty

        msg_id = self.kc.execute(code, silent=True, store_history=False)
        deadline = time.monotonic() + timeout
        while True:
            # In short waits, so a kernel stopped by the pool's shutdown ends the wait at once.
            try:
                reply = self.kc.get_shell_msg(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
            except Empty:
                if not self.is_alive():
                    raise KernelPoolError(f"kernel {self.id} stopped while running pool code") from None
                if time.monotonic() >= deadline:
                    raise
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        if content.get("status") != "ok":
            raise KernelPoolError(f"kernel {self.id}: {content.get('ename')}: {content.get('evalue')}")
        return content


class KernelPool:
    def __init__(self, kernel_name: str = "python3", *, size: int = 1, preload: list[str] | tuple = (),
                 max_runs: int = 100, idle_timeout: float = 600.0, memory_limit_mb: float | None = 2048,
                 cwd: str | os.PathLike | None = None, log_dir: str | os.PathLike | None = None):
        self.kernel_name = kernel_name
        self.size = max(1, size)
        self.preload = tuple(dict.fromkeys(preload))
        self.max_runs = max_runs
        self.idle_timeout = idle_timeout
        self.memory_limit_mb = memory_limit_mb
        self.cwd = str(cwd or os.getcwd())
        self.log_dir = Path(log_dir) if log_dir else None
        self.kernels: list[PooledKernel] = []
        self.cond = threading.Condition()
        self.closed = False
        self.errors: list[str] = []
        # Threads starting, resetting and shutting down kernels: shutdown() waits for them, so none is
        # inside zmq when the interpreter exits (libzmq aborts the process then).
        self._threads: set[threading.Thread] = set()
        self._reaper = threading.Thread(target=self._reap_idle, name="mlops-pool-reaper", daemon=True)
        self._reaper.start()

    def __repr__(self) -> str:
        states = ", ".join(f"{k.id}:{k.state}" for k in self.kernels)
        return f"KernelPool({self.kernel_name!r}, size={self.size}, kernels=[{states}])"

    # -- filling ---------------------------------------------------------------

    def want(self, preload: list[str] | tuple = (), size: int | None = None) -> None:
        """Grow the preload list and the pool size, and start kernels up to the size in the background."""
        with self.cond:
            self.preload = tuple(dict.fromkeys((*self.preload, *preload)))
            if size:
                self.size = max(self.size, size)
            missing = self.size - len([k for k in self.kernels if k.state != "retired"])
            # Placeholders count at once, so concurrent callers do not overshoot.
            for _ in range(missing):
                self._start_in_background()

    def _start_in_background(self, fresh_replacement: bool = False) -> None:
        placeholder = PooledKernel(next(_ids), self.kernel_name, None, None, 0)
        self.kernels.append(placeholder)
        self._background(self._start, placeholder, name="mlops-pool-start")

    def _background(self, target, *args, name: str) -> None:
        def tracked() -> None:
            try:
                target(*args)
            finally:
                self._threads.discard(thread)

        thread = threading.Thread(target=tracked, name=name, daemon=True)
        self._threads.add(thread)
        thread.start()

    def _start(self, slot: PooledKernel) -> None:
        from jupyter_client.kernelspec import NoSuchKernel

        from mlops_nb.kernels.launch import kernel_problem, new_kernel_manager

        km = None
        try:
            km = new_kernel_manager(self.kernel_name)
            kwargs = {"cwd": self.cwd}
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                log = open(self.log_dir / f"kernel-{slot.id}.log", "ab")
                kwargs.update(stdout=log, stderr=log)
            km.start_kernel(**kwargs)
            kc = km.blocking_client()
            kc.start_channels()
            kc.wait_for_ready(timeout=60)
            slot.km, slot.kc = km, kc
            if self.closed:
                raise KernelPoolError("the kernel pool was shut down")
            slot.pid = km.provisioner.process.pid
            preload = self.preload
            slot.silent(INIT.format(preload=list(preload)), timeout=300)
            slot.preloaded = preload
        except Exception as exc:
            with self.cond:
                self.errors.append(kernel_problem(exc, self.kernel_name) if isinstance(exc, NoSuchKernel)
                                   else f"kernel {self.kernel_name!r} failed to start: {exc}")
                slot.state = "retired"
                if slot in self.kernels:
                    self.kernels.remove(slot)
                self.cond.notify_all()
            if km is not None:
                _shutdown(km, slot.kc)
            return
        with self.cond:
            if self.closed:
                slot.state = "retired"
            else:
                slot.state = "idle"
                slot.last_used = time.time()
            self.cond.notify_all()
        if slot.state == "retired":
            _shutdown(km, slot.kc)

    # -- using -----------------------------------------------------------------

    def acquire(self, *, isolation: str = "namespace", timeout: float = 120.0) -> PooledKernel:
        """A ready kernel, marked busy. ``isolation="kernel"`` waits for one that never ran user code."""
        deadline = time.monotonic() + timeout
        with self.cond:
            if not any(k.state != "retired" for k in self.kernels):
                for _ in range(self.size):
                    self._start_in_background()
            while True:
                if self.closed:
                    raise KernelPoolError("the kernel pool was shut down")
                candidates = [k for k in self.kernels if k.state == "idle" and (isolation != "kernel" or k.fresh)]
                alive = [k for k in candidates if k.is_alive()]
                for dead in set(candidates) - set(alive):
                    self._retire(dead, replace=True)
                if alive:
                    kernel = min(alive, key=lambda k: (not k.fresh if isolation == "kernel" else k.fresh, k.id))
                    kernel.state = "busy"
                    kernel.last_used = time.time()
                    return kernel
                if isolation == "kernel" and not any(k.fresh and k.state in ("starting", "idle")
                                                     for k in self.kernels):
                    self._start_in_background()
                if self.errors and not any(k.state == "starting" for k in self.kernels):
                    raise KernelPoolError(self.errors[-1])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise KernelPoolError(f"no {self.kernel_name} kernel became free within {timeout:.0f} s")
                self.cond.wait(min(remaining, 0.5))

    def prepare(self, kernel: PooledKernel, cwd: str, environ: dict[str, str]) -> None:
        kernel.silent(PREPARE.format(cwd=str(cwd), environ=dict(environ)))
        kernel.fresh = False

    def kill(self, kernel: PooledKernel) -> None:
        """Stop a kernel now (an interrupted run); a replacement starts in the background."""
        with self.cond:
            if kernel.state != "retired":
                self._retire(kernel, replace=True)

    def release(self, kernel: PooledKernel, *, healthy: bool = True, isolation: str = "namespace") -> None:
        """Give a kernel back: reset it in the background, or replace it when it should not be reused."""
        if kernel.state == "retired":
            return
        kernel.runs += 1
        kernel.last_used = time.time()
        memory = kernel.memory_mb()
        too_big = self.memory_limit_mb is not None and memory is not None and memory > self.memory_limit_mb
        with self.cond:
            if (not healthy or isolation == "kernel" or kernel.runs >= self.max_runs or too_big
                    or not kernel.is_alive() or self.closed):
                self._retire(kernel, replace=not self.closed)
                return
            kernel.state = "resetting"
        self._background(self._reset, kernel, name="mlops-pool-reset")

    def _reset(self, kernel: PooledKernel) -> None:
        try:
            kernel.silent(RESET, timeout=60)
        except Exception:
            with self.cond:
                self._retire(kernel, replace=True)
            return
        with self.cond:
            closed = self.closed
            kernel.state = "retired" if closed else "idle"
            self.cond.notify_all()
        if closed:
            _shutdown(kernel.km, kernel.kc)

    def _retire(self, kernel: PooledKernel, *, replace: bool) -> None:
        """Take a kernel out of the pool (caller holds the lock); shut it down in the background."""
        kernel.state = "retired"
        if kernel in self.kernels:
            self.kernels.remove(kernel)
        if kernel.km is not None:
            self._background(_shutdown, kernel.km, kernel.kc, name="mlops-pool-shutdown")
        if replace and not self.closed:
            self._start_in_background()
        self.cond.notify_all()

    def status(self) -> list[dict]:
        with self.cond:
            return [{"id": k.id, "kernel": k.kernel_name, "state": k.state, "pid": k.pid, "runs": k.runs,
                     "fresh": k.fresh, "memory_mb": k.memory_mb(), "idle_s": round(time.time() - k.last_used, 1),
                     "preloaded": list(k.preloaded)} for k in self.kernels]

    def _reap_idle(self) -> None:
        while not self.closed:
            time.sleep(min(5.0, max(self.idle_timeout / 4, 0.2)))
            with self.cond:
                for kernel in [k for k in self.kernels if k.state == "idle"
                               and time.time() - k.last_used > self.idle_timeout]:
                    self._retire(kernel, replace=False)

    def idle_for(self) -> float:
        """Seconds since any kernel was last used (0 while one is busy)."""
        with self.cond:
            if any(k.state in ("busy", "starting", "resetting") for k in self.kernels):
                return 0.0
            last = max((k.last_used for k in self.kernels), default=0.0)
        return time.time() - last if last else float("inf")

    def shutdown(self) -> None:
        with self.cond:
            self.closed = True
            kernels, self.kernels = list(self.kernels), []
            self.cond.notify_all()
        for kernel in kernels:
            if kernel.km is None:
                continue  # still starting: its thread sees the pool closed and stops it
            if kernel.state in ("starting", "resetting"):
                # Its own thread is talking to it over the client: stop the process only, and that
                # thread, its wait ended, closes the client itself (one zmq socket, one thread).
                _kill(kernel.pid)
            else:
                self._background(_shutdown, kernel.km, kernel.kc, name="mlops-pool-shutdown")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pending = [t for t in list(self._threads) if t is not threading.current_thread()]
            if not pending:
                break
            pending[0].join(timeout=max(0.05, deadline - time.monotonic()))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, __import__("signal").SIGKILL)
    except OSError:
        pass


def _shutdown(km, kc=None) -> None:
    # The kernel first: closing the client's channels can wait on zmq, the process must not.
    try:
        km.shutdown_kernel(now=True)
    except Exception:  # already gone
        pass
    try:
        km.cleanup_resources()
    except Exception:
        pass
    if kc is not None:
        try:
            kc.context.setsockopt(__import__("zmq").LINGER, 0)
            kc.stop_channels()
        except Exception:
            pass
