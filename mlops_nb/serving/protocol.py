"""What a client sends, read as a frame and checked against the model's signature.

MLflow's scoring protocol (``POST /invocations``), so MLflow clients work unchanged, takes one of:

    {"dataframe_split": {"columns": ["age", "plan"], "data": [[41, "pro"]]}}
    {"dataframe_records": [{"age": 41, "plan": "pro"}]}
    {"instances": [{"age": 41, "plan": "pro"}]}       (or rows as lists, in the signature's order)
    {"inputs": {"age": [41], "plan": ["pro"]}}          (or records, or rows as lists)

Our own form (``POST /predict``) is a JSON list of records. Only JSON is read: nothing a
client sends is ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson

FORMS = ("dataframe_split", "dataframe_records", "instances", "inputs")
NUMBER_TYPES = {int, float, type(None)}  # what JSON gives for a number; bool is its own type; None is missing
TEXT_TYPES = {str, type(None)}


class RequestError(Exception):
    """A request that cannot be scored: ``status`` is its HTTP code, ``fields`` what is wrong, by column."""

    def __init__(self, status: int, message: str, fields: list[dict] | None = None):
        super().__init__(message)
        self.status = status
        self.fields = fields or []


@dataclass
class Signature:
    columns: list[str]
    dtypes: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, signature: dict | None) -> "Signature | None":
        inputs = (signature or {}).get("inputs")
        if not inputs:
            return None
        return cls([i["name"] for i in inputs], {i["name"]: i.get("dtype") for i in inputs})

    @cached_property
    def index(self):
        """The columns as a pandas Index, made once: a frame is made several times faster with it than with a list."""
        import pandas as pd

        return pd.Index(self.columns)


@dataclass
class Rows:
    """What a request holds, before it is checked: column names and rows of JSON values (one per column)."""

    columns: list[str]
    rows: list[list]


def read_json(data: bytes) -> Any:
    """The body as JSON: orjson for speed, Python's json for what only it reads (NaN, Infinity)."""
    try:
        return orjson.loads(data or b"null")
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except RecursionError:
        raise RequestError(400, "the body nests too deeply") from None
    except ValueError:
        raise RequestError(400, "the body is not JSON (send Content-Type: application/json)") from None


def read_mlflow(body: Any, signature: Signature | None) -> Rows:
    """The rows an MLflow scoring request stands for."""
    if not isinstance(body, dict):
        raise RequestError(400, f"the body is a JSON object with one of {', '.join(FORMS)}")
    given = [key for key in FORMS if key in body]
    unknown = sorted(set(body) - set(FORMS) - {"params"})
    if len(given) != 1 or unknown:
        raise RequestError(400, f"the body names exactly one of {', '.join(FORMS)}"
                                + (f"; unknown key(s): {', '.join(unknown)}" if unknown else f", got {len(given)}"))
    form, value = given[0], body[given[0]]
    if form == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or \
                not isinstance(value.get("data"), list):
            raise RequestError(400, 'dataframe_split is {"columns": [...], "data": [[...], ...]}')
        return _rows(value["data"], value["columns"])
    if form == "dataframe_records":
        return _records(value, form)
    if form == "inputs" and isinstance(value, dict):
        columns = list(value)
        lists = [v if isinstance(v, list) else [v] for v in value.values()]
        if len({len(v) for v in lists}) > 1:
            raise RequestError(400, "inputs: every column needs the same number of values")
        return _rows([list(row) for row in zip(*lists)], columns)
    if not isinstance(value, list):
        raise RequestError(400, f"{form} is a list of records (or of rows), got {type(value).__name__}")
    if value and all(isinstance(row, list) for row in value):
        if signature is None:
            raise RequestError(400, f"{form} as lists of values needs the model's signature to name the columns; "
                                    "send records instead")
        return _rows(value, signature.columns)
    return _records(value, form)


def read_records(body: Any) -> Rows:
    """Our own form: a JSON list of records (``{"records": [...]}`` works too)."""
    if isinstance(body, dict) and "records" in body:
        body = body["records"]
    return _records(body, "the body")


def check(rows: Rows, signature: Signature | None):
    """The rows as a frame of the signature's columns and dtypes, or a 422 naming every field that is wrong."""
    import pandas as pd

    if not rows.rows:
        raise RequestError(400, "the request holds no rows to score")
    if signature is None:
        return pd.DataFrame(rows.rows, columns=rows.columns, dtype=object)
    given = set(rows.columns)
    problems = [{"field": c, "problem": "missing column"} for c in signature.columns if c not in given]
    problems += [{"field": str(c), "problem": "unknown column (not in the model's signature)"}
                 for c in rows.columns if c not in signature.dtypes]
    by_column = dict(zip(rows.columns, zip(*rows.rows)))
    arrays = {}
    for column in signature.columns:
        if column in by_column:
            arrays[column], problem = _column(by_column[column], signature.dtypes.get(column))
            if problem:
                problems.append({"field": column, "problem": problem})
    if problems:
        names = ", ".join(f"{p['field']} ({p['problem']})" for p in problems[:5])
        raise RequestError(422, f"{len(problems)} field(s) do not match the model's signature: {names}", problems)
    return _frame(arrays, signature)


def _column(values: tuple, dtype: str | None):
    """One column's values as a numpy array of its dtype, and what is wrong with them (None when nothing)."""
    import numpy as np

    kind = (dtype or "").lower()
    types = set(map(type, values))
    if kind.startswith(("int", "float", "uint")):
        if not types <= NUMBER_TYPES:
            wrong = next(v for v in values if type(v) not in NUMBER_TYPES)
            return None, f"expected a number ({dtype}), got {wrong!r}"
        if types <= {int} and not kind.startswith("float"):
            try:
                return np.array(values, dtype=np.int64), None
            except OverflowError:  # beyond int64: a float, as pandas would make it
                pass
        try:
            array = np.array(values, dtype=np.float64)  # a missing value becomes NaN: the model's business
        except OverflowError:
            return None, f"expected a number ({dtype}), got one beyond its range"
        infinite = np.isinf(array)
        if infinite.any():
            return None, f"expected a number ({dtype}), got {values[int(infinite.argmax())]!r}"
        return array, None
    if kind in ("object", "str", "string", "category") and not types <= TEXT_TYPES:
        wrong = next(v for v in values if type(v) not in TEXT_TYPES)
        return None, f"expected text, got {wrong!r}"
    return np.fromiter(values, dtype=object, count=len(values)), None  # as sent, whatever it holds


def _frame(arrays: dict, signature: Signature):
    import numpy as np
    import pandas as pd

    if all(array.dtype == np.float64 for array in arrays.values()):  # all decimals: one block, made fast
        return pd.DataFrame(np.column_stack(list(arrays.values())), columns=signature.index, copy=False)
    # Object columns stay object: pandas would make text its own str dtype, which the model did not see.
    return pd.DataFrame({c: pd.Series(a, dtype=object, copy=False) if a.dtype == object else a
                         for c, a in arrays.items()}, copy=False)


def _rows(rows: list, columns: list) -> Rows:
    if not all(isinstance(c, str) for c in columns):
        raise RequestError(400, "column names are text")
    if not all(isinstance(row, list) and len(row) == len(columns) for row in rows):
        raise RequestError(400, f"every row needs {len(columns)} values, one per column ({', '.join(columns[:8])})")
    return Rows(columns, rows)


def _records(records: Any, where: str) -> Rows:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RequestError(400, f"{where} is a list of records, e.g. [{{\"age\": 41}}]")
    columns = list(dict.fromkeys(key for record in records for key in record))
    return Rows(columns, [[record.get(c) for c in columns] for record in records])
