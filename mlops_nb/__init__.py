"""mlops-nb: from notebook experiments to a model that retrains itself.

    import mlops_nb as mlops

    with mlops.start_run(experiment="churn", params={"C": 1.0}):
        mlops.log_metric("accuracy", 0.93)
    mlops.search_runs("metrics.accuracy > 0.9")

Importing this package is cheap: pandas, scikit-learn, papermill and ipywidgets
load only when a function needs them.
"""

from mlops_nb.client import (get_model_version, get_run, list_experiments, load_model, metric_history,
                             register_model, rollback, search_runs, set_alias, trigger_history)
from mlops_nb.errors import MlopsError
from mlops_nb.pipeline.context import attach_step, input, output  # noqa: A004 - mlops.input is the verb
from mlops_nb.tracking import get_store  # noqa: F401 - used by promote
from mlops_nb.tracking import (active_run, end_run, log_artifact, log_dataset, log_metric, log_metrics,
                               log_model, log_param, log_params, set_experiment, set_home, set_tag, set_tags,
                               start_run)

__version__ = "0.1.0"


def infer_schema(df, **options):
    """Column kinds, nullability, ranges and domains of ``df`` (see :mod:`mlops_nb.validation.schema`)."""
    from mlops_nb.validation.schema import infer_schema as infer

    return infer(df, **options)


def validate(df, schema, **options):
    """Check ``df`` against a schema; a report with ``.ok`` and ``.anomalies``."""
    from mlops_nb.validation.validate import validate as check

    return check(df, schema, **options)


def drift(reference, current, schema=None, **options):
    """Drift of ``current`` against ``reference`` (a frame or a profile); see :mod:`mlops_nb.validation.drift`."""
    from mlops_nb.validation.drift import drift as compare

    return compare(reference, current, schema, **options)


def profile_reference(df, **options):
    """A reference profile to store and reuse for drift instead of the reference frame."""
    from mlops_nb.validation.profile import profile_reference as profile

    return profile(df, **options)


def gate(candidate, baseline="production", eval_data=None, rules=None, **options):
    """Compare a candidate version with the model behind an alias; see :mod:`mlops_nb.validation.gate`."""
    from mlops_nb.validation.gate import gate as run_gate

    return run_gate(candidate, baseline, eval_data, rules, **options)


def promote(name, version, alias="production", *, override=None, reason=None):
    """Point ``name@alias`` at ``version`` when its gate passed (or with ``override="reason"``)."""
    from mlops_nb.registry.gates import promote as move

    return move(get_store(), name, version, alias, override=override, reason=reason)


def model_card(ref):
    """The card of a registered version: metrics, gate decision, importance, segments."""
    from mlops_nb.validation.card import model_card as card

    return card(ref)


def run_pipeline(path="pipeline.yaml", **options):
    """Run a pipeline (see :func:`mlops_nb.pipeline.runner.run_pipeline`)."""
    from mlops_nb.pipeline.runner import run_pipeline as run

    return run(path, **options)


def sweep(notebook, grid, *, project=None, metric=None, maximize=True, jobs=1, **options):
    """Run ``notebook`` once per point of ``grid`` (``{"C": [0.1, 1]}``), as sibling runs; ``project`` is the
    folder it runs in (default: here). See :func:`mlops_nb.pipeline.sweep.run_sweep`."""
    from mlops_nb.pipeline.sweep import run_sweep

    return run_sweep(notebook, grid, project=project, metric=metric, maximize=maximize, jobs=jobs, **options)


def chdir_project(marker="pipeline.yaml"):
    """Work from the project folder (the nearest one up with ``pipeline.yaml``), as a pipeline step does:
    a notebook opened in JupyterLab from ``notebooks/`` then finds ``data/`` as in the pipeline."""
    from mlops_nb.notebook import chdir_project as chdir

    return chdir(marker)


def check_triggers(path="pipeline.yaml", **options):
    """Evaluate a pipeline's triggers once and run it if any fired (what ``mlops-nb triggers check`` does)."""
    from mlops_nb.triggers.check import check_pipeline

    return check_pipeline(path, **options)


def _jupyter_server_extension_points() -> list[dict]:
    """Jupyter Server finds the REST API here (see mlops_nb.server)."""
    return [{"module": "mlops_nb.server"}]


def load_ipython_extension(ipython) -> None:
    """``%load_ext mlops_nb``: registers ``%%track`` and ``%mlops``."""
    from mlops_nb.magics import load_ipython_extension as load

    load(ipython)

__all__ = [
    "MlopsError", "active_run", "attach_step", "chdir_project", "check_triggers", "drift", "gate", "infer_schema", "model_card", "promote", "input", "output", "profile_reference",
    "run_pipeline", "validate", "end_run", "get_model_version", "get_run", "list_experiments", "load_model",
    "log_artifact", "log_dataset", "log_metric", "log_metrics", "log_model", "log_param", "log_params",
    "metric_history", "register_model", "rollback", "search_runs", "set_alias", "set_experiment", "set_home",
    "set_tag", "set_tags", "start_run", "sweep", "trigger_history",
]
