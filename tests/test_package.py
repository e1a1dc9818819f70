import subprocess
import sys

import pytest


def test_import_is_cheap():
    code = ("import sys, mlops_nb; heavy = [m for m in ('pandas', 'sklearn', 'papermill', 'ipywidgets', 'rich', 'nbformat', 'yaml', 'IPython') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_demo_tells_the_level_one_story(tmp_path, monkeypatch):
    from mlops_nb.project.demo import run_demo
    from mlops_nb.registry.store import forget_stores
    import mlops_nb as mlops

    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    try:
        result = run_demo(tmp_path / "demo")
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
        assert result["production"] == (2 if decision["passed"] else 1)
        assert mlops.get_model_version("churn@production").version == result["production"]
        assert (result["root"] / "reports" / "gate.html").exists()
    finally:
        mlops.set_home(None)
        forget_stores()
