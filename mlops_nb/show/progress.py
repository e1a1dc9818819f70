"""How a pipeline run shows itself: a live table on a terminal, a line per event in logs,
an updating table in a notebook, or nothing (``--quiet``): the faces' :class:`Progress` listeners."""

from __future__ import annotations

import sys
import threading
import time

from mlops_nb.pipeline.progress import Progress

_SYMBOL = {"ran": "✓", "cached": "↷", "failed": "✗", "skipped": "–", "interrupted": "!", "pruned": "✂",
           "running": "…"}


class LineProgress(Progress):
    """A line per step event: for logs, cron mail and CI."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def say(self, text: str) -> None:
        with self.lock:
            print(text, file=self.stream, flush=True)

    def pipeline_started(self, pipeline, run_id):
        self.say(f"pipeline {pipeline.name}: run {run_id[:8]}, {len(pipeline.steps)} steps")

    def executor_started(self, description, dashboard):
        self.say(f"  on {description}" + (f"; dashboard {dashboard}" if dashboard else ""))

    def step_started(self, step, run_id):
        self.say(f"  {_SYMBOL['running']} {step} started (run {run_id[:8]})")

    def step_placed(self, step, worker):
        self.say(f"  → {step} on worker {worker}")

    def step_retrying(self, step, attempt, failure):
        self.say(f"  ↻ {step} failed on attempt {attempt} ({failure.summary()}); retrying")

    def step_finished(self, result):
        detail = {"cached": f"cached from run {(result.cached_from or '')[:8]}", "skipped": result.reason,
                  "pruned": result.reason}.get(
            result.status, f"{result.seconds:.1f}s")
        self.say(f"  {_SYMBOL.get(result.status, '?')} {result.name} {result.status} ({detail})")

    def pipeline_finished(self, result):
        self.say(f"pipeline {result.pipeline} {result.status} in {result.seconds:.1f}s (run {result.run_id[:8]})")


class RichProgress(Progress):
    """A live table on a terminal: one row per step with its state and current cell."""

    def __init__(self):
        from rich.console import Console
        from rich.live import Live

        self.console = Console(highlight=False)
        self.rows: dict[str, list] = {}
        self.started: dict[str, float] = {}
        self.workers: dict[str, str] = {}       # step -> the Dask worker running it
        self.lock = threading.Lock()
        self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)

    def _table(self):
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for name, (state, detail) in self.rows.items():
            colour = {"ran": "green", "cached": "cyan", "failed": "red", "skipped": "dim", "running": "yellow",
                      "interrupted": "yellow"}.get(state, "white")
            table.add_row(f"[{colour}]{_SYMBOL.get(state, '·')}[/]", name, f"[{colour}]{state}[/]", detail)
        return table

    def _update(self, step, state, detail=""):
        with self.lock:
            self.rows[step] = [state, detail]
            self.live.update(self._table())

    def pipeline_started(self, pipeline, run_id):
        self.console.print(f"[bold]{pipeline.name}[/] run {run_id[:8]}")
        self.rows = {s.name: ["waiting", ""] for s in pipeline.steps}
        self.live.start()
        self.live.update(self._table())

    def executor_started(self, description, dashboard):
        self.console.print(f"on {description}" + (f"; dashboard {dashboard}" if dashboard else ""))

    def step_started(self, step, run_id):
        self.started[step] = time.monotonic()
        self._update(step, "running", f"run {run_id[:8]}")

    def step_placed(self, step, worker):
        with self.lock:
            self.workers[step] = worker
        self._update(step, "running", f"on {worker}")

    def cell(self, step, index, total):
        elapsed = time.monotonic() - self.started.get(step, time.monotonic())
        where = f"  on {self.workers[step]}" if step in self.workers else ""
        self._update(step, "running", f"cell {index}/{total}  {elapsed:.1f}s{where}")

    def step_retrying(self, step, attempt, failure):
        self._update(step, "running", f"retry after attempt {attempt}: {failure.summary()[:60]}")

    def step_finished(self, result):
        detail = {"cached": f"cached from {(result.cached_from or '')[:8]}", "skipped": result.reason,
                  "pruned": result.reason}.get(
            result.status, f"{result.seconds:.1f}s")
        self._update(result.name, result.status, detail)

    def pipeline_finished(self, result):
        self.live.stop()
        colour = "green" if result.ok else "red"
        self.console.print(f"[{colour}]{result.status}[/] in {result.seconds:.1f}s")


class NotebookProgress(Progress):
    """An HTML table in the cell's output, updated in place."""

    def __init__(self):
        from IPython.display import HTML, display

        self.HTML = HTML
        self.rows: dict[str, tuple[str, str]] = {}
        self.workers: dict[str, str] = {}
        self.title = ""
        self.lock = threading.Lock()
        self.handle = display(HTML(""), display_id=True)

    def _render(self):
        from html import escape

        body = "".join(f"<tr><td>{_SYMBOL.get(s, '·')}</td><td>{escape(n)}</td><td>{escape(s)}</td>"
                       f"<td>{escape(d)}</td></tr>" for n, (s, d) in self.rows.items())
        self.handle.update(self.HTML(f"<div style='font-size:12px'><b>{escape(self.title)}</b><table>{body}"
                                     "</table></div>"))

    def _set(self, step, state, detail=""):
        with self.lock:
            self.rows[step] = (state, detail)
            self._render()

    def pipeline_started(self, pipeline, run_id):
        self.title = f"{pipeline.name} run {run_id[:8]}"
        for step in pipeline.steps:
            self.rows[step.name] = ("waiting", "")
        self._render()

    def executor_started(self, description, dashboard):
        self.title += f" on {description}" + (f" (dashboard {dashboard})" if dashboard else "")
        with self.lock:
            self._render()

    def step_started(self, step, run_id):
        self._set(step, "running")

    def step_placed(self, step, worker):
        self.workers[step] = worker
        self._set(step, "running", f"on {worker}")

    def cell(self, step, index, total):
        where = f" on {self.workers[step]}" if step in self.workers else ""
        self._set(step, "running", f"cell {index}/{total}{where}")

    def step_finished(self, result):
        self._set(result.name, result.status, result.reason or f"{result.seconds:.1f}s")

    def pipeline_finished(self, result):
        self.title += f": {result.status} in {result.seconds:.1f}s"
        with self.lock:
            self._render()


def choose_progress(quiet: bool = False) -> Progress:
    """Rich on a terminal, lines in logs, nothing when quiet, a table in a notebook."""
    if quiet:
        return Progress()
    try:
        from IPython import get_ipython

        if getattr(get_ipython(), "kernel", None) is not None:
            return NotebookProgress()
    except ImportError:
        pass
    return RichProgress() if sys.stdout.isatty() else LineProgress()
