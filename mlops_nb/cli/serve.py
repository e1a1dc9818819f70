"""`mlops-nb serve|predict|feedback|monitor`: the model behind an alias in service, and how it does."""

from __future__ import annotations

import time
from datetime import datetime

import click

from mlops_nb.cli.base import Group, cli, home_option, json_option, show, store_of
from mlops_nb.errors import InvalidInputError
from mlops_nb.registry.home import find_home
from mlops_nb.show import views


@cli.command("serve")
@click.argument("model", metavar="NAME[@ALIAS]")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(min=1, max=65535), default=5000, show_default=True,
              help="The port to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes (each loads the model and follows the alias).")
@click.option("--features", "feature_views", multiple=True, metavar="VIEW",
              help="Fill each row's missing features in from feature view VIEW's latest values (rows then need "
                   "only its entity key); repeat it, or separate views with commas.")
@click.pass_context
def serve_command(ctx, model, host, port, workers, feature_views) -> None:
    """Serve model NAME at ALIAS (default production) over HTTP, following the alias as it moves.

    \b
      mlops-nb serve churn --port 5000
      curl -s localhost:5000/invocations -H 'Content-Type: application/json' \\
           -d '{"dataframe_records": [{"age": 41, "plan": "pro"}]}'

    POST /invocations speaks MLflow's scoring protocol; POST /predict takes a list of records;
    GET /ping and /health. After `models promote` or `rollback` it answers with the new version
    within seconds, without a restart.

    \b
      mlops-nb serve churn --features customer_stats
      curl -s localhost:5000/predict -d '[{"customer_id": 17}]'

    With --features, a row names its entity and the service fills in the model's features from the
    view's online table (declared in features.yaml here or above); the values used are logged.
    """
    import os

    try:
        import uvicorn

        from mlops_nb.serving.model import ServedModel
    except ImportError as exc:  # Starlette, uvicorn, pyarrow, orjson: the serve extra
        raise click.ClickException(f"serving needs {exc.name}: pip install 'mlops-nb[serve]'") from None
    home = find_home(home_option(ctx), must_exist=True)
    served = ServedModel(home, model)  # a model that does not load stops us here, in one line
    current = served.current
    show(ctx, views.MessageView(f"serving {current.name}/{current.version} ({model}) on http://{host}:{port}: "
                                "POST /invocations or /predict, GET /health (Ctrl-C to stop)"))
    os.environ.update(MLOPS_NB_HOME=str(home), MLOPS_NB_SERVE=model)
    names = [n.strip() for given in feature_views for n in given.split(",") if n.strip()]
    if names:
        served.features = _feature_views(names)
        filled = served.filler(current)
        if not filled.filled:
            raise InvalidInputError(f"{current.name}/{current.version} takes none of the features of "
                                    f"{', '.join(names)} (its inputs: {', '.join(current.signature.columns[:12])}); "
                                    "serve it without --features, or name the views it was trained on")
        show(ctx, views.MessageView(f"missing features come from the online table: {filled.describe()}"))
        os.environ.update(MLOPS_NB_FEATURES=",".join(names), MLOPS_NB_FEATURES_FILE=os.getcwd())
    # http and loop stay "auto": httptools and uvloop (the serve extra) where they install, else uvicorn's own.
    # No access log: at log level warning its lines are dropped, but only after each request has made one.
    uvicorn.run("mlops_nb.serving.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


@cli.command("predict")
@click.argument("model", metavar="NAME[@ALIAS]")
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where the scored rows go (.csv or .parquet).")
@click.option("--no-log", is_flag=True, help="Do not write these predictions to the prediction log.")
@json_option
@click.pass_context
def predict_command(ctx, model, data, output, no_log, as_json) -> None:
    """Score every row of DATA (.csv or .parquet) with model NAME at ALIAS (default production).

    \b
      mlops-nb predict churn customers.csv -o scored.csv

    OUTPUT holds DATA's columns, the prediction, the class probabilities (proba_<class>) and a
    prediction_id per row; the predictions go to the same log as a service's, so labels sent later
    with `mlops-nb feedback add` count in `mlops-nb monitor`.
    """
    from mlops_nb.serving.batch import score_file

    _need_pyarrow()
    result = score_file(find_home(home_option(ctx), must_exist=True), model, data, output, log=not no_log)
    logged = "logged" if result["logged"] else "not logged"
    show(ctx, views.MessageView(f"scored {result['rows']:,} rows with {result['model']}/{result['version']} "
                                f"-> {result['output']} ({logged})", result), as_json)


@cli.group("feedback", cls=Group)
def feedback_group() -> None:
    """The true labels of logged predictions, as they arrive (all kept, the last one counts)."""


@feedback_group.command("add")
@click.argument("labels", type=click.Path(dir_okay=False))
@click.option("--id-column", default="prediction_id", show_default=True,
              help="The column holding the prediction ids (a service's answer, or `predict`'s output).")
@click.option("--label-column", required=True, help="The column holding the true labels.")
@click.option("--model", help="The model that made the predictions (default: the one whose log has the ids).")
@json_option
@click.pass_context
def feedback_add(ctx, labels, id_column, label_column, model, as_json) -> None:
    """Store the labels in LABELS (.csv or .parquet) for the predictions they name.

    \b
      mlops-nb feedback add labels.csv --id-column prediction_id --label-column churned

    Rows without a label are skipped; ids no logged prediction has are reported, not stored.
    """
    from mlops_nb.registry.feedback import model_of, record_feedback
    from mlops_nb.serving.batch import read_table

    _need_pyarrow()
    frame = read_table(labels)
    for column, option in ((id_column, "--id-column"), (label_column, "--label-column")):
        if column not in frame.columns:
            raise InvalidInputError(f"{labels} has no column {column!r} ({option}); its columns: "
                                    f"{', '.join(map(str, frame.columns[:12]))}")
    given = frame[frame[label_column].notna()]
    ids = [str(i) for i in given[id_column].tolist()]
    if not ids:
        raise InvalidInputError(f"{labels} holds no labels in column {label_column!r}")
    store = store_of(ctx)
    model = model or model_of(store, ids)
    result = record_feedback(store, model, ids, given[label_column].tolist())
    unknown = result["unknown"]
    text = (f"stored {result['stored']:,} label(s) for {model}" + (f"; skipped {len(frame) - len(given):,} row(s) "
            "without a label" if len(given) < len(frame) else "") +
            (f"; {len(unknown):,} id(s) match no logged prediction (e.g. {unknown[0]})" if unknown else ""))
    show(ctx, views.MessageView(text, dict(result, model=model)), as_json)


@cli.command("monitor")
@click.argument("model", metavar="NAME[@ALIAS]")
@click.option("--window", default="1h", show_default=True,
              help="A duration (30m, 1h, 1d) or a number of predictions (500) per window.")
@click.option("--since", help="Only predictions since then: a duration back from now (7d) or a date (2026-12-01).")
@click.option("--last", type=click.IntRange(min=1), help="Show only the newest N windows.")
@click.option("--metric", help="The live metric on the labelled predictions (default: accuracy, or rmse for "
                               "numbers): accuracy, precision, recall, f1, mae, rmse, r2.")
@json_option
@click.pass_context
def monitor_command(ctx, model, window, since, last, metric, as_json) -> None:
    """How model NAME at ALIAS (default production) does in service, window by window.

    \b
      mlops-nb monitor churn --window 1h --since 2d

    Per window, from the prediction log and the labels that came back: traffic, latency
    percentiles, the share of input features that drifted from the serving version's training
    data, prediction drift, and the live metric with its label coverage; then where the alias
    moved and triggers fired.
    """
    from mlops_nb.monitoring.monitor import monitor
    from mlops_nb.serving.model import parse_ref

    _need_pyarrow()
    name, alias = parse_ref(model)
    found = monitor(store_of(ctx), name, alias=alias, window=window, since=_since(since), metric=metric, last=last)
    show(ctx, views.MonitorView(found), as_json)


def _feature_views(names: list[str]) -> list:
    try:
        from mlops_nb.serving.app import feature_views
    except ImportError as exc:
        raise click.ClickException(f"--features needs {exc.name}: pip install 'mlops-nb[features]'") from None
    return feature_views(names, None)


def _need_pyarrow() -> None:
    from importlib.util import find_spec

    missing = [name for name in ("pyarrow", "orjson") if find_spec(name) is None]  # the log is Parquet
    if missing:
        raise click.ClickException(f"the prediction log needs {' and '.join(missing)}: pip install 'mlops-nb[serve]'")


def _since(text: str | None) -> float | None:
    from mlops_nb.monitoring.windows import parse_window

    if text is None:
        return None
    try:
        kind, seconds = parse_window(text)
        if kind == "time":
            return time.time() - seconds
    except InvalidInputError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InvalidInputError(f"--since {text!r} is a duration back from now (7d, 12h) or a date "
                                "(2026-12-01 or 2026-12-01T08:00)") from None
