"""What the pipeline and trigger commands show: a run of a pipeline, a sweep, a trigger check, the
triggers and their events (the terminal, JSON for scripts, HTML in a notebook; see :mod:`.views`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_nb.show import html
from mlops_nb.show import terminal
from mlops_nb.show.views import View


def pipeline_result_dict(result) -> dict:
    return {"pipeline": result.pipeline, "run_id": result.run_id, "status": result.status,
            "seconds": round(result.seconds, 3),
            "steps": {name: {"status": r.status, "run_id": r.run_id, "seconds": round(r.seconds, 3),
                             "attempts": r.attempts, "cached_from": r.cached_from,
                             "notebook": str(r.notebook) if r.notebook else None,
                             "error": r.failure.summary() if r.failure else None, "reason": r.reason}
                      for name, r in result.steps.items()}}


@dataclass(repr=False)
class SweepView(View):
    outcome: Any

    def _rows(self):
        metric = self.outcome.metric
        best = self.outcome.best
        for point in self.outcome.points:
            value = point["metrics"].get(metric) if metric else None
            yield point, value, best is not None and point["run_id"] == best["run_id"]

    def to_json(self):
        return {"run_id": self.outcome.result.run_id, "metric": self.outcome.metric,
                "best_run": self.outcome.best["run_id"] if self.outcome.best else None,
                "points": self.outcome.points}

    def print_terminal(self, out=None):
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        out = out or terminal.console()
        names = list(self.outcome.points[0]["params"]) if self.outcome.points else []
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for header in ["", "run", "status", *names, self.outcome.metric or "metric"]:
            table.add_column(escape(header))
        for point, value, is_best in self._rows():
            table.add_row("[bold green]best[/]" if is_best else "", (point["run_id"] or "")[:8], point["status"],
                          *(terminal.fmt_value(point["params"][n]) for n in names), terminal.fmt_value(value))
        out.print(table)

    def _repr_html_(self):
        return html.sweep_html(self.outcome)


@dataclass(repr=False)
class PipelineRunView(View):
    """A pipeline run once it ended. A terminal saw the steps go by (the progress display), so it
    gets only the failures, on stderr; a notebook gets the table of steps."""

    result: Any
    table: bool = True

    def to_json(self):
        return pipeline_result_dict(self.result)

    def print_terminal(self, out=None):
        failures = [s.failure.describe() for s in self.result.steps.values() if s.failure is not None]
        if failures:
            (out or terminal.console(stderr=True)).print("\n".join(failures), markup=False, highlight=False)

    def _repr_html_(self):
        return html.pipeline_result_html(self.result) if self.table else ""


@dataclass(repr=False)
class CheckView(View):
    result: Any
    quiet: bool = False

    def to_json(self):
        return check_dict(self.result)

    def print_terminal(self, out=None):
        terminal.check_report(self.result, quiet=self.quiet, out=out)

    def _repr_html_(self):
        return html.check_html(self.result)


@dataclass(repr=False)
class TriggersView(View):
    rows: list[dict]

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        terminal.triggers_table(self.rows, out)

    def _repr_html_(self):
        return html.triggers_html(self.rows)


@dataclass(repr=False)
class EventsView(View):
    events: list[dict]

    def to_json(self):
        return self.events

    def print_terminal(self, out=None):
        terminal.events_table(self.events, out)

    def _repr_html_(self):
        return html.events_html(self.events)


def check_dict(result) -> dict:
    return {"pipeline": result.pipeline, "busy": result.busy, "errors": result.errors, "notes": result.notes,
            "retried": result.retried,
            "fired": [{"trigger": f.trigger.key, "kind": f.trigger.kind, "reason": f.reason, "evidence": f.evidence}
                      for f in result.fired],
            "runs": [pipeline_result_dict(r) for r in result.runs]}


@dataclass(repr=False)
class DiffView(View):
    """``mlops-nb diff``: what changed between two pipeline runs, section by section."""

    diff: Any

    def to_json(self):
        from dataclasses import asdict

        return terminal.jsonable(asdict(self.diff))

    def print_terminal(self, out=None):
        from rich.markup import escape

        out = out or terminal.console()
        d = self.diff

        def head(run):
            git = f", git {run['git_commit'][:8]}{' (dirty)' if run['git_dirty'] else ''}" if run["git_commit"] else ""
            return f"{run['id'][:8]} {escape(run['name'])} (version {run['version'] or '?'}{git})"

        out.print(f"[bold]{escape(d.a['pipeline'])}[/]: {head(d.a)} -> {head(d.b)}")
        for note in d.missing:
            out.print(f"[yellow]note[/]: {escape(note)}")
        if d.same:
            out.print("no differences: the same code, params, data, packages and metrics")
            return
        if d.pipeline_file:
            out.print("\n[bold]pipeline file[/]: changed")
        if d.code:
            out.print("\n[bold]code[/]")
            for step in d.code:
                if step.status != "changed":
                    out.print(f"  {escape(step.step)} ({escape(step.notebook)}): step {step.status}")
                    continue
                out.print(f"  {escape(step.step)} ({escape(step.notebook)}): {len(step.cells)} "
                          f"cell{'s' if len(step.cells) != 1 else ''} changed")
                for cell in step.cells:
                    where = f"cell {cell.cell_b}" if cell.kind != "removed" else f"cell {cell.cell_a}"
                    moved = f" (was {cell.cell_a})" if cell.kind == "changed" and cell.cell_a != cell.cell_b else ""
                    out.print(f"    {where}{moved}: {cell.kind}")
                    sign = {"added": "+", "removed": "-"}.get(cell.kind)
                    for line in cell.lines:
                        text = f"{sign} {line}" if sign else line
                        colour = "green" if text.startswith("+") else "red" if text.startswith("-") else \
                            "cyan" if text.startswith("@@") else None
                        out.print(f"      [{colour}]{escape(text)}[/]" if colour else f"      {escape(text)}")
        for title, rows in (("params", d.params), ("source data", d.data), ("metrics", d.metrics),
                            ("packages", d.packages)):
            if not rows:
                continue
            out.print(f"\n[bold]{title}[/]")
            for name, a, b in rows:
                if title == "source data":
                    a, b = (a or "absent")[:12], (b or "absent")[:12]
                    out.print(f"  {escape(name)}: {a} -> {b}")
                elif title == "metrics" and a is not None and b is not None:
                    out.print(f"  {escape(name)}: {terminal.fmt_value(a)} -> {terminal.fmt_value(b)} "
                              f"({'+' if b >= a else ''}{terminal.fmt_value(b - a)})")
                else:
                    out.print(f"  {escape(name)}: {terminal.fmt_value(a)} -> {terminal.fmt_value(b)}")

    def _repr_html_(self):
        import html as html_lib

        return f"<pre>{html_lib.escape(repr(self))}</pre>"
