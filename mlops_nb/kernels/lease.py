"""A pooled kernel dressed as a kernel manager, so nbclient (and papermill) can run on it.

nbclient asks its kernel manager for a client, whether the kernel is alive, and to
interrupt it; it shuts the kernel down only when it started it, which it did not.
"""

from __future__ import annotations

import os
import signal


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
        from jupyter_client.asynchronous import AsyncKernelClient

        client = AsyncKernelClient()
        client.load_connection_info(dict(self.connection_info))
        self.clients.append(client)
        return client

    async def is_alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        try:
            with open(f"/proc/{self.pid}/stat") as handle:
                return handle.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return True

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
