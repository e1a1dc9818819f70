"""Schemas: what a dataset's columns are expected to hold, inferred from a frame.

    schema = mlops.infer_schema(train_df)
    schema.save("schema.json")                 # readable JSON, reviewable in git
    report = mlops.validate(new_df, schema)    # see validation.validate
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_nb.errors import InvalidInputError

MAX_CATEGORIES = 50
KINDS = ("numeric", "boolean", "categorical", "datetime", "text")


@dataclass
class ColumnSchema:
    name: str
    kind: str                          # numeric | boolean | categorical | datetime | text
    dtype: str
    nullable: bool
    missing_rate: float
    min: float | None = None           # numeric: the observed range
    max: float | None = None
    categories: list | None = None     # categorical/boolean: the observed domain (None above the cap)
    n_unique: int | None = None


@dataclass
class Schema:
    columns: dict[str, ColumnSchema]
    n_rows: int = 0
    max_categories: int = MAX_CATEGORIES
    version: int = 1
    name: str | None = None
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"version": self.version, "name": self.name, "n_rows": self.n_rows,
                "max_categories": self.max_categories, "meta": self.meta,
                "columns": [_clean(asdict(c)) for c in self.columns.values()]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "Schema":
        if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
            raise InvalidInputError("not an mlops-nb schema: expected a mapping with a 'columns' list")
        columns = {}
        for entry in data["columns"]:
            try:
                column = ColumnSchema(**entry)
            except TypeError as exc:
                raise InvalidInputError(f"schema column {entry.get('name')!r} is not valid: {exc}") from None
            if column.kind not in KINDS:
                raise InvalidInputError(f"schema column {column.name!r} has kind {column.kind!r}; "
                                        f"expected one of {', '.join(KINDS)}")
            columns[column.name] = column
        return cls(columns=columns, n_rows=data.get("n_rows", 0),
                   max_categories=data.get("max_categories", MAX_CATEGORIES), version=data.get("version", 1),
                   name=data.get("name"), meta=data.get("meta") or {})

    def __repr__(self) -> str:
        kinds = ", ".join(f"{c.name}:{c.kind}" for c in list(self.columns.values())[:8])
        more = f", +{len(self.columns) - 8}" if len(self.columns) > 8 else ""
        return f"Schema({len(self.columns)} columns: {kinds}{more})"


def load_schema(source: str | Path | dict) -> Schema:
    """A schema from a JSON file, a JSON string or a dict."""
    if isinstance(source, dict):
        return Schema.from_dict(source)
    text = str(source)
    if not text.lstrip().startswith("{"):
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(f"schema file {path} does not exist")
        text = path.read_text()
    try:
        return Schema.from_dict(json.loads(text))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"schema is not valid JSON: {exc}") from None


def column_kind(series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "categorical"


def infer_schema(df, *, max_categories: int = MAX_CATEGORIES, name: str | None = None) -> Schema:
    """Column kinds, nullability and missing rates, numeric ranges and categorical domains.

    A non-numeric column with more than ``max_categories`` distinct values is ``text``:
    its values are not listed, so validation checks only its type and missing rate.
    """
    import numpy as np

    from mlops_nb.validation.stats import count_unique

    _require_frame(df, "infer_schema")
    columns: dict[str, ColumnSchema] = {}
    rows = len(df)
    for column in df.columns:
        series = df[column]
        kind = column_kind(series)
        missing = int(series.isna().sum())
        entry = ColumnSchema(name=str(column), kind=kind, dtype=str(series.dtype), nullable=missing > 0,
                             missing_rate=missing / rows if rows else 0.0)
        if kind == "numeric":
            values = series.to_numpy(dtype=float, na_value=np.nan)
            finite = values[np.isfinite(values)]
            if finite.size:
                entry.min, entry.max = float(finite.min()), float(finite.max())
            entry.n_unique = count_unique(series)
        elif kind in ("categorical", "boolean"):
            uniques = series.dropna().unique()
            entry.n_unique = int(len(uniques))
            if len(uniques) <= max_categories:
                entry.categories = sorted((_plain(v) for v in uniques), key=lambda v: (str(type(v)), str(v)))
            elif kind == "categorical":
                entry.kind = "text"
        columns[str(column)] = entry
    return Schema(columns=columns, n_rows=rows, max_categories=max_categories, name=name)


def _require_frame(df, what: str) -> None:
    if not (hasattr(df, "columns") and hasattr(df, "dtypes")):
        raise InvalidInputError(f"{what} takes a pandas DataFrame, got {type(df).__name__}")


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    value = item() if item is not None and getattr(value, "shape", None) == () else value
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _clean(data: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()}
