"""`mlops-nb runs ls|show|compare` and `mlops-nb experiments ls`."""

from __future__ import annotations

import click

from mlops_nb.cli.base import Group, cli, json_option, show, store_of
from mlops_nb.registry import datasets, runs, search
from mlops_nb.show import views


@cli.group("runs", cls=Group)
def runs_group() -> None:
    """List, inspect and compare runs."""


@runs_group.command("ls")
@click.option("-e", "--experiment", multiple=True, help="Only runs of this experiment (repeatable).")
@click.option("-f", "--filter", "filter_", metavar="FILTER",
              help="e.g. \"metrics.accuracy > 0.9 and params.model = 'rf'\" (see `mlops-nb help filter`).")
@click.option("-o", "--order-by", multiple=True, metavar="FIELD [asc|desc]",
              help="Sort key, e.g. 'metrics.accuracy desc' (repeatable; default: newest first).")
@click.option("-n", "--max-results", type=click.IntRange(min=1, max=1_000_000), default=20, show_default=True,
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
    rows = search.search_run_rows(store_of(ctx), **query)
    show(ctx, views.RunsView(rows, query), as_json)


@runs_group.command("show")
@click.argument("run")
@json_option
@click.pass_context
def runs_show(ctx, run, as_json) -> None:
    """Everything about one RUN (id, id prefix or name): params, metrics, tags, artifacts, lineage."""
    store = store_of(ctx)
    found = runs.get_run(store, run)
    show(ctx, views.RunView(found, datasets.lineage(store, found.id), runs.metric_counts(store, found.id),
                            store.artifacts_dir), as_json)


@runs_group.command("compare")
@click.argument("run_refs", metavar="RUN RUN...", nargs=-1, required=True)
@json_option
@click.pass_context
def runs_compare(ctx, run_refs, as_json) -> None:
    """Params and metrics of two or more runs side by side; differing params are highlighted."""
    if len(run_refs) < 2:
        raise click.UsageError("compare needs at least two runs, e.g. `mlops-nb runs compare 3f2a 9c1d`")
    store = store_of(ctx)
    found = [runs.get_run(store, ref) for ref in run_refs]
    histories: dict[str, dict[str, list]] = {}
    for run in found:
        for key, step, value, _ in runs.metric_history(store, run.id):
            histories.setdefault(key, {}).setdefault(f"{run.name} ({run.id[:6]})", []).append((step, value))
    show(ctx, views.CompareView(found, histories), as_json)


@cli.group("experiments", cls=Group)
def experiments_group() -> None:
    """List experiments."""


@experiments_group.command("ls")
@json_option
@click.pass_context
def experiments_ls(ctx, as_json) -> None:
    """Experiments with their number of runs and the time of the last one."""
    show(ctx, views.ExperimentsView(runs.list_experiments(store_of(ctx))), as_json)
