"""Feature view sources: files and a team's database (SQLite and a real PostgreSQL server, through SQLAlchemy)
materialized into the view, only the new rows each time."""

import textwrap

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlops_nb as mlops
from mlops_nb.cli import cli
from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.registry import features as feature_store
from mlops_nb.registry.store import open_store

pytest.importorskip("duckdb", reason="feature tables need DuckDB: pip install -e '.[features]'")
sqlalchemy = pytest.importorskip("sqlalchemy", reason="sql: sources need SQLAlchemy: pip install -e '.[features]'")

VIEW = """\
customer_stats:
  entity: customer_id
  timestamp: event_time
  features:
    charges: float
    plan: str
  source: {source}
"""


def stats(day: int, n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed + day)
    return pd.DataFrame({"customer_id": np.arange(n), "event_time": pd.Timestamp("2026-01-01") + pd.Timedelta(days=day),
                         "charges": rng.uniform(10, 100, n).round(2), "plan": rng.choice(["basic", "pro"], n)})


def declare(tmp_path, source: str) -> None:
    (tmp_path / "features.yaml").write_text(VIEW.format(source=source))


def test_files_are_materialized_once_each_row_and_all_again_on_request(tmp_path, home):
    declare(tmp_path, '{files: "data/stats/*.csv"}')
    (tmp_path / "data" / "stats").mkdir(parents=True)
    pd.concat([stats(0), stats(1)]).to_csv(tmp_path / "data" / "stats" / "a.csv", index=False)
    first = mlops.materialize("customer_stats")
    assert (first["version"], first["rows"]) == (1, 100) and first["source"] == "1 file(s) matching data/stats/*.csv"
    stats(2).to_csv(tmp_path / "data" / "stats" / "b.csv", index=False)
    second = CliRunner().invoke(cli, ["features", "materialize", "customer_stats"])
    assert second.exit_code == 0 and "wrote version 2, 50 rows from 2 file(s)" in second.output, second.output
    again = mlops.materialize("customer_stats")
    assert again["version"] is None and again["note"] == "the view holds all 150 rows already"
    late = stats(1, n=60).iloc[50:]          # ten customers of day 1 arrive late, in a file of their own
    late.to_csv(tmp_path / "data" / "stats" / "c.csv", index=False)
    assert mlops.materialize("customer_stats")["rows"] == 10
    online = mlops.online_features([7], ["customer_stats:charges"])
    assert online["charges"].tolist() == [stats(2).loc[7, "charges"]]
    assert mlops.materialize("customer_stats", full=True)["rows"] == 160
    assert [v["n_rows"] for v in feature_store.versions(open_store(home), "customer_stats")] == [100, 50, 10, 160]


def sql_source_roundtrip(tmp_path, url: str, table_url: str):
    """Rows inserted into a real database table, read by a query that asks only for rows after :since."""
    engine = sqlalchemy.create_engine(table_url)
    stats(0).to_sql("customer_stats", engine, index=False, if_exists="replace")
    declare(tmp_path, f'{{sql: "SELECT * FROM customer_stats WHERE event_time > :since", url: {url}}}')
    first = mlops.materialize("customer_stats")
    assert (first["version"], first["rows"]) == (1, 50), first
    stats(5).to_sql("customer_stats", engine, index=False, if_exists="append")
    second = mlops.materialize("customer_stats")
    assert (second["version"], second["rows"]) == (2, 50)
    engine.dispose()
    frame = mlops.training_frame(pd.DataFrame({"customer_id": [3, 3], "event_time": pd.to_datetime(
        ["2026-01-03", "2026-01-07"])}), ["customer_stats:charges"])
    assert frame["charges"].tolist() == [stats(0).loc[3, "charges"], stats(5).loc[3, "charges"]]
    return second


def test_a_sql_source_on_sqlite_reads_only_the_new_rows(tmp_path, home, monkeypatch):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    monkeypatch.setenv("CRM_URL", url)
    second = sql_source_roundtrip(tmp_path, "$CRM_URL", url)
    assert second["source"] == f"sql on {url}"


def test_a_sql_source_on_a_postgresql_server(tmp_path, home, pg_url):
    url = pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
    sql_source_roundtrip(tmp_path, f'"{url}"', url)


def test_sources_that_cannot_be_read_are_one_line_errors(tmp_path, home, monkeypatch):
    declare(tmp_path, "{step: extract}")
    with pytest.raises(InvalidInputError, match="is written by step 'extract': run its pipeline"):
        mlops.materialize("customer_stats")
    declare(tmp_path, '{files: "data/none/*.csv"}')
    with pytest.raises(NotFoundError, match="no file matches its source 'data/none/\\*.csv'"):
        mlops.materialize("customer_stats")
    monkeypatch.delenv("NO_SUCH_URL", raising=False)
    declare(tmp_path, '{sql: "SELECT 1", url: $NO_SUCH_URL}')
    with pytest.raises(InvalidInputError, match=r"needs url: .*; \$NO_SUCH_URL is not set"):
        mlops.materialize("customer_stats")
    declare(tmp_path, f'{{sql: "SELECT * FROM missing_table", url: "sqlite:///{tmp_path / "x.db"}"}}')
    with pytest.raises(InvalidInputError, match="its sql source failed: no such table: missing_table"):
        mlops.materialize("customer_stats")
    declare(tmp_path, '{sql: "SELECT 1", host: db}')
    result = CliRunner().invoke(cli, ["features", "materialize", "customer_stats"])
    assert result.exit_code != 0 and "unknown key 'host'" in result.output and "Traceback" not in result.output
    (tmp_path / "features.yaml").write_text(textwrap.dedent(VIEW.format(source='{files: "a.csv"}')))
    pd.DataFrame({"customer_id": [1], "event_time": ["2026-01-01"], "charges": ["cheap"], "plan": ["basic"]}).to_csv(
        tmp_path / "a.csv", index=False)
    with pytest.raises(InvalidInputError, match="feature 'charges': declared float, but the column is"):
        mlops.materialize("customer_stats")
    assert feature_store.versions(open_store(home), "customer_stats") == []   # nothing stored
