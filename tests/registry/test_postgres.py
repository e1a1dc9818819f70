"""The team registry on a real PostgreSQL server (tests/pg.py): choosing it, its schema, its artifacts, and a
template project whose pipeline runs on it from the terminal."""

import json
import os
import subprocess
import sys
import textwrap

import psycopg
import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb.errors import InvalidInputError, RegistryError
from mlops_nb.registry.artifacts import read_verified
from mlops_nb.registry.postgres import PostgresStore
from mlops_nb.registry.schema import LATEST_VERSION
from mlops_nb.registry.store import forget_stores, open_store


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("MLOPS_NB_REGISTRY", raising=False)
    monkeypatch.delenv("MLOPS_NB_HOME", raising=False)
    monkeypatch.delenv("MLOPS_NB_ARTIFACTS", raising=False)
    monkeypatch.chdir(tmp_path)
    mlops.set_home(None)
    yield
    mlops.set_registry(None)
    forget_stores()


def test_a_new_database_gets_the_schema_and_a_newer_one_is_refused(pg_url, tmp_path, clean_env):
    store = PostgresStore(tmp_path / ".mlops", pg_url)
    assert store.query_one("SELECT value FROM _registry WHERE key = 'schema_version'") == (str(LATEST_VERSION),)
    assert [r[0] for r in store.query("SELECT version FROM _migrations ORDER BY version")] == \
        list(range(1, LATEST_VERSION + 1))
    store.close()
    again = PostgresStore(tmp_path / "again", pg_url)
    assert again.query_one("SELECT COUNT(*) FROM _migrations")[0] == LATEST_VERSION
    again.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE _registry SET value = %s WHERE key = 'schema_version'", (str(LATEST_VERSION + 1),))
    with pytest.raises(RegistryError, match=r"newer mlops-nb \(schema version .*pip install -U mlops-nb"):
        PostgresStore(tmp_path / ".mlops", pg_url)


def test_a_database_of_something_else_is_refused_and_left_alone(pg_url, tmp_path, clean_env):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    with pytest.raises(RegistryError, match="not an mlops-nb registry .*'invoices'"):
        PostgresStore(tmp_path / ".mlops", pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert tables == ["invoices"]


def test_a_password_is_masked_in_every_message(pg_server, tmp_path, clean_env, monkeypatch):
    url = f"postgresql://nobody:hunter2@127.0.0.1:{pg_server.port}/nowhere"
    monkeypatch.setenv("MLOPS_NB_REGISTRY", url)
    result = CliRunner().invoke(cli, ["runs", "ls"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "hunter2" not in result.output and "nobody:***@127.0.0.1" in result.output, result.output
    assert "cannot open the registry" in result.output
    down = f"postgresql://u:hunter2@127.0.0.1:{pg_server.port + 1 if pg_server.port < 65535 else 1}/x"
    with pytest.raises(RegistryError) as caught:
        PostgresStore(tmp_path / ".mlops", down)
    assert "hunter2" not in str(caught.value) and "u:***@" in str(caught.value)


def test_a_url_that_is_not_postgresql_is_a_one_line_error(tmp_path, clean_env, monkeypatch):
    monkeypatch.setenv("MLOPS_NB_REGISTRY", "mysql://u:secret@h/db")
    with pytest.raises(InvalidInputError, match=r"MLOPS_NB_REGISTRY is 'mysql://u:\*\*\*@h/db': give a postgresql"):
        open_store(tmp_path / ".mlops")
    result = CliRunner().invoke(cli, ["--registry", "oracle://x", "runs", "ls"])
    assert result.exit_code == 2 and "give a postgresql://" in result.output and "Traceback" not in result.output


def test_every_client_finds_the_artifacts_where_the_registry_says(pg_url, tmp_path, clean_env, monkeypatch):
    shared = tmp_path / "shared-artifacts"
    monkeypatch.setenv("MLOPS_NB_ARTIFACTS", str(shared))
    mlops.set_registry(pg_url)
    mlops.set_home(tmp_path / "alice" / ".mlops")
    with mlops.start_run(experiment="e") as run:
        mlops.log_dict({"a": 1}, "config.json")
    forget_stores()
    monkeypatch.delenv("MLOPS_NB_ARTIFACTS")  # bob's machine has no setting: the registry names the folder
    mlops.set_home(tmp_path / "bob" / ".mlops")
    store = mlops.get_store()
    assert store.artifacts_dir == shared.resolve()
    sha = mlops.get_run(run.id).artifacts["config.json"]["sha256"]
    assert json.loads(read_verified(store.artifacts_dir, sha)) == {"a": 1}


def test_a_template_project_runs_its_pipeline_on_the_team_registry(pg_url, tmp_path, clean_env):
    """init --registry writes mlops-nb.yaml; `mlops-nb run` there records every step in PostgreSQL, and a
    colleague elsewhere, with only --registry, sees the runs and the model."""
    project = tmp_path / "churn"
    result = CliRunner().invoke(cli, ["init", str(project), "--registry", pg_url.replace("postgres@", "postgres:pw@")])
    assert result.exit_code == 0, result.output
    config = (project / "mlops-nb.yaml").read_text()
    assert f"registry: {pg_url}" in config and ":pw@" not in config  # no password is written down
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    run = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "run", "-q"], cwd=project, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (project / ".mlops" / "registry.db").exists()  # the working folder holds no registry
    elsewhere = tmp_path / "colleague"
    elsewhere.mkdir()
    listing = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "--registry", pg_url, "runs", "ls", "--json"],
                             cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    runs = json.loads(listing.stdout)
    steps = {r.get("step") or r["name"] for r in runs}
    assert len(runs) >= 4 and {"prepare", "train"} <= steps, runs
    models = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "--registry", pg_url, "models", "ls", "--json"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert models.returncode == 0 and json.loads(models.stdout), models.stdout + models.stderr
    # The executed notebook of a step is on alice's machine; bob's sees the copy kept with the run.
    step = next(r for r in runs if (r.get("step") or r["name"]) == "train" or r["name"].endswith("train"))
    page = subprocess.run([sys.executable, "-c", "import sys; from mlops_nb.registry import runs; "
                           "from mlops_nb.tracking import get_store; "
                           "print(runs.executed_notebook(get_store(), sys.argv[1]).read_text()[:2000])", step["run_id"]],
                          cwd=elsewhere, env={**env, "MLOPS_NB_REGISTRY": pg_url}, capture_output=True, text=True,
                          timeout=60)
    assert page.returncode == 0 and '"cells"' in page.stdout, page.stderr


@pytest.mark.slow
def test_eight_processes_log_and_register_at_once_and_nothing_is_lost(pg_url, tmp_path, clean_env):
    """8 writers x 10 runs x 10,000 metrics, each run registering a version of one model, all at once."""
    writer = textwrap.dedent("""
        import sys
        import mlops_nb as mlops
        from sklearn.dummy import DummyClassifier
        model = DummyClassifier().fit([[0], [1]], [0, 1])
        for r in range(10):
            with mlops.start_run(experiment="concurrent", name=f"p{sys.argv[1]}-r{r}") as run:
                for i in range(10_000):
                    mlops.log_metric("m", float(i), step=i)
                mlops.log_model(model, "model")
            mlops.register_model(run, "shared")
    """)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}, "MLOPS_NB_REGISTRY": pg_url,
           "MLOPS_NB_HOME": str(tmp_path / ".mlops")}
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and not err.strip(), err  # no error, no warning reached the user
    store = PostgresStore(tmp_path / "observer", pg_url)
    assert store.query_one("SELECT COUNT(*) FROM runs WHERE status = 'finished'")[0] == 80
    assert store.query_one("SELECT COUNT(*) FROM metrics")[0] == 800_000
    assert store.query_one("SELECT COUNT(DISTINCT (run_id, step)) FROM metrics")[0] == 800_000
    assert store.query_one("SELECT COUNT(*) FROM latest_metrics WHERE value = 9999.0 AND step = 9999")[0] == 80
    versions = [r[0] for r in store.query("SELECT version FROM model_versions WHERE name = 'shared' ORDER BY 1")]
    assert versions == list(range(1, 81))  # no gap, no duplicate
    assert store.query_one("SELECT COUNT(DISTINCT run_id) FROM model_versions")[0] == 80
    store.close()


def test_copying_from_a_folder_with_no_registry_is_a_one_line_error_and_creates_nothing(tmp_path, clean_env):
    result = CliRunner().invoke(cli, ["registry", "copy", "--from", str(tmp_path / ".mlosp"),
                                      "--to", str(tmp_path / "copy")])
    assert result.exit_code == 1 and "there is no registry there" in result.output and "Traceback" not in result.output
    assert not (tmp_path / ".mlosp").exists() and not (tmp_path / "copy").exists()


def test_ids_of_any_text_reach_the_server_whole_and_in_order(pg_url, tmp_path, clean_env):
    from mlops_nb.registry.dialect import POSTGRES

    store = PostgresStore(tmp_path / ".mlops", pg_url)
    try:
        for ids in ([], ["a"], ['x"y', "a\\b", "c,d", "{e}", "NULL", " sp ", "ü", '","', ""], [f"{i:032x}" for i in range(5000)]):
            got = store.query(f"SELECT value FROM {POSTGRES.ids_table()} ORDER BY key", (POSTGRES.ids_param(ids),))
            assert [value for value, in got] == ids
    finally:
        store.close()
