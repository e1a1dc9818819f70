"""Reference profiles: what drift needs to know about a reference, computed once and stored.

A stored profile keeps, per column: counts of missing and infinite values; for
numeric columns the standard deviation, 1,000 quantiles (Wasserstein), 10
quantile bins (PSI) and, for references of up to 1,000 rows, the values
themselves (KS); for other columns the count of each value (chi-squared,
Jensen-Shannon, PSI). From a stored profile, Wasserstein uses the quantiles, an
approximation within a fraction of a percent; everything else is exact.

    profile = mlops.profile_reference(train_df)
    profile.save("reference-profile.json")     # or mlops.log_dataset(..., reference=True)
    mlops.drift(profile, new_df)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlops_nb.errors import InvalidInputError
from mlops_nb.validation import stats

QUANTILES = 1000
BINS = 10
SMALL = 1000
MAX_COUNTED = 10_000
INTEGER_CATEGORIES = 10  # Evidently's INTEGER_CARDINALITY_LIMIT: integers with at most 10 values are categories


@dataclass
class ColumnProfile:
    name: str
    kind: str                    # numeric | categorical
    n: int                       # rows
    count: int                   # usable values (finite numbers, present categories)
    missing: int = 0
    infinite: int = 0
    n_unique: int | None = None
    std: float | None = None
    quantiles: list | None = None
    bin_edges: list | None = None
    bin_counts: list | None = None
    counts: dict = field(default_factory=dict)
    values: Any = None           # numpy array of the finite values (always in memory; stored up to 1,000)


@dataclass
class ReferenceProfile:
    columns: dict[str, ColumnProfile]
    n_rows: int
    version: int = 1

    def to_dict(self) -> dict:
        out = []
        for column in self.columns.values():
            data = asdict(column)
            values = column.values
            data["values"] = values.tolist() if values is not None and len(values) <= SMALL else None
            out.append(data)
        return {"kind": "mlops-nb reference profile", "version": self.version, "n_rows": self.n_rows, "columns": out}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "ReferenceProfile":
        if not isinstance(data, dict) or data.get("kind") != "mlops-nb reference profile":
            raise InvalidInputError("not an mlops-nb reference profile (see mlops.profile_reference)")
        columns = {}
        for entry in data["columns"]:
            entry = dict(entry)
            if entry.get("values") is not None:
                entry["values"] = np.sort(np.asarray(entry["values"], dtype=float))  # kept sorted
            columns[entry["name"]] = ColumnProfile(**entry)
        return cls(columns=columns, n_rows=data["n_rows"], version=data.get("version", 1))

    @classmethod
    def load(cls, path: str | Path) -> "ReferenceProfile":
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError(f"reference profile {path} does not exist")
        return cls.from_dict(json.loads(path.read_text()))

    def __repr__(self) -> str:
        return f"ReferenceProfile({self.n_rows} rows, {len(self.columns)} columns)"


def profile_frame(df, *, schema=None, keep_values: bool = False, integer_kinds: dict | None = None) -> ReferenceProfile:
    """The profile of a reference frame; ``keep_values`` keeps every finite value in memory
    (exact tests when the reference frame itself is at hand)."""
    import pandas as pd

    if not (hasattr(df, "columns") and hasattr(df, "dtypes")):
        raise InvalidInputError(f"profile_reference takes a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise InvalidInputError("the reference frame is empty: a profile needs rows")
    kinds = {c.name: c.kind for c in schema.columns.values()} if schema is not None else {}
    def one(name):
        series = df[name]
        wanted = kinds.get(str(name))
        numeric = (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
                   and wanted not in ("categorical", "text", "boolean"))
        if numeric and wanted != "numeric" and pd.api.types.is_integer_dtype(series):
            # A small integer code (a rating, a count of 1-10) is compared as categories; the caller may
            # have judged that on the current data, as Evidently does.
            kind = (integer_kinds or {}).get(str(name))
            numeric = kind == "numeric" if kind else series.nunique() > INTEGER_CATEGORIES
        return (_numeric_profile(str(name), series, keep_values) if numeric
                else _categorical_profile(str(name), series))

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(2, max(1, len(df.columns)))) as pool:  # numpy sorts release the GIL
        columns = {str(name): column for name, column in zip(df.columns, pool.map(one, df.columns))}
    return ReferenceProfile(columns=columns, n_rows=len(df))


def _numeric_profile(name: str, series, keep_values: bool) -> ColumnProfile:
    values = series.to_numpy(dtype=float, na_value=np.nan)
    nan = np.isnan(values)
    infinite = np.isinf(values)
    finite = values[~nan & ~infinite]
    column = ColumnProfile(name, "numeric", n=len(values), count=int(finite.size), missing=int(nan.sum()),
                           infinite=int(infinite.sum()))
    if not finite.size:
        return column
    # One sort gives everything: distinct values, quantiles, bins, and the values the tests read.
    ordered = np.sort(finite)
    column.n_unique = int(np.count_nonzero(np.diff(ordered))) + 1
    column.std = float(finite.std())
    levels = (np.arange(QUANTILES) + 0.5) / QUANTILES
    column.quantiles = stats.sorted_quantiles(ordered, levels).tolist()
    edges = np.unique(stats.sorted_quantiles(ordered, np.linspace(0, 1, BINS + 1)))
    if edges.size < 2:
        edges = np.array([ordered[0] - 0.5, ordered[0] + 0.5])
    edges[0], edges[-1] = -np.inf, np.inf
    column.bin_edges = edges.tolist()
    column.bin_counts = stats.sorted_bin_counts(ordered, edges[1:-1]).tolist()
    if column.n_unique <= 5:
        import pandas as pd

        column.counts = {str(k): int(v) for k, v in pd.Series(finite).astype(str).value_counts().items()}
    if keep_values or finite.size <= SMALL:
        column.values = ordered  # sorted: the tests need no order, and Wasserstein reads it as it is
    return column


def labels(values):
    """Category labels of a series: integral numbers read as integers (3.0 and 3 are one label)."""
    import pandas as pd

    if pd.api.types.is_float_dtype(values) and len(values) and bool(np.all(np.mod(values.to_numpy(), 1) == 0)):
        return values.astype("int64").astype(str)
    return values.astype(str)


def _categorical_profile(name: str, series) -> ColumnProfile:
    present = series.dropna()
    counts = labels(present).value_counts()
    column = ColumnProfile(name, "categorical", n=len(series), count=int(len(present)),
                           missing=int(len(series) - len(present)), n_unique=int(counts.size))
    column.counts = {str(k): int(v) for k, v in counts.head(MAX_COUNTED).items()}
    return column


def _unique_count(values: np.ndarray) -> int:
    # Enough to tell "more than 5 distinct values" without sorting a large array twice.
    sample = np.unique(values[: 10_000])
    return int(sample.size) if sample.size > 5 else int(np.unique(values).size)


def profile_reference(df, *, schema=None) -> ReferenceProfile:
    """A reference profile to store and reuse instead of the reference frame."""
    return profile_frame(df, schema=schema, keep_values=False)
