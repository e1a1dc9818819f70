"""``mlops-nb ci init github|gitlab``: the workflow that tests the pipeline on every pull request and runs it
on the main branch (MLOps level 2's delivery).

On a pull (merge) request: install the project, ``mlops-nb test`` on a sample (its JUnit report kept). On the
main branch: ``mlops-nb run`` against the team registry (``MLOPS_NB_REGISTRY``, a CI secret or variable),
with the gate's report published (the job's summary, its artifacts). The commands are the README's.
"""

from __future__ import annotations

from pathlib import Path

from mlops_nb.errors import InvalidInputError

SYSTEMS = {"github": Path(".github/workflows/mlops-nb.yml"), "gitlab": Path(".gitlab-ci.yml")}
INSTALL = "python -m pip install -r requirements.txt"
TEST = "mlops-nb test --junitxml mlops-nb-test.xml"
RUN = "mlops-nb run --summary {summary}"    # the steps and the gate's verdict, as Markdown
PYTHON = "3.11"


def write_ci(system: str, project: str | Path = ".", *, force: bool = False, branch: str = "main") -> Path:
    """Write the workflow for ``system`` (github or gitlab) in ``project``; refuses to overwrite unless ``force``."""
    if system not in SYSTEMS:
        raise InvalidInputError(f"ci init {system}: expected one of {', '.join(SYSTEMS)}")
    root = Path(project)
    if not (root / "pipeline.yaml").is_file():
        raise InvalidInputError(f"{root.resolve()} has no pipeline.yaml: run `mlops-nb ci init` in the project "
                                "folder (one made by `mlops-nb init`, or with a pipeline.yaml)")
    target = root / SYSTEMS[system]
    if target.exists() and not force:
        raise InvalidInputError(f"{target} already exists; pass --force to overwrite it")
    text = github_workflow(branch) if system == "github" else gitlab_pipeline(branch)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    requirements = root / "requirements.txt"
    if not requirements.exists():
        requirements.write_text(default_requirements(), encoding="utf-8")
    return target


def default_requirements() -> str:
    from importlib import metadata

    try:
        version = metadata.version("mlops-nb")
    except metadata.PackageNotFoundError:
        version = "0.1.0"
    major, minor = (version.split(".") + ["0"])[:2]
    return ("# What the pipeline's notebooks need (mlops-nb brings pandas, scikit-learn, matplotlib); CI installs\n"
            "# it (`mlops-nb ci init`). Add what your notebooks import.\n"
            f"mlops-nb[postgres]>={major}.{minor},<{int(major) + 1}\n")


def github_workflow(branch: str = "main") -> str:
    setup = f"""      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "{PYTHON}"
      - name: Install
        run: {INSTALL}
"""
    return f"""# Written by `mlops-nb ci init github`: the pipeline tested on every pull request, run on {branch}.
name: mlops-nb
on:
  pull_request:
  push:
    branches: [{branch}]
  workflow_dispatch:
jobs:
  test:
    # The pipeline on a sample (test_params:) in a throwaway registry: every step must pass.
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
{setup}      - name: Test the pipeline
        run: {TEST}
      - name: Keep the test report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: mlops-nb-test
          path: mlops-nb-test.xml
  deliver:
    # The pipeline for real, against the team registry; the gate decides what is promoted.
    if: github.event_name != 'pull_request'
    runs-on: ubuntu-latest
    env:
      MLOPS_NB_REGISTRY: ${{{{ secrets.MLOPS_NB_REGISTRY }}}}
      PGPASSWORD: ${{{{ secrets.PGPASSWORD }}}}
    steps:
{setup}      - name: Run the pipeline and publish the gate's report
        run: {RUN.format(summary='"$GITHUB_STEP_SUMMARY"')}
      - name: Keep the reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: mlops-nb-reports
          path: reports/
"""


def gitlab_pipeline(branch: str = "main") -> str:
    return f"""# Written by `mlops-nb ci init gitlab`: the pipeline tested on every merge request, run on {branch}.
# MLOPS_NB_REGISTRY and PGPASSWORD: CI/CD variables of the project (masked).
image: python:{PYTHON}
stages: [test, deliver]
before_script:
  - {INSTALL}
test:
  # The pipeline on a sample (test_params:) in a throwaway registry: every step must pass.
  stage: test
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  script:
    - {TEST}
  artifacts:
    when: always
    reports:
      junit: mlops-nb-test.xml
deliver:
  # The pipeline for real, against the team registry; the gate decides what is promoted.
  stage: deliver
  rules:
    - if: $CI_COMMIT_BRANCH == "{branch}"
  script:
    - {RUN.format(summary="gate-report.md")}
  artifacts:
    when: always
    paths: [reports/, gate-report.md]
"""
