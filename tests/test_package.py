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
    finally:
        mlops.set_home(None)
        forget_stores()
