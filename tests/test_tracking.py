import math

import pytest

import mlops_nb as mlops
from mlops_nb import tracking
from mlops_nb.errors import InvalidInputError, NoActiveRunError, NotFoundError

pytestmark = pytest.mark.backends  # on the SQLite file and on PostgreSQL


def count(store, table):
    return store.query_one(f"SELECT COUNT(*) FROM {table}")[0]


def test_run_records_params_metrics_tags_and_environment(store):
    with mlops.start_run(experiment="churn", name="first", params={"C": 0.5, "model": "rf"},
                         tags={"team": "ml"}) as run:
        mlops.log_metric("accuracy", 0.91)
        mlops.log_param("depth", 4)
    got = mlops.get_run(run.id)
    assert (got.name, got.experiment, got.status, got.kind) == ("first", "churn", "finished", "interactive")
    assert got.params == {"C": 0.5, "model": "rf", "depth": 4}
    assert got.metrics == {"accuracy": 0.91}
    assert got.tags == {"team": "ml"}
    assert got.env["python"].count(".") == 2 and "pandas" in got.env["packages"]
    assert got.end_time >= got.start_time


def test_metric_steps_count_up_per_key_and_latest_is_highest_step(store):
    with mlops.start_run() as run:
        for value in (0.9, 0.5, 0.2):
            mlops.log_metric("loss", value)
        mlops.log_metric("acc", 0.7, step=10)
        mlops.log_metric("acc", 0.6, step=3)
    history = mlops.metric_history(run.id, "loss")
    assert list(history["step"]) == [0, 1, 2]
    assert list(history["value"]) == [0.9, 0.5, 0.2]
    assert mlops.get_run(run.id).metrics == {"acc": 0.7, "loss": 0.2}


def test_metrics_are_buffered_until_a_threshold(store, monkeypatch):
    monkeypatch.setattr(tracking.run, "FLUSH_ROWS", 100)
    with mlops.start_run():
        for i in range(99):
            mlops.log_metric("m", float(i))
        assert count(store, "metrics") == 0
        mlops.log_metric("m", 99.0)
        assert count(store, "metrics") == 100


def test_nan_and_infinities_are_stored_faithfully(store):
    with mlops.start_run() as run:
        mlops.log_metrics({"nan": float("nan"), "pos": float("inf"), "neg": float("-inf")})
    metrics = mlops.get_run(run.id).metrics
    assert math.isnan(metrics["nan"]) and metrics["pos"] == math.inf and metrics["neg"] == -math.inf
    frame = mlops.search_runs("metrics.pos > 1e308")
    assert list(frame["run_id"]) == [run.id]


def test_exception_marks_run_failed_keeps_logged_values_and_reraises(store):
    with pytest.raises(ZeroDivisionError):
        with mlops.start_run() as run:
            mlops.log_metric("before", 1.0)
            1 / 0
    got = mlops.get_run(run.id)
    assert got.status == "failed"
    assert got.error.startswith("ZeroDivisionError: division by zero")
    assert got.metrics == {"before": 1.0}


def test_keyboard_interrupt_marks_run_interrupted(store):
    with pytest.raises(KeyboardInterrupt):
        with mlops.start_run() as run:
            raise KeyboardInterrupt
    assert mlops.get_run(run.id).status == "interrupted"


def test_nested_run_becomes_child_of_active_run(store):
    with mlops.start_run(kind="pipeline") as parent:
        with mlops.start_run(kind="step") as child:
            pass
    assert mlops.get_run(child.id).parent_id == parent.id


def test_logging_outside_a_run_starts_one_that_ends_with_end_run(store, capsys):
    mlops.log_metric("x", 1.0)
    run = mlops.active_run()
    assert "logging into a new run" in capsys.readouterr().err
    mlops.end_run()
    assert mlops.active_run() is None
    got = mlops.get_run(run.id)
    assert got.status == "finished" and got.metrics == {"x": 1.0}
    with pytest.raises(NoActiveRunError, match="no active run"):
        mlops.end_run()


@pytest.mark.parametrize("key, value, message", [
    (3, 1.0, "param key must be a string, got int 3"),
    ("", 1.0, "param key '' is not valid"),
    ("f", object(), "cannot be stored"),
    ("f", {"a": {1, 2}}, "cannot be stored"),
])
def test_bad_param_is_refused_and_nothing_is_written(store, key, value, message):
    with pytest.raises(InvalidInputError, match=message):
        mlops.start_run(params={key: value})
    assert count(store, "runs") == 0


def test_changing_a_logged_param_is_refused(store):
    with mlops.start_run() as run:
        mlops.log_param("C", 1.0)
        mlops.log_param("C", 1.0)  # same value again is fine
        with pytest.raises(InvalidInputError, match="params are fixed once logged"):
            mlops.log_param("C", 2.0)
    assert mlops.get_run(run.id).params == {"C": 1.0}


@pytest.mark.parametrize("value", ["0.5", None, [1.0], True])
def test_non_numeric_metric_is_refused(store, value):
    with mlops.start_run():
        with pytest.raises(InvalidInputError, match="must be a real number"):
            mlops.log_metric("m", value)


def test_numpy_values_are_accepted(store):
    import numpy as np

    with mlops.start_run(params={"n": np.int64(3), "lr": np.float32(0.5)}) as run:
        mlops.log_metric("m", np.float64(0.25), step=np.int64(2))
    got = mlops.get_run(run.id)
    assert got.params == {"n": 3, "lr": 0.5} and got.metrics == {"m": 0.25}


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b", "", "a\\b"])
def test_bad_artifact_names_are_refused(store, name):
    with mlops.start_run() as run:
        with pytest.raises(InvalidInputError):
            mlops.log_artifact(b"data", name)
    assert mlops.get_run(run.id).artifacts == {}
    assert not list((store.artifacts_dir).glob("??/*"))


def test_artifacts_are_content_addressed_and_deduplicated(store, tmp_path):
    source = tmp_path / "report.txt"
    source.write_text("hello")
    with mlops.start_run() as run:
        sha = mlops.log_artifact(source)
        assert mlops.log_artifact(b"hello", "copy/report.txt") == sha
    assert set(mlops.get_run(run.id).artifacts) == {"report.txt", "copy/report.txt"}
    assert (store.artifacts_dir / sha[:2] / sha[2:]).read_bytes() == b"hello"
    assert list(store.artifacts_dir.glob("??/*")) == [store.artifacts_dir / sha[:2] / sha[2:]]


def test_missing_artifact_file_is_a_clear_error(store, tmp_path):
    with mlops.start_run():
        with pytest.raises(NotFoundError, match="does not exist"):
            mlops.log_artifact(tmp_path / "nope.csv")


def test_dataset_fingerprint_depends_on_content_only(store):
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})
    with mlops.start_run() as run:
        first = mlops.log_dataset(df, "table")
        same = mlops.log_dataset(df.copy(), "table", role="test")
        changed = mlops.log_dataset(df.assign(a=[1, 2, 4]), "table", role="eval")
    assert first["fingerprint"] == same["fingerprint"] != changed["fingerprint"]
    assert first["id"] == same["id"]
    stored = store.query_one("SELECT n_rows, n_cols, schema, profile FROM datasets WHERE id = ?", (first["id"],))
    assert stored[:2] == (3, 2)
    assert '"nullable": true' in stored[2] and '"missing": 1' in stored[3]
    roles = store.query("SELECT role FROM run_datasets WHERE run_id = ? ORDER BY role", (run.id,))
    assert roles == [("eval",), ("test",), ("train",)]


def test_unknown_run_is_named_in_the_error(store):
    with pytest.raises(NotFoundError, match="no run with id, id prefix or name 'nope'"):
        mlops.get_run("nope")


def test_run_found_by_prefix_and_by_name(store):
    with mlops.start_run(name="findme") as run:
        pass
    assert mlops.get_run(run.id[:6]).id == run.id
    assert mlops.get_run("findme").id == run.id


def test_git_commit_and_dirty_flag_are_recorded(store, tmp_path, monkeypatch):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f.txt").write_text("1")
    subprocess.run(git + ["-C", str(repo), "add", "f.txt"], check=True)
    subprocess.run(git + ["-C", str(repo), "commit", "-qm", "one"], check=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (repo / "f.txt").write_text("2")
    monkeypatch.chdir(repo)
    with mlops.start_run() as run:
        pass
    got = mlops.get_run(run.id)
    assert got.git_commit == head and got.git_dirty is True


def test_run_from_another_host_is_interrupted_only_when_its_heartbeat_is_stale(store):
    import time

    from mlops_nb.registry import runs as run_store

    experiment = run_store.ensure_experiment(store, "remote")
    now = time.time()
    with store.transaction() as conn:
        for run_id, heartbeat in (("a" * 32, now - 10), ("b" * 32, now - 3600)):
            conn.execute("INSERT INTO runs (id, experiment_id, name, kind, status, start_time, host, pid, heartbeat) "
                         "VALUES (?, ?, ?, 'interactive', 'running', ?, 'elsewhere', 1, ?)",
                         (run_id, experiment, run_id[:1], now - 7200, heartbeat))
    assert mlops.get_run("a" * 32).status == "running"
    assert mlops.get_run("b" * 32).status == "interrupted"
