"""`mlops-nb watch`: check triggers on a short interval, in the foreground, until told to stop.

SIGINT or SIGTERM stops the watcher: between checks at once; during a run, either
after the run finishes (``on_stop="finish"``, the default) or by interrupting it
(``on_stop="interrupt"``: kernels stopped, runs marked interrupted). A second
signal always interrupts.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Callable

from mlops_nb.pipeline.runner import RunOptions
from mlops_nb.triggers.check import CheckResult, check_pipeline


class Watcher:
    def __init__(self, paths: list[str | Path], *, interval: float = 5.0, on_stop: str = "finish",
                 engine: str | None = None, report: Callable[[CheckResult], None] | None = None,
                 home: str | Path | None = None):
        self.paths = [Path(p) for p in paths]
        self.interval = interval
        self.on_stop = on_stop
        self.engine = engine
        self.home = home
        self.report = report or (lambda result: None)
        self.stop_requested = threading.Event()
        self.running = False
        self.signals = 0

    def _on_signal(self, signum, frame) -> None:
        self.signals += 1
        self.stop_requested.set()
        if self.running and (self.on_stop == "interrupt" or self.signals > 1):
            raise KeyboardInterrupt

    def run(self, max_checks: int | None = None) -> None:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        checks = 0
        try:
            while not self.stop_requested.is_set():
                for path in self.paths:
                    if self.stop_requested.is_set():
                        break
                    self.running = True
                    try:
                        result = check_pipeline(path, options=RunOptions(engine=self.engine, handle_sigterm=False),
                                                home=self.home)
                    except KeyboardInterrupt:
                        break
                    finally:
                        self.running = False
                    self.report(result)
                checks += 1
                if max_checks is not None and checks >= max_checks:
                    break
                self.stop_requested.wait(self.interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
