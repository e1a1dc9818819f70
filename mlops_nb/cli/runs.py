"""`mlops-nb runs ls|show|compare|rm|restore`, `mlops-nb experiments ls|rm` and `mlops-nb gc`."""

from __future__ import annotations

import click

import re

from mlops_nb.cli.base import Group, cli, json_option, show, store_of
from mlops_nb.registry import cleanup, datasets, runs, search
from mlops_nb.show import views


@cli.group("runs", cls=Group)
def runs_group() -> None:
    """List, inspect, compare, delete and restore runs."""


@runs_group.command("ls")
@click.option("-e", "--experiment", multiple=True, help="Only runs of this experiment (repeatable).")
@click.option("-f", "--filter", "filter_", metavar="FILTER",
              help="e.g. \"metrics.accuracy > 0.9 and params.model = 'rf'\" (see `mlops-nb help filter`).")
@click.option("-o", "--order-by", multiple=True, metavar="FIELD [asc|desc]",
              help="Sort key, e.g. 'metrics.accuracy desc' (repeatable; default: newest first).")
@click.option("-n", "--max-results", type=click.IntRange(min=1, max=1_000_000), default=20, show_default=True,
              help="How many runs to show.")
@click.option("--deleted", is_flag=True, help="List the deleted runs instead (`runs restore` brings one back).")
@click.option("-u", "--user", multiple=True, help="Only runs of this user (repeatable; the registry records "
              "$MLOPS_NB_USER, else the login name).")
@json_option
@click.pass_context
def runs_ls(ctx, experiment, filter_, order_by, max_results, deleted, user, as_json) -> None:
    """List runs, newest first, with their latest metrics and params.

    \b
      mlops-nb runs ls -e churn -f "params.C >= 1 and status = 'finished'" -o "metrics.f1 desc"
      mlops-nb runs ls --user alice       # on a team registry: what alice ran
    """
    query = {"filter": filter_, "order_by": list(order_by), "experiment": list(experiment) or None,
             "max_results": max_results}
    if deleted:
        query["deleted"] = True
    if user:
        query["user"] = list(user)
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


@runs_group.command("rm")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
@click.pass_context
def runs_rm(ctx, run_refs) -> None:
    """Delete runs (and the runs inside them): hidden from searches and caches, until `runs restore`
    brings them back or `mlops-nb gc` removes them for good. A run whose model version holds an alias
    is refused."""
    store = store_of(ctx)
    deleted = cleanup.delete_runs(store, list(run_refs))
    inside = len(deleted) - len(set(run_refs))
    click.echo(f"deleted {len(deleted)} run{'s' if len(deleted) != 1 else ''}"
               + (f" ({inside} of them inside the ones named)" if inside > 0 else "")
               + "; `mlops-nb runs restore` brings them back, `mlops-nb gc` removes them for good")


@runs_group.command("restore")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
@click.pass_context
def runs_restore(ctx, run_refs) -> None:
    """Bring deleted runs back (`mlops-nb runs ls --deleted` lists them)."""
    restored = cleanup.restore_runs(store_of(ctx), list(run_refs))
    click.echo(f"restored {len(restored)} run{'s' if len(restored) != 1 else ''}")


@cli.command("gc")
@click.option("--older-than", metavar="AGE", help="Only runs deleted longer ago than this: 30d, 12h, 1w "
              "(default: every deleted run).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.pass_context
def gc_command(ctx, older_than, dry_run) -> None:
    """Remove deleted runs for good, then every stored file that no run, model version, step output or
    dataset still names. A model version's file is never removed, nor a run that registered one."""
    seconds = None
    if older_than is not None:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", older_than.strip())
        if not match:
            raise click.BadParameter(f"{older_than!r} is not an age: give 30d, 12h, 90m or 1w", param_hint="--older-than")
        seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    done = cleanup.collect_garbage(store_of(ctx), older_than=seconds, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(done['runs'])} deleted run{'s' if len(done['runs']) != 1 else ''} and "
               f"{done['files']} stored file{'s' if done['files'] != 1 else ''} ({done['bytes'] / 2**20:.1f} MiB)")
    if done["kept_runs"]:
        click.echo(f"kept {len(done['kept_runs'])} deleted run{'s' if len(done['kept_runs']) != 1 else ''} that "
                   "registered a model version (its lineage needs them)")


@cli.group("experiments", cls=Group)
def experiments_group() -> None:
    """List and delete experiments."""


@experiments_group.command("ls")
@json_option
@click.pass_context
def experiments_ls(ctx, as_json) -> None:
    """Experiments with their number of runs and the time of the last one."""
    show(ctx, views.ExperimentsView(runs.list_experiments(store_of(ctx))), as_json)


@experiments_group.command("rm")
@click.argument("name")
@click.pass_context
def experiments_rm(ctx, name) -> None:
    """Delete an experiment and its runs (restorable until `mlops-nb gc`; `runs restore` brings a run back)."""
    count = cleanup.delete_experiment(store_of(ctx), name)
    click.echo(f"deleted experiment {name} and its {count} run{'s' if count != 1 else ''}")
