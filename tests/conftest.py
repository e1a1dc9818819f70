import os
import tempfile

import pytest

# Under pytest-xdist (make test runs two workers), each worker has a temporary folder of its own: what the
# code keeps in $TMPDIR for the user (the warm-kernel daemon's socket folder) is not shared between workers.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _own = os.path.join(tempfile.gettempdir(), f"mlops-nb-tests-{os.environ['PYTEST_XDIST_WORKER']}")
    os.makedirs(_own, exist_ok=True)
    os.chmod(_own, 0o1777)   # like /tmp: every user may make a folder there, only its owner remove it
    os.environ["TMPDIR"] = _own
    os.environ.pop("XDG_RUNTIME_DIR", None)
    tempfile.tempdir = None
    os.environ.pop("COLUMNS", None)   # xdist sets 80; the commands' piped output is as wide as in a plain run

import mlops_nb as mlops
from mlops_nb import tracking
from mlops_nb.registry.store import forget_stores, open_store
from tests import pg, users


# The longest test files, longest first: on two xdist workers (a file each at a time) they start at once
# instead of leaving one worker running the last long file alone. Other files keep their order.
LONGEST_FIRST = ("tests/browser/test_lab_tutorials.py", "tests/browser/test_lab_templates.py",
                 "tests/pipeline/test_runner.py", "tests/server/test_api.py", "tests/test_templates.py",
                 "tests/test_tutorials.py", "tests/registry/test_postgres.py", "tests/triggers/test_triggers.py",
                 "tests/browser/test_lab_dashboard.py", "tests/test_magics.py", "tests/test_package.py")


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_generate_tests(metafunc):
    """A test marked ``backends`` that uses a registry runs once on SQLite and once on PostgreSQL."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("backends"):
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(autouse=True)
def _registry_choice_is_the_tests_own():
    """`--registry` and `mlops.set_registry` choose for the whole process: no test leaves its choice behind."""
    before = os.environ.get("MLOPS_NB_REGISTRY")
    yield
    if before is None:
        os.environ.pop("MLOPS_NB_REGISTRY", None)
    else:
        os.environ["MLOPS_NB_REGISTRY"] = before


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server of the suite's own, started once (tests/pg.py)."""
    if pg.binaries() is None:
        if os.environ.get("CI"):
            pytest.fail(pg.MISSING)
        pytest.skip(pg.MISSING)
    server = pg.Server().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty PostgreSQL database for the test, dropped afterwards."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    forget_stores()
    pg_server.drop_database(name)


@pytest.fixture
def backend(request):
    """Which registry the test's ``home`` uses: sqlite unless the test is marked ``backends``."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def home(tmp_path, monkeypatch, backend, request):
    """A fresh registry for the test (a SQLite file, or a PostgreSQL database for ``backend``); the process
    logs into it."""
    path = tmp_path / ".mlops"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLOPS_NB_HOME", str(path))
    if backend == "postgresql":
        monkeypatch.setenv("MLOPS_NB_REGISTRY", request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv("MLOPS_NB_REGISTRY", raising=False)
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
