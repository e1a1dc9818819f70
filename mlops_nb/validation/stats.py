"""The statistical tests behind drift reports, on plain numpy arrays.

Each returns ``(statistic, p_value, effect_size)``; distances have no p-value. The
results agree with scipy.stats on the same samples (the tests check it); Wasserstein
is computed here because scipy's is four times slower on a million rows.
"""

from __future__ import annotations

import math

import numpy as np


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float, float]:
    """Two-sample Kolmogorov-Smirnov: statistic D (also the effect size) and its p-value."""
    from scipy import stats

    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue), float(result.statistic)


def chi2(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float, float]:
    """Chi-squared goodness of fit of the current counts to the reference's shares (Evidently's form);
    a value the reference never had makes the fit infinitely bad. Effect size: sqrt(chi2 / n)."""
    from scipy import stats

    keep = (reference_counts + current_counts) > 0
    ref, cur = reference_counts[keep].astype(float), current_counts[keep].astype(float)
    if ref.size < 2:
        return 0.0, 1.0, 0.0
    if np.any((ref == 0) & (cur > 0)):
        return math.inf, 0.0, math.inf
    expected = ref * (cur.sum() / ref.sum())
    statistic, p_value = stats.chisquare(cur, expected)
    return float(statistic), float(p_value), math.sqrt(float(statistic) / cur.sum())


def two_proportion_z(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float, float]:
    """z-test for the share of the first of two values; effect size is the change in that share."""
    n1, n2 = reference_counts.sum(), current_counts.sum()
    p1, p2 = reference_counts[0] / n1, current_counts[0] / n2
    pooled = (reference_counts[0] + current_counts[0]) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 0.0, 1.0, float(p2 - p1)
    z = (p2 - p1) / spread
    # 2 * the normal's survival function (scipy.stats.norm.sf), without importing scipy for one erfc
    return float(z), float(math.erfc(abs(z) / math.sqrt(2))), float(p2 - p1)


def wasserstein(reference: np.ndarray, current: np.ndarray, *, presorted: bool = False) -> float:
    """The first Wasserstein distance between two samples (as scipy.stats.wasserstein_distance);
    ``presorted``: both are sorted already (a profile keeps its values sorted)."""
    u, v = (reference, current) if presorted else (np.sort(reference), np.sort(current))
    if u.size == v.size:
        return float(np.mean(np.abs(u - v)))
    values = np.concatenate([u, v])
    values.sort(kind="stable")
    deltas = np.diff(values)
    cdf_u = np.searchsorted(u, values[:-1], side="right") / u.size
    cdf_v = np.searchsorted(v, values[:-1], side="right") / v.size
    return float(np.sum(np.abs(cdf_u - cdf_v) * deltas))


def wasserstein_from_quantiles(reference_quantiles: np.ndarray, current: np.ndarray, *,
                               presorted: bool = False) -> float:
    """Wasserstein distance with the reference given as its quantile function on an even grid
    (a stored profile): the mean gap between the two quantile functions. ``presorted``: ``current`` is
    sorted already, and its quantiles are read off it (as np.quantile's default, linear, computes them)."""
    levels = (np.arange(reference_quantiles.size) + 0.5) / reference_quantiles.size
    if not presorted:
        return float(np.mean(np.abs(reference_quantiles - np.quantile(current, levels))))
    at = levels * (current.size - 1)
    below = np.floor(at).astype(np.int64)
    above = np.minimum(below + 1, current.size - 1)
    quantiles = current[below] + (at - below) * (current[above] - current[below])
    return float(np.mean(np.abs(reference_quantiles - quantiles)))


def normalised_wasserstein(distance: float, reference_std: float) -> float:
    # A constant reference has no spread to normalise by; Evidently uses the same floor.
    return distance / max(reference_std, 0.001)


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) between two frequency tables over the same categories, as
    scipy.spatial.distance.jensenshannon computes it (without importing scipy for a formula)."""
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = lambda a: np.sum(np.where(a > 0, a * np.log(a / m), 0.0))  # noqa: E731
        return float(math.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, floor: float = 1e-4) -> float:
    """Population stability index over the same bins or categories."""
    p = np.maximum(reference_counts / reference_counts.sum(), floor)
    q = np.maximum(current_counts / current_counts.sum(), floor)
    return float(np.sum((q - p) * np.log(q / p)))


def sorted_quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``np.quantile(values, levels)`` (its linear method) for values already sorted: no partition."""
    position = np.asarray(levels, dtype=float) * (values.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, values.size - 1)
    return values[low] + (position - low) * (values[high] - values[low])


def sorted_bin_counts(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """How many sorted values fall in each bin (a value equal to an edge goes right), as
    ``np.bincount(np.searchsorted(inner_edges, values, side="right"))`` computes it, in O(bins log n)."""
    cuts = np.searchsorted(values, inner_edges, side="left")
    return np.diff(np.concatenate([[0], cuts, [values.size]]))


def count_unique(series) -> int:
    """How many distinct values a column holds, missing ones left out. Decimals and times are counted on a
    sorted copy: pandas' hash table takes seven times as long on ten million decimals."""
    import pandas as pd

    kind = series.dtype.kind
    if kind in "fmM" and not isinstance(series.dtype, pd.DatetimeTZDtype):
        values = series.to_numpy()
        values = np.sort(values[~pd.isna(values)] if kind == "f" or series.hasnans else values)
        return int(np.count_nonzero(values[1:] != values[:-1]) + 1) if values.size else 0
    return int(series.nunique(dropna=True))
