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
    """mlops-nb: track notebook experiments, register models, and (soon) retrain them automatically.

    Runs, metrics, datasets and models live in a local registry, .mlops/registry.db,
    found like git finds .git. Examples:

    \b
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
    click.echo(f"watching {', '.join(paths)} every {interval:g} s (Ctrl-C to stop)")
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


# -- help and demo ---------------------------------------------------------------

@cli.command("help")
@click.argument("topic", type=click.Choice(["filter", "pipeline"]))
def help_topic(topic) -> None:
    """Longer help on a TOPIC: `filter` (the search grammar), `pipeline` (pipeline.yaml)."""
    if topic == "filter":
        from mlops_nb.registry import query as module
    else:
        from mlops_nb.pipeline import spec as module
    click.echo(module.__doc__.split("\n", 1)[1].strip())


@cli.command("demo")
@click.argument("directory", default="demo", type=click.Path(file_okay=False))
def demo(directory) -> None:
    """Run the tracking demo in DIRECTORY (default ./demo): train, log, register, promote, roll back."""
    from mlops_nb import demo as demo_module

    demo_module.run_demo(directory)


def main() -> None:
    cli(prog_name="mlops-nb")


if __name__ == "__main__":
    sys.exit(main())
