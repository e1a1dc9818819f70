"""Drift between a reference and current data, per column and for the dataset.

Default tests (each column's test and threshold can be overridden, and the report
says which were used, the sample sizes and the effect size):

- columns are typed as Evidently 0.7 types them: floats are numeric, integers with at
  most 10 distinct values are categories, text and booleans are categories; a numeric
  column with at most 5 distinct values (over both sides) is compared as categories;
- reference of up to 1,000 rows: Kolmogorov-Smirnov for numeric columns, chi-squared
  goodness of fit for the others (a two-proportion z-test for two values); drift when
  p < 0.05;
- above 1,000 rows: Wasserstein distance divided by the reference's standard
  deviation for numeric columns, Jensen-Shannon distance for the others; drift
  when >= 0.1;
- ``psi``: population stability index (10 reference quantile bins), drift >= 0.1.

The dataset drifts when at least half of its columns do. Missing values,
infinities, unseen and vanished categories are reported as their own signals
(``report.signals``); the tests run on the finite, present values.

    report = mlops.drift(train_df, new_df)
    report.drifted, report.share, report.columns, report.signals
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_nb.errors import InvalidInputError
from mlops_nb.validation import stats
from mlops_nb.validation.profile import INTEGER_CATEGORIES, ColumnProfile, ReferenceProfile, labels, profile_frame

SMALL = 1000
TESTS = ("ks", "chi2", "z", "wasserstein", "jensenshannon", "psi")
DEFAULT_THRESHOLDS = {"ks": 0.05, "chi2": 0.05, "z": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1}
P_VALUE_TESTS = ("ks", "chi2", "z")
COLUMNS = ["column", "kind", "test", "threshold", "statistic", "p_value", "effect_size", "drifted",
           "n_reference", "n_current"]
SIGNAL_COLUMNS = ["column", "signal", "reference", "current", "detail"]


@dataclass
class DriftReport:
    columns: Any                     # DataFrame with COLUMNS
    signals: Any                     # DataFrame with SIGNAL_COLUMNS
    share_threshold: float = 0.5
    n_reference: int = 0
    n_current: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def share(self) -> float:
        tested = self.columns["drifted"].notna()
        return float(self.columns.loc[tested, "drifted"].astype(bool).mean()) if tested.any() else 0.0

    @property
    def drifted(self) -> bool:
        return bool(self.share >= self.share_threshold)

    @property
    def drifted_columns(self) -> list[str]:
        return [c for c, d in zip(self.columns["column"], self.columns["drifted"]) if d is True or d == 1]

    def to_dict(self) -> dict:
        return {"drifted": self.drifted, "share": self.share, "share_threshold": self.share_threshold,
                "n_reference": self.n_reference, "n_current": self.n_current,
                "columns": _records(self.columns), "signals": _records(self.signals)}

    def __str__(self) -> str:
        head = (f"drift {'DETECTED' if self.drifted else 'not detected'}: {self.share:.0%} of columns drifted "
                f"(dataset drift at >= {self.share_threshold:.0%}); reference {self.n_reference} rows, "
                f"current {self.n_current} rows")
        lines = [f"  {'*' if r.drifted else ' '} {r.column:<20} {r.test:<13} {_fmt(r.statistic):>10} "
                 f"(threshold {r.threshold:g}{', p=' + _fmt(r.p_value) if r.p_value is not None and not _nan(r.p_value) else ''})"
                 for r in self.columns.itertuples()]
        lines += [f"  ! {r.column}: {r.detail}" for r in self.signals.itertuples()]
        return "\n".join([head, *lines])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from mlops_nb.validation.report import drift_html

        return drift_html(self)

    def save_html(self, path) -> Any:
        from mlops_nb.validation.report import save_html

        return save_html(self._repr_html_(), path, title="mlops-nb drift report")


def drift(reference, current, schema=None, *, tests: dict[str, str] | None = None,
          thresholds: dict[str, float] | None = None, columns: list[str] | None = None, psi: bool = False,
          share: float = 0.5, jobs: int = 2) -> DriftReport:
    """Compare ``current`` with ``reference``: a DataFrame or a :class:`ReferenceProfile` (``mlops.drift``
    also takes the name of a dataset logged with ``mlops.log_dataset(df, name, reference=True)``).

    ``tests``/``thresholds`` override per column, e.g. ``tests={"age": "psi"}``;
    ``psi=True`` uses PSI for every column; ``schema`` (from ``infer_schema``) fixes
    which columns are numeric and which categorical instead of guessing from dtypes.
    """
    import pandas as pd

    if not (hasattr(current, "columns") and hasattr(current, "dtypes")):
        raise InvalidInputError(f"drift compares with a current DataFrame, got {type(current).__name__}")
    profile = reference if isinstance(reference, ReferenceProfile) else None
    if profile is None:
        if not (hasattr(reference, "columns") and hasattr(reference, "dtypes")):
            raise InvalidInputError("drift's reference must be a DataFrame or a ReferenceProfile "
                                    f"(mlops.profile_reference), got {type(reference).__name__}")
        if len(reference) == 0:
            raise InvalidInputError("the reference frame is empty: drift needs reference rows to compare with")
    if len(current) == 0:
        raise InvalidInputError("the current frame is empty: there is nothing to compare")
    reference_columns = list(profile.columns) if profile else [str(c) for c in reference.columns]
    common = [c for c in reference_columns if c in {str(x) for x in current.columns}]
    if columns is not None:
        missing = [c for c in columns if c not in common]
        if missing:
            raise InvalidInputError(f"column(s) {', '.join(missing)} are not in both frames; common columns: "
                                    f"{', '.join(common[:10])}")
        common = list(columns)
    if not common:
        raise InvalidInputError(f"reference and current share no column: reference has "
                                f"{', '.join(reference_columns[:8])}, current has {', '.join(map(str, list(current.columns)[:8]))}")
    for mapping, what in ((tests or {}, "tests"), (thresholds or {}, "thresholds")):
        unknown = [c for c in mapping if c not in common]
        if unknown:
            raise InvalidInputError(f"{what} name column(s) {', '.join(unknown)} that are not compared")
    bad = {t for t in (tests or {}).values() if t not in TESTS}
    if bad:
        raise InvalidInputError(f"unknown test(s) {', '.join(sorted(bad))}; choose from {', '.join(TESTS)}")
    if profile is None:
        # Integer columns are typed on the current data, as Evidently types them.
        integer_kinds = {c: ("categorical" if current[c].nunique() <= INTEGER_CATEGORIES else "numeric")
                         for c in common if pd.api.types.is_integer_dtype(current[c])}
        profile = profile_frame(reference[common], schema=schema, keep_values=True, integer_kinds=integer_kinds)
    kinds = {c.name: c.kind for c in schema.columns.values()} if schema is not None else {}

    def one(column: str):
        return _column(profile.columns[column], current[column], kinds.get(column), (tests or {}).get(column),
                       (thresholds or {}).get(column), psi)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # numpy sorts release the GIL
        results = list(pool.map(one, common))
    rows = [r[0] for r in results]
    plots = {row["column"]: row.pop("plot") for row in rows if "plot" in row}
    signals = [s for r in results for s in r[1]]
    return DriftReport(pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(signals, columns=SIGNAL_COLUMNS),
                       share_threshold=share, n_reference=profile.n_rows, n_current=len(current),
                       meta={"plots": plots})


def _column(ref: ColumnProfile, series, kind_override: str | None, test: str | None, threshold: float | None,
            use_psi: bool):
    import pandas as pd

    kind = ref.kind
    if kind_override in ("categorical", "text", "boolean"):
        kind = "categorical"
    elif kind_override == "numeric":
        kind = "numeric"
    signals: list[dict] = []
    n_cur = len(series)
    missing_cur = int(series.isna().sum())
    if ref.missing or missing_cur:
        ref_rate, cur_rate = ref.missing / ref.n if ref.n else 0.0, missing_cur / n_cur
        if abs(cur_rate - ref_rate) > 0.01 or (ref_rate == 0 and cur_rate > 0):
            signals.append({"column": ref.name, "signal": "missing_values", "reference": round(ref_rate, 6),
                            "current": round(cur_rate, 6),
                            "detail": f"missing values {ref_rate:.1%} in the reference, {cur_rate:.1%} now"})
    if kind == "numeric" and pd.api.types.is_numeric_dtype(series) and ref.kind == "numeric":
        values = series.to_numpy(dtype=float, na_value=np.nan)
        infinite = int(np.isinf(values).sum())
        if infinite or ref.infinite:
            signals.append({"column": ref.name, "signal": "infinite_values", "reference": ref.infinite,
                            "current": infinite, "detail": f"{infinite} infinite values now, {ref.infinite} in the reference"})
        current = values[np.isfinite(values)]
        # As Evidently: a numeric column with more than 5 distinct values, counted over both sides, gets a
        # distribution test; with fewer, its values are compared as categories.
        many = (ref.n_unique or 0) > 5 or len(set(ref.counts or ()) | set(np.unique(current).astype(str))) > 5
        test = test or ("psi" if use_psi else ("ks" if ref.n <= SMALL and many else
                                                "wasserstein" if ref.n > SMALL and many else None))
        if test in ("ks", "wasserstein", "psi") and current.size and ref.count:
            return _numeric(ref, current, test, threshold), signals
        if test in ("ks", "wasserstein", "psi"):
            return _empty(ref, kind, test, threshold, current.size), signals + _no_values(ref, current.size)
        # Few distinct values: compare as categories, counted as numbers, each distinct one labelled once.
        distinct, counts = np.unique(current, return_counts=True)
        counts_now = pd.Series(counts, index=labels(pd.Series(distinct)).to_numpy())
    elif isinstance(series.dtype, pd.CategoricalDtype):  # counted on its codes, each category labelled once
        counts_now = series.value_counts()
        counts_now = counts_now[counts_now > 0]
        counts_now.index = labels(pd.Series(counts_now.index.to_numpy(dtype=object))).to_numpy()
    else:
        current_values = series.dropna()
        counts_now = labels(current_values).value_counts() if len(current_values) else pd.Series(dtype=int)
    categories = sorted(set(ref.counts) | set(counts_now.index))
    ref_counts = np.array([ref.counts.get(c, 0) for c in categories], dtype=float)
    cur_counts = np.array([counts_now.get(c, 0) for c in categories], dtype=float)
    unseen = [c for c in counts_now.index if c not in ref.counts]
    vanished = [c for c in ref.counts if c not in counts_now.index]
    if unseen:
        signals.append({"column": ref.name, "signal": "unseen_categories", "reference": 0, "current": len(unseen),
                        "detail": f"{len(unseen)} value(s) not in the reference: {', '.join(unseen[:5])}"})
    if vanished:
        signals.append({"column": ref.name, "signal": "vanished_categories", "reference": len(vanished),
                        "current": 0, "detail": f"{len(vanished)} reference value(s) absent now: {', '.join(vanished[:5])}"})
    if not cur_counts.sum() or not ref_counts.sum():
        chosen = test or ("psi" if use_psi else "chi2")
        return _empty(ref, "categorical", chosen, threshold, int(cur_counts.sum())), signals + _no_values(
            ref, int(cur_counts.sum()))
    test = test or ("psi" if use_psi else ("jensenshannon" if ref.n > SMALL else
                                           "z" if len(categories) == 2 else "chi2"))
    if test == "jensenshannon":
        statistic = stats.jensen_shannon(ref_counts, cur_counts)
        p_value, effect = None, statistic
    elif test == "psi":
        statistic = stats.psi(ref_counts, cur_counts)
        p_value, effect = None, statistic
    elif test == "z" and len(categories) == 2:
        statistic, p_value, effect = stats.two_proportion_z(ref_counts, cur_counts)
    elif test in ("chi2", "z"):
        test = "chi2"
        statistic, p_value, effect = stats.chi2(ref_counts, cur_counts)
    else:
        raise InvalidInputError(f"column {ref.name!r}: test {test!r} needs numeric values")
    row = _row(ref, "categorical", test, threshold, statistic, p_value, effect, int(cur_counts.sum()))
    top = np.argsort(-(ref_counts + cur_counts))[:12]
    row["plot"] = {"labels": [categories[i] for i in top], "reference": (ref_counts[top] / ref_counts.sum()).tolist(),
                   "current": (cur_counts[top] / cur_counts.sum()).tolist()}
    return row, signals


def _numeric(ref: ColumnProfile, current: np.ndarray, test: str, threshold: float | None) -> dict:
    if test == "ks":
        if ref.values is None:
            raise InvalidInputError(f"column {ref.name!r}: the stored profile kept no raw values for KS "
                                    "(its reference has over 1,000 rows); use wasserstein or psi")
        statistic, p_value, effect = stats.ks(ref.values, current)
    elif test == "wasserstein":
        current = np.sort(current)  # once: for the distance and for the bins below
        distance = (stats.wasserstein(ref.values, current, presorted=True) if ref.values is not None
                    else stats.wasserstein_from_quantiles(np.asarray(ref.quantiles), current, presorted=True))
        statistic = stats.normalised_wasserstein(distance, ref.std)
        p_value, effect = None, statistic
    else:
        edges = np.asarray(ref.bin_edges)
        inner = edges[1:-1]
        cur_counts = np.bincount(np.searchsorted(inner, current, side="right"), minlength=len(edges) - 1)
        statistic = stats.psi(np.asarray(ref.bin_counts, dtype=float), cur_counts.astype(float))
        p_value, effect = None, statistic
    row = _row(ref, "numeric", test, threshold, statistic, p_value, effect, int(current.size))
    if ref.bin_edges:
        edges = np.asarray(ref.bin_edges)
        now = (stats.sorted_bin_counts(current, edges[1:-1]) if test == "wasserstein" else
               np.bincount(np.searchsorted(edges[1:-1], current, side="right"), minlength=len(edges) - 1))
        then = np.asarray(ref.bin_counts, dtype=float)
        labels = [f"<= {edges[1]:.3g}"] + [f"{a:.3g} to {b:.3g}" for a, b in zip(edges[1:-2], edges[2:-1])] + \
            [f"> {edges[-2]:.3g}"] if len(edges) > 2 else ["all"]
        row["plot"] = {"labels": labels, "reference": (then / then.sum()).tolist(), "current": (now / now.sum()).tolist()}
    return row


def _row(ref: ColumnProfile, kind: str, test: str, threshold: float | None, statistic: float,
         p_value: float | None, effect: float, n_current: int) -> dict:
    threshold = DEFAULT_THRESHOLDS[test] if threshold is None else threshold
    drifted = p_value < threshold if test in P_VALUE_TESTS else statistic >= threshold
    return {"column": ref.name, "kind": kind, "test": test, "threshold": threshold, "statistic": statistic,
            "p_value": p_value, "effect_size": effect, "drifted": bool(drifted), "n_reference": ref.count,
            "n_current": n_current}


def _empty(ref: ColumnProfile, kind: str, test: str, threshold: float | None, n_current: int) -> dict:
    # A column with values on one side only has drifted as far as it can.
    threshold = DEFAULT_THRESHOLDS.get(test, 0.1) if threshold is None else threshold
    return {"column": ref.name, "kind": kind, "test": test, "threshold": threshold, "statistic": math.nan,
            "p_value": None, "effect_size": math.nan, "drifted": True, "n_reference": ref.count,
            "n_current": n_current}


def _no_values(ref: ColumnProfile, n_current: int) -> list[dict]:
    side = "the current data" if not n_current else "the reference"
    return [{"column": ref.name, "signal": "no_values", "reference": ref.count, "current": n_current,
             "detail": f"{side} has no usable values in this column"}]


def _records(frame) -> list[dict]:
    out = []
    for record in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()})
    return out


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _fmt(value) -> str:
    if value is None or _nan(value):
        return "-"
    return f"{value:.4g}"
