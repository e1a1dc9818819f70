"""The tabular-classification template, scaffolded and run headless: the level-1 story."""


import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb.registry import gates, outputs
from mlops_nb.registry import triggers as trigger_store
from mlops_nb.project.scaffold import init_project, write_batch
from mlops_nb.triggers.check import check_pipeline
from tests.waiting import age


def test_init_writes_the_project_and_refuses_to_overwrite(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    for name in ("pipeline.yaml", "monitor.yaml", "README.md", ".gitignore", "notebooks/train.ipynb",
                 "notebooks/monitor.ipynb", "data/incoming/batch-001.csv"):
        assert (tmp_path / "p" / name).exists(), name
    assert ".mlops/" in (tmp_path / "p" / ".gitignore").read_text()
    again = CliRunner().invoke(cli, ["init", str(tmp_path / "p")])
    assert again.exit_code == 1 and "pass --force to overwrite" in again.output
    unknown = CliRunner().invoke(cli, ["init", str(tmp_path / "q"), "--template", "nope"])
    assert unknown.exit_code == 1 and "templates: tabular-classification, tabular-features, tabular-regression" \
        in unknown.output


def test_template_notebooks_have_parameters_and_no_outputs():
    import json
    from pathlib import Path

    from mlops_nb.project.scaffold import template_dir

    for path in [path for template in ("tabular-classification", "tabular-regression", "tabular-features")
                 for path in Path(template_dir(template), "notebooks").glob("*.ipynb")]:
        cells = json.loads(path.read_text())["cells"]
        assert any("parameters" in c["metadata"].get("tags", []) for c in cells), path.name
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), path.name
        assert cells[0]["cell_type"] == "markdown", path.name


@pytest.mark.slow
def test_new_shifted_data_fires_triggers_retrains_and_gates(tmp_path, home, monkeypatch):
    project = tmp_path / "churn"
    init_project(project)
    monkeypatch.chdir(project)
    first = mlops.run_pipeline()
    assert first.ok, [s.failure.describe() for s in first.steps.values() if s.failure]
    assert mlops.get_model_version("churn@production").version == 1
    age(*(project / "data" / "incoming").glob("*.csv"))      # the first batch has settled
    assert not check_pipeline().fired                       # baselines: nothing new yet
    age(write_batch(project / "data" / "incoming" / "batch-002.csv", n_rows=3000, seed=2, shift=1.0))
    result = check_pipeline()
    kinds = {f.trigger.kind for f in result.fired}
    assert kinds == {"new_data", "drift"}, (result.notes, result.errors)
    assert kinds == {"new_data", "drift"} and len(result.runs) == 1 and result.runs[0].ok
    drift_event = next(e for e in trigger_store.history(mlops.tracking.get_store(), "churn") if e["kind"] == "drift")
    assert drift_event["evidence"]["drifted"] and "age" in drift_event["evidence"]["drifted_columns"]
    assert drift_event["run_id"] == result.runs[0].run_id
    decision = gates.latest_decision(mlops.tracking.get_store(), "churn", 2)
    assert decision is not None and decision["baseline_version"] == 1
    production = mlops.get_model_version("churn@production").version
    assert production == (2 if decision["passed"] else 1)
    assert (project / "reports" / "drift.html").exists() and (project / "reports" / "gate.html").exists()
    monitor = mlops.run_pipeline(project / "monitor.yaml")   # the monitoring notebook, headless
    assert monitor.ok, [s.failure.describe() for s in monitor.steps.values() if s.failure]
    accuracy = mlops.get_run(monitor.steps["monitor"].run_id).metrics["accuracy"]
    assert 0.5 < accuracy < 1.0
    monitored = {o["name"]: o for o in outputs.run_outputs(mlops.tracking.get_store(), monitor.steps["monitor"].run_id)}
    assert {"accuracy", "drift_share", "prediction_drift"} <= set(monitored)  # data and predictions vs the reference
    notes = check_pipeline(run=False).notes
    assert notes["performance#4"].startswith("accuracy = ")


@pytest.mark.slow
def test_regression_template_runs_end_to_end(tmp_path, home, monkeypatch):
    project = tmp_path / "charges"
    init_project(project, "tabular-regression")
    monkeypatch.chdir(project)
    result = mlops.run_pipeline()
    assert result.ok, [s.failure.describe() for s in result.steps.values() if s.failure]
    version = mlops.get_model_version("charges@production")
    assert version.version == 1 and mlops.get_run(version.run_id).metrics["r2"] > 0.05
    monitor = mlops.run_pipeline(project / "monitor.yaml")
    assert monitor.ok, [s.failure.describe() for s in monitor.steps.values() if s.failure]
    assert mlops.get_run(monitor.steps["monitor"].run_id).metrics["mae"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("template, model", [("tabular-classification", "churn"), ("tabular-regression", "charges")])
def test_step_notebooks_also_run_by_hand_in_order(tmp_path, home, template, model):
    """Outside a pipeline, from the notebooks' own folder as JupyterLab starts their kernels: each runs as written."""
    import papermill

    project = tmp_path / "by-hand"
    init_project(project, template)
    for step in ("extract", "validate", "prepare", "train", "gate", "monitor"):
        papermill.execute_notebook(str(project / "notebooks" / f"{step}.ipynb"), str(tmp_path / f"{step}.out.ipynb"),
                                   cwd=str(project / "notebooks"), kernel_name="python3", progress_bar=False)
    assert mlops.get_model_version(f"{model}@production").version == 1


@pytest.mark.slow
def test_the_template_takes_your_own_data_by_changing_only_pipeline_yaml(tmp_path, home, monkeypatch):
    """The README's "Make it yours": other data, another target column, another model name."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    project = tmp_path / "cancer"
    init_project(project)
    data = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, -1]]  # four features and "target"
    data.columns = ["radius", "texture", "perimeter", "area", "malignant"]
    data.insert(0, "clinic", np.random.default_rng(0).choice(["north", "south"], len(data)))
    (project / "data" / "incoming" / "batch-001.csv").unlink()
    data.to_csv(project / "data" / "incoming" / "scans.csv", index=False)
    spec = (project / "pipeline.yaml").read_text()
    spec = spec.replace("params: {target: churned, model_name: churn, seed: 0}",
                        "params: {target: malignant, model_name: cancer, seed: 0, segment: clinic, "
                        "sensitive: clinic}")
    (project / "pipeline.yaml").write_text(spec)
    monkeypatch.chdir(project)
    result = mlops.run_pipeline()
    assert result.ok, [s.failure.describe() for s in result.steps.values() if s.failure]
    production = mlops.get_model_version("cancer@production")
    assert production.version == 1
    assert [c["name"] for c in production.signature["inputs"]] == ["clinic", "radius", "texture", "perimeter", "area"]
    decision = gates.latest_decision(mlops.tracking.get_store(), "cancer", 1)
    assert decision["passed"] and any("segment north" in r["detail"] for r in decision["results"])
    assert set(decision["card"]["fairness"]["candidate"]["groups"]) == {"north", "south"}


def test_chdir_project_moves_up_to_the_pipeline_and_says_when_there_is_none(tmp_path, monkeypatch):
    init_project(tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p" / "notebooks")
    assert mlops.chdir_project() == tmp_path / "p" and (tmp_path / "p").samefile(".")
    assert mlops.chdir_project() == tmp_path / "p"  # already there: nothing moves
    monkeypatch.chdir(tmp_path)
    with pytest.raises(mlops.MlopsError, match=f"no pipeline.yaml in {tmp_path} or its parents"):
        mlops.chdir_project()


@pytest.mark.slow
def test_the_loop_retrains_for_each_triggers_own_reason(tmp_path, home, monkeypatch):
    """The template's level-1 loop, trigger by trigger: each firing means the work is done again."""
    from datetime import timedelta

    import pandas as pd

    from mlops_nb.triggers.firing import utcnow

    project = tmp_path / "churn"
    init_project(project)
    monkeypatch.chdir(project)
    incoming = project / "data" / "incoming"
    assert mlops.run_pipeline().ok
    age(*incoming.glob("*.csv"))
    assert not check_pipeline().fired  # every trigger takes its baseline

    def fired(result):
        return sorted(f.trigger.kind for f in result.fired)

    # A schedule with unchanged files: extract always runs (cache: false), what reads its unchanged
    # output is reused, and the schedule's rerun: [train, gate] retrains.
    weekly = check_pipeline(now=utcnow() + timedelta(days=7))
    assert fired(weekly) == ["schedule"]
    steps = weekly.runs[0].steps
    assert {n: s.status for n, s in steps.items()} == {"extract": "ran", "validate": "cached", "prepare": "cached",
                                                     "train": "ran", "gate": "ran"}
    assert steps["extract"].reason == "always runs (cache: false)" and "schedule#3" in steps["train"].reason

    # The monitor's score falls below the rule: one firing, one retraining, however often the monitor reruns.
    text = (project / "pipeline.yaml").read_text()
    (project / "pipeline.yaml").write_text(text.replace("metric: accuracy, below: 0.6", "metric: accuracy, below: 0.99"))
    assert mlops.run_pipeline(project / "monitor.yaml").ok
    drop = check_pipeline()
    assert fired(drop) == ["performance"] and drop.runs[0].steps["train"].status == "ran"
    assert mlops.run_pipeline(project / "monitor.yaml").ok  # cached: the same measurement
    assert not check_pipeline().fired
    (project / "pipeline.yaml").write_text(text)

    # Five normal batches: new data each time, never drift; then a shifted one drifts on its own.
    for i in range(2, 7):
        age(write_batch(incoming / f"batch-{i:03d}.csv", n_rows=800, seed=i))
        assert fired(check_pipeline()) == ["new_data"], i
    age(write_batch(incoming / "batch-007.csv", n_rows=800, seed=7, shift=1.0))
    shifted = check_pipeline()
    assert fired(shifted) == ["drift", "new_data"] and shifted.runs[0].ok
    drift_event = next(f for f in shifted.fired if f.trigger.kind == "drift")
    assert drift_event.evidence["current_files"] == ["data/incoming/batch-007.csv"]
    assert drift_event.evidence["window"] == "newest" and drift_event.evidence["reference"].startswith("churn/")

    # After the retraining, data like the new training data is quiet against reference: production.
    production = mlops.get_model_version("churn@production")
    assert mlops.get_run(production.run_id).parent_id == shifted.runs[0].run_id  # trained on the shifted batch too
    like_training = pd.read_csv(project / "data" / "train.csv").sample(800, random_state=0)
    like_training.to_csv(incoming / "batch-008.csv", index=False)
    age(incoming / "batch-008.csv")
    quiet = check_pipeline(run=False)
    assert fired(quiet) == ["new_data"], quiet.notes
