import pytest

import mlops_nb as mlops
from mlops_nb import tracking
from mlops_nb.registry.store import forget_stores, open_store
from tests import users


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


@pytest.fixture(scope="session")
def other_user():
    """A second, unprivileged local user (see tests/users.py), removed at the end."""
    with users.second_user() as name:
        yield name


@pytest.fixture
def shared_tmp():
    """A folder every user may write in, like /tmp (mode 1777), removed afterwards."""
    import shutil
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="mlops-nb-shared-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
