"""Notebook displays: live ipywidgets (``RunsBrowser``, ``ModelsBrowser``), each with the static
HTML of :mod:`mlops_nb.show.html` in its display data. ipywidgets loads on first use."""

__all__ = ["ModelsBrowser", "RunsBrowser", "widget_for"]


def widget_for(view):
    """The live widget that shows a command's view in JupyterLab, or None where static HTML is all there is."""
    from mlops_nb.show import views

    if isinstance(view, views.RunsView) and not view.query.get("deleted"):  # the browser searches kept runs
        from mlops_nb.widgets.runs import RunsBrowser

        return RunsBrowser(rows=view.rows, **view.query)
    if isinstance(view, views.ModelsView):
        from mlops_nb.widgets.models import ModelsBrowser

        return ModelsBrowser()
    if isinstance(view, views.ModelView):
        from mlops_nb.widgets.models import ModelsBrowser

        return ModelsBrowser(name=view.name)
    return None


def __getattr__(name: str):
    if name == "RunsBrowser":
        from mlops_nb.widgets.runs import RunsBrowser

        return RunsBrowser
    if name == "ModelsBrowser":
        from mlops_nb.widgets.models import ModelsBrowser

        return ModelsBrowser
    raise AttributeError(f"module 'mlops_nb.widgets' has no attribute {name!r}")
