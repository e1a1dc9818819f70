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
