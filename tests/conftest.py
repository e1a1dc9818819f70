import pytest

import mlops_nb as mlops
from mlops_nb import tracking
from mlops_nb.registry.store import forget_stores, open_store


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh registry folder for the test; the process logs into it."""
    path = tmp_path / ".mlops"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLOPS_NB_HOME", str(path))
    mlops.set_home(path)
    yield path
    for run in list(tracking.run._all):
        try:
            run.end("finished")
        except Exception:
            pass
    tracking.forget_process_state()
    forget_stores()


@pytest.fixture
def store(home):
    return open_store(home)
