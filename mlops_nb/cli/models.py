"""`mlops-nb models ls|show|promote|rollback`."""

from __future__ import annotations

import click

from mlops_nb.cli.base import Group, cli, json_option, show, store_of
from mlops_nb.registry import gates, models
from mlops_nb.show import views


@cli.group("models", cls=Group)
def models_group() -> None:
    """List models, inspect versions, promote and roll back aliases."""


@models_group.command("ls")
@json_option
@click.pass_context
def models_ls(ctx, as_json) -> None:
    """Registered models with their versions and aliases."""
    show(ctx, views.ModelsView(models.list_models(store_of(ctx))), as_json)


@models_group.command("show")
@click.argument("name")
@json_option
@click.pass_context
def models_show(ctx, name, as_json) -> None:
    """Versions of model NAME (with their runs' metrics), its aliases and the alias history."""
    store = store_of(ctx)
    versions, metrics = models.versions_with_metrics(store, name)
    show(ctx, views.ModelView(name, versions, metrics, models.alias_history(store, name)), as_json)


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
    store = store_of(ctx)
    before = models.alias_version_or_none(store, name, alias)
    result = gates.promote(store, name, version, alias, override=override, reason=reason, require_gate=False)
    show(ctx, views.AliasChange(name, alias, result.version, before), as_json)
    if result.version != before:
        from mlops_nb.pipeline import notify

        notify.model_event(store, name, "promoted", {"name": name, "alias": alias, "action": "set",
                                                     "version": result.version, "previous": before},
                           gates.latest_decision(store, name, result.version))


@models_group.command("rollback")
@click.argument("name")
@click.option("-a", "--alias", default="production", show_default=True, help="The alias to move back.")
@click.option("--reason", help="Why, kept in the alias history.")
@click.option("--override", metavar="REASON", help="Go back to a version whose gate failed, saying why (recorded).")
@json_option
@click.pass_context
def models_rollback(ctx, name, alias, reason, override, as_json) -> None:
    """Point NAME@ALIAS back at the version it held before the current one, and say which gate decision
    that version carries; one whose gate failed is returned to only with --override REASON."""
    store = store_of(ctx)
    before = models.alias_version(store, name, alias)
    result, decision = gates.rollback(store, name, alias, reason=reason, override=override)
    show(ctx, views.AliasChange(name, alias, result.version, before, gate=decision, rolled_back=True), as_json)
    from mlops_nb.pipeline import notify

    notify.model_event(store, name, "rolled_back", {"name": name, "alias": alias, "action": "rollback",
                                                    "version": result.version, "previous": before}, decision)
