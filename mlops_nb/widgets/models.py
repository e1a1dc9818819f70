"""The models browser: versions with metrics and aliases; promote and roll back, with confirmation."""

from __future__ import annotations

import ipywidgets as w

from mlops_nb.errors import MlopsError
from mlops_nb.registry import gates, models
from mlops_nb.tracking import get_store
from mlops_nb.show import html
from mlops_nb.widgets.base import StaticFallback, error_html, ok_html


class ModelsBrowser(StaticFallback, w.VBox):
    """Pick a model, see its versions, and move its aliases.

        from mlops_nb.widgets import ModelsBrowser
        ModelsBrowser("churn")
    """

    def __init__(self, name: str | None = None):
        names = [m["name"] for m in models.list_models(get_store())]
        self.model = w.Dropdown(options=names, value=name if name in names else (names[0] if names else None),
                                description="Model")
        self.table = w.HTML()
        self.version = w.Dropdown(description="Version", layout=w.Layout(width="180px"))
        self.alias = w.Combobox(value="production", options=["production", "staging"], description="Alias",
                                layout=w.Layout(width="240px"))
        self.promote_button = w.Button(description="Promote…", button_style="warning", icon="arrow-up")
        self.rollback_button = w.Button(description="Roll back…", icon="undo")
        self.question = w.HTML()
        self.confirm_button = w.Button(description="Confirm", button_style="danger")
        self.cancel_button = w.Button(description="Cancel")
        self.confirm_box = w.HBox([self.question, self.confirm_button, self.cancel_button],
                                  layout=w.Layout(display="none"))
        self.message = w.HTML()
        self.pending: tuple | None = None
        super().__init__(children=[self.model, self.table,
                                   w.HBox([self.version, self.alias, self.promote_button, self.rollback_button]),
                                   self.confirm_box, self.message])
        self.model.observe(lambda _: self.refresh(), names="value")
        self.promote_button.on_click(lambda _: self.ask_promote())
        self.rollback_button.on_click(lambda _: self.ask_rollback())
        self.confirm_button.on_click(lambda _: self.confirm())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.refresh()

    def refresh(self) -> None:
        name = self.model.value
        if name is None:
            self.table.value = "<p>No registered models yet: mlops.register_model(run, name) makes one.</p>"
            return
        store = get_store()
        versions, metrics = models.versions_with_metrics(store, name)
        self.table.value = html.model_html(name, versions, metrics, models.alias_history(store, name))
        self.version.options = [(f"version {v.version}", v.version) for v in reversed(versions)]

    def _current(self, name: str, alias: str) -> int | None:
        return models.alias_version_or_none(get_store(), name, alias)

    def ask_promote(self) -> None:
        name, alias, version = self.model.value, self.alias.value.strip(), self.version.value
        if name is None or version is None:
            return
        now = self._current(name, alias)
        self._ask(("promote", name, alias, version),
                  f"Point <b>{html.e(name)}@{html.e(alias)}</b> at version {version}"
                  f"{f' (now version {now})' if now is not None else ''}?")

    def ask_rollback(self) -> None:
        name, alias = self.model.value, self.alias.value.strip()
        if name is None:
            return
        now = self._current(name, alias)
        if now is None:
            self.message.value = error_html(f"{name}@{alias} is not set, so there is nothing to roll back")
            return
        self._ask(("rollback", name, alias, now),
                  f"Roll <b>{html.e(name)}@{html.e(alias)}</b> back from version {now} to the version before it?")

    def _ask(self, action: tuple, question: str) -> None:
        self.pending = action
        self.question.value = question
        self.confirm_box.layout.display = "flex"
        self.message.value = ""

    def confirm(self) -> None:
        action, self.pending = self.pending, None
        self.confirm_box.layout.display = "none"
        if action is None:
            return
        kind, name, alias, version = action
        try:
            if kind == "promote":
                result = models.set_alias(get_store(), name, version, alias, reason="promoted from the models widget")
            else:
                result, _ = gates.rollback(get_store(), name, alias, reason="rolled back from the models widget")
        except MlopsError as exc:
            self.message.value = error_html(str(exc))
            return
        self.message.value = ok_html(f"{name}@{alias} -> version {result.version}")
        self.refresh()

    def cancel(self) -> None:
        self.pending = None
        self.confirm_box.layout.display = "none"
        self.message.value = "cancelled"

    def static_html(self) -> str:
        return self.table.value
