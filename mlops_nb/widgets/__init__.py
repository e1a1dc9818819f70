"""Notebook displays: live ipywidgets (``RunsBrowser``, ``ModelsBrowser``) and the static
HTML they fall back to (``mlops_nb.widgets.html``). ipywidgets loads on first use."""

__all__ = ["ModelsBrowser", "RunsBrowser"]


def __getattr__(name: str):
    if name == "RunsBrowser":
        from mlops_nb.widgets.runs import RunsBrowser

        return RunsBrowser
    if name == "ModelsBrowser":
        from mlops_nb.widgets.models import ModelsBrowser

        return ModelsBrowser
    raise AttributeError(f"module 'mlops_nb.widgets' has no attribute {name!r}")
