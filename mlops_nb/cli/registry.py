"""`mlops-nb registry copy`: move a registry between the SQLite file and a team's PostgreSQL database."""

from __future__ import annotations

import click

from mlops_nb.cli.base import Group, cli, json_option, show
from mlops_nb.show import views


@cli.group("registry", cls=Group)
def registry_group() -> None:
    """The registry itself: copy it to a team's PostgreSQL database, or back to a file."""


@registry_group.command("copy")
@click.option("--from", "source", required=True, metavar="WHERE",
              help="The registry to copy: a folder (.mlops, or a project holding one) or postgresql://...")
@click.option("--to", "destination", required=True, metavar="WHERE",
              help="Where to copy it: postgresql://user@host:port/db, or a folder for a SQLite registry.")
@click.option("--artifacts", type=click.Path(file_okay=False),
              help="For a new PostgreSQL registry: the shared folder (mounted on every machine) for its blobs.")
@json_option
@click.pass_context
def registry_copy(ctx, source, destination, artifacts, as_json) -> None:
    """Copy every run, metric, dataset, model, gate decision and trigger event with its id, and every blob;
    count the rows on both sides. Safe to rerun: what is already there is kept.

    \b
      mlops-nb registry copy --from .mlops --to postgresql://me@db:5432/mlops --artifacts /shared/mlops
      mlops-nb registry copy --from postgresql://me@db:5432/mlops --to backup/.mlops
    """
    from mlops_nb.registry.transfer import copy_registry, open_location

    origin = open_location(source, must_exist=True)
    target = open_location(destination, artifacts_dir=artifacts)
    try:
        report = copy_registry(origin, target)
    finally:
        target.close()
        origin.close()
    show(ctx, views.CopyView(report), as_json)
