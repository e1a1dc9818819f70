"""`mlops-nb run` and `mlops-nb sweep`: a pipeline, or one notebook over a grid of params."""

from __future__ import annotations

import click

from pathlib import Path

from mlops_nb.cli.base import cli, home_option, json_option, show, store_of
from mlops_nb.show import pipeline_views

engine_option = click.option(
    "--engine", type=click.Choice(["warm", "fresh"]), envvar="MLOPS_NB_ENGINE", show_envvar=True,
    help="warm: run steps on pooled, preloaded kernels (default); fresh: a new kernel per step.")
executor_option = click.option(
    "--executor", envvar="MLOPS_NB_EXECUTOR", show_envvar=True, metavar="local|dask|tcp://HOST:PORT",
    help="Where steps run: here (local, the default), a Dask LocalCluster started for this command (dask), "
         "or a running Dask scheduler (tcp://HOST:PORT). Default: the pipeline's executor:, else local.")


@cli.command("run")
@click.argument("pipeline", default="pipeline.yaml", type=click.Path(dir_okay=True))
@click.option("-p", "--param", "params", multiple=True, metavar="[STEP.]NAME=VALUE",
              help="Override a param for every step that declares it, or for one step (repeatable).")
@click.option("--force", is_flag=True, help="Run every step, even unchanged ones.")
@click.option("--force-step", multiple=True, metavar="STEP", help="Run this step even if unchanged (repeatable).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many independent steps may run at once.")
@engine_option
@executor_option
@click.option("-q", "--quiet", is_flag=True, help="No progress display; only errors.")
@click.option("--summary", type=click.Path(dir_okay=False), metavar="FILE",
              help="Append a Markdown summary (the steps, each gate decision rule by rule) to FILE, e.g. "
                   "\"$GITHUB_STEP_SUMMARY\" in a CI job.")
@json_option
@click.pass_context
def run_command(ctx, pipeline, params, force, force_step, jobs, engine, executor, quiet, summary, as_json) -> None:
    """Run a pipeline (default ./pipeline.yaml): steps in order, unchanged steps cached.

    \b
      mlops-nb run -p C=0.5              # every step that declares C
      mlops-nb run -p train.C=0.5 --jobs 2
      mlops-nb run --executor tcp://scheduler:8786   # steps as tasks on a Dask cluster
    """
    from mlops_nb.pipeline.runner import RunOptions, run_pipeline
    from mlops_nb.show.progress import choose_progress

    options = RunOptions(params=params, force=force, force_steps=force_step, jobs=jobs, engine=engine,
                         executor=executor, progress=choose_progress(quiet or as_json))
    result = run_pipeline(pipeline, options, home=home_option(ctx))
    show(ctx, pipeline_views.PipelineRunView(result), as_json)
    if summary:
        write_summary(ctx, Path(pipeline), result, Path(summary))
    exit_for(result)


def write_summary(ctx, pipeline: Path, result, path: Path) -> None:
    from mlops_nb.errors import InvalidInputError
    from mlops_nb.pipeline.version import TAG
    from mlops_nb.registry import gates, runs
    from mlops_nb.show.summary import run_summary

    folder = pipeline.resolve() if pipeline.is_dir() else pipeline.resolve().parent
    store = store_of(ctx, start=folder)
    run = runs.get_run(store, result.run_id)
    decisions, moves = gates.run_outcome(store, result.run_id)
    try:
        with path.open("a", encoding="utf-8") as out:
            out.write(run_summary(result, decisions, run.tags.get(TAG), moves))
    except OSError as exc:
        raise InvalidInputError(f"--summary {path}: cannot write it ({exc.strerror or exc})") from None


@cli.command("sweep")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option("-p", "--param", "grid", multiple=True, metavar="NAME=V1,V2,...",
              help="Values of one param to try (repeatable: the grid is every combination).")
@click.option("--space", type=click.Path(dir_okay=False), metavar="FILE.yaml",
              help="The search space: per param a choice or a range (uniform, log_uniform, int).")
@click.option("--search", type=click.Choice(["grid", "random", "optuna"]), default="grid", show_default=True,
              help="Every grid point, random points, or points Optuna proposes (and prunes).")
@click.option("-n", "--trials", type=click.IntRange(min=1), help="How many points random or optuna runs.")
@click.option("--seed", type=int, help="Seed of the random or optuna sampler (the same seed, the same points).")
@click.option("-m", "--metric", help="Pick the best point by this metric (default: the first one logged).")
@click.option("--maximize/--minimize", default=True, help="Higher (default) or lower is better for --metric.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many points may run at once.")
@click.option("--force", is_flag=True, help="Run every point, even ones already run with the same params.")
@engine_option
@executor_option
@click.option("-q", "--quiet", is_flag=True, help="No progress display; only the results.")
@json_option
@click.pass_context
def sweep_command(ctx, notebook, grid, space, search, trials, seed, metric, maximize, jobs, force, engine, executor,
                  quiet, as_json) -> None:
    """Run NOTEBOOK over a search space, as sibling runs under one parent, and show the best.

    \b
      mlops-nb sweep notebooks/train.ipynb -p C=0.1,1,10 -p seed=0,1 --jobs 2 -m accuracy
      mlops-nb sweep notebooks/train.ipynb --space space.yaml --search optuna --trials 20 -m accuracy
    """
    from mlops_nb.pipeline.runner import RunOptions
    from mlops_nb.pipeline.sweep import run_sweep
    from mlops_nb.show.progress import choose_progress

    options = RunOptions(jobs=jobs, force=force, engine=engine, executor=executor,
                         progress=choose_progress(quiet or as_json))
    outcome = run_sweep(notebook, list(grid), metric=metric, maximize=maximize, options=options,
                        home=home_option(ctx), space=space, search=search, trials=trials, seed=seed)
    show(ctx, pipeline_views.SweepView(outcome), as_json)
    show(ctx, pipeline_views.PipelineRunView(outcome.result, table=False))
    exit_for(outcome.result)


def exit_for(result) -> None:
    """Exit code 130 for an interrupted run, 1 for a failed one (cron and CI read it)."""
    if result.status == "interrupted":
        raise click.exceptions.Exit(130)
    if not result.ok:
        raise click.exceptions.Exit(1)
