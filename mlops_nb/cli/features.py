"""`mlops-nb features ls|show`: the feature views, their writes over time and the models trained on them."""

from __future__ import annotations

import click

from mlops_nb.cli.base import Group, cli, json_option, show, store_of


@cli.group("features", cls=Group)
def features_group() -> None:
    """Feature views: declared in features.yaml (or features: in pipeline.yaml), written with
    mlops.write_features, read with mlops.training_frame, served with `mlops-nb serve --features`."""


@features_group.command("ls")
@json_option
@click.pass_context
def features_ls(ctx, as_json) -> None:
    """List the feature views declared here and written to the registry: entity, features, writes, rows,
    entities online, freshness (the last write, the newest values) and the models trained on each."""
    from mlops_nb.features.catalog import list_views
    from mlops_nb.features.views import find_views
    from mlops_nb.show.feature_views import FeaturesView

    views, _ = find_views()
    show(ctx, FeaturesView(list_views(store_of(ctx), views)), as_json)


@features_group.command("show")
@click.argument("name")
@click.option("--last", type=click.IntRange(min=1), default=10, show_default=True, help="Show the newest N writes.")
@json_option
@click.pass_context
def features_show(ctx, name, last, as_json) -> None:
    """Feature view NAME: its entity, time column, TTL and features (dtype, description); its writes over
    time, each with its drift from the values the production model was trained on; the models trained on it.

    \b
      mlops-nb features show customer_stats
    """
    from mlops_nb.features.catalog import describe_view
    from mlops_nb.features.views import find_views, get_view
    from mlops_nb.show.feature_views import FeatureDetailView

    views, where = find_views()
    show(ctx, FeatureDetailView(describe_view(store_of(ctx), get_view(views, name, where), last=last)), as_json)


@features_group.command("materialize")
@click.argument("name")
@click.option("--all", "full", is_flag=True, help="Write every row of the source, not only those the view does not "
                                                  "hold yet (a correction of old values).")
@json_option
@click.pass_context
def features_materialize(ctx, name, full, as_json) -> None:
    """Read feature view NAME's source (files: GLOB or sql: QUERY in features.yaml) and write the rows the
    view does not hold yet (by entity and time) as its next version: checked, appended offline, the online
    table updated.

    \b
      mlops-nb features materialize customer_stats     # cron or CI, after the source is refreshed
    """
    from mlops_nb.features.sources import materialize
    from mlops_nb.features.views import find_views, get_view
    from mlops_nb.show import views as shown

    views, where = find_views()
    view = get_view(views, name, where)
    result = materialize(store_of(ctx), view, where.parent, full=full)
    text = (f"{name}: wrote version {result['version']}, {result['rows']:,} rows from {result['source']}"
            if result["version"] else f"{name}: nothing to write from {result['source']} ({result['note']})")
    show(ctx, shown.MessageView(text, result), as_json)
