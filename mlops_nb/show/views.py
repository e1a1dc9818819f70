"""What a command shows, independent of where: a terminal (rich), a notebook (HTML, or a
widget: :func:`mlops_nb.widgets.widget_for`) or a script (JSON). Every CLI command, and so
the ``%mlops`` magic, shows its result as one of these.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from mlops_nb.show import html
from mlops_nb.show import terminal


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
        self.print_terminal(terminal.Console(file=buffer, width=120, color_system=None, highlight=False))
        return buffer.getvalue().rstrip()



@dataclass(repr=False)
class RunsView(View):
    rows: list[dict]
    query: dict = field(default_factory=dict)

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        terminal.runs_table(self.rows, out)

    def _repr_html_(self):
        return html.runs_html(self.rows)



@dataclass(repr=False)
class RunView(View):
    run: Any
    lineage: dict
    metric_steps: dict
    artifacts_dir: Any = None  # where the artifacts are: their paths printed, their previews shown

    def to_json(self):
        return terminal.run_dict(self.run, lineage=self.lineage, metric_steps=self.metric_steps,
                                 artifacts_dir=self.artifacts_dir)

    def print_terminal(self, out=None):
        terminal.run_detail(self.run, lineage=self.lineage, metric_steps=self.metric_steps, out=out,
                            artifacts_dir=self.artifacts_dir)

    def _repr_html_(self):
        from mlops_nb.show.media import previews_html

        previews = previews_html(self.artifacts_dir, self.run) if self.artifacts_dir is not None else ""
        return html.run_html(self.run, self.lineage, self.metric_steps) + previews


@dataclass(repr=False)
class CompareView(View):
    runs: list
    histories: dict = field(default_factory=dict)

    def to_json(self):
        return [terminal.run_dict(r) for r in self.runs]

    def print_terminal(self, out=None):
        terminal.compare_table(self.runs, out)

    def _repr_html_(self):
        return html.compare_html(self.runs, self.histories)


@dataclass(repr=False)
class ExperimentsView(View):
    rows: list[dict]

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        terminal.experiments_table(self.rows, out)

    def _repr_html_(self):
        return html.experiments_html(self.rows)


@dataclass(repr=False)
class DatasetsView(View):
    rows: list[dict]

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        terminal.datasets_table(self.rows, out)

    def _repr_html_(self):
        return html.datasets_html(self.rows)


@dataclass(repr=False)
class DatasetView(View):
    name: str
    versions: list[dict]

    def to_json(self):
        return {"name": self.name, "versions": self.versions}

    def print_terminal(self, out=None):
        terminal.dataset_detail(self.name, self.versions, out)

    def _repr_html_(self):
        return html.dataset_html(self.name, self.versions)


@dataclass(repr=False)
class ModelsView(View):
    rows: list[dict]

    def to_json(self):
        return self.rows

    def print_terminal(self, out=None):
        terminal.models_table(self.rows, out)

    def _repr_html_(self):
        return html.models_html(self.rows)



@dataclass(repr=False)
class ModelView(View):
    name: str
    versions: list
    metrics: dict
    history: list

    def to_json(self):
        return {"name": self.name,
                "versions": [terminal.version_dict(v, self.metrics[v.version]) for v in self.versions],
                "alias_history": self.history}

    def print_terminal(self, out=None):
        terminal.model_detail(self.name, self.versions, self.metrics, self.history, out)

    def _repr_html_(self):
        return html.model_html(self.name, self.versions, self.metrics, self.history)



@dataclass(repr=False)
class AliasChange(View):
    name: str
    alias: str
    version: int
    previous: int | None
    gate: dict | None = None       # the decision of record of the version the alias points at now
    rolled_back: bool = False

    @property
    def text(self) -> str:
        was = f" (was version {self.previous})" if self.previous is not None else ""
        text = f"{self.name}@{self.alias} -> version {self.version}{was}"
        if self.rolled_back:
            text += f"; {gate_text(self.gate)}"
        return text

    def to_json(self):
        data = {"name": self.name, "alias": self.alias, "version": self.version, "previous": self.previous}
        if self.rolled_back:
            data["gate"] = None if self.gate is None else {k: self.gate[k] for k in (
                "id", "passed", "source", "override_reason", "created_at")}
        return data

    def print_terminal(self, out=None):
        (out or terminal.console()).print(self.text, markup=False)

    def _repr_html_(self):
        return html.message_html(self.text)

    def __repr__(self):
        return self.text


def gate_text(decision: dict | None) -> str:
    """What a version's gate decision of record says, in a few words."""
    if decision is None:
        return "it has no gate decision"
    verdict = "passed" if decision["passed"] else "failed"
    override = (f", overridden{' by ' + decision['override_by'] if decision.get('override_by') else ''}: "
                f"{decision['override_reason']}" if decision.get("override_reason") else "")
    return f"its gate {verdict} (decision {decision['id']}, {decision.get('source', 'pipeline')}{override})"


@dataclass(repr=False)
class KernelsView(View):
    reply: dict | None            # the daemon's answer; None when no daemon runs

    def to_json(self):
        return {"running": False, "kernels": []} if self.reply is None else {"running": True, **self.reply}

    def print_terminal(self, out=None):
        if self.reply is None:
            (out or terminal.console()).print("no kernel daemon is running (start one with `mlops-nb kernels start`)",
                                            markup=False)
        else:
            terminal.kernels_table(self.reply, out)

    def _repr_html_(self):
        return html.kernels_html(self.reply)


@dataclass(repr=False)
class CopyView(View):
    """What ``registry copy`` did: rows per table on both sides, and the blobs."""

    report: Any

    def to_json(self):
        r = self.report
        return {"source": r.source, "destination": r.destination, "ok": r.ok,
                "tables": {t: {"source": s, "destination": d, "new": n} for t, (s, d, n) in r.tables.items()},
                "blobs": dict(zip(("source", "copied", "bytes"), r.blobs))}

    @property
    def text(self) -> str:
        r = self.report
        new = sum(n for _, _, n in r.tables.values())
        lines = [f"copied {r.source} -> {r.destination}: {new:,} new rows, {r.blobs[1]:,} new blobs "
                 f"({r.blobs[2] / 1e6:.1f} MB); the rows of every table match on both sides"]
        for table, (src, dst, n) in r.tables.items():
            if src or dst:
                lines.append(f"  {table:<16} {dst:>10,}  (+{n:,})")
        lines.append(f"  {'blobs':<16} {r.blobs[0]:>10,}  (+{r.blobs[1]:,})")
        return "\n".join(lines)

    def print_terminal(self, out=None):
        (out or terminal.console()).print(self.text, markup=False, highlight=False)

    def _repr_html_(self):
        return html.message_html(self.text)


@dataclass(repr=False)
class MessageView(View):
    """A sentence (or a few lines) for people, and the data behind it for scripts."""

    text: str
    data: Any = None
    preformatted: bool = False

    def to_json(self):
        return self.data if self.data is not None else {"message": self.text}

    def print_terminal(self, out=None):
        (out or terminal.console()).print(self.text, markup=False, highlight=False)

    def _repr_html_(self):
        if self.preformatted:
            return f"<pre style='font-size:12px'>{html.e(self.text)}</pre>"
        return "".join(html.message_html(line) for line in self.text.splitlines())

    def __repr__(self):
        return self.text


@dataclass(repr=False)
class MonitorView(View):
    """A served model, window by window (:class:`mlops_nb.monitoring.monitor.Monitoring`)."""

    monitoring: Any

    def to_json(self):
        return self.monitoring.to_dict()

    def print_terminal(self, out=None):
        terminal.monitor_table(self.monitoring, out)

    def _repr_html_(self):
        return html.monitor_html(self.monitoring)

