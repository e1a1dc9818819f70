import subprocess
import sys

import pytest


def test_import_is_cheap():
    code = ("import sys, mlops_nb; heavy = [m for m in ('pandas', 'sklearn', 'papermill', 'ipywidgets', 'rich', 'nbformat', 'yaml', 'IPython') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_demo_tells_the_tracking_story(tmp_path):
    from mlops_nb.demo import run_demo
    from mlops_nb.registry.store import forget_stores
    import mlops_nb as mlops

    try:
        result = run_demo(tmp_path / "demo")
        assert len(result["runs"]) == 4
        assert result["accuracy"] > 0.9
        production = mlops.get_model_version("cancer-classifier@production")
        assert production.version == result["production"] == 1
        assert production.run_id == result["best_run"]
    finally:
        mlops.set_home(None)
        forget_stores()
