"""What a DataFrame is, in a few hundred bytes: content fingerprint, schema and profile."""

from __future__ import annotations

import hashlib
import math
from typing import Any

_TOP_VALUES = 10


def fingerprint_frame(df) -> str:
    """sha256 over the frame's column names, dtypes, index and values (vectorised hashing)."""
    import pandas as pd

    digest = hashlib.sha256()
    for name, dtype in df.dtypes.items():
        digest.update(f"{name}\x1f{dtype}\x1e".encode())
    digest.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def frame_profile(df) -> dict:
    """Per-column summary statistics: counts, missing values, numeric moments and quantiles,
    and the most frequent values of other columns."""
    import pandas as pd

    from mlops_nb.validation.stats import count_unique

    columns: dict[str, Any] = {}
    for name in df.columns:
        series = df[name]
        entry: dict[str, Any] = {"dtype": str(series.dtype), "count": int(series.count()),
                                 "missing": int(series.isna().sum())}
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.dropna().astype(float)
            if len(values):
                quantiles = values.quantile([0.05, 0.25, 0.5, 0.75, 0.95])
                entry.update(mean=_num(values.mean()), std=_num(values.std()), min=_num(values.min()),
                             max=_num(values.max()), quantiles={str(q): _num(v) for q, v in quantiles.items()},
                             unique=count_unique(values))
        elif pd.api.types.is_datetime64_any_dtype(series):  # a time column: its span, not its commonest values
            values = series.dropna()
            if len(values):
                entry.update(min=values.min().isoformat(), max=values.max().isoformat(),
                             unique=count_unique(values))
        else:
            counts = series.astype("string").value_counts(dropna=True)
            entry.update(unique=int(counts.size),
                         top={str(k): int(v) for k, v in counts.head(_TOP_VALUES).items()})
        columns[str(name)] = entry
    return {"n_rows": int(len(df)), "columns": columns}


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value
