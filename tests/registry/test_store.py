import grp
import sqlite3
import stat
import subprocess

import pytest

from mlops_nb.errors import RegistryError
from mlops_nb.registry.schema import APPLICATION_ID, LATEST_VERSION
from mlops_nb.registry.store import Store
from tests.users import as_user


def test_new_registry_is_wal_with_recorded_schema(tmp_path):
    store = Store(tmp_path / ".mlops")
    assert store.query_one("PRAGMA journal_mode")[0] == "wal"
    assert store.query_one("PRAGMA user_version")[0] == LATEST_VERSION
    assert store.query_one("PRAGMA application_id")[0] == APPLICATION_ID
    assert [row[0] for row in store.query("SELECT version FROM _migrations")] == list(range(1, LATEST_VERSION + 1))
    assert (tmp_path / ".mlops" / ".gitignore").read_text().strip().endswith("*")


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path):
    store = Store(tmp_path / ".mlops")
    with store.transaction() as conn:
        conn.execute("INSERT INTO experiments (name, created_at) VALUES ('kept', 0)")
    store.close()
    again = Store(tmp_path / ".mlops")
    assert again.query("SELECT name FROM experiments") == [("kept",)]
    assert again.query_one("SELECT COUNT(*) FROM _migrations")[0] == LATEST_VERSION


def test_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    home = tmp_path / ".mlops"
    home.mkdir()
    (home / "registry.db").write_bytes(b"this is a text file, not a database" * 100)
    with pytest.raises(RegistryError, match="not an mlops-nb registry"):
        Store(home)
    assert (home / "registry.db").read_bytes().startswith(b"this is a text file")


def test_other_sqlite_database_is_refused_and_left_alone(tmp_path):
    home = tmp_path / ".mlops"
    home.mkdir()
    conn = sqlite3.connect(home / "registry.db")
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(RegistryError, match="SQLite file but not an mlops-nb registry"):
        Store(home)
    conn = sqlite3.connect(home / "registry.db")
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("invoices",)]


def test_newer_schema_version_is_refused_with_upgrade_hint(tmp_path):
    Store(tmp_path / ".mlops").close()
    conn = sqlite3.connect(tmp_path / ".mlops" / "registry.db")
    conn.execute(f"PRAGMA user_version={LATEST_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(RegistryError, match=r"newer mlops-nb .*pip install -U mlops-nb"):
        Store(tmp_path / ".mlops")


def test_home_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RegistryError, match="is a file, not a registry folder"):
        Store(tmp_path / "file")


def test_failed_transaction_rolls_back(tmp_path):
    store = Store(tmp_path / ".mlops")
    with pytest.raises(ZeroDivisionError):
        with store.transaction() as conn:
            conn.execute("INSERT INTO experiments (name, created_at) VALUES ('gone', 0)")
            1 / 0
    assert store.query("SELECT name FROM experiments") == []


def test_older_registry_is_migrated_forward_keeping_its_data(tmp_path, monkeypatch):
    from mlops_nb.registry import store as store_module

    monkeypatch.setattr(store_module, "LATEST_VERSION", 1)
    old = Store(tmp_path / ".mlops")
    with old.transaction() as conn:
        conn.execute("INSERT INTO experiments (name, created_at) VALUES ('old', 0)")
    old.close()
    assert "pipeline" not in [c[1] for c in sqlite3.connect(tmp_path / ".mlops" / "registry.db").execute(
        "PRAGMA table_info(runs)")]
    monkeypatch.undo()
    new = Store(tmp_path / ".mlops")
    assert new.query_one("PRAGMA user_version")[0] == LATEST_VERSION
    assert new.query("SELECT name FROM experiments") == [("old",)]
    assert "pipeline" in [c[1] for c in new.query("PRAGMA table_info(runs)")]
    assert new.integrity_check() == "ok"


def test_a_new_registry_is_its_owners_alone(other_user, shared_tmp):
    project = shared_tmp / "project"
    project.mkdir(mode=0o755)
    project.chmod(0o755)  # the project itself is open; the registry inside must not be
    store = Store(project / ".mlops")
    store.conn.execute("CREATE TABLE IF NOT EXISTS probe (x)")
    assert stat.S_IMODE(store.home.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.db_path.stat().st_mode) == 0o600
    for command in (["cat", str(store.db_path)], ["ls", str(store.home)]):
        seen = as_user(other_user, *command)
        assert seen.returncode != 0 and "Permission denied" in seen.stderr, (command, seen)


def test_a_registry_for_a_group_is_the_groups(other_user, shared_tmp, monkeypatch):
    group = "mlopsnb-team"
    subprocess.run(["groupadd", "-f", group], check=True)
    subprocess.run(["usermod", "-aG", group, other_user], check=True)
    try:
        monkeypatch.setenv("MLOPS_NB_GROUP", group)
        store = Store(shared_tmp / "team" / ".mlops")
        assert stat.S_IMODE(store.home.stat().st_mode) == 0o2770
        assert stat.S_IMODE(store.db_path.stat().st_mode) == 0o660
        assert grp.getgrgid(store.db_path.stat().st_gid).gr_name == group
        assert as_user(other_user, "cat", str(store.db_path)).returncode == 0  # a member reads it
        monkeypatch.setenv("MLOPS_NB_GROUP", "no-such-group-here")
        with pytest.raises(RegistryError, match="MLOPS_NB_GROUP=no-such-group-here: no such group"):
            Store(shared_tmp / "other" / ".mlops")
    finally:
        subprocess.run(["gpasswd", "-d", other_user, group], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)


def test_a_full_disk_is_a_one_line_error_and_loses_nothing(tmp_path):
    import mlops_nb as mlops

    mlops.set_home(tmp_path / ".mlops")
    try:
        with mlops.start_run(experiment="kept") as run:
            mlops.log_metric("m", 1.0)
        store = Store(tmp_path / ".mlops")
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        with pytest.raises(RegistryError, match=r"cannot write to the registry .*: the disk is full \(database or "
                                                r"disk is full\); free some space") as caught:
            with store.transaction() as conn:
                conn.executemany("INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                                 [(run.id, f"k{i}", "x" * 1000) for i in range(2000)])
        assert "\n" not in str(caught.value)
        assert not store.conn.in_transaction and store.integrity_check() == "ok"
        assert mlops.get_run(run.id).metrics == {"m": 1.0}
    finally:
        mlops.set_home(None)


def test_a_read_only_registry_is_a_one_line_error(tmp_path):
    store = Store(tmp_path / ".mlops")
    store.conn.execute("PRAGMA query_only = 1")  # what SQLite says when the file is not writable for us
    try:
        with pytest.raises(RegistryError, match="it is read-only for you"):
            with store.transaction() as conn:
                conn.execute("INSERT INTO experiments (name, created_at) VALUES ('x', 0)")
        assert not store.conn.in_transaction
    finally:
        store.conn.execute("PRAGMA query_only = 0")


def test_partial_uploads_of_dead_writers_are_swept_on_open(tmp_path):
    import os

    from mlops_nb.registry.process import hostname

    from tests.waiting import age

    tmp = tmp_path / ".mlops" / "artifacts" / "tmp"
    tmp.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    here = hostname()
    # On a shared artifact root, a pid from another host says nothing here (ours is alive here): age tells.
    files = {"dead-old": tmp / f"blob-{gone.pid}@{here}.a1", "live-old": tmp / f"blob-{os.getpid()}@{here}.b2",
             "dead-new": tmp / f"blob-{gone.pid}@{here}.c3", "unnamed-old": tmp / "blob-d4",
             "elsewhere-old": tmp / f"blob-{os.getpid()}@other-host.example.e5",
             "elsewhere-new": tmp / f"blob-{gone.pid}@other-host.example.f6",
             "before-hosts-dead-old": tmp / f"blob-{gone.pid}-g7",
             "before-hosts-live-old": tmp / f"blob-{os.getpid()}-h8"}
    for path in files.values():
        path.write_bytes(b"x" * 1000)
    age(*(files[k] for k in files if k.endswith("-old")), seconds=2 * 3600)
    Store(tmp_path / ".mlops")
    kept = ("live-old", "dead-new", "elsewhere-new", "before-hosts-live-old")
    assert sorted(p.name for p in tmp.iterdir()) == sorted(files[k].name for k in kept)
