"""Feature views: writing versions, point-in-time training frames (against pandas.merge_asof), online values."""

import textwrap

import numpy as np
import pandas as pd
import pytest

import mlops_nb as mlops
from mlops_nb.errors import InvalidInputError, NotFoundError
from mlops_nb.features.views import FeatureSpecError, parse_views
from mlops_nb.registry import datasets
from mlops_nb.registry import features as feature_store

pytest.importorskip("duckdb", reason="feature tables need DuckDB: pip install -e '.[features]'")

FEATURES = """
customer_stats:
  entity: customer_id
  timestamp: event_time
  ttl: 10d
  features:
    monthly_charges: {dtype: float, description: the bill of the month}
    support_calls: int
    plan: str
"""
DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2026-01-01")


@pytest.fixture
def project(tmp_path, home, monkeypatch):
    (tmp_path / "features.yaml").write_text(textwrap.dedent(FEATURES))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def history(n_customers=40, changes=12, seed=0):
    """Each customer's values change at random times over 100 days."""
    rng = np.random.default_rng(seed)
    rows = []
    for customer in range(n_customers):
        times = START + pd.to_timedelta(np.sort(rng.choice(100 * 24, changes, replace=False)), unit="h")
        for t in times:
            rows.append({"customer_id": customer, "event_time": t, "monthly_charges": round(rng.uniform(10, 120), 2),
                         "support_calls": int(rng.integers(0, 9)), "plan": str(rng.choice(["basic", "pro"]))})
    return pd.DataFrame(rows)


def entity_rows(n=600, n_customers=45, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customer_id": rng.integers(0, n_customers, n),   # some customers never written
                         "event_time": START + pd.to_timedelta(rng.integers(-5 * 24, 115 * 24, n), unit="h"),
                         "label": rng.integers(0, 2, n)})


def test_every_row_gets_the_value_valid_at_its_time_never_a_later_one_and_none_past_the_ttl(project, home):
    values = history()
    first, second = values.iloc[: len(values) // 2], values.iloc[len(values) // 2:].copy()
    # A correction in the second version: the same customer and time, another value; the later version wins.
    fix = first.iloc[[3]].assign(monthly_charges=999.0)
    mlops.write_features("customer_stats", first)
    mlops.write_features("customer_stats", pd.concat([second, fix], ignore_index=True))
    entities = entity_rows()
    frame = mlops.training_frame(entities, ["customer_stats:monthly_charges", "customer_stats:support_calls",
                                            "customer_stats:plan"])
    assert list(frame.columns) == ["customer_id", "event_time", "label", "monthly_charges", "support_calls", "plan"]
    assert len(frame) == len(entities) and (frame["label"].to_numpy() == entities["label"].to_numpy()).all()

    truth = values.set_index(["customer_id", "event_time"])
    truth.loc[(fix.customer_id.iloc[0], fix.event_time.iloc[0]), "monthly_charges"] = 999.0
    truth = truth.reset_index().sort_values("event_time")
    expected = pd.merge_asof(entities.reset_index().sort_values("event_time"), truth, on="event_time",
                             by="customer_id", direction="backward", tolerance=pd.Timedelta(days=10))
    expected = expected.set_index("index").sort_index()
    for column in ("monthly_charges", "support_calls", "plan"):   # row for row
        ours, theirs = frame[column], expected[column]
        assert (ours.isna() == theirs.isna()).all(), column
        kind = float if column != "plan" else str
        assert ours[ours.notna()].map(kind).tolist() == theirs[theirs.notna()].map(kind).tolist(), column
    # Never a later value, and none older than the TTL: checked directly too.
    for row in frame.itertuples():
        seen = truth[(truth.customer_id == row.customer_id) & (truth.event_time <= row.event_time)]
        if seen.empty or row.event_time - seen.event_time.iloc[-1] > pd.Timedelta(days=10):
            assert pd.isna(row.monthly_charges)
        else:
            assert row.monthly_charges == seen.monthly_charges.iloc[-1]
    assert frame["monthly_charges"].notna().sum() > 300 and frame["monthly_charges"].isna().sum() > 20
    assert (frame["monthly_charges"] == 999.0).sum() == (expected["monthly_charges"] == 999.0).sum()


@pytest.mark.backends  # the SQLite file and PostgreSQL
def test_online_features_are_the_latest_values_per_entity(project, home):
    values = history()
    mlops.write_features("customer_stats", values)
    online = mlops.online_features([0, 1, 999], ["customer_stats:monthly_charges", "customer_stats:plan"])
    latest = values.sort_values("event_time").groupby("customer_id").last()
    assert online["customer_id"].tolist() == [0, 1, 999]
    assert online["monthly_charges"].tolist()[:2] == latest.loc[[0, 1], "monthly_charges"].tolist()
    assert online["plan"].tolist()[:2] == latest.loc[[0, 1], "plan"].tolist()
    assert pd.isna(online["monthly_charges"].iloc[2])                     # never written
    # An older write afterwards does not replace a newer online value.
    old = values[values.customer_id == 0].iloc[[0]].assign(event_time=START - 30 * DAY, monthly_charges=1.0)
    mlops.write_features("customer_stats", old)
    assert mlops.online_features([0], ["customer_stats:monthly_charges"])["monthly_charges"][0] == \
        latest.loc[0, "monthly_charges"]


def test_a_training_frame_in_a_run_is_its_dataset_with_lineage_to_the_versions(project, home):
    with mlops.start_run(name="extract") as writer:
        mlops.write_features("customer_stats", history())
    with mlops.start_run(name="train") as run:
        frame = mlops.training_frame(entity_rows(), ["customer_stats:*"])
    assert {"monthly_charges", "support_calls", "plan"} <= set(frame.columns)
    store = mlops.get_store()
    used = {(d["name"], d["role"]) for d in datasets.run_datasets(store, run.id)}
    assert ("training_frame", "train") in used and ("features/customer_stats", "input") in used
    written = datasets.run_datasets(store, writer.id)
    assert [(d["name"], d["role"]) for d in written] == [("features/customer_stats", "output")]
    assert written[0]["n_rows"] == 480 and written[0]["schema"] is not None


@pytest.mark.backends  # the SQLite file and PostgreSQL
def test_bad_frames_are_one_line_errors_and_change_nothing(project, home):
    good = history(n_customers=5)
    mlops.write_features("customer_stats", good)
    store = mlops.get_store()
    before = (feature_store.versions(store, "customer_stats"),
              mlops.online_features(list(range(5)), ["customer_stats:monthly_charges"]).to_dict())
    cases = [
        (good.drop(columns="support_calls"), "the frame has no column 'support_calls' (declared an int feature)"),
        (good.assign(support_calls=good.support_calls.astype(str)), "feature 'support_calls': declared int, but the "
                                                                    "column is str"),
        (good.assign(monthly_charges="cheap"), "feature 'monthly_charges': declared float, but the column is str"),
        (pd.concat([good, good.iloc[[0]]]), "1 row repeats an entity and time (customer_id=0 at"),
        (good.assign(event_time="not a time"), "column 'event_time': expected times"),
        (good.assign(customer_id=None), "entity column 'customer_id' has missing keys"),
    ]
    for frame, message in cases:
        with pytest.raises(InvalidInputError) as caught:
            mlops.write_features("customer_stats", frame)
        assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    for refs, message in [(["customer_stats:monthly_charge"], "has no feature 'monthly_charge' (did you mean "
                                                              "'monthly_charges'?)"),
                          (["monthly_charges"], "name it VIEW:FEATURE"),
                          (["cust_stats:plan"], "no feature view 'cust_stats' in features.yaml")]:
        with pytest.raises((InvalidInputError, NotFoundError)) as caught:
            mlops.training_frame(entity_rows(), refs)
        assert message in str(caught.value), str(caught.value)
    with pytest.raises(NotFoundError):
        mlops.write_features("nope", good)
    after = (feature_store.versions(store, "customer_stats"),
             mlops.online_features(list(range(5)), ["customer_stats:monthly_charges"]).to_dict())
    assert after == before


def test_feature_views_are_checked_with_one_line_errors():
    views = parse_views({"v": {"entity": ["a", "b"], "timestamp": "t", "ttl": "2w", "features": {"x": "float"}}}, "f")
    assert views["v"].entities == ("a", "b") and views["v"].ttl == 14 * 86400
    for raw, message in [
        ({"entity": "a", "timestamp": "t", "features": {"x": "decimal"}}, "dtype must be one of int, float, str"),
        ({"timestamp": "t", "features": {"x": "int"}}, "field 'entity': give the entity key column"),
        ({"entity": "a", "timestamp": "t", "features": {"x": "int"}, "ttl": "soon"}, "field 'ttl': a duration"),
        ({"entity": "a", "timestamp": "t", "features": {"a": "int"}}, "it is the entity or timestamp column too"),
        ({"entity": "a", "timestamp": "t", "features": {"x": "int"}, "source": {"step": "s", "sql": "q"}},
         "field 'source': give one of step"),
    ]:
        with pytest.raises(FeatureSpecError) as caught:
            parse_views({"v": raw}, "features.yaml")
        assert message in str(caught.value) and str(caught.value).startswith("features.yaml: feature view 'v'")


def test_features_ls_and_show_give_schema_freshness_writes_with_drift_and_the_models(project, home):
    import json

    from click.testing import CliRunner
    from sklearn.linear_model import LogisticRegression

    from mlops_nb.cli import cli

    values = history(n_customers=30, changes=3)
    mlops.write_features("customer_stats", values)
    labels = entity_rows(n=300, n_customers=30)
    with mlops.start_run() as run:
        frame = mlops.training_frame(labels, ["customer_stats:monthly_charges", "customer_stats:support_calls"])
        frame = frame.dropna()
        X = frame[["monthly_charges", "support_calls"]]
        mlops.log_model(LogisticRegression().fit(X, frame["label"]), "model", X=X)
    version = mlops.register_model(run, "churn")
    mlops.promote("churn", version.version, override="the first model")
    shifted = values.assign(event_time=values.event_time + pd.Timedelta(days=200),
                            monthly_charges=values.monthly_charges + 80)
    mlops.write_features("customer_stats", shifted)

    listed = CliRunner().invoke(cli, ["features", "ls", "--json"])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.output)
    assert (row["name"], row["versions"], row["rows"], row["entities"], row["models"]) == (
        "customer_stats", 2, 2 * len(values), 30, ["churn/1"])
    shown = CliRunner().invoke(cli, ["features", "show", "customer_stats", "--json"])
    found = json.loads(shown.output)
    assert [f["name"] for f in found["features"]] == ["monthly_charges", "support_calls", "plan"]
    assert found["features"][0]["description"] == "the bill of the month" and found["ttl_seconds"] == 10 * 86400
    assert found["reference"] == "churn/1" and [m["aliases"] for m in found["models"]] == [["production"]]
    first, second = found["writes"]
    assert first["drift_share"] == 0.0 and second["drifted"] == ["monthly_charges"], found["writes"]
    kept = sorted(p.name for p in (home / "monitoring" / "features" / "customer_stats").glob("*.json"))
    assert [name.split("-")[0] for name in kept] == ["1", "2"]       # each write's drift is computed once
    again = json.loads(CliRunner().invoke(cli, ["features", "show", "customer_stats", "--json"]).output)
    assert again["writes"] == found["writes"]
    text = CliRunner().invoke(cli, ["features", "show", "customer_stats"]).output
    assert "models trained on it: churn/1 (production)" in text and "ttl 10d" in text
    unknown = CliRunner().invoke(cli, ["features", "show", "customer_stat"])
    assert unknown.exit_code != 0 and "did you mean 'customer_stats'?" in unknown.output
