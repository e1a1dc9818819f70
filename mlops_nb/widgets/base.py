"""What every mlops-nb widget shares: a static HTML fallback in its display data."""

from __future__ import annotations


class StaticFallback:
    """Mixin for ipywidgets: adds ``text/html`` beside the widget view, so papermill output
    notebooks, nbconvert exports and viewers without a kernel show a readable table
    instead of a widget placeholder."""

    def static_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self.static_html()
        return bundle


def error_html(message: str) -> str:
    from html import escape

    return f'<span style="color:#c62828">{escape(message)}</span>'


def ok_html(message: str) -> str:
    from html import escape

    return f'<span style="color:#2e7d32">{escape(message)}</span>'
