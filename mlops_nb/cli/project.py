"""`mlops-nb init`, `mlops-nb demo` and `mlops-nb help TOPIC`."""

from __future__ import annotations

import click

from mlops_nb.cli.base import cli, show
from mlops_nb.show import views

HELP_TOPICS = {"filter": ("mlops_nb.registry.query", "the search grammar of runs ls --filter and search_runs"),
               "pipeline": ("mlops_nb.pipeline.spec", "the fields of pipeline.yaml and its steps"),
               "triggers": ("mlops_nb.pipeline.trigger_spec", "the triggers: list of pipeline.yaml")}


@cli.command("help")
@click.argument("topic", required=False, type=click.Choice(list(HELP_TOPICS)))
@click.pass_context
def help_topic(ctx, topic) -> None:
    """Longer help on a TOPIC: `filter` (the search grammar), `pipeline` (pipeline.yaml), `triggers`."""
    import importlib
    import textwrap

    if topic is None:
        lines = ["mlops-nb help TOPIC, where TOPIC is one of:"]
        lines += [f"  {name:<10} {what}" for name, (_, what) in HELP_TOPICS.items()]
        lines.append("Each command has --help too: mlops-nb run --help")
        show(ctx, views.MessageView("\n".join(lines), {"topics": {k: v[1] for k, v in HELP_TOPICS.items()}}))
        return
    body = importlib.import_module(HELP_TOPICS[topic][0]).__doc__.split("\n", 1)[1]
    text = "\n\n".join(textwrap.dedent(part).strip("\n") for part in body.strip("\n").split("\n\n"))
    show(ctx, views.MessageView(text, {"topic": topic, "text": text}, preformatted=True))


@cli.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("-t", "--template", default="tabular-classification", show_default=True,
              help="The project template (a folder of templates/).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option("--registry", "registry", metavar="URL",
              help="Write mlops-nb.yaml naming the team's PostgreSQL registry (postgresql://user@host:port/db; "
                   "its password stays out of the file: PGPASSWORD or ~/.pgpass).")
@click.option("--artifacts", type=click.Path(file_okay=False),
              help="With --registry: the shared folder (mounted on every machine) for its artifacts.")
@click.pass_context
def init_command(ctx, directory, template, force, registry, artifacts) -> None:
    """Start a project in DIRECTORY: pipeline.yaml, step notebooks, and a first batch of data."""
    from mlops_nb.project.scaffold import init_project, write_project_config

    if artifacts and not registry:
        raise click.UsageError("--artifacts goes with --registry (the embedded registry keeps its "
                               "artifacts in .mlops)")
    written = init_project(directory, template, force=force)
    if registry:
        written.append(write_project_config(directory, registry, artifacts))
    show(ctx, views.MessageView(f"{len(written)} files in {directory}; next: cd {directory} && mlops-nb run",
                                {"directory": directory, "files": [str(p) for p in written]}))


@cli.command("demo")
@click.argument("directory", default="demo", type=click.Path(file_okay=False))
def demo(directory) -> None:
    """Run the level-1 demo in DIRECTORY (default ./demo): pipeline, drifted data, triggers, retraining, gate."""
    from mlops_nb.project.demo import run_demo

    run_demo(directory)  # a story told as it happens, on the terminal
