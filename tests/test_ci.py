"""`mlops-nb ci init`: the workflow files, and the workflow's own commands run in a fresh clone."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlops_nb.cli import cli
from mlops_nb.project.scaffold import init_project


def _ci(project, *args):
    cwd = os.getcwd()
    os.chdir(project)
    try:
        return CliRunner().invoke(cli, ["ci", "init", *args])
    finally:
        os.chdir(cwd)


def test_github_workflow_tests_pull_requests_and_runs_main(tmp_path):
    init_project(tmp_path / "p")
    result = _ci(tmp_path / "p", "github")
    assert result.exit_code == 0, result.output
    assert "MLOPS_NB_REGISTRY" in result.output
    workflow = yaml.safe_load((tmp_path / "p" / ".github" / "workflows" / "mlops-nb.yml").read_text())
    triggers = workflow[True]   # YAML 1.1 reads the key `on` as true, as GitHub's own parser does not
    assert set(triggers) == {"pull_request", "push", "workflow_dispatch"} and triggers["push"]["branches"] == ["main"]
    test, deliver = workflow["jobs"]["test"], workflow["jobs"]["deliver"]
    assert test["if"] == "github.event_name == 'pull_request'" and deliver["if"] == "github.event_name != 'pull_request'"
    runs = lambda job: [s["run"] for s in job["steps"] if "run" in s]   # noqa: E731
    assert runs(test) == ["python -m pip install -r requirements.txt", "mlops-nb test --junitxml mlops-nb-test.xml"]
    assert runs(deliver) == ["python -m pip install -r requirements.txt",
                             'mlops-nb run --summary "$GITHUB_STEP_SUMMARY"']
    assert deliver["env"]["MLOPS_NB_REGISTRY"] == "${{ secrets.MLOPS_NB_REGISTRY }}"
    assert [s.get("uses", "").split("@")[0] for s in test["steps"]][:2] == ["actions/checkout", "actions/setup-python"]
    assert "mlops-nb[postgres]>=0.1,<1" in (tmp_path / "p" / "requirements.txt").read_text()
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for command in runs(test) + runs(deliver):   # the commands the README documents
        assert f"`{command}`" in readme, command
    again = _ci(tmp_path / "p", "github")
    assert again.exit_code == 1 and "already exists; pass --force to overwrite it" in again.output
    assert _ci(tmp_path / "p", "github", "--force", "--branch", "trunk").exit_code == 0
    assert "branches: [trunk]" in (tmp_path / "p" / ".github" / "workflows" / "mlops-nb.yml").read_text()


def test_gitlab_pipeline_tests_merge_requests_and_runs_main(tmp_path):
    init_project(tmp_path / "p")
    assert _ci(tmp_path / "p", "gitlab").exit_code == 0
    spec = yaml.safe_load((tmp_path / "p" / ".gitlab-ci.yml").read_text())
    assert spec["stages"] == ["test", "deliver"] and spec["before_script"] == ["python -m pip install -r requirements.txt"]
    assert spec["test"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert spec["test"]["script"] == ["mlops-nb test --junitxml mlops-nb-test.xml"]
    assert spec["test"]["artifacts"]["reports"]["junit"] == "mlops-nb-test.xml"
    assert spec["deliver"]["rules"] == [{"if": '$CI_COMMIT_BRANCH == "main"'}]
    assert spec["deliver"]["script"] == ["mlops-nb run --summary gate-report.md"]
    outside = _ci(tmp_path, "gitlab")
    assert outside.exit_code == 1 and "has no pipeline.yaml" in outside.output


@pytest.mark.slow
def test_the_workflows_commands_pass_in_a_fresh_clone(tmp_path, pg_url):
    """A pull request's job (install, mlops-nb test) and main's job (install, run against the team registry,
    the gate's report as the summary), each command as the workflow writes it, in a fresh clone."""
    project = tmp_path / "churn"
    init_project(project)
    assert _ci(project, "github").exit_code == 0
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(project)], check=True)
    subprocess.run([*git, "-C", str(project), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(project), "commit", "-qm", "a pipeline"], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    workflow = yaml.safe_load((clone / ".github" / "workflows" / "mlops-nb.yml").read_text())
    summary = tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"   # the job's python and mlops-nb
    for job, extra in (("test", {}), ("deliver", {"MLOPS_NB_REGISTRY": pg_url, "GITHUB_STEP_SUMMARY": str(summary)})):
        for step in workflow["jobs"][job]["steps"]:
            if "run" not in step:
                continue
            done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=clone, env={**env, **extra},
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, (job, step["run"], done.stdout[-3000:], done.stderr[-3000:])
            if step["run"].startswith("mlops-nb test"):
                assert "5 passed" in done.stdout and (clone / "mlops-nb-test.xml").is_file()
    text = summary.read_text()
    assert "## churn: finished" in text and "| gate | ✅ ran |" in text
    assert "### Gate: churn/1 (no baseline: absolute rules only): **passed**" in text
    assert not (clone / ".mlops" / "registry.db").exists()   # main's run went to the team registry
    listed = subprocess.run(["mlops-nb", "models", "ls", "--json"], cwd=clone, env={**env, "MLOPS_NB_REGISTRY": pg_url},
                            capture_output=True, text=True)
    assert '"churn"' in listed.stdout and "production" in listed.stdout
