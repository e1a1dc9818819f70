"""How a notebook shows what the capabilities return: HTML formatters that IPython looks up by type.

Capabilities return plain data (``PipelineResult``, ``SweepResult``, ``CheckResult``,
``ModelVersion``, ``Monitoring``) and know nothing of rendering; ``import mlops_nb`` in a kernel (and
``%load_ext mlops_nb``) registers these formatters, by type name, so nothing is imported
until a result is displayed.
"""

from __future__ import annotations

_FORMATTERS = {
    ("mlops_nb.pipeline.state", "PipelineResult"): "pipeline_result_html",
    ("mlops_nb.pipeline.sweep", "SweepResult"): "sweep_html",
    ("mlops_nb.triggers.check", "CheckResult"): "check_html",
    ("mlops_nb.registry.models", "ModelVersion"): "model_version_html",
    ("mlops_nb.monitoring.monitor", "Monitoring"): "monitor_html",
}


def register(shell) -> None:
    """Teach ``shell`` (an IPython shell) to show our results as HTML tables."""
    formatter = shell.display_formatter.formatters["text/html"]
    for (module, name), renderer in _FORMATTERS.items():
        formatter.for_type_by_name(module, name, _lazy(renderer))


def _lazy(renderer: str):
    def render(value) -> str:
        from mlops_nb.show import html

        return getattr(html, renderer)(value)

    return render
