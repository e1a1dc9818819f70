"""The registry's schema, as numbered migrations applied in order.

Each migration is a name and a list of statements; the store runs each one in its
own transaction and records it in ``_migrations`` and ``PRAGMA user_version``.
Never edit a migration that has shipped: add the next one.

Conventions: times are UNIX seconds (REAL); a metric value of NULL is NaN (SQLite
cannot store NaN); JSON columns hold ``json.dumps`` text. A statement that starts with
:data:`POSTGRESQL_ONLY` is run by PostgreSQL alone (see ``dialect.py``).
"""

from __future__ import annotations

# 'mlop' in ASCII: marks the file as an mlops-nb registry (PRAGMA application_id).
APPLICATION_ID = 0x6D6C6F70

POSTGRESQL_ONLY = "-- postgresql only\n"

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("initial schema", [
        """CREATE TABLE experiments (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            description TEXT)""",
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id),
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            parent_id TEXT,
            status TEXT NOT NULL,
            start_time REAL NOT NULL,
            end_time REAL,
            error TEXT,
            git_commit TEXT,
            git_dirty INTEGER,
            env TEXT,
            source TEXT,
            host TEXT,
            pid INTEGER,
            pid_start TEXT,
            heartbeat REAL)""",
        "CREATE INDEX runs_experiment_start ON runs(experiment_id, start_time)",
        "CREATE INDEX runs_start ON runs(start_time)",
        "CREATE INDEX runs_running ON runs(status) WHERE status = 'running'",
        "CREATE INDEX runs_parent ON runs(parent_id) WHERE parent_id IS NOT NULL",
        """CREATE TABLE params (
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            num REAL,
            json TEXT,
            PRIMARY KEY (run_id, key)) WITHOUT ROWID""",
        "CREATE INDEX params_key_value ON params(key, value)",
        "CREATE INDEX params_key_num ON params(key, num) WHERE num IS NOT NULL",
        """CREATE TABLE tags (
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_id, key)) WITHOUT ROWID""",
        "CREATE INDEX tags_key_value ON tags(key, value)",
        """CREATE TABLE metrics (
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            step INTEGER NOT NULL,
            value REAL,
            timestamp REAL NOT NULL)""",
        "CREATE INDEX metrics_run_key_step ON metrics(run_id, key, step)",
        """CREATE TABLE latest_metrics (
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            value REAL,
            step INTEGER NOT NULL,
            timestamp REAL NOT NULL,
            PRIMARY KEY (run_id, key)) WITHOUT ROWID""",
        "CREATE INDEX latest_metrics_key_value ON latest_metrics(key, value)",
        """CREATE TABLE artifacts (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, name)) WITHOUT ROWID""",
        """CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            n_rows INTEGER,
            n_cols INTEGER,
            schema TEXT,
            profile TEXT,
            created_at REAL NOT NULL,
            UNIQUE (name, fingerprint))""",
        """CREATE TABLE run_datasets (
            run_id TEXT NOT NULL,
            dataset_id INTEGER NOT NULL,
            role TEXT NOT NULL,
            PRIMARY KEY (run_id, dataset_id, role)) WITHOUT ROWID""",
        "CREATE INDEX run_datasets_dataset ON run_datasets(dataset_id)",
        """CREATE TABLE logged_models (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            flavor TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            signature TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, name)) WITHOUT ROWID""",
        """CREATE TABLE models (
            name TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            description TEXT)""",
        """CREATE TABLE model_versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            run_id TEXT NOT NULL,
            source TEXT NOT NULL,
            flavor TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            signature TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (name, version)) WITHOUT ROWID""",
        "CREATE INDEX model_versions_run ON model_versions(run_id)",
        """CREATE TABLE aliases (
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            version INTEGER NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (name, alias)) WITHOUT ROWID""",
        """CREATE TABLE alias_history (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            action TEXT NOT NULL,
            version INTEGER,
            previous INTEGER,
            at REAL NOT NULL,
            reason TEXT)""",
        "CREATE INDEX alias_history_name_alias ON alias_history(name, alias, id)",
    ]),
    ("pipelines: step runs, step outputs, cache keys, file fingerprints", [
        "ALTER TABLE runs ADD COLUMN pipeline TEXT",
        "ALTER TABLE runs ADD COLUMN step TEXT",
        "ALTER TABLE runs ADD COLUMN cache_key TEXT",
        "ALTER TABLE runs ADD COLUMN cached_from TEXT",
        "CREATE INDEX runs_step_cache ON runs(pipeline, step, cache_key) WHERE cache_key IS NOT NULL",
        """CREATE TABLE outputs (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT,
            sha256 TEXT,
            path TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, name)) WITHOUT ROWID""",
        """CREATE TABLE file_fingerprints (
            path TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL) WITHOUT ROWID""",
    ]),
    ("model gate decisions; reference profiles of datasets", [
        "ALTER TABLE datasets ADD COLUMN reference TEXT",
        """CREATE TABLE gate_decisions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            baseline_version INTEGER,
            alias TEXT,
            passed INTEGER NOT NULL,
            results TEXT NOT NULL,
            card TEXT,
            override_reason TEXT,
            created_at REAL NOT NULL)""",
        "CREATE INDEX gate_decisions_version ON gate_decisions(name, version, id)",
    ]),
    ("triggers: their state and their events", [
        """CREATE TABLE trigger_state (
            pipeline TEXT NOT NULL,
            trigger TEXT NOT NULL,
            state TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (pipeline, trigger)) WITHOUT ROWID""",
        """CREATE TABLE trigger_events (
            id INTEGER PRIMARY KEY,
            pipeline TEXT NOT NULL,
            trigger TEXT NOT NULL,
            kind TEXT NOT NULL,
            fired_at REAL NOT NULL,
            reason TEXT NOT NULL,
            evidence TEXT,
            status TEXT NOT NULL,
            run_id TEXT)""",
        "CREATE INDEX trigger_events_pipeline ON trigger_events(pipeline, status, id)",
    ]),
    ("trigger events retried after their run was interrupted", [
        "ALTER TABLE trigger_events ADD COLUMN retry_of INTEGER",
        "CREATE INDEX trigger_events_retry ON trigger_events(retry_of)",
    ]),
    ("gate decisions say where they came from: a pipeline's gate step, or an exploratory evaluation", [
        "ALTER TABLE gate_decisions ADD COLUMN source TEXT NOT NULL DEFAULT 'pipeline'",
    ]),
    ("feedback: the true labels of logged predictions, as they arrive (all kept, the last counts)", [
        """CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            model TEXT NOT NULL,
            prediction_id TEXT NOT NULL,
            label TEXT NOT NULL,
            received_at REAL NOT NULL)""",
        "CREATE INDEX feedback_prediction ON feedback(model, prediction_id, id)",
    ]),
    ("artifacts say what they hold: a file, or a figure, table, image, text or dict to preview", [
        "ALTER TABLE artifacts ADD COLUMN kind TEXT NOT NULL DEFAULT 'file'",
    ]),
    ("runs and experiments deleted (hidden, restorable) until the garbage is collected", [
        "ALTER TABLE runs ADD COLUMN deleted_at REAL",
        "ALTER TABLE experiments ADD COLUMN deleted_at REAL",
        "CREATE INDEX runs_deleted ON runs(deleted_at) WHERE deleted_at IS NOT NULL",
    ]),
    ("who did what: the user and host behind each run, alias move, gate decision and trigger event", [
        "ALTER TABLE runs ADD COLUMN user_name TEXT",
        "CREATE INDEX runs_user ON runs(user_name, start_time)",
        "ALTER TABLE alias_history ADD COLUMN user_name TEXT",
        "ALTER TABLE alias_history ADD COLUMN host TEXT",
        "ALTER TABLE gate_decisions ADD COLUMN user_name TEXT",
        "ALTER TABLE gate_decisions ADD COLUMN host TEXT",
        "ALTER TABLE gate_decisions ADD COLUMN override_by TEXT",
        "ALTER TABLE trigger_events ADD COLUMN user_name TEXT",
        "ALTER TABLE trigger_events ADD COLUMN host TEXT",
    ]),
    # SQLite's WITHOUT ROWID tables are their primary key's index already.
    ("a run's params, tags and latest metrics are read from their primary key's index alone", [
        POSTGRESQL_ONLY + "ALTER TABLE params DROP CONSTRAINT params_pkey, "
                          "ADD PRIMARY KEY (run_id, key) INCLUDE (value, json)",
        POSTGRESQL_ONLY + "ALTER TABLE tags DROP CONSTRAINT tags_pkey, ADD PRIMARY KEY (run_id, key) INCLUDE (value)",
        POSTGRESQL_ONLY + "ALTER TABLE latest_metrics DROP CONSTRAINT latest_metrics_pkey, "
                          "ADD PRIMARY KEY (run_id, key) INCLUDE (value)",
    ]),
    ("notifications: each event a pipeline sent to a webhook or a command, with its delivery attempts", [
        """CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            pipeline TEXT NOT NULL,
            event TEXT NOT NULL,
            run_id TEXT,
            target TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts TEXT NOT NULL,
            created_at REAL NOT NULL)""",
        "CREATE INDEX notifications_pipeline ON notifications(pipeline, id)",
    ]),
    ("feature views: each write a version (a Parquet file under the registry), and the latest values per entity", [
        """CREATE TABLE feature_versions (
            view TEXT NOT NULL,
            version INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            dataset_id INTEGER,
            n_rows INTEGER NOT NULL,
            min_time REAL,
            max_time REAL,
            run_id TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (view, version))""",
        """CREATE TABLE online_features (
            view TEXT NOT NULL,
            entity TEXT NOT NULL,
            event_time REAL NOT NULL,
            version INTEGER NOT NULL,
            row TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (view, entity))""",
    ]),
]

LATEST_VERSION = len(MIGRATIONS)
