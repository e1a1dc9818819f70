"""A kernel pool that outlives one command: a small local daemon behind a Unix socket.

    mlops-nb kernels start [--size 2] [--idle-timeout 900]
    mlops-nb kernels ls
    mlops-nb kernels stop

The socket lives in ``.mlops/kernels/`` (folder 0700, socket 0600: its owner only).
Requests are one JSON line each way per connection. ``mlops-nb run``, ``sweep`` and
the watcher use the daemon when it answers, and their own pool otherwise. The daemon
stops its kernels and exits on ``stop`` or after ``idle_timeout`` without use.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

from mlops_nb.errors import MlopsError
from mlops_nb.kernels.pool import KernelPool, KernelPoolError

SOCKET_NAME = "daemon.sock"


def socket_path(home: str | os.PathLike) -> Path:
    return Path(home) / "kernels" / SOCKET_NAME


# -- client ------------------------------------------------------------------------

def request(path: Path, message: dict, timeout: float = 180.0) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply = json.loads(data or b"{}")
    if not reply.get("ok"):
        raise KernelPoolError(reply.get("error") or "the kernel daemon gave no answer")
    return reply


def running_daemon(home: str | os.PathLike) -> Path | None:
    """The daemon's socket when a daemon answers on it, else None (a stale socket is removed)."""
    path = socket_path(home)
    if not path.exists():
        return None
    try:
        request(path, {"op": "ping"}, timeout=2)
        return path
    except (OSError, ValueError, KernelPoolError):
        try:
            path.unlink()
        except OSError:
            pass
        return None


class RemoteKernel:
    def __init__(self, reply: dict, kernel_name: str):
        self.id = reply["lease"]
        self.pid = reply["pid"]
        self.connection_info = reply["connection_info"]
        self.kernel_name = kernel_name
        self.state = "busy"


class DaemonPool:
    """The daemon's pool for one kernel name, with the same verbs as :class:`KernelPool`."""

    def __init__(self, path: Path, kernel_name: str):
        self.path, self.kernel_name = path, kernel_name

    def want(self, preload=(), size=None) -> None:
        request(self.path, {"op": "want", "kernel": self.kernel_name, "preload": list(preload), "size": size})

    def acquire(self, *, isolation: str = "namespace", timeout: float = 120.0) -> RemoteKernel:
        reply = request(self.path, {"op": "acquire", "kernel": self.kernel_name, "isolation": isolation,
                                    "timeout": timeout}, timeout=timeout + 10)
        return RemoteKernel(reply, self.kernel_name)

    def prepare(self, kernel: RemoteKernel, cwd: str, environ: dict) -> None:
        request(self.path, {"op": "prepare", "lease": kernel.id, "cwd": cwd, "environ": environ})

    def release(self, kernel: RemoteKernel, *, healthy: bool = True, isolation: str = "namespace") -> None:
        try:
            request(self.path, {"op": "release", "lease": kernel.id, "healthy": healthy, "isolation": isolation})
        except (OSError, KernelPoolError):
            pass  # the daemon went away; nothing to give back

    def kill(self, kernel: RemoteKernel) -> None:
        try:
            request(self.path, {"op": "kill", "lease": kernel.id}, timeout=10)
        except (OSError, KernelPoolError):
            pass


def start_daemon(home: str | os.PathLike, *, size: int = 1, idle_timeout: float = 900.0,
                 preload: list[str] | tuple = (), kernel: str = "python3") -> dict:
    """Start the daemon in the background (or find the one running); return its ``ls`` reply."""
    home = Path(home)
    existing = running_daemon(home)
    if existing is not None:
        return request(existing, {"op": "ls"})
    folder = home / "kernels"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    log = open(folder / "daemon.log", "ab")
    cmd = [sys.executable, "-m", "mlops_nb.kernels.daemon", "--home", str(home), "--size", str(size),
           "--idle-timeout", str(idle_timeout), "--kernel", kernel, *[f"--preload={p}" for p in preload]]
    process = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MlopsError(f"the kernel daemon exited at start (code {process.returncode}); see "
                             f"{folder / 'daemon.log'}")
        if running_daemon(home) is not None:
            return request(socket_path(home), {"op": "ls"})
        time.sleep(0.1)
    process.terminate()
    raise MlopsError(f"the kernel daemon did not answer within 60 s; see {folder / 'daemon.log'}")


def stop_daemon(home: str | os.PathLike) -> bool:
    """Stop the daemon and its kernels; False when none was running."""
    path = running_daemon(home)
    if path is None:
        return False
    reply = request(path, {"op": "stop"}, timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(reply["pid"]):
        time.sleep(0.1)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


# -- server ------------------------------------------------------------------------

class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, home: Path, defaults: dict):
        self.home = home
        self.defaults = defaults
        self.pools: dict[str, KernelPool] = {}
        self.leases: dict[int, tuple[KernelPool, object]] = {}
        self.lock = threading.Lock()
        self.last_request = time.time()
        old = os.umask(0o177)  # the socket is created 0600
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    def pool(self, kernel_name: str) -> KernelPool:
        with self.lock:
            pool = self.pools.get(kernel_name)
            if pool is None:
                pool = self.pools[kernel_name] = KernelPool(
                    kernel_name, size=self.defaults["size"], preload=self.defaults["preload"],
                    idle_timeout=self.defaults["idle_timeout"], log_dir=self.home / "kernels", cwd=self.home.parent)
                pool.want()
            return pool

    def handle_request_message(self, message: dict) -> dict:
        self.last_request = time.time()
        op = message.get("op")
        if op == "ping":
            return {"pid": os.getpid()}
        if op == "ls":
            return {"pid": os.getpid(), "idle_timeout": self.defaults["idle_timeout"], "socket": self.server_address,
                    "kernels": [k for pool in list(self.pools.values()) for k in pool.status()]}
        if op == "want":
            self.pool(message["kernel"]).want(message.get("preload") or (), message.get("size"))
            return {}
        if op == "acquire":
            pool = self.pool(message["kernel"])
            kernel = pool.acquire(isolation=message.get("isolation", "namespace"),
                                  timeout=float(message.get("timeout", 120)))
            with self.lock:
                self.leases[kernel.id] = (pool, kernel)
            return {"lease": kernel.id, "pid": kernel.pid, "connection_info": kernel.connection_info}
        pool, kernel = self.leases.get(message.get("lease"), (None, None))
        if op in ("prepare", "release", "kill") and kernel is None:
            raise KernelPoolError(f"no kernel lease {message.get('lease')!r}")
        if op == "prepare":
            pool.prepare(kernel, message["cwd"], message["environ"])
            return {}
        if op == "release":
            with self.lock:
                self.leases.pop(kernel.id, None)
            pool.release(kernel, healthy=bool(message.get("healthy", True)),
                         isolation=message.get("isolation", "namespace"))
            return {}
        if op == "kill":
            pool.kill(kernel)
            return {}
        if op == "stop":
            threading.Thread(target=self.stop, daemon=True).start()
            return {"pid": os.getpid()}
        raise KernelPoolError(f"unknown request {op!r}")

    def idle(self) -> bool:
        with self.lock:
            if self.leases:
                return False
            pools = list(self.pools.values())
        quiet = min([pool.idle_for() for pool in pools] + [time.time() - self.last_request])
        return quiet > self.defaults["idle_timeout"]

    def stop(self) -> None:
        for pool in list(self.pools.values()):
            pool.shutdown()
        try:
            Path(self.server_address).unlink()
        except OSError:
            pass
        self.shutdown()


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline()
        try:
            reply = {"ok": True, **self.server.handle_request_message(json.loads(line))}
        except Exception as exc:  # every failure goes back to the caller as one line
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, MlopsError)
                     else str(exc)}
        self.wfile.write(json.dumps(reply).encode() + b"\n")


def serve(home: Path, size: int, idle_timeout: float, preload: list[str], kernel: str) -> None:
    path = socket_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if path.exists():
        path.unlink()
    server = _Server(path, home, {"size": size, "idle_timeout": idle_timeout, "preload": preload})
    server.pool(kernel)

    def on_signal(signum, frame):
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_idle():
        while True:
            time.sleep(min(5.0, max(idle_timeout / 5, 0.2)))
            if server.idle():
                server.stop()
                return

    threading.Thread(target=watch_idle, daemon=True).start()
    server.serve_forever(poll_interval=0.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mlops_nb.kernels.daemon")
    parser.add_argument("--home", required=True)
    parser.add_argument("--size", type=int, default=1)
    parser.add_argument("--idle-timeout", type=float, default=900.0)
    parser.add_argument("--preload", action="append", default=[])
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args(argv)
    serve(Path(args.home).resolve(), args.size, args.idle_timeout, args.preload, args.kernel)


if __name__ == "__main__":
    main()
