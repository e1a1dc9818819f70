import numpy as np
import pandas as pd
import pytest

import mlops_nb as mlops
from mlops_nb.errors import InvalidInputError
from mlops_nb.validation.schema import load_schema
from mlops_nb.validation.validate import ValidationError


@pytest.fixture
def train():
    return pd.DataFrame({"age": [20, 35, 50, 65], "plan": ["basic", "pro", "basic", "team"],
                         "income": [1.5, np.nan, 3.0, 4.5], "active": [True, False, True, True]})


def test_schema_records_kinds_ranges_domains_and_missing_rates(train, tmp_path):
    schema = mlops.infer_schema(train)
    age, plan, income = schema.columns["age"], schema.columns["plan"], schema.columns["income"]
    assert (age.kind, age.min, age.max, age.nullable) == ("numeric", 20.0, 65.0, False)
    assert plan.kind == "categorical" and plan.categories == ["basic", "pro", "team"]
    assert income.nullable and income.missing_rate == 0.25
    assert schema.columns["active"].kind == "boolean"
    again = load_schema(schema.save(tmp_path / "schema.json"))
    assert again.to_dict() == schema.to_dict()
    assert '"kind": "categorical"' in (tmp_path / "schema.json").read_text()  # readable JSON


def test_high_cardinality_text_is_not_enumerated():
    df = pd.DataFrame({"id": [f"user-{i}" for i in range(100)]})
    column = mlops.infer_schema(df, max_categories=10).columns["id"]
    assert column.kind == "text" and column.categories is None


def test_clean_data_passes(train):
    report = mlops.validate(train.iloc[[0, 2, 3]], mlops.infer_schema(train))
    assert report.ok and report.anomalies.empty
    assert report.raise_if_failed() is report


def test_each_anomaly_kind_is_reported_with_counts_and_examples(train):
    schema = mlops.infer_schema(train)
    bad = pd.DataFrame({"age": [10, 40, np.inf, 99], "plan": ["basic", "gold", "gold", None],
                        "extra": [1, 2, 3, 4], "active": ["yes", "no", "yes", "no"]})
    report = mlops.validate(bad, schema)
    found = {(r.column, r.kind): r for r in report.anomalies.itertuples()}
    assert found[("income", "missing_column")].severity == "error"
    assert found[("extra", "unexpected_column")].severity == "warning"
    assert found[("active", "type_mismatch")].detail.startswith("expected boolean")
    assert found[("age", "infinite_values")].count == 1
    assert found[("age", "out_of_range")].count == 2 and found[("age", "out_of_range")].examples == [10.0, 99.0]
    assert found[("plan", "unseen_category")].count == 2 and found[("plan", "unseen_category")].examples == ["gold"]
    assert found[("plan", "missing_values")].count == 1
    assert not report.ok
    with pytest.raises(ValidationError, match=r"data failed validation with \d+ error\(s\): .*income: missing_column"):
        report.raise_if_failed()
    assert "FAILED" in str(report) and "<table>" in report._repr_html_()


def test_severity_can_be_raised(train):
    schema = mlops.infer_schema(train)
    report = mlops.validate(pd.DataFrame({**train.to_dict("list"), "age": [1, 2, 3, 4]}), schema,
                            severity={"out_of_range": "error"})
    assert not report.ok


def test_a_schema_for_another_dataset_is_refused(train):
    schema = mlops.infer_schema(pd.DataFrame({"sku": ["a"], "price": [1.0]}), name="products")
    with pytest.raises(InvalidInputError, match="shares no column with the schema 'products'"):
        mlops.validate(train, schema)


def test_empty_frame_is_an_error_anomaly(train):
    report = mlops.validate(train.iloc[:0], mlops.infer_schema(train))
    assert not report.ok and "empty_frame" in set(report.anomalies["kind"])


def test_not_a_schema_is_refused():
    with pytest.raises(InvalidInputError, match="not an mlops-nb schema"):
        load_schema({"columns": "nope"})
