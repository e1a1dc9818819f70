"""What a command shows, independent of where: a terminal (rich), a notebook (HTML or a
widget) or a script (JSON). The CLI and the ``%mlops`` magic build the same views.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from mlops_nb import render
from mlops_nb.widgets import html


class View:
    """Base: subclasses give ``to_json``, ``print_terminal`` and ``_repr_html_``."""

    def to_json(self) -> Any:
        raise NotImplementedError

    def print_terminal(self, out=None) -> None:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        # The terminal rendering, uncoloured: what a plain-text front end shows.
        buffer = io.StringIO()
        self.print_terminal(render.Console(file=buffer, width=120, color_system=None, highlight=False))
        return buffer.getvalue().rstrip()

    def widget(self):
        """A live widget for JupyterLab, or None when static HTML is all there is."""
        return None


@dataclass(repr=False)
class RunsView(View):
    rows: list[dict]
    query: dict = field(default_factory=dict)

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        render.runs_table(self.rows, out)

    def _repr_html_(self):
        return html.runs_html(self.rows)

    def widget(self):
        from mlops_nb.widgets.runs import RunsBrowser

        return RunsBrowser(rows=self.rows, **self.query)


@dataclass(repr=False)
class RunView(View):
    run: Any
    lineage: dict
    metric_steps: dict

    def to_json(self):
        return render.run_dict(self.run, lineage=self.lineage, metric_steps=self.metric_steps)

    def print_terminal(self, out=None):
        render.run_detail(self.run, lineage=self.lineage, metric_steps=self.metric_steps, out=out)

    def _repr_html_(self):
        return html.run_html(self.run, self.lineage, self.metric_steps)


@dataclass(repr=False)
class CompareView(View):
    runs: list
    histories: dict = field(default_factory=dict)

    def to_json(self):
        return [render.run_dict(r) for r in self.runs]

    def print_terminal(self, out=None):
        render.compare_table(self.runs, out)

    def _repr_html_(self):
        return html.compare_html(self.runs, self.histories)


@dataclass(repr=False)
class ExperimentsView(View):
    rows: list[dict]

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        render.experiments_table(self.rows, out)

    def _repr_html_(self):
        return html.experiments_html(self.rows)


@dataclass(repr=False)
class DatasetsView(View):
    rows: list[dict]

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        render.datasets_table(self.rows, out)

    def _repr_html_(self):
        return html.datasets_html(self.rows)


@dataclass(repr=False)
class DatasetView(View):
    name: str
    versions: list[dict]

    def to_json(self):
        return {"name": self.name, "versions": self.versions}

    def print_terminal(self, out=None):
        render.dataset_detail(self.name, self.versions, out)

    def _repr_html_(self):
        return html.dataset_html(self.name, self.versions)


@dataclass(repr=False)
class ModelsView(View):
    rows: list[dict]

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        render.models_table(self.rows, out)

    def _repr_html_(self):
        return html.models_html(self.rows)

    def widget(self):
        from mlops_nb.widgets.models import ModelsBrowser

        return ModelsBrowser()


@dataclass(repr=False)
class ModelView(View):
    name: str
    versions: list
    metrics: dict
    history: list

    def to_json(self):
        return {"name": self.name,
                "versions": [render.version_dict(v, self.metrics[v.version]) for v in self.versions],
                "alias_history": self.history}

    def print_terminal(self, out=None):
        render.model_detail(self.name, self.versions, self.metrics, self.history, out)

    def _repr_html_(self):
        return html.model_html(self.name, self.versions, self.metrics, self.history)

    def widget(self):
        from mlops_nb.widgets.models import ModelsBrowser

        return ModelsBrowser(name=self.name)


@dataclass(repr=False)
class AliasChange(View):
    name: str
    alias: str
    version: int
    previous: int | None

    @property
    def text(self) -> str:
        was = f" (was version {self.previous})" if self.previous is not None else ""
        return f"{self.name}@{self.alias} -> version {self.version}{was}"

    def to_json(self):
        return {"name": self.name, "alias": self.alias, "version": self.version, "previous": self.previous}

    def print_terminal(self, out=None):
        (out or render.console()).print(self.text, markup=False)

    def _repr_html_(self):
        return html.message_html(self.text)

    def __repr__(self):
        return self.text


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

        out = out or render.console()
        names = list(self.outcome.points[0]["params"]) if self.outcome.points else []
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for header in ["", "run", "status", *names, self.outcome.metric or "metric"]:
            table.add_column(escape(header))
        for point, value, is_best in self._rows():
            table.add_row("[bold green]best[/]" if is_best else "", (point["run_id"] or "")[:8], point["status"],
                          *(render.fmt_value(point["params"][n]) for n in names), render.fmt_value(value))
        out.print(table)

    def _repr_html_(self):
        names = list(self.outcome.points[0]["params"]) if self.outcome.points else []
        rows = [[html.cell("best" if is_best else "", "font-weight:700;color:#2e7d32"),
                 html.cell(f"<code>{html.e((point['run_id'] or '')[:8])}</code>"), html.cell(html.e(point["status"])),
                 *(html.cell(html.text_value(point["params"][n]), numeric=True) for n in names),
                 html.cell(html.text_value(value), numeric=True)] for point, value, is_best in self._rows()]
        return html.table(["", "run", "status", *map(html.e, names), html.e(self.outcome.metric or "metric")], rows)


def check_dict(result) -> dict:
    return {"pipeline": result.pipeline, "busy": result.busy, "errors": result.errors, "notes": result.notes,
            "fired": [{"trigger": f.trigger.key, "kind": f.trigger.kind, "reason": f.reason, "evidence": f.evidence}
                      for f in result.fired],
            "runs": [pipeline_result_dict(r) for r in result.runs]}
