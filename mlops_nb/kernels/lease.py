"""A pooled kernel dressed as a kernel manager, so nbclient (and papermill) can run on it.

nbclient asks its kernel manager for a client, whether the kernel is alive, and to
interrupt it; it shuts the kernel down only when it started it, which it did not.
"""

from __future__ import annotations

import os
import signal
import time


def pid_alive(pid: int) -> bool:
    """True while the process runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


_client_class = None


def _quick_client_class():
    """An async kernel client that is ready as soon as the kernel answers on shell and IOPub.

    jupyter_client's own check waits for heartbeats first (0.2 s steps) when it was
    not made by a kernel manager; a pooled kernel's liveness is its pid.
    """
    global _client_class
    if _client_class is not None:
        return _client_class
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.utils import ensure_async

    class QuickClient(AsyncKernelClient):
        def __init__(self, pid: int, **kwargs):
            super().__init__(**kwargs)
            self._kernel_pid = pid

        async def _async_is_alive(self) -> bool:
            return pid_alive(self._kernel_pid)

        async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (timeout or 60)
            while time.monotonic() < deadline:
                msg_id = self.kernel_info()
                try:
                    reply = await ensure_async(self.shell_channel.get_msg(timeout=1))
                except Empty:
                    reply = None
                if reply is not None and reply["parent_header"].get("msg_id") == msg_id:
                    # IOPub is subscribed once the status messages of this request come through.
                    try:
                        while True:
                            msg = await ensure_async(self.iopub_channel.get_msg(timeout=0.5))
                            if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                                    and msg["content"]["execution_state"] == "idle"):
                                self._handle_kernel_info_reply(reply)
                                return
                    except Empty:
                        pass
                if not pid_alive(self._kernel_pid):
                    raise RuntimeError("the pooled kernel died before it answered")
            raise RuntimeError(f"the pooled kernel did not answer within {timeout} s")

        wait_for_ready = _async_wait_for_ready
        is_alive = _async_is_alive

    _client_class = QuickClient
    return QuickClient


class LeasedKernelManager:
    has_kernel = True
    ipykernel = True

    def __init__(self, connection_info: dict, pid: int, kernel_name: str, on_interrupt=None):
        self.connection_info = dict(connection_info)
        self.pid = pid
        self.kernel_name = kernel_name
        self.on_interrupt = on_interrupt
        self.clients: list = []

    def client(self):
        client = _quick_client_class()(pid=self.pid)
        client.load_connection_info(dict(self.connection_info))
        self.clients.append(client)
        return client

    async def is_alive(self) -> bool:
        return pid_alive(self.pid)

    async def interrupt_kernel(self) -> None:
        if self.on_interrupt is not None:
            self.on_interrupt()
        else:
            os.kill(self.pid, signal.SIGINT)

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        # The pool owns the kernel; a run that wants it gone marks its lease unhealthy.
        return None

    async def cleanup_resources(self, restart: bool = False) -> None:
        return None

    def close_clients(self) -> None:
        for client in self.clients:
            try:
                client.stop_channels()
            except Exception:
                pass
        self.clients.clear()
