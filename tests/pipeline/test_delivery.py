"""Level 2: `mlops-nb test` on a sample in a throwaway registry, pipeline versions and `mlops-nb diff`."""

import json
from pathlib import Path
import xml.etree.ElementTree as ET

import nbformat
import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb.pipeline import version as versions
from mlops_nb.registry.store import open_store
from tests.notebooks_util import write_notebook

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def test_copies_in_tmp_path(tmp_path, monkeypatch):
    """`mlops-nb test` keeps the copy of a project whose step failed: in the test's folder, not /tmp."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def _test(*args):
    return CliRunner().invoke(cli, ["test", *args])


def _edit_cell(path, old, new):
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and old in c.source)
    cell.source = cell.source.replace(old, new)
    nbformat.write(nb, str(path))


def test_a_template_project_passes_its_pipeline_test_and_keeps_its_files(tmp_path, home, monkeypatch):
    from mlops_nb.project.scaffold import init_project

    project = tmp_path / "churn"
    init_project(project)
    monkeypatch.chdir(project)
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    result = _test("--junitxml", str(tmp_path / "report.xml"))
    assert result.exit_code == 0, result.output
    for step in ("extract", "validate", "prepare", "train", "gate"):
        assert f"churn::{step} PASSED" in result.output
    assert "5 passed in" in result.output
    suite = ET.parse(tmp_path / "report.xml").getroot().find("testsuite")
    assert suite.get("tests") == "5" and suite.get("failures") == "0"
    assert [c.get("name") for c in suite.iter("testcase")] == ["extract", "validate", "prepare", "train", "gate"]
    # Nothing of the test is left in the project: no outputs, reports or registry.
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
    assert not (home / "registry.db").exists()


def test_a_cell_raising_fails_its_step_with_the_cell_and_skips_what_follows(project, home, tmp_path):
    _edit_cell(project / "notebooks" / "train.ipynb", "accuracy = round(", "1 / 0\naccuracy = round(")
    result = _test("--junitxml", str(tmp_path / "report.xml"))
    assert result.exit_code == 1, result.output
    assert "churn::prepare PASSED" in result.output and "churn::report PASSED" in result.output
    assert "churn::train FAILED" in result.output
    assert "churn::evaluate SKIPPED" in result.output and "upstream step train did not succeed" in result.output
    assert "1 / 0" in result.output and "ZeroDivisionError: division by zero" in result.output
    assert "FAILED churn::train - ZeroDivisionError" in result.output
    assert "Traceback" not in result.output
    kept = result.output.split("are kept in ")[1].split(" (delete it")[0]
    assert (Path(kept) / "project" / ".mlops" / "runs").is_dir()   # the failing step's executed notebook is there
    suite = ET.parse(tmp_path / "report.xml").getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "1")
    train = next(c for c in suite.iter("testcase") if c.get("name") == "train")
    assert "ZeroDivisionError" in train.find("failure").get("message")


def test_a_step_that_does_not_write_its_output_fails(project, home):
    _edit_cell(project / "notebooks" / "prepare.ipynb", 'with open("data/prepared.csv", "w"',
               'with open("data/other.csv", "w"')
    result = _test()
    assert result.exit_code == 1
    assert "churn::prepare FAILED" in result.output
    assert "did not write its output data/prepared.csv" in result.output


def test_an_undeclared_param_fails_its_step_before_anything_runs(project, home):
    text = (project / "pipeline.yaml").read_text()
    (project / "pipeline.yaml").write_text(text.replace("    params: {C: 1.0}", "    params: {C: 1.0}\n"
                                                                                  "    test_params: {epochs: 2}"))
    result = _test()
    assert result.exit_code == 1, result.output
    assert "churn::train FAILED" in result.output
    assert "has no param 'epochs'" in result.output and "declares: C, max_iter" in result.output
    assert "churn::prepare SKIPPED" in result.output


def test_an_output_whose_schema_changed_fails_against_the_recorded_one(project, home):
    assert mlops.run_pipeline().ok   # the registry records data/prepared.csv with columns x, y
    _edit_cell(project / "notebooks" / "prepare.ipynb", 'fieldnames=["x", "y"]', 'fieldnames=["x", "label"]')
    _edit_cell(project / "notebooks" / "prepare.ipynb", "rows = [r for r in csv.DictReader(f)][:limit]",
               'rows = [{"x": r["x"], "label": r["y"]} for r in csv.DictReader(f)][:limit]')
    result = _test()
    assert result.exit_code == 1, result.output
    assert "churn::prepare FAILED" in result.output
    assert "output data/prepared.csv does not match the schema recorded in run" in result.output
    assert "missing column y; new column label" in result.output
    assert "churn::train PASSED" in result.output   # train reads only x and counts rows


def test_test_params_reach_the_steps_and_the_real_registry_is_untouched(project, home):
    text = (project / "pipeline.yaml").read_text()
    (project / "pipeline.yaml").write_text("test_params: {limit: 3}\n" + text)
    write_notebook(project / "notebooks" / "report.ipynb", [
        "import mlops_nb as mlops\nassert mlops.input('n_rows') == 3, mlops.input('n_rows')\n"
        "open('report.txt', 'w').write('ok')"], parameters="title = 'weekly'")
    result = _test()
    assert result.exit_code == 0, result.output
    assert not (home / "registry.db").exists() and not (project / "report.txt").exists()
    assert not (project / "data" / "prepared.csv").exists()


def test_each_pipeline_run_records_its_version(project, home):
    first = mlops.run_pipeline()
    store = open_store(home)
    run = mlops.get_run(first.run_id)
    recorded = json.loads((store.artifacts_dir / run.artifacts[versions.ARTIFACT]["sha256"][:2] /
                           run.artifacts[versions.ARTIFACT]["sha256"][2:]).read_text())
    assert run.tags[versions.TAG] == recorded["version"]
    assert set(recorded["steps"]) == {"prepare", "train", "evaluate", "report"}
    assert len(recorded["steps"]["train"]["cells"]) == 2 and "accuracy = round(" in recorded["steps"]["train"]["cells"][1]
    assert "scikit-learn" in recorded["packages"] and "mlops-nb" in recorded["packages"]
    again = mlops.run_pipeline()   # nothing changed: the same version
    assert mlops.get_run(again.run_id).tags[versions.TAG] == recorded["version"]
    _edit_cell(project / "notebooks" / "report.ipynb", "weekly", "weekly")  # saved again, same code
    assert mlops.get_run(mlops.run_pipeline().run_id).tags[versions.TAG] == recorded["version"]


def test_diff_shows_exactly_the_edited_cell_and_the_changed_param(project, home):
    first = mlops.run_pipeline()
    _edit_cell(project / "notebooks" / "train.ipynb", "accuracy = round(min(1.0, 0.5 + C / 10",
               "accuracy = round(min(1.0, 0.45 + C / 10")
    second = mlops.run_pipeline(params=["train.C=2.0"])
    assert first.ok and second.ok
    result = CliRunner().invoke(cli, ["diff", first.run_id[:8], second.run_id[:8]])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "train (notebooks/train.ipynb): 1 cell changed" in out
    assert "\n      -accuracy = round(min(1.0, 0.5 + C / 10" in out
    assert "\n      +accuracy = round(min(1.0, 0.45 + C / 10" in out
    assert out.count("\n      -") == 1 and out.count("\n      +") == 1   # that line, and nothing else
    assert "train.C: 1.0 -> 2.0" in out
    assert "pipeline file" not in out and "source data" not in out and "packages" not in out
    assert "train.accuracy" in out   # the metric that moved
    data = json.loads(CliRunner().invoke(cli, ["diff", first.run_id, second.run_id, "--json"]).output)
    assert [s["step"] for s in data["code"]] == ["train"] and len(data["code"][0]["cells"]) == 1
    assert [p[0] for p in data["params"]] == ["train.C"]
    assert {m[0] for m in data["metrics"]} == {"train.accuracy"}
    # New source data shows as a changed fingerprint of the step that reads it.
    from tests.pipeline.conftest import write_raw

    write_raw(project, n=120)
    third = mlops.run_pipeline(params=["train.C=2.0"])
    data = json.loads(CliRunner().invoke(cli, ["diff", second.run_id, third.run_id, "--json"]).output)
    assert [d[0] for d in data["data"]] == ["prepare: data/raw.csv"] and data["code"] == [] and data["params"] == []


def test_diff_refuses_what_is_not_two_pipeline_runs(project, home):
    first = mlops.run_pipeline()
    same = CliRunner().invoke(cli, ["diff", first.run_id, first.run_id])
    assert same.exit_code == 1 and "are the same pipeline run" in same.output
    with mlops.start_run(name="notebook-run"):
        pass
    other = CliRunner().invoke(cli, ["diff", first.run_id, "notebook-run"])
    assert other.exit_code == 1 and "is not a pipeline run" in other.output and "Traceback" not in other.output
    missing = CliRunner().invoke(cli, ["diff", first.run_id, "nope"])
    assert missing.exit_code == 1 and "no run with id" in missing.output
