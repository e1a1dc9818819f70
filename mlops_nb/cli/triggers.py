"""`mlops-nb triggers check|ls|history` and `mlops-nb watch`."""

from __future__ import annotations

import click

from mlops_nb.cli.base import Group, cli, home_option, json_option, show, store_of
from mlops_nb.cli.pipelines import engine_option, exit_for
from mlops_nb.show import pipeline_views, views


@cli.group("triggers", cls=Group)
def triggers_group() -> None:
    """Check a pipeline's triggers, see their state, and read why it ran."""


@triggers_group.command("check")
@click.argument("pipeline", default="pipeline.yaml", type=click.Path())
@click.option("--no-run", is_flag=True, help="Evaluate and record firings, but start no run.")
@engine_option
@click.option("-q", "--quiet", is_flag=True, help="Print only what fired and errors.")
@json_option
@click.pass_context
def triggers_check(ctx, pipeline, no_run, engine, quiet, as_json) -> None:
    """Evaluate every trigger once; run the pipeline if any fired (for cron and CI).

    \b
      */5 * * * * cd /srv/churn && mlops-nb triggers check --quiet
    """
    from mlops_nb.pipeline.runner import RunOptions
    from mlops_nb.show.progress import choose_progress
    from mlops_nb.triggers.check import check_pipeline

    options = RunOptions(engine=engine, progress=choose_progress(quiet or as_json))
    result = check_pipeline(pipeline, run=not no_run, options=options, home=home_option(ctx))
    show(ctx, pipeline_views.CheckView(result, quiet=quiet), as_json)
    for run in result.runs:
        if not run.ok:
            exit_for(run)


@triggers_group.command("ls")
@click.argument("pipeline", default="pipeline.yaml", type=click.Path())
@json_option
@click.pass_context
def triggers_ls(ctx, pipeline, as_json) -> None:
    """Each trigger, what it waits for, its last error and its last firing."""
    from mlops_nb.triggers.check import trigger_status

    show(ctx, pipeline_views.TriggersView(trigger_status(pipeline, home=home_option(ctx))), as_json)


@triggers_group.command("history")
@click.argument("pipeline", default="pipeline.yaml", type=click.Path())
@click.option("-n", "--max-results", type=click.IntRange(min=1, max=1_000_000), default=20, show_default=True,
              help="How many events to show.")
@json_option
@click.pass_context
def triggers_history(ctx, pipeline, max_results, as_json) -> None:
    """Trigger events, newest first: when, why (the evidence) and the run each started."""
    from mlops_nb.pipeline.spec import load_pipeline
    from mlops_nb.registry import triggers as trigger_store

    spec = load_pipeline(pipeline)
    events = trigger_store.history(store_of(ctx, start=spec.root), spec.name, max_results)
    show(ctx, pipeline_views.EventsView(events), as_json)


@cli.command("watch")
@click.argument("pipelines", nargs=-1, type=click.Path())
@click.option("--interval", type=click.FloatRange(min=0.2), default=5.0, show_default=True,
              help="Seconds between checks.")
@click.option("--on-stop", type=click.Choice(["finish", "interrupt"]), default="finish", show_default=True,
              help="On Ctrl-C/SIGTERM during a run: let it finish, or interrupt it (a second signal interrupts).")
@engine_option
@click.pass_context
def watch_command(ctx, pipelines, interval, on_stop, engine) -> None:
    """Watch pipelines' triggers in the foreground and run them when they fire (default: every pipeline file
    of this folder, pipeline.yaml and monitor.yaml alike; a monitor is checked before the pipeline it feeds)."""
    from pathlib import Path

    from mlops_nb.errors import NotFoundError
    from mlops_nb.pipeline.spec import load_pipeline, project_pipelines
    from mlops_nb.triggers.watch import Watcher, watch_order

    paths = watch_order(list(pipelines) or project_pipelines(Path.cwd()))
    if not paths:
        raise NotFoundError(f"no pipeline file in {Path.cwd()}: give its path, or run this in a project folder")
    paths = [str(p) for p in paths]
    lines = []
    for path in paths:
        spec = load_pipeline(path)  # a broken file stops us before we start watching
        if not spec.triggers:
            click.echo(f"note: {spec.name} has no triggers; add a triggers: list to {spec.path.name}", err=True)
        lines += [f"{spec.name}: {trigger.key}: {trigger.describe()}" for trigger in spec.triggers]
    lines.append(f"watching {', '.join(paths)} every {interval:g} s; a firing runs the pipeline and is printed "
                 "here; `mlops-nb triggers history` says why each run happened (Ctrl-C to stop)")
    show(ctx, views.MessageView("\n".join(lines)))
    Watcher(paths, interval=interval, on_stop=on_stop, engine=engine, home=home_option(ctx),
            report=lambda result: show(ctx, pipeline_views.CheckView(result, quiet=True))).run()
    show(ctx, views.MessageView("watcher stopped"))
