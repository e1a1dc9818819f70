"""`mlops-nb datasets ls|show`."""

from __future__ import annotations

import click

from mlops_nb.cli.base import Group, cli, json_option, show, store_of
from mlops_nb.registry import datasets
from mlops_nb.show import views


@cli.group("datasets", cls=Group)
def datasets_group() -> None:
    """Datasets by content: their versions, and the runs and models that used each one."""


@datasets_group.command("ls")
@json_option
@click.pass_context
def datasets_ls(ctx, as_json) -> None:
    """List datasets: how many versions (contents) each has, the newest, and how many runs used it."""
    show(ctx, views.DatasetsView(datasets.dataset_summaries(store_of(ctx))), as_json)


@datasets_group.command("show")
@click.argument("name")
@json_option
@click.pass_context
def datasets_show(ctx, name, as_json) -> None:
    """Every version of dataset NAME, newest first: rows, columns, the runs that used it (and as what:
    train, test, input...) and the model versions trained from those runs."""
    show(ctx, views.DatasetView(name, datasets.dataset_history(store_of(ctx), name)), as_json)
