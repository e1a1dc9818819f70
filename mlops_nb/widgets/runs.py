"""The runs browser: filter (search grammar), sort by any column, select runs and compare, or show one
with its figures, tables, images and texts."""

from __future__ import annotations

import ipywidgets as w

from mlops_nb.errors import MlopsError
from mlops_nb.registry import runs as run_store
from mlops_nb.registry import search
from mlops_nb.tracking import flush_active, get_store
from mlops_nb.show import html
from mlops_nb.widgets.base import StaticFallback, error_html

_SEP = "\x1f"
_BASE_SORTS = ["start_time", "end_time", "name", "status", "experiment"]


class RunsBrowser(StaticFallback, w.VBox):
    """Runs as a table with a filter box, sorting, and a comparison of selected runs.

        from mlops_nb.widgets import RunsBrowser
        RunsBrowser(filter="metrics.accuracy > 0.9", order_by=["metrics.accuracy desc"])
    """

    def __init__(self, rows: list[dict] | None = None, *, filter: str | None = None,
                 order_by: list[str] | str | None = None, experiment=None, max_results: int | None = 50):
        order = ([order_by] if isinstance(order_by, str) else list(order_by or [])) or ["start_time desc"]
        sort_field, _, direction = order[0].rpartition(" ") if order[0].lower().endswith((" asc", " desc")) \
            else (order[0], "", "asc")
        experiments = [e["name"] for e in run_store.list_experiments(get_store())]
        options = [("all experiments", "")] + [(n, n) for n in experiments]
        chosen = experiment[0] if isinstance(experiment, list) and len(experiment) == 1 else experiment
        if isinstance(chosen, list):  # several experiments from `runs ls -e a -e b`
            options.append((", ".join(chosen), _SEP.join(chosen)))
            chosen = _SEP.join(chosen)
        self.filter_box = w.Text(value=filter or "", description="Filter", continuous_update=False,
                                 placeholder="metrics.accuracy > 0.9 and params.model = 'rf'",
                                 layout=w.Layout(width="55%"))
        # "" stands for all experiments: a Dropdown shows a value of None as no selection.
        self.experiment = w.Dropdown(options=options, value=chosen if chosen in dict(options).values() else "",
                                     description="Experiment")
        self.sort = w.Dropdown(options=_BASE_SORTS, value=sort_field if sort_field in _BASE_SORTS else "start_time",
                               description="Sort by")
        if sort_field not in _BASE_SORTS:
            self.sort.options = _BASE_SORTS + [sort_field]
            self.sort.value = sort_field
        self.direction = w.ToggleButtons(options=["desc", "asc"], value=direction.lower() or "desc",
                                         style={"button_width": "64px"})
        self.max_results = w.BoundedIntText(value=max_results or 50, min=1, max=100_000, description="Max",
                                            layout=w.Layout(width="150px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="100px"))
        self.message = w.HTML()
        self.table = w.HTML()
        self.selection = w.SelectMultiple(description="Runs", rows=6, layout=w.Layout(width="45%"))
        self.metric_choice = w.SelectMultiple(description="Metrics", rows=6, layout=w.Layout(width="30%"))
        self.compare_button = w.Button(description="Compare", icon="columns", tooltip="Compare the selected runs")
        self.show_button = w.Button(description="Show", icon="eye",
                                    tooltip="The selected run: its details, figures, tables, images and texts")
        self.comparison = w.HTML()
        self.rows: list[dict] = []
        super().__init__(children=[
            w.HBox([self.filter_box, self.experiment]),
            w.HBox([self.sort, self.direction, self.max_results, self.refresh_button]),
            self.message, self.table,
            w.HBox([self.selection, self.metric_choice, w.VBox([self.compare_button, self.show_button])]),
            self.comparison])
        self._updating = False
        for control in (self.filter_box, self.experiment, self.sort, self.direction, self.max_results):
            control.observe(self._on_change, names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.compare_button.on_click(lambda _: self.compare())
        self.show_button.on_click(lambda _: self.show_run())
        if rows is None:
            self.refresh()
        else:
            self._show(rows)

    def _on_change(self, _change) -> None:
        if not self._updating:  # our own updates of the controls are not user input
            self.refresh()

    @property
    def order_by(self) -> list[str]:
        return [f"{self.sort.value} {self.direction.value}"]

    def refresh(self) -> None:
        """Search the registry again with the current filter, experiment, sort and limit."""
        flush_active()
        try:
            rows = search.search_run_rows(get_store(), self.filter_box.value or None, order_by=self.order_by,
                                          experiment=self.experiment.value.split(_SEP) if self.experiment.value
                                          else None,
                                          max_results=self.max_results.value)
        except MlopsError as exc:
            self.message.value = error_html(exc.args[0] if exc.args else str(exc))
            return
        self.message.value = ""
        self._show(rows)

    def _show(self, rows: list[dict]) -> None:
        self.rows = rows
        self.table.value = html.runs_html(rows)
        keys = {f"metrics.{k}" for r in rows for k in r["metrics"]} | {f"params.{k}" for r in rows for k in r["params"]}
        options = _BASE_SORTS + sorted(keys)
        current = self.sort.value
        if current not in options:
            options.append(current)
        self._updating = True
        try:
            self.sort.options = options
            self.sort.value = current
        finally:
            self._updating = False
        selected = [v for v in self.selection.value if any(r["run_id"] == v for r in rows)]
        self.selection.options = [(f"{r['name']} ({r['run_id'][:8]})", r["run_id"]) for r in rows]
        self.selection.value = tuple(selected)
        self.metric_choice.options = sorted({k for r in rows for k in r["metrics"]})

    def compare(self) -> None:
        """Show the selected runs side by side, with a chart per chosen metric (all when none chosen)."""
        chosen = list(self.selection.value)
        if len(chosen) < 2:
            self.comparison.value = error_html("select two or more runs to compare (ctrl/shift-click)")
            return
        store = get_store()
        found = [run_store.get_run(store, run_id) for run_id in chosen]
        keys = set(self.metric_choice.value) or {k for r in found for k in r.metrics}
        histories: dict[str, dict[str, list]] = {}
        for run in found:
            for key, step, value, _ in run_store.metric_history(store, run.id):
                if key in keys:
                    histories.setdefault(key, {}).setdefault(f"{run.name} ({run.id[:6]})", []).append((step, value))
        self.comparison.value = html.compare_html(found, histories)

    def show_run(self) -> None:
        """The one selected run, as ``runs show`` shows it, with previews of what it keeps to be looked at."""
        from mlops_nb.registry import datasets
        from mlops_nb.show.media import previews_html

        chosen = list(self.selection.value)
        if len(chosen) != 1:
            self.comparison.value = error_html("select one run to show")
            return
        store = get_store()
        run = run_store.get_run(store, chosen[0])
        self.comparison.value = (html.run_html(run, datasets.lineage(store, run.id), run_store.metric_counts(store, run.id))
                                 + previews_html(store.artifacts_dir, run))

    def static_html(self) -> str:
        return self.table.value + self.comparison.value
