"""Checking a frame against a schema: a report of anomalies, each with its column, kind,
severity, counts and example values.

    report = mlops.validate(new_df, schema)
    report.ok                      # no anomaly of severity "error"
    report.anomalies               # DataFrame: column, kind, severity, count, share, examples, detail
    report.raise_if_failed()       # stops a pipeline step with a readable message
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from mlops_nb.errors import InvalidInputError, MlopsError
from mlops_nb.validation.schema import Schema, _require_frame, column_kind, load_schema

ANOMALY_COLUMNS = ["column", "kind", "severity", "count", "share", "examples", "detail"]
DEFAULT_SEVERITY = {
    "empty_frame": "error", "missing_column": "error", "type_mismatch": "error", "missing_values": "error",
    "infinite_values": "error", "unexpected_column": "warning", "out_of_range": "warning",
    "unseen_category": "warning",
}
_EXAMPLES = 5


class ValidationError(MlopsError):
    """Data did not pass validation; the message lists the anomalies of severity error."""


@dataclass
class ValidationReport:
    anomalies: Any                 # pandas DataFrame with ANOMALY_COLUMNS
    n_rows: int
    schema_name: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.anomalies["severity"] == "error").any()

    @property
    def errors(self):
        return self.anomalies[self.anomalies["severity"] == "error"]

    def raise_if_failed(self) -> "ValidationReport":
        if not self.ok:
            lines = [f"{r.column}: {r.kind} ({r.detail})" for r in self.errors.itertuples()]
            raise ValidationError(f"data failed validation with {len(lines)} error(s): " + "; ".join(lines))
        return self

    def to_dict(self) -> dict:
        return {"ok": self.ok, "n_rows": self.n_rows, "anomalies": self.anomalies.to_dict(orient="records")}

    def __str__(self) -> str:
        if self.anomalies.empty:
            return f"validation ok: {self.n_rows} rows, no anomalies"
        head = f"validation {'ok' if self.ok else 'FAILED'}: {self.n_rows} rows, {len(self.anomalies)} anomalies"
        lines = [f"  {r.severity:<7} {r.column:<20} {r.kind:<18} {r.detail}" for r in self.anomalies.itertuples()]
        return "\n".join([head, *lines])

    __repr__ = __str__

    def save_html(self, path):
        from mlops_nb.validation.report import save_html

        return save_html(self._repr_html_(), path, title="mlops-nb validation report")

    def _repr_html_(self) -> str:
        colour = "#2e7d32" if self.ok else "#c62828"
        head = (f"<div style='font-weight:600;color:{colour}'>validation {'ok' if self.ok else 'failed'}: "
                f"{self.n_rows} rows, {len(self.anomalies)} anomalies</div>")
        if self.anomalies.empty:
            return head
        rows = "".join(
            f"<tr><td style='color:{'#c62828' if r.severity == 'error' else '#ef6c00'}'>{escape(r.severity)}</td>"
            f"<td>{escape(str(r.column))}</td><td>{escape(r.kind)}</td><td style='text-align:right'>{r.count}</td>"
            f"<td>{escape(r.detail)}</td></tr>" for r in self.anomalies.itertuples())
        return (head + "<table><thead><tr><th>severity</th><th>column</th><th>kind</th><th>count</th>"
                f"<th>detail</th></tr></thead><tbody>{rows}</tbody></table>")


def validate(df, schema: Schema | str | dict, *, missing_tolerance: float = 0.05,
             severity: dict[str, str] | None = None) -> ValidationReport:
    """Check ``df`` against ``schema`` (a Schema, a JSON path or a dict).

    ``missing_tolerance``: how far a column's missing rate may exceed the schema's
    before it is an anomaly. ``severity`` overrides a kind's severity, e.g.
    ``{"out_of_range": "error"}``.
    """
    import numpy as np
    import pandas as pd

    _require_frame(df, "validate")
    if not isinstance(schema, Schema):
        schema = load_schema(schema)
    levels = {**DEFAULT_SEVERITY, **(severity or {})}
    unknown = set(severity or {}) - set(DEFAULT_SEVERITY)
    if unknown:
        raise InvalidInputError(f"unknown anomaly kind(s) {', '.join(sorted(unknown))}; known: "
                                f"{', '.join(DEFAULT_SEVERITY)}")
    found: list[dict] = []
    rows = len(df)

    def add(column, kind, count, detail, examples=()):
        found.append({"column": column, "kind": kind, "severity": levels[kind], "count": int(count),
                      "share": round(count / rows, 6) if rows else 0.0, "examples": list(examples)[:_EXAMPLES],
                      "detail": detail})

    present = {str(c) for c in df.columns}
    if not present & set(schema.columns):
        raise InvalidInputError(f"the frame shares no column with the schema{_named(schema)}: the frame has "
                                f"{_few(present)}, the schema {_few(schema.columns)}; is it the schema of "
                                "another dataset?")
    if rows == 0:
        add("*", "empty_frame", 0, "the frame has no rows")
    for name, expected in schema.columns.items():
        if name not in present:
            add(name, "missing_column", rows, "the column is missing")
            continue
        series = df[name]
        actual = column_kind(series)
        compatible = actual == expected.kind or {actual, expected.kind} <= {"categorical", "text"} or (
            expected.kind == "numeric" and actual == "boolean")
        if not compatible:
            add(name, "type_mismatch", rows, f"expected {expected.kind} ({expected.dtype}), got {actual} ({series.dtype})",
                series.dropna().astype(str).head(_EXAMPLES))
            continue
        missing = int(series.isna().sum())
        rate = missing / rows if rows else 0.0
        if missing and (not expected.nullable or rate > expected.missing_rate + missing_tolerance):
            add(name, "missing_values", missing,
                f"{rate:.1%} missing, expected {'none' if not expected.nullable else f'about {expected.missing_rate:.1%}'}")
        if expected.kind == "numeric" and actual == "numeric":
            values = series.to_numpy(dtype=float, na_value=np.nan)
            infinite = np.isinf(values)
            if infinite.any():
                add(name, "infinite_values", int(infinite.sum()), "infinite values", values[infinite][:_EXAMPLES].tolist())
            finite = values[np.isfinite(values)]
            if expected.min is not None and expected.max is not None and finite.size:
                outside = finite[(finite < expected.min) | (finite > expected.max)]
                if outside.size:
                    add(name, "out_of_range", outside.size,
                        f"{outside.size} values outside [{expected.min:g}, {expected.max:g}] "
                        f"(seen {finite.min():g} to {finite.max():g})", outside[:_EXAMPLES].tolist())
        elif expected.categories is not None:
            known = set(expected.categories)
            observed = series.dropna()
            unseen_mask = ~observed.isin(list(known))
            if unseen_mask.any():
                unseen = pd.Series(observed[unseen_mask]).astype(str).value_counts()
                add(name, "unseen_category", int(unseen_mask.sum()),
                    f"{len(unseen)} value(s) not in the schema's {len(known)} categories", unseen.index[:_EXAMPLES])
    for name in sorted(present - set(schema.columns)):
        add(name, "unexpected_column", rows, "the schema does not have this column")
    frame = pd.DataFrame(found, columns=ANOMALY_COLUMNS)
    return ValidationReport(frame, rows, schema.name)


def _few(names) -> str:
    names = sorted(names)
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def _named(schema: Schema) -> str:
    return f" {schema.name!r}" if schema.name else ""
