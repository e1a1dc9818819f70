"""The terminal face: ``mlops-nb runs|models|experiments ...``.

Each command opens the registry, makes one library call and renders the result as
a table (or JSON with ``--json``). User mistakes end with a one-line error and exit
code 1; internal bugs keep their traceback.
"""

from __future__ import annotations

import sys

import click

from mlops_nb import render, views
from mlops_nb.errors import FilterSyntaxError, MlopsError
from mlops_nb.registry import datasets, models, runs, search
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import Store, open_store


class _Group(click.Group):
    """Turns MlopsError into ``Error: <message>`` on stderr and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FilterSyntaxError as exc:
            raise click.ClickException(exc.args[0]) from None
        except MlopsError as exc:
            raise click.ClickException(str(exc)) from None


def _store(ctx: click.Context, must_exist: bool = True) -> Store:
    return open_store(find_home(ctx.obj.get("home"), must_exist=must_exist))


def _show(ctx: click.Context, view: views.View, as_json: bool) -> None:
    """Hand the view to the face: the terminal by default, the notebook under %mlops."""
    if as_json:
        render.print_json(view.to_json())
    else:
        ctx.obj.get("show", lambda shown: shown.print_terminal())(view)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", type=click.Path(file_okay=False), envvar="MLOPS_NB_HOME", show_envvar=True,
              help="The registry folder (default: the nearest .mlops/ in this folder or its parents).")
@click.version_option(package_name="mlops-nb")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """mlops-nb: track notebook experiments, turn notebooks into pipelines, and retrain models when
    new data, drift, a schedule or a falling score calls for it.

    Runs, metrics, datasets and models live in a local registry, .mlops/registry.db,
    found like git finds .git. Examples:

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


# -- runs ------------------------------------------------------------------------

@cli.group("runs", cls=_Group)
def runs_group() -> None:
    """List, inspect and compare runs."""


@runs_group.command("ls")
@click.option("-e", "--experiment", multiple=True, help="Only runs of this experiment (repeatable).")
@click.option("-f", "--filter", "filter_", metavar="FILTER",
              help="e.g. \"metrics.accuracy > 0.9 and params.model = 'rf'\" (see `mlops-nb help filter`).")
@click.option("-o", "--order-by", multiple=True, metavar="FIELD [asc|desc]",
              help="Sort key, e.g. 'metrics.accuracy desc' (repeatable; default: newest first).")
@click.option("-n", "--max-results", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many runs to show.")
@json_option
@click.pass_context
def runs_ls(ctx, experiment, filter_, order_by, max_results, as_json) -> None:
    """List runs, newest first, with their latest metrics and params.

    \b
      mlops-nb runs ls -e churn -f "params.C >= 1 and status = 'finished'" -o "metrics.f1 desc"
    """
    query = {"filter": filter_, "order_by": list(order_by), "experiment": list(experiment) or None,
             "max_results": max_results}
    rows = search.search_run_rows(_store(ctx), **query)
    _show(ctx, views.RunsView(rows, query), as_json)


@runs_group.command("show")
@click.argument("run")
@json_option
@click.pass_context
def runs_show(ctx, run, as_json) -> None:
    """Everything about one RUN (id, id prefix or name): params, metrics, tags, artifacts, lineage."""
    store = _store(ctx)
    found = runs.get_run(store, run)
    _show(ctx, views.RunView(found, datasets.lineage(store, found.id), _metric_steps(store, found.id)), as_json)


@runs_group.command("compare")
@click.argument("run_refs", metavar="RUN RUN...", nargs=-1, required=True)
@json_option
@click.pass_context
def runs_compare(ctx, run_refs, as_json) -> None:
    """Params and metrics of two or more runs side by side; differing params are highlighted."""
    if len(run_refs) < 2:
        raise click.UsageError("compare needs at least two runs, e.g. `mlops-nb runs compare 3f2a 9c1d`")
    store = _store(ctx)
    found = [runs.get_run(store, ref) for ref in run_refs]
    histories: dict[str, dict[str, list]] = {}
    for run in found:
        for key, step, value, _ in runs.metric_history(store, run.id):
            histories.setdefault(key, {}).setdefault(f"{run.name} ({run.id[:6]})", []).append((step, value))
    _show(ctx, views.CompareView(found, histories), as_json)


def _metric_steps(store: Store, run_id: str) -> dict[str, int]:
    return dict(store.query("SELECT key, COUNT(*) FROM metrics WHERE run_id = ? GROUP BY key", (run_id,)))


# -- experiments -----------------------------------------------------------------

@cli.group("experiments", cls=_Group)
def experiments_group() -> None:
    """List experiments."""


@experiments_group.command("ls")
@json_option
@click.pass_context
def experiments_ls(ctx, as_json) -> None:
    """Experiments with their number of runs and the time of the last one."""
    _show(ctx, views.ExperimentsView(runs.list_experiments(_store(ctx))), as_json)


# -- models ----------------------------------------------------------------------

@cli.group("models", cls=_Group)
def models_group() -> None:
    """List models, inspect versions, promote and roll back aliases."""


@models_group.command("ls")
@json_option
@click.pass_context
def models_ls(ctx, as_json) -> None:
    """Registered models with their versions and aliases."""
    _show(ctx, views.ModelsView(models.list_models(_store(ctx))), as_json)


@models_group.command("show")
@click.argument("name")
@json_option
@click.pass_context
def models_show(ctx, name, as_json) -> None:
    """Versions of model NAME (with their runs' metrics), its aliases and the alias history."""
    _show(ctx, model_view(_store(ctx), name), as_json)


@models_group.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("-a", "--alias", default="production", show_default=True, help="The alias to point at VERSION.")
@click.option("--reason", help="Why, kept in the alias history.")
@click.option("--override", metavar="REASON", help="Promote a version whose gate failed, saying why (recorded).")
@json_option
@click.pass_context
def models_promote(ctx, name, version, alias, reason, override, as_json) -> None:
    """Point NAME@ALIAS at VERSION, e.g. `mlops-nb models promote churn 3`.

    A version whose gate (mlops.gate) failed moves only with --override REASON.
    """
    from mlops_nb.registry import gates

    store = _store(ctx)
    before = _alias_or_none(store, name, alias)
    result = gates.promote(store, name, version, alias, override=override, reason=reason, require_gate=False)
    _show(ctx, views.AliasChange(name, alias, result.version, before), as_json)


@models_group.command("rollback")
@click.argument("name")
@click.option("-a", "--alias", default="production", show_default=True, help="The alias to move back.")
@click.option("--reason", help="Why, kept in the alias history.")
@json_option
@click.pass_context
def models_rollback(ctx, name, alias, reason, as_json) -> None:
    """Point NAME@ALIAS back at the version it held before the current one."""
    store = _store(ctx)
    before = models.alias_version(store, name, alias)
    result = models.rollback(store, name, alias, reason=reason)
    _show(ctx, views.AliasChange(name, alias, result.version, before), as_json)


def _alias_or_none(store: Store, name: str, alias: str) -> int | None:
    row = store.query_one("SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias))
    return row[0] if row else None


def model_view(store: Store, name: str) -> views.ModelView:
    versions = models.list_versions(store, name)
    metrics = {v.version: runs.get_run(store, v.run_id).metrics for v in versions}
    return views.ModelView(name, versions, metrics, models.alias_history(store, name))


# -- datasets --------------------------------------------------------------------

@cli.group("datasets", cls=_Group)
def datasets_group() -> None:
    """Datasets by content: their versions, and the runs and models that used each one."""


@datasets_group.command("ls")
@json_option
@click.pass_context
def datasets_ls(ctx, as_json) -> None:
    """List datasets: how many versions (contents) each has, the newest, and how many runs used it."""
    _show(ctx, views.DatasetsView(datasets.dataset_summaries(_store(ctx))), as_json)


@datasets_group.command("show")
@click.argument("name")
@json_option
@click.pass_context
def datasets_show(ctx, name, as_json) -> None:
    """Every version of dataset NAME, newest first: rows, columns, the runs that used it (and as what:
    train, test, input...) and the model versions trained from those runs."""
    _show(ctx, views.DatasetView(name, datasets.dataset_history(_store(ctx), name)), as_json)


# -- help and demo ---------------------------------------------------------------

HELP_TOPICS = {"filter": ("mlops_nb.registry.query", "the search grammar of runs ls --filter and search_runs"),
               "pipeline": ("mlops_nb.pipeline.spec", "the fields of pipeline.yaml and its steps"),
               "triggers": ("mlops_nb.triggers.spec", "the triggers: list of pipeline.yaml")}


@cli.command("help")
@click.argument("topic", required=False, type=click.Choice(list(HELP_TOPICS)))
def help_topic(topic) -> None:
    """Longer help on a TOPIC: `filter` (the search grammar), `pipeline` (pipeline.yaml), `triggers`."""
    import importlib
    import textwrap

    if topic is None:
        click.echo("mlops-nb help TOPIC, where TOPIC is one of:")
        for name, (_, what) in HELP_TOPICS.items():
            click.echo(f"  {name:<10} {what}")
        click.echo("Each command has --help too: mlops-nb run --help")
        return
    body = importlib.import_module(HELP_TOPICS[topic][0]).__doc__.split("\n", 1)[1]
    click.echo("\n\n".join(textwrap.dedent(part).strip("\n") for part in body.strip("\n").split("\n\n")))


@cli.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("-t", "--template", default="tabular-classification", show_default=True,
              help="The project template (a folder of templates/).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init_command(directory, template, force) -> None:
    """Start a project in DIRECTORY: pipeline.yaml, step notebooks, and a first batch of data."""
    from mlops_nb.scaffold import init_project

    written = init_project(directory, template, force=force)
    click.echo(f"{len(written)} files in {directory}; next: cd {directory} && mlops-nb run")


@cli.command("demo")
@click.argument("directory", default="demo", type=click.Path(file_okay=False))
def demo(directory) -> None:
    """Run the level-1 demo in DIRECTORY (default ./demo): pipeline, drifted data, triggers, retraining, gate."""
    from mlops_nb import demo as demo_module

    demo_module.run_demo(directory)


# The pipeline, trigger and kernel commands live in cli_ops; importing it adds them to `cli`.
from mlops_nb import cli_ops  # noqa: E402,F401


def main() -> None:
    cli(prog_name="mlops-nb")


if __name__ == "__main__":
    # `python -m mlops_nb.cli` runs a copy of this module; use the imported one, on whose
    # group cli_ops registered its commands.
    from mlops_nb.cli import main as registered_main

    sys.exit(registered_main())
