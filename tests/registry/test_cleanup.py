"""Deleting runs and experiments, restoring them, and collecting the garbage: on the demo's registry, real files."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry import cleanup, datasets, outputs, runs

pytestmark = pytest.mark.slow


def stored_files(home):
    return {str(p.relative_to(home)) for p in (home / "artifacts").glob("??/*") if p.is_file()}


def snapshot(run_id):
    run = mlops.get_run(run_id)
    return run.params, run.metrics, run.tags, run.artifacts, run.status


@pytest.fixture
def demo(home, tmp_path, monkeypatch):
    """The demo's first pipeline run (version 1 promoted), 20 cached reruns, and a scratch experiment of
    interactive runs that kept figures and tables of their own."""
    from mlops_nb.project.scaffold import init_project

    monkeypatch.setattr(cleanup, "GRACE_SECONDS", 0.0)  # the files here were all written a moment ago
    init_project(tmp_path / "demo")
    first = mlops.run_pipeline(tmp_path / "demo" / "pipeline.yaml")
    reruns = [mlops.run_pipeline(tmp_path / "demo" / "pipeline.yaml") for _ in range(20)]
    # extract always runs (cache: false, it fetches anew); what it writes is the same, so the rest is cached
    assert first.ok and all([s.status for s in r.steps.values()] == ["ran"] + ["cached"] * 4 for r in reruns)
    scratch = []
    for k in range(3):
        with mlops.start_run(experiment="scratch", name=f"try-{k}") as run:
            mlops.log_metric("loss", 1.0 / (k + 1))
            mlops.log_table(pd.DataFrame({"k": [k] * 5}), "sample")
            mlops.log_image(np.full((4, 4), k * 60, dtype=np.uint8), "picture")
        scratch.append(run.id)
    return {"first": first, "reruns": reruns, "scratch": scratch}


def test_gc_frees_what_only_deleted_runs_kept_and_nothing_else(demo, home):
    store = mlops.get_store()
    every = list(mlops.search_runs(max_results=100_000)["run_id"])
    before_files = stored_files(home)
    scratch_only = {f"artifacts/{a['sha256'][:2]}/{a['sha256'][2:]}" for r in demo["scratch"]
                    for a in mlops.get_run(r).artifacts.values()}
    assert scratch_only <= before_files and len(scratch_only) == 6

    result = CliRunner().invoke(cli, ["experiments", "rm", "scratch"])
    assert result.exit_code == 0 and "deleted experiment scratch and its 3 runs" in result.output
    rerun_ids = [r.run_id for r in demo["reruns"]]
    result = CliRunner().invoke(cli, ["runs", "rm", *rerun_ids])
    assert result.exit_code == 0 and "deleted 120 runs (100 of them inside the ones named)" in result.output
    kept = [r for r in every if r not in set(demo["scratch"]) and not runs.get_run(store, r).deleted_at]
    assert len(kept) == 6  # the first pipeline run and its five steps
    kept_before = {r: snapshot(r) for r in kept}
    assert set(mlops.search_runs(max_results=1000)["run_id"]) == set(kept)  # hidden from searches
    assert len(mlops.search_runs(max_results=1000, deleted=True)) == 123

    dry = CliRunner().invoke(cli, ["gc", "--dry-run"])
    assert dry.exit_code == 0 and "would remove 123 deleted runs and " in dry.output
    assert stored_files(home) == before_files
    done = CliRunner().invoke(cli, ["gc"])
    assert done.exit_code == 0 and dry.output.replace("would remove", "removed") == done.output

    # Every file a kept run or a model version names is there, and no other.
    named = {mlops.get_model_version("churn/1").sha256}
    for run_id in kept:
        named |= {a["sha256"] for a in mlops.get_run(run_id).artifacts.values()}
        named |= {o["sha256"] for o in outputs.run_outputs(store, run_id) if o["sha256"]}
        named |= {d["fingerprint"] for d in datasets.lineage(store, run_id)["datasets"]}
    after = stored_files(home)
    assert after == {f"artifacts/{h[:2]}/{h[2:]}" for h in named} & before_files
    assert not after & scratch_only and len(before_files - after) > len(scratch_only)  # extract's notebooks too
    assert {r: snapshot(r) for r in kept} == kept_before
    model = mlops.load_model("churn@production")  # its file checked against its sha256 as it loads
    X = pd.read_csv(home.parent / "demo" / "data" / "test.csv").drop(columns=["churned"])
    assert len(model.predict(X)) == len(X)
    for gone in demo["scratch"] + rerun_ids:
        with pytest.raises(NotFoundError):
            runs.get_run(store, gone)
        assert not (home / "runs" / gone).exists()
    assert "removed 0 deleted runs and 0 stored files" in CliRunner().invoke(cli, ["gc"]).output
    assert store.integrity_check() == "ok"


def test_a_deleted_run_comes_back_whole_an_aliased_one_is_never_deleted_a_deleted_step_never_reused(
        demo, home, tmp_path):
    first = demo["first"]
    train = first.steps["train"].run_id
    with pytest.raises(InvalidInputError, match=r"churn/1 is churn@production; point the alias"):
        cleanup.delete_runs(mlops.get_store(), [first.run_id])  # its train step registered the production model
    assert mlops.get_run(train).deleted_at is None
    scratch = demo["scratch"][0]
    before = snapshot(scratch)
    cleanup.delete_runs(mlops.get_store(), [scratch])
    assert scratch not in set(mlops.search_runs(max_results=1000)["run_id"])
    result = CliRunner().invoke(cli, ["runs", "restore", scratch[:8]])
    assert result.exit_code == 0 and "restored 1 run" in result.output
    assert snapshot(scratch) == before and scratch in set(mlops.search_runs(max_results=1000)["run_id"])

    # A deleted step run is not reused by the cache.
    cleanup.delete_runs(mlops.get_store(), [r.run_id for r in demo["reruns"]])  # and their cached steps
    extract = demo["first"].steps["extract"].run_id
    cleanup.delete_runs(mlops.get_store(), [extract])
    again = mlops.run_pipeline(tmp_path / "demo" / "pipeline.yaml")
    assert again.steps["extract"].status == "ran" and again.steps["extract"].run_id != extract
    assert again.steps["train"].status == "cached"  # its inputs came out the same


def test_bad_ages_and_unknown_runs_are_one_line_errors(home):
    result = CliRunner().invoke(cli, ["gc", "--older-than", "soon"])
    assert result.exit_code == 2 and "'soon' is not an age: give 30d, 12h, 90m or 1w" in result.output
    with mlops.start_run(name="only"):
        pass
    result = CliRunner().invoke(cli, ["runs", "rm", "nothing-like-it"])
    assert result.exit_code == 1 and "no run with id, id prefix or name 'nothing-like-it'" in result.output
    assert "Traceback" not in result.output
