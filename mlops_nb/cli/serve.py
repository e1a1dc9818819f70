"""`mlops-nb serve NAME[@ALIAS]`: the model behind an alias as an HTTP prediction service."""

from __future__ import annotations

import click

from mlops_nb.cli.base import cli, home_option, show
from mlops_nb.registry.home import find_home
from mlops_nb.show import views


@cli.command("serve")
@click.argument("model", metavar="NAME[@ALIAS]")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(min=1, max=65535), default=5000, show_default=True,
              help="The port to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes (each loads the model and follows the alias).")
@click.pass_context
def serve_command(ctx, model, host, port, workers) -> None:
    """Serve model NAME at ALIAS (default production) over HTTP, following the alias as it moves.

    \b
      mlops-nb serve churn --port 5000
      curl -s localhost:5000/invocations -H 'Content-Type: application/json' \\
           -d '{"dataframe_records": [{"age": 41, "plan": "pro"}]}'

    POST /invocations speaks MLflow's scoring protocol; POST /predict takes a list of records;
    GET /ping and /health. After `models promote` or `rollback` it answers with the new version
    within seconds, without a restart.
    """
    import os

    try:
        import uvicorn

        from mlops_nb.serving.model import ServedModel
    except ImportError:
        raise click.ClickException("serving needs Starlette and uvicorn: pip install 'mlops-nb[serve]'") from None
    home = find_home(home_option(ctx), must_exist=True)
    current = ServedModel(home, model).current  # a model that does not load stops us here, in one line
    show(ctx, views.MessageView(f"serving {current.name}/{current.version} ({model}) on http://{host}:{port}: "
                                "POST /invocations or /predict, GET /health (Ctrl-C to stop)"))
    os.environ.update(MLOPS_NB_HOME=str(home), MLOPS_NB_SERVE=model)
    uvicorn.run("mlops_nb.serving.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning")
