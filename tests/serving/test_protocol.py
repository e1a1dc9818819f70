"""Requests read and checked without a server: the frame a model gets, and what is refused."""

import math

import numpy as np
import pytest

from mlops_nb.serving.protocol import RequestError, Signature, check, read_json, read_mlflow

SIGNATURE = Signature(["age", "charges", "plan"], {"age": "int64", "charges": "float64", "plan": "object"})


def frame_of(body: bytes):
    return check(read_mlflow(read_json(body), SIGNATURE), SIGNATURE)


def test_columns_get_the_signatures_dtypes_and_order():
    frame = frame_of(b'{"dataframe_records": [{"plan": "pro", "charges": 50, "age": 41}, '
                     b'{"plan": null, "charges": 20.5, "age": 30}]}')
    assert list(frame.columns) == ["age", "charges", "plan"]
    assert frame.dtypes.tolist() == [np.dtype("int64"), np.dtype("float64"), np.dtype(object)]  # not pandas' str
    assert frame["age"].tolist() == [41, 30] and frame["charges"].tolist() == [50.0, 20.5]
    assert frame["plan"].tolist() == ["pro", None]


def test_a_missing_number_is_nan_for_the_model():
    frame = frame_of(b'{"dataframe_split": {"columns": ["age", "charges", "plan"], "data": [[null, 1.5, "pro"]]}}')
    assert frame["age"].dtype == np.float64 and math.isnan(frame["age"].iloc[0])


def test_nan_and_infinity_literals_are_read_and_infinity_is_refused_by_column():
    assert math.isnan(read_json(b'{"x": NaN}')["x"])  # not strict JSON, but what Python clients send
    with pytest.raises(RequestError) as refused:
        frame_of(b'{"dataframe_records": [{"age": 41, "charges": Infinity, "plan": "pro"}]}')
    assert refused.value.status == 422
    assert refused.value.fields == [{"field": "charges", "problem": "expected a number (float64), got inf"}]


def test_every_wrong_field_is_named_at_once():
    with pytest.raises(RequestError) as refused:
        frame_of(b'{"dataframe_records": [{"age": true, "charges": "50", "plan": 3, "extra": 1}]}')
    assert [f["field"] for f in refused.value.fields] == ["extra", "age", "charges", "plan"]
    assert "4 field(s) do not match" in str(refused.value)


@pytest.mark.parametrize("body, message", [(b"[" * 100_000, "nests too deeply"), (b"{not json", "is not JSON")])
def test_a_body_that_is_not_json_is_a_400(body, message):
    with pytest.raises(RequestError, match=message) as refused:
        read_json(body)
    assert refused.value.status == 400
