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

import math
from dataclasses import dataclass, field
from typing import Any

FORMS = ("dataframe_split", "dataframe_records", "instances", "inputs")


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


def read_mlflow(body: Any, signature: Signature | None):
    """The frame an MLflow scoring request stands for."""
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
        return _frame_from_rows(value["data"], value["columns"])
    if form == "dataframe_records":
        return _frame_from_records(value, form)
    if form == "inputs" and isinstance(value, dict):
        columns = list(value)
        lists = [v if isinstance(v, list) else [v] for v in value.values()]
        if len({len(v) for v in lists}) > 1:
            raise RequestError(400, "inputs: every column needs the same number of values")
        return _frame_from_rows([list(row) for row in zip(*lists)], columns)
    if not isinstance(value, list):
        raise RequestError(400, f"{form} is a list of records (or of rows), got {type(value).__name__}")
    if value and all(isinstance(row, list) for row in value):
        if signature is None:
            raise RequestError(400, f"{form} as lists of values needs the model's signature to name the columns; "
                                    "send records instead")
        return _frame_from_rows(value, signature.columns)
    return _frame_from_records(value, form)


def read_records(body: Any):
    """Our own form: a JSON list of records (``{"records": [...]}`` works too)."""
    if isinstance(body, dict) and "records" in body:
        body = body["records"]
    return _frame_from_records(body, "the body")


def check(frame, signature: Signature | None):
    """The frame in the signature's column order, or a 422 naming every field that is wrong."""
    import pandas as pd

    if not len(frame):
        raise RequestError(400, "the request holds no rows to score")
    if signature is None:
        return frame
    problems = [{"field": c, "problem": "missing column"} for c in signature.columns if c not in frame.columns]
    problems += [{"field": str(c), "problem": "unknown column (not in the model's signature)"}
                 for c in frame.columns if c not in signature.dtypes]
    for column in signature.columns:
        if column not in frame.columns:
            continue
        dtype = (signature.dtypes.get(column) or "").lower()
        values = frame[column]
        if dtype.startswith(("int", "float", "uint")):
            wrong = [v for v in values if not _is_number(v)]
            if wrong:
                problems.append({"field": column, "problem": f"expected a number ({dtype}), got {wrong[0]!r}"})
            else:
                numbers = pd.to_numeric(values)
                frame[column] = numbers.astype("float64") if dtype.startswith("float") else numbers
        elif dtype in ("object", "str", "string", "category"):
            wrong = [v for v in values if v is not None and not isinstance(v, str)]
            if wrong:
                problems.append({"field": column, "problem": f"expected text, got {wrong[0]!r}"})
    if problems:
        names = ", ".join(f"{p['field']} ({p['problem']})" for p in problems[:5])
        raise RequestError(422, f"{len(problems)} field(s) do not match the model's signature: {names}", problems)
    return frame[signature.columns]


def _is_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value is None  # a missing value is the model's business
    return not (isinstance(value, float) and math.isinf(value))


def _frame_from_rows(rows: list, columns: list):
    import pandas as pd

    if not all(isinstance(c, str) for c in columns):
        raise RequestError(400, "column names are text")
    if not all(isinstance(row, list) and len(row) == len(columns) for row in rows):
        raise RequestError(400, f"every row needs {len(columns)} values, one per column ({', '.join(columns[:8])})")
    return pd.DataFrame(rows, columns=columns, dtype=object)


def _frame_from_records(records: Any, where: str):
    import pandas as pd

    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RequestError(400, f"{where} is a list of records, e.g. [{{\"age\": 41}}]")
    columns = list(dict.fromkeys(key for record in records for key in record))
    return pd.DataFrame([[record.get(c) for c in columns] for record in records], columns=columns, dtype=object)
