"""mlops-nb: from notebook experiments to a model that retrains itself.

    import mlops_nb as mlops

    with mlops.start_run(experiment="churn", params={"C": 1.0}):
        mlops.log_metric("accuracy", 0.93)
    mlops.search_runs("metrics.accuracy > 0.9")

Importing this package is cheap: pandas, scikit-learn, papermill and ipywidgets
load only when a function needs them.
"""

from mlops_nb import tracking
from mlops_nb.errors import MlopsError
from mlops_nb.pipeline.context import attach_step, input, output  # noqa: A004 - mlops.input is the verb
from mlops_nb.tracking import (active_run, end_run, get_store, log_artifact, log_dataset, log_dict,  # noqa: F401
                               log_figure, log_image, log_metric, log_metrics, log_model, log_param, log_params,
                               log_table, log_text, set_experiment, set_home, set_tag, set_tags, start_run)
from mlops_nb.tracking.client import (get_model_version, get_run, list_experiments, load_model, log_feedback,
                                      metric_history, predictions, register_model, rollback, search_runs, set_alias,
                                      trigger_history)

__version__ = "0.1.0"


def set_registry(url: str | None) -> None:
    """Use a team's PostgreSQL registry (``"postgresql://user@host:port/db"``) in this process and the
    kernels and processes it starts; ``"sqlite"`` for the embedded file in ``.mlops``; None: as configured
    (``$MLOPS_NB_REGISTRY``, else the project's ``mlops-nb.yaml``). A password belongs in PGPASSWORD or
    ``~/.pgpass``, not in a notebook."""
    from mlops_nb.registry.home import set_registry as choose

    choose(url)


def infer_schema(df, *, max_categories: int = 50, name: str | None = None):
    """Column kinds, nullability, ranges and domains of ``df``; a column with more distinct values than
    ``max_categories`` is text, not categorical (see :mod:`mlops_nb.validation.schema`)."""
    from mlops_nb.validation.schema import infer_schema as infer

    return infer(df, max_categories=max_categories, name=name)


def validate(df, schema, *, missing_tolerance: float = 0.05, severity: dict[str, str] | None = None):
    """Check ``df`` against a schema (an ``infer_schema`` result, a dict or a JSON path); a report with
    ``.ok`` and ``.anomalies``. ``severity`` maps an anomaly kind to ``error`` or ``warning``."""
    from mlops_nb.validation.validate import validate as check

    return check(df, schema, missing_tolerance=missing_tolerance, severity=severity)


def drift(reference, current, schema=None, *, tests: dict[str, str] | None = None,
          thresholds: dict[str, float] | None = None, columns: list[str] | None = None, psi: bool = False,
          share: float = 0.5, jobs: int = 2):
    """Drift of ``current`` against ``reference``: a frame, a profile (``profile_reference``), or the name of a
    dataset logged with ``reference=True``. ``tests``/``thresholds`` per column, ``psi=True`` for PSI
    everywhere, ``share`` of drifted columns that makes dataset drift. See :mod:`mlops_nb.validation.drift`."""
    from mlops_nb.validation.drift import drift as compare

    if isinstance(reference, str):
        from mlops_nb.tracking.client import reference_profile

        reference = reference_profile(reference)
    return compare(reference, current, schema, tests=tests, thresholds=thresholds, columns=columns, psi=psi,
                   share=share, jobs=jobs)


def profile_reference(df, *, schema=None):
    """A reference profile to store and reuse for drift instead of the reference frame."""
    from mlops_nb.validation.profile import profile_reference as profile

    return profile(df, schema=schema)


def gate(candidate: str, baseline: str | None = "production", eval_data=None, rules: dict | None = None, *,
         target: str | None = None, segment: str | None = None, importance: bool = True,
         sensitive: str | None = None):
    """Compare a candidate version ("churn/4") with the model behind an alias (or "name/version", or None for a
    first model) on ``eval_data``, by ``rules`` (fairness ones too, across the ``sensitive`` column); store
    the decision with the candidate. See :mod:`mlops_nb.validation.gate`."""
    from mlops_nb.tracking.client import gate as run_gate

    return run_gate(candidate, baseline, eval_data, rules, target=target, segment=segment, importance=importance,
                    sensitive=sensitive)


def promote(name, version, alias="production", *, override=None, reason=None):
    """Point ``name@alias`` at ``version`` when its gate passed (or with ``override="reason"``)."""
    from mlops_nb.registry.gates import promote as move

    return move(get_store(), name, version, alias, override=override, reason=reason)


def model_card(ref: str, eval_data=None, *, target: str | None = None, segment: str | None = None,
               sensitive: str | None = None, importance: bool = True):
    """The card of any registered version ("churn/4", "churn@production"): its metrics and gate decision; with
    ``eval_data`` (and ``target``), its metrics on those rows, per ``segment``, permutation importance, and
    fairness across ``sensitive`` (selection rate, TPR, FPR per group; demographic parity and equalized
    odds). Shows in a notebook; ``.save_html(path)`` writes a standalone page."""
    from mlops_nb.tracking.client import model_card as card

    return card(ref, eval_data, target=target, segment=segment, sensitive=sensitive, importance=importance)


def run_pipeline(path="pipeline.yaml", *, params=(), force: bool = False, force_steps=(), jobs: int = 1,
                 engine: str | None = None, executor: str | None = None, progress=None):
    """Run a pipeline, as ``mlops-nb run`` does; return what each step did.

    ``params`` are overrides such as ``["train.C=0.5"]``; ``engine`` is ``warm`` (pooled kernels,
    the default) or ``fresh``; ``executor`` is ``local`` (this machine, the default), ``dask`` (a Dask
    LocalCluster) or a Dask scheduler's ``tcp://HOST:PORT``; ``progress`` a :class:`~mlops_nb.pipeline.progress.Progress` (default:
    nothing shown; ``mlops_nb.show.progress.choose_progress()`` picks the display). The registry is the
    one :func:`set_home` chose, else the nearest ``.mlops`` from the pipeline's folder::

        result = mlops.run_pipeline(params=["train.C=0.5"], jobs=2)
        result.ok, result.steps["train"].status
    """
    from mlops_nb.pipeline.runner import RunOptions, run_pipeline as run

    options = RunOptions(params=tuple(params), force=force, force_steps=tuple(force_steps), jobs=jobs,
                         engine=engine, executor=executor, progress=progress)
    return run(path, options, home=tracking.configured_home())


def sweep(notebook, grid=None, *, project=None, metric: str | None = None, maximize: bool = True, jobs: int = 1,
          force: bool = False, engine: str | None = None, executor: str | None = None, progress=None,
          experiment: str | None = None, space=None, search: str = "grid", trials: int | None = None,
          seed: int | None = None):
    """Run ``notebook`` over a search space, as sibling runs, and pick the best by ``metric``: every point of
    ``grid`` (``{"C": [0.1, 1]}``), or ``trials`` points of ``space`` (``{"C": {"log_uniform": [0.01, 10]}}``
    or a YAML file) that ``search="random"`` or ``"optuna"`` picks; ``project`` is the folder it runs in
    (default: here); ``executor`` as for :func:`run_pipeline` (``"dask"``: the points as Dask tasks). See
    :mod:`mlops_nb.pipeline.sweep` and :mod:`mlops_nb.pipeline.search`."""
    from mlops_nb.pipeline.runner import RunOptions
    from mlops_nb.pipeline.sweep import run_sweep

    options = RunOptions(jobs=jobs, force=force, engine=engine, executor=executor, progress=progress)
    return run_sweep(notebook, grid, metric=metric, maximize=maximize, options=options, experiment=experiment,
                     project=project, home=tracking.configured_home(), space=space, search=search, trials=trials,
                     seed=seed)


def chdir_project(marker="pipeline.yaml"):
    """Work from the project folder (the nearest one up with ``pipeline.yaml``), as a pipeline step does:
    a notebook opened in JupyterLab from ``notebooks/`` then finds ``data/`` as in the pipeline."""
    from mlops_nb.pipeline.context import chdir_project as chdir

    return chdir(marker)


def check_triggers(path="pipeline.yaml", *, run: bool = True, engine: str | None = None, progress=None):
    """Evaluate a pipeline's triggers once and run it if any fired (what ``mlops-nb triggers check`` does);
    ``run=False`` records the firings without running."""
    from mlops_nb.pipeline.runner import RunOptions
    from mlops_nb.triggers.check import check_pipeline

    options = RunOptions(engine=engine, progress=progress)
    return check_pipeline(path, run=run, options=options, home=tracking.configured_home())


def monitor(model: str, *, alias: str = "production", window="1h", since: float | None = None,
            metric: str | None = None, last: int | None = None):
    """How the served ``model`` does, per window of its prediction log (``"1h"``, ``"1d"``, or ``500``
    predictions): traffic, latency, input and prediction drift against the serving version's training data,
    the live ``metric`` on the labelled predictions and their coverage. See :mod:`mlops_nb.monitoring.monitor`."""
    from mlops_nb.monitoring.monitor import monitor as summarise

    return summarise(tracking.get_store(), model, alias=alias, window=window, since=since, metric=metric, last=last)


def labelled_predictions(model: str, *, since: float | None = None, version: int | None = None,
                         target: str | None = None):
    """The predictions of ``model`` whose true labels came back, as new training rows: the features under their
    own names and the label under ``target`` (by default the training data's target column)."""
    from mlops_nb.monitoring.monitor import labelled_predictions as labelled

    return labelled(tracking.get_store(), model, since=since, version=version, target=target)


def write_features(view: str, df, *, features_file=None) -> dict:
    """Store ``df`` as the next version of feature view ``view`` (declared in the project's features.yaml, or
    under features: in pipeline.yaml; ``features_file`` names another file or folder): checked against the view,
    appended to its offline table, the latest values per entity updated online. In a run, its output dataset."""
    from mlops_nb.features.tables import write_features as write
    from mlops_nb.features.views import find_views, get_view

    views, where = find_views(features_file)
    run = tracking.active_run()
    return write(tracking.get_store(), get_view(views, view, where), df, run.id if run is not None else None)


def training_frame(entities, features: list, *, timestamp: str | None = None, features_file=None,
                   name: str = "training_frame", role: str = "train"):
    """For each row of ``entities`` (the views' entity keys and a time column, by default named as the first
    view's timestamp), the value each of ``features`` (``"view:feature"``, or ``"view:*"``) had at that time:
    the latest at or before it and within the view's TTL, never a later one. In a run, the frame is logged as
    its dataset ``name`` in ``role`` (a training frame with its drift reference profile; ``role="test"`` for the
    rows a model is evaluated on), with the feature view versions it read as inputs."""
    from mlops_nb.features.tables import parse_refs, training_frame as join
    from mlops_nb.features.views import find_views

    views, where = find_views(features_file)
    wanted = parse_refs(features, views, where)
    store = tracking.get_store()
    frame = join(store, views, entities, wanted, timestamp)
    run = tracking.active_run()
    if run is not None:
        from mlops_nb.registry import features as feature_store

        from mlops_nb.features.monitor import declared_schema

        # A training frame is what the drift of later writes is measured from, with the features' declared kinds.
        run.log_dataset(frame, name, role, reference=role == "train",
                        schema=declared_schema(frame, [views[v] for v in wanted]))
        for view in wanted:
            for version in feature_store.versions(store, view):
                if version["dataset_id"] is not None:
                    feature_store.link_version(store, run.id, version["dataset_id"])
    return frame


def materialize(view: str, *, full: bool = False, features_file=None) -> dict:
    """Read feature view ``view``'s source (``files:`` or ``sql:`` in features.yaml) and write, as its next
    version, the rows it does not hold yet, by entity and time (``full=True``: every row). In a run, its output
    dataset."""
    from mlops_nb.features.sources import materialize as read_source
    from mlops_nb.features.views import find_views, get_view

    views, where = find_views(features_file)
    run = tracking.active_run()
    from pathlib import Path

    return read_source(tracking.get_store(), get_view(views, view, where), where.parent if where else Path.cwd(),
                       full=full, run_id=run.id if run is not None else None)


def online_features(entities, features: list, *, features_file=None):
    """The latest values of ``features`` (``"view:feature"``) for each of ``entities`` (key values, or
    mappings of the key columns), as a DataFrame: what a served model is given."""
    from mlops_nb.features.tables import online_features as latest, parse_refs
    from mlops_nb.features.views import find_views

    views, where = find_views(features_file)
    return latest(tracking.get_store(), views, entities, parse_refs(features, views, where))


def _show_results_in_notebooks() -> None:
    """In a kernel, results (a pipeline run, a sweep, a trigger check, a model version) display as tables."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is not None and hasattr(shell, "display_formatter"):
        from mlops_nb.show.notebook import register

        register(shell)


_show_results_in_notebooks()


def _jupyter_server_extension_points() -> list[dict]:
    """Jupyter Server finds the REST API here (see mlops_nb.server)."""
    return [{"module": "mlops_nb.server"}]


def load_ipython_extension(ipython) -> None:
    """``%load_ext mlops_nb``: registers ``%%track`` and ``%mlops``."""
    from mlops_nb.magics import load_ipython_extension as load

    load(ipython)

__all__ = [
    "active_run", "attach_step", "chdir_project", "check_triggers", "drift", "end_run", "gate",
    "get_model_version", "get_run", "infer_schema", "input", "labelled_predictions", "list_experiments",
    "load_model", "log_artifact", "log_dataset", "log_dict", "log_feedback", "log_figure", "log_image", "log_table",
    "log_text", "log_metric", "log_metrics", "log_model", "log_param", "log_params", "metric_history",
    "MlopsError", "model_card", "monitor", "output", "predictions", "profile_reference", "promote", "register_model", "rollback",
    "run_pipeline", "search_runs", "set_alias", "set_experiment", "set_home", "set_registry", "set_tag", "set_tags",
    "start_run", "sweep", "trigger_history", "validate", "write_features", "training_frame", "online_features",
    "materialize",
]
