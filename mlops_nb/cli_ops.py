"""The terminal face, continued: `run`, `sweep`, `triggers`, `watch` and `kernels`.

Added to the `cli` group of :mod:`mlops_nb.cli` when that module is imported.
"""

from __future__ import annotations

import click

from mlops_nb import render, views
from mlops_nb.cli import _Group, _show, cli, json_option
from mlops_nb.registry.home import find_home
from mlops_nb.registry.store import open_store


# -- pipelines -------------------------------------------------------------------

@cli.command("run")
@click.argument("pipeline", default="pipeline.yaml", type=click.Path(dir_okay=True))
@click.option("-p", "--param", "params", multiple=True, metavar="[STEP.]NAME=VALUE",
              help="Override a param for every step that declares it, or for one step (repeatable).")
@click.option("--force", is_flag=True, help="Run every step, even unchanged ones.")
@click.option("--force-step", multiple=True, metavar="STEP", help="Run this step even if unchanged (repeatable).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many independent steps may run at once.")
@click.option("--engine", type=click.Choice(["warm", "fresh"]), envvar="MLOPS_NB_ENGINE", show_envvar=True,
              help="warm: run steps on pooled, preloaded kernels (default); fresh: a new kernel per step.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display; only errors.")
@json_option
@click.pass_context
def run_command(ctx, pipeline, params, force, force_step, jobs, engine, quiet, as_json) -> None:
    """Run a pipeline (default ./pipeline.yaml): steps in order, unchanged steps cached.

    \b
      mlops-nb run -p C=0.5              # every step that declares C
      mlops-nb run -p train.C=0.5 --jobs 2
    """
    from mlops_nb.pipeline.progress import choose_progress
    from mlops_nb.pipeline.runner import run_pipeline

    _apply_home(ctx)
    result = run_pipeline(pipeline, params=list(params), force=force, force_steps=list(force_step), jobs=jobs,
                          progress=choose_progress(quiet or as_json), engine=engine)
    if as_json:
        render.print_json(views.pipeline_result_dict(result))
    _report_failures(result)


@cli.command("sweep")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option("-p", "--param", "grid", multiple=True, required=True, metavar="NAME=V1,V2,...",
              help="Values of one param to try (repeatable: the grid is every combination).")
@click.option("-m", "--metric", help="Pick the best point by this metric (default: the first one logged).")
@click.option("--minimize", is_flag=True, help="Lower is better for --metric (default: higher is better).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many points may run at once.")
@click.option("--force", is_flag=True, help="Run every point, even ones already run with the same params.")
@click.option("--engine", type=click.Choice(["warm", "fresh"]), envvar="MLOPS_NB_ENGINE", show_envvar=True,
              help="warm: run steps on pooled, preloaded kernels (default); fresh: a new kernel per step.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display; only the results.")
@json_option
@click.pass_context
def sweep_command(ctx, notebook, grid, metric, minimize, jobs, force, engine, quiet, as_json) -> None:
    """Run NOTEBOOK over a grid of params, as sibling runs under one parent, and show the best.

    \b
      mlops-nb sweep notebooks/train.ipynb -p C=0.1,1,10 -p seed=0,1 --jobs 2 -m accuracy
    """
    from mlops_nb.pipeline.progress import choose_progress
    from mlops_nb.pipeline.sweep import run_sweep

    _apply_home(ctx)
    outcome = run_sweep(notebook, list(grid), metric=metric, maximize=not minimize, jobs=jobs, force=force,
                        progress=choose_progress(quiet or as_json), engine=engine)
    view = views.SweepView(outcome)
    _show(ctx, view, as_json)
    _report_failures(outcome.result)


def _apply_home(ctx: click.Context) -> None:
    if ctx.obj.get("home"):
        from mlops_nb import tracking

        tracking.set_home(ctx.obj["home"])


def _report_failures(result) -> None:
    for step in result.steps.values():
        if step.failure is not None:
            click.echo(step.failure.describe(), err=True)
    if result.status == "interrupted":
        raise click.exceptions.Exit(130)
    if not result.ok:
        raise click.exceptions.Exit(1)


# -- triggers --------------------------------------------------------------------

@cli.group("triggers", cls=_Group)
def triggers_group() -> None:
    """Check a pipeline's triggers, see their state, and read why it ran."""


@triggers_group.command("check")
@click.argument("pipeline", default="pipeline.yaml", type=click.Path())
@click.option("--no-run", is_flag=True, help="Evaluate and record firings, but start no run.")
@click.option("--engine", type=click.Choice(["warm", "fresh"]), envvar="MLOPS_NB_ENGINE",
              help="Kernels for the run: warm (pooled) or fresh.")
@click.option("-q", "--quiet", is_flag=True, help="Print only what fired and errors.")
@json_option
@click.pass_context
def triggers_check(ctx, pipeline, no_run, engine, quiet, as_json) -> None:
    """Evaluate every trigger once; run the pipeline if any fired (for cron and CI).

    \b
      */5 * * * * cd /srv/churn && mlops-nb triggers check --quiet
    """
    from mlops_nb.pipeline.progress import choose_progress
    from mlops_nb.triggers.check import check_pipeline

    _apply_home(ctx)
    result = check_pipeline(pipeline, run=not no_run, engine=engine, progress=choose_progress(quiet or as_json))
    if as_json:
        render.print_json(views.check_dict(result))
    else:
        render.check_report(result, quiet=quiet)
    if any(not r.ok for r in result.runs):
        raise click.exceptions.Exit(1)


@triggers_group.command("ls")
@click.argument("pipeline", default="pipeline.yaml", type=click.Path())
@json_option
@click.pass_context
def triggers_ls(ctx, pipeline, as_json) -> None:
    """Each trigger, what it waits for, its last error and its last firing."""
    from mlops_nb.triggers.check import trigger_status

    _apply_home(ctx)
    rows = trigger_status(pipeline)
    if as_json:
        render.print_json(rows)
    else:
        render.triggers_table(rows)


@triggers_group.command("history")
@click.argument("pipeline", default="pipeline.yaml", type=click.Path())
@click.option("-n", "--max-results", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many events to show.")
@json_option
@click.pass_context
def triggers_history(ctx, pipeline, max_results, as_json) -> None:
    """Trigger events, newest first: when, why (the evidence) and the run each started."""
    from mlops_nb.pipeline.spec import load_pipeline
    from mlops_nb.registry import triggers as trigger_store

    _apply_home(ctx)
    spec = load_pipeline(pipeline)
    store = open_store(find_home(ctx.obj.get("home"), start=spec.root, must_exist=True))
    events = trigger_store.history(store, spec.name, max_results)
    if as_json:
        render.print_json(events)
    else:
        render.events_table(events)


@cli.command("watch")
@click.argument("pipelines", nargs=-1, type=click.Path())
@click.option("--interval", type=click.FloatRange(min=0.2), default=5.0, show_default=True,
              help="Seconds between checks.")
@click.option("--on-stop", type=click.Choice(["finish", "interrupt"]), default="finish", show_default=True,
              help="On Ctrl-C/SIGTERM during a run: let it finish, or interrupt it (a second signal interrupts).")
@click.option("--engine", type=click.Choice(["warm", "fresh"]), envvar="MLOPS_NB_ENGINE",
              help="Kernels for the runs: warm (pooled, the default) or fresh.")
@click.pass_context
def watch_command(ctx, pipelines, interval, on_stop, engine) -> None:
    """Watch pipelines' triggers in the foreground and run them when they fire (default ./pipeline.yaml)."""
    from mlops_nb.pipeline.spec import load_pipeline
    from mlops_nb.triggers.watch import Watcher

    _apply_home(ctx)
    paths = list(pipelines) or ["pipeline.yaml"]
    for path in paths:
        spec = load_pipeline(path)  # a broken file stops us before we start watching
        if not spec.triggers:
            click.echo(f"note: {spec.name} has no triggers; add a triggers: list to {spec.path.name}", err=True)
        for trigger in spec.triggers:
            click.echo(f"{spec.name}: {trigger.key}: {trigger.describe()}")
    click.echo(f"watching {', '.join(paths)} every {interval:g} s; a firing runs the pipeline and is printed here; "
               "`mlops-nb triggers history` says why each run happened (Ctrl-C to stop)")
    Watcher(paths, interval=interval, on_stop=on_stop, engine=engine,
            report=lambda result: render.check_report(result, quiet=True)).run()
    click.echo("watcher stopped")


# -- kernels ---------------------------------------------------------------------

@cli.group("kernels", cls=_Group)
def kernels_group() -> None:
    """A pool of warm kernels that later `run` and `sweep` commands use (a small local daemon)."""


@kernels_group.command("start")
@click.option("-n", "--size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Kernels to keep ready (set it to your usual --jobs).")
@click.option("--idle-timeout", type=click.FloatRange(min=1), default=900, show_default=True,
              help="Seconds without use after which the daemon stops its kernels and exits.")
@click.option("--preload", multiple=True, metavar="MODULE", help="A module kernels import ahead (repeatable).")
@click.option("--kernel", default="python3", show_default=True, help="The kernel to pool.")
@json_option
@click.pass_context
def kernels_start(ctx, size, idle_timeout, preload, kernel, as_json) -> None:
    """Start the kernel daemon for this project (or show the one running)."""
    from mlops_nb.kernels.daemon import start_daemon

    home = find_home(ctx.obj.get("home"))
    reply = start_daemon(home, size=size, idle_timeout=idle_timeout, preload=list(preload), kernel=kernel)
    if as_json:
        render.print_json(reply)
    else:
        click.echo(f"kernel daemon pid {reply['pid']} on {reply['socket']} (stops after {idle_timeout:g} s idle)")


@kernels_group.command("ls")
@json_option
@click.pass_context
def kernels_ls(ctx, as_json) -> None:
    """The daemon's kernels: state, runs, memory, idle time."""
    from mlops_nb.kernels.daemon import request, running_daemon

    path = running_daemon(find_home(ctx.obj.get("home")))
    if path is None:
        if as_json:
            render.print_json({"running": False, "kernels": []})
        else:
            click.echo("no kernel daemon is running (start one with `mlops-nb kernels start`)")
        return
    reply = request(path, {"op": "ls"})
    if as_json:
        render.print_json({"running": True, **reply})
    else:
        render.kernels_table(reply)


@kernels_group.command("stop")
@click.pass_context
def kernels_stop(ctx) -> None:
    """Stop the daemon and every kernel it started."""
    from mlops_nb.kernels.daemon import stop_daemon

    stopped = stop_daemon(find_home(ctx.obj.get("home")))
    click.echo("kernel daemon stopped" if stopped else "no kernel daemon was running")
