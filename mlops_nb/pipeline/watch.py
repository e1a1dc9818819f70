"""What the runner knows about one executing notebook: its deadline, its current cell, how to stop it.

Kept apart from the papermill engine so the runner can hold one without importing papermill.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable


class StepTimeout(Exception):
    """The step ran past its deadline."""


@dataclass(eq=False)
class Watch:
    """What the runner knows about one executing notebook."""

    step: str
    deadline: float | None = None          # time.monotonic() value
    cell_timeout: float | None = None
    on_cell: Callable[[str, int, int], None] | None = None   # (step, index, total)
    client: Any = None                     # the papermill client executing the notebook
    cell_source: str | None = None         # the cell running now (or last)
    kill: Callable[[], None] | None = None  # stops a pooled kernel (set by the runner)
    stopped: threading.Event = field(default_factory=threading.Event)

    def cell_timeout_now(self) -> float | None:
        limits = [t for t in (self.cell_timeout,) if t]
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise StepTimeout(f"step {self.step!r} ran past its timeout")
            limits.append(remaining)
        return min(limits) if limits else None

    def stop(self) -> None:
        """Interrupt and shut down the kernel (from another thread)."""
        self.stopped.set()
        if self.kill is not None:
            self.kill()
            return
        client = self.client
        km = getattr(client, "km", None) if client is not None else None
        if km is None:
            return
        try:
            from jupyter_core.utils import run_sync

            run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # the kernel may be gone already
            pass


