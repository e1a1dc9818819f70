import subprocess
import sys

import pytest


def test_import_is_cheap():
    code = ("import sys, mlops_nb; heavy = [m for m in ('pandas', 'sklearn', 'papermill', 'ipywidgets', 'rich', 'nbformat', 'yaml', 'IPython') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo, run once: what it returned (its registry is in result["root"] / ".mlops")."""
    import os

    from mlops_nb.project.demo import run_demo
    from mlops_nb.registry.store import forget_stores
    import mlops_nb as mlops

    saved = {k: os.environ.pop(k) for k in ("MLOPS_NB_HOME", "MLOPS_NB_REGISTRY") if k in os.environ}
    try:
        yield run_demo(tmp_path_factory.mktemp("demo") / "demo")
    finally:
        os.environ.update(saved)
        mlops.set_home(None)
        forget_stores()


@pytest.mark.slow
def test_demo_tells_the_level_one_story(demo):
    import mlops_nb as mlops

    result = demo
    mlops.set_home(result["root"] / ".mlops")
    assert len(result["runs"]) == 3
    kinds = {e["kind"] for e in result["events"]}
    assert {"new_data", "drift", "performance", "manual"} <= kinds
    drift = next(e for e in result["events"] if e["kind"] == "drift")
    assert drift["evidence"]["drifted"] and drift["run_id"] == result["runs"][1]
    performance = next(e for e in result["events"] if e["kind"] == "performance")
    assert performance["run_id"] == result["runs"][2]  # each trigger fired for its own batch
    assert not any(e["kind"] == "drift" and e["run_id"] == result["runs"][2] for e in result["events"])
    decision = result["decision"]
    assert decision["baseline_version"] == 1
    # step 3 promoted version 2; step 4 retrained on the newest rows (the customers who changed): version 3
    assert decision["passed"] and result["production"] == 3
    assert (result["root"] / "reports" / "gate.html").exists()
    # 6. the loop closed on the service's own traffic: late labels fired the live performance trigger,
    # the retrained version passed its gate, and the running service answered with it
    served = result["served"]
    assert served["after"] == served["before"] + 1 and served["switched"] == served["after"]
    assert served["decision"]["passed"] and served["accuracy_before"] < 0.6 < served["accuracy_after"]
    live = [e for e in mlops.trigger_history("churn").to_dict(orient="records") if e["trigger"] == "performance#5"]
    assert len(live) == 1 and live[0]["run_id"] == served["run"] and live[0]["evidence"]["labelled"] == 2600
    windows = served["monitor"].windows
    assert windows["versions"].iloc[-1] == str(served["after"]) and windows["metric"].iloc[-1] > 0.6
    assert mlops.get_model_version("churn@production").version == served["after"]


@pytest.mark.slow
def test_the_demos_registry_copies_to_postgresql_and_back_and_shows_the_same(demo, pg_url, tmp_path, monkeypatch):
    """registry copy moves every id and blob; models, runs and datasets show print the same on all three."""
    import json

    from click.testing import CliRunner

    from mlops_nb.cli import cli
    from mlops_nb.registry.store import forget_stores

    source = demo["root"] / ".mlops"
    back = tmp_path / "back" / ".mlops"
    monkeypatch.chdir(tmp_path)
    for var in ("MLOPS_NB_HOME", "MLOPS_NB_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLOPS_NB_REGISTRY", "sqlite")  # --registry sets it for the process: undone at the end
    runner = CliRunner()
    there = runner.invoke(cli, ["registry", "copy", "--from", str(source), "--to", pg_url,
                                "--artifacts", str(tmp_path / "shared"), "--json"])
    assert there.exit_code == 0, there.output
    copied = json.loads(there.output)
    assert copied["ok"] and copied["tables"]["runs"]["new"] == copied["tables"]["runs"]["source"] > 10
    assert copied["blobs"]["copied"] == copied["blobs"]["source"] > 0
    again = json.loads(runner.invoke(cli, ["registry", "copy", "--from", str(source), "--to", pg_url,
                                           "--json"]).output)
    assert again["ok"] and sum(t["new"] for t in again["tables"].values()) == 0 and again["blobs"]["copied"] == 0
    home_back = runner.invoke(cli, ["registry", "copy", "--from", pg_url, "--to", str(back)])
    assert home_back.exit_code == 0 and "match on both sides" in home_back.output, home_back.output
    forget_stores()

    run_id = demo["runs"][-1]
    dataset = json.loads(runner.invoke(cli, ["--home", str(source), "datasets", "ls", "--json"]).output)[0]["name"]
    for command in (["models", "show", "churn"], ["runs", "show", run_id], ["datasets", "show", dataset]):
        for as_json in ([], ["--json"]):
            original = runner.invoke(cli, ["--registry", "sqlite", "--home", str(source), *command, *as_json])
            on_pg = runner.invoke(cli, ["--registry", pg_url, *command, *as_json])
            returned = runner.invoke(cli, ["--registry", "sqlite", "--home", str(back), *command, *as_json])
            assert original.exit_code == 0 and original.output.strip(), original.output
            # The same rows and files; where a registry keeps its files (a pipeline run's version) differs.
            shown = original.output.replace(str(source / "artifacts"), "<artifacts>")
            assert on_pg.output.replace(str(tmp_path / "shared"), "<artifacts>") == shown, (command, as_json)
            assert returned.output.replace(str(back / "artifacts"), "<artifacts>") == shown, (command, as_json)
            forget_stores()
    assert (back / "registry.db").is_file()
