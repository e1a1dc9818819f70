"""What every command shares: the root group, the registry it reads, --json, and how a result is shown.

Each command parses its options, makes one library call and hands the result to
:func:`show` as a :class:`~mlops_nb.show.views.View`: a table on a terminal, JSON
with ``--json``, HTML or a widget under ``%mlops``. User mistakes end with a
one-line error and exit code 1; internal bugs keep their traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlops_nb.errors import FilterSyntaxError, MlopsError
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import Store, open_store
from mlops_nb.show import terminal
from mlops_nb.show.views import View


class Group(click.Group):
    """Turns MlopsError into ``Error: <message>`` on stderr and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FilterSyntaxError as exc:
            raise click.ClickException(exc.args[0]) from None
        except MlopsError as exc:
            raise click.ClickException(str(exc)) from None


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", type=click.Path(file_okay=False), envvar="MLOPS_NB_HOME", show_envvar=True,
              help="The registry folder (default: the nearest .mlops/ in this folder or its parents).")
@click.option("--registry", metavar="URL", envvar="MLOPS_NB_REGISTRY", show_envvar=True,
              help="A team's registry, postgresql://user@host:port/db (default: the registry: line of the "
                   "project's mlops-nb.yaml, else the SQLite file in the registry folder).")
@click.version_option(package_name="mlops-nb")
@click.pass_context
def cli(ctx: click.Context, home: str | None, registry: str | None) -> None:
    """mlops-nb: track notebook experiments, turn notebooks into pipelines, and retrain models when
    new data, drift, a schedule or a falling score calls for it.

    Runs, metrics, datasets and models live in a local registry, .mlops/registry.db,
    found like git finds .git, or in a team's PostgreSQL database (--registry). Examples:

    \b
      mlops-nb init churn && cd churn       # a project from a template
      mlops-nb run                          # its pipeline.yaml, headless
      mlops-nb watch                        # rerun it when its triggers fire
      mlops-nb runs ls --filter "metrics.accuracy > 0.9" --order-by "metrics.accuracy desc"
      mlops-nb runs compare 3f2a 9c1d
      mlops-nb models promote churn 3 --alias production
      mlops-nb models rollback churn
    """
    ctx.ensure_object(dict)
    ctx.obj.setdefault("home", home)
    if registry:
        from mlops_nb.registry.home import set_registry

        try:
            set_registry(registry)  # for this command and the kernels and processes it starts
        except MlopsError as exc:
            raise click.UsageError(str(exc)) from None


def home_option(ctx: click.Context) -> Path | None:
    """The registry --home (or MLOPS_NB_HOME, or %mlops's session) names; None: search from the pipeline."""
    home = ctx.find_root().obj.get("home")
    return Path(home) if home else None


def store_of(ctx: click.Context, must_exist: bool = True, start: Path | None = None) -> Store:
    return open_store(find_home(home_option(ctx), start=start, must_exist=must_exist))


def show(ctx: click.Context, view: View, as_json: bool = False) -> None:
    """Hand the view to the face: the terminal by default, the notebook under %mlops."""
    if as_json:
        terminal.print_json(view.to_json())
    else:
        ctx.find_root().obj.get("show", lambda shown: shown.print_terminal())(view)
