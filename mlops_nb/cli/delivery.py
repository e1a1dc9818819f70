"""`mlops-nb test`, `mlops-nb diff` and `mlops-nb ci init`: the pipeline itself tested, versioned and
delivered (MLOps level 2)."""

from __future__ import annotations

from pathlib import Path

import click

from mlops_nb.cli.base import cli, home_option, json_option, show, store_of


@cli.command("test")
@click.argument("pipelines", nargs=-1, type=click.Path(dir_okay=True))
@click.option("--junitxml", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also write the results as JUnit XML (for GitHub, GitLab, Jenkins).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many independent steps may run at once.")
@click.option("--engine", type=click.Choice(["warm", "fresh"]), envvar="MLOPS_NB_ENGINE",
              help="warm: pooled, preloaded kernels (default); fresh: a new kernel per step.")
@click.pass_context
def test_command(ctx, pipelines, junitxml, jobs, engine) -> None:
    """Test a pipeline (default ./pipeline.yaml) on a small sample: every step runs with its test_params:
    in a copy of the project and a throwaway registry; exit code 1 when a step fails.

    \b
    A step passes when its params are declared by its notebook, it runs, its outputs exist and keep the
    columns the registry recorded for them, and a gate step records a decision. In pipeline.yaml:
      test_params: {newest_rows: 300}          # for every step that declares the name
      steps:
        - name: train
          test_params: {n_estimators: 5}       # for this step
    """
    import time

    from mlops_nb.pipeline.testing import junit_xml, run_tests
    from mlops_nb.show import terminal

    out = terminal.console()
    paths = list(pipelines) or ["pipeline.yaml"]
    out.print(f"[bold]mlops-nb test[/]: {', '.join(paths)} (test_params, a copy of the project, a throwaway "
              "registry)", highlight=False)
    started = time.monotonic()

    def on_check(check):
        colour = {"passed": "green", "failed": "red", "skipped": "yellow"}[check.status]
        why = f" - {check.reason}" if check.status == "skipped" else ""
        out.print(f"{check.pipeline}::{check.step} [{colour}]{check.status.upper()}[/] ({check.seconds:.1f} s){why}",
                  highlight=False)

    report = run_tests(paths, registry_home=home_option(ctx), jobs=jobs, engine=engine, on_check=on_check)
    failed = [c for c in report.checks if c.status == "failed"]
    if failed:
        out.rule("FAILURES")
        for check in failed:
            out.rule(f"{check.pipeline}::{check.step}", characters="_")
            out.print(check.details or check.reason, markup=False, highlight=False)
        out.rule("short test summary info")
        for check in failed:
            out.print(f"FAILED {check.pipeline}::{check.step} - {check.reason}", markup=False, highlight=False)
    for folder in report.kept:
        out.print(f"the test's copy of the project and its registry are kept in {folder} (delete it when done)",
                  highlight=False)
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("failed", "passed", "skipped") if report.count(s))
    out.rule(f"[{'red' if failed else 'green'}]{counts} in {time.monotonic() - started:.2f} s[/]")
    if junitxml:
        junit_xml(report, Path(junitxml))
    if not report.ok:
        raise click.exceptions.Exit(1)


@cli.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@json_option
@click.pass_context
def diff_command(ctx, run_a, run_b, as_json) -> None:
    """What changed between two pipeline runs: the code cells of each step notebook (outputs ignored), the
    pipeline file, params, source data, packages, and the metrics that moved.

    \b
      mlops-nb diff churn#3 churn#4
      mlops-nb diff 3f2a 9c1d --json
    """
    from mlops_nb.pipeline.diff import diff_runs
    from mlops_nb.show.pipeline_views import DiffView

    show(ctx, DiffView(diff_runs(store_of(ctx), run_a, run_b)), as_json)


@cli.group("ci")
def ci_group() -> None:
    """Continuous delivery of the pipeline itself: a CI workflow for the project."""


@ci_group.command("init")
@click.argument("system", type=click.Choice(["github", "gitlab"]))
@click.option("--force", is_flag=True, help="Overwrite the workflow file if it exists.")
@click.option("--branch", default="main", show_default=True, help="The branch whose pushes run the pipeline.")
def ci_init(system, force, branch) -> None:
    """Write a CI workflow: on a pull request `mlops-nb test`, on BRANCH `mlops-nb run` against the team registry
    (MLOPS_NB_REGISTRY, a CI secret) with the gate's report as the job's summary.

    \b
      mlops-nb ci init github    # .github/workflows/mlops-nb.yml
      mlops-nb ci init gitlab    # .gitlab-ci.yml
    """
    from mlops_nb.project.ci import write_ci
    from mlops_nb.show import terminal

    path = write_ci(system, ".", force=force, branch=branch)
    secret = "a repository secret (Settings > Secrets and variables > Actions)" if system == "github" else \
        "a masked CI/CD variable (Settings > CI/CD > Variables)"
    terminal.console().print(f"wrote {path}; set MLOPS_NB_REGISTRY (and PGPASSWORD) as {secret}; the install step "
                             "reads requirements.txt", highlight=False)


@cli.command("notifications")
@click.option("--pipeline", help="Only this pipeline's.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=30, show_default=True,
              help="How many to show.")
@json_option
@click.pass_context
def notifications_command(ctx, pipeline, limit, as_json) -> None:
    """The notifications pipelines sent (notify: in pipeline.yaml), newest first, with their delivery attempts."""
    from mlops_nb.registry import notifications
    from mlops_nb.show import terminal

    rows = notifications.history(store_of(ctx), pipeline, limit)
    if as_json:
        terminal.print_json(rows)
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("id", "when", "pipeline", "event", "run", "target", "status", "attempts", "last error"):
        table.add_column(header)
    for row in rows:
        last = row["attempts"][-1] if row["attempts"] else {}
        table.add_row(str(row["id"]), terminal.fmt_time(row["created_at"]), escape(row["pipeline"]), row["event"],
                      (row["run_id"] or "")[:8], escape(row["target"]),
                      "[green]sent[/]" if row["status"] == "sent" else "[red]failed[/]", str(len(row["attempts"])),
                      escape(str(last.get("error") or "")))
    terminal.console().print(table if rows else "no notifications yet (add notify: to pipeline.yaml)")
