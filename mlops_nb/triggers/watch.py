"""`mlops-nb watch`: check triggers on a short interval, in the foreground, until told to stop.

Each round checks the pipelines in :func:`watch_order` (monitors before the pipelines whose
performance triggers read them). SIGINT or SIGTERM stops the watcher: between checks at once; during a run, either
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


def watch_order(paths: list[str | Path]) -> list[Path]:
    """The order pipelines are checked in each round: one whose step another pipeline's performance trigger
    reads (a monitor) comes before that pipeline, so a new batch is first judged on the production model and
    only then trained on. Otherwise the order given."""
    from mlops_nb.pipeline.spec import load_pipeline

    specs = [(Path(p), load_pipeline(p)) for p in paths]
    names = {spec.name for _, spec in specs}
    reads = {spec.name: {t.options["pipeline"] for t in spec.triggers
                         if t.kind == "performance" and t.options.get("pipeline") in names - {spec.name}}
             for _, spec in specs}
    ordered: list[tuple[Path, object]] = []
    pending = list(specs)
    while pending:
        ready = next((s for s in pending if reads[s[1].name] <= {o.name for _, o in ordered}), pending[0])
        ordered.append(ready)
        pending.remove(ready)
    return [path for path, _ in ordered]


class Watcher:
    def __init__(self, paths: list[str | Path], *, interval: float = 5.0, on_stop: str = "finish",
                 engine: str | None = None, report: Callable[[CheckResult], None] | None = None,
                 home: str | Path | None = None):
        self.paths = watch_order(paths)
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
