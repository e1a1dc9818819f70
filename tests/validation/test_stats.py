"""The tests computed here without scipy agree with scipy's on random samples."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from scipy.spatial import distance

from mlops_nb.validation import stats

counts = st.lists(st.integers(0, 10_000), min_size=2, max_size=12)


@settings(max_examples=200, deadline=None)
@given(counts, counts)
def test_jensen_shannon_is_scipys(reference, current):
    size = min(len(reference), len(current))
    ref, cur = np.array(reference[:size], dtype=float), np.array(current[:size], dtype=float)
    if ref.sum() == 0 or cur.sum() == 0:
        return
    assert stats.jensen_shannon(ref, cur) == pytest.approx(distance.jensenshannon(ref / ref.sum(), cur / cur.sum()),
                                                         abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000), st.integers(1, 10_000), st.integers(1, 10_000), st.integers(1, 10_000))
def test_the_z_tests_p_value_is_scipys(a, b, c, d):
    z, p_value, _ = stats.two_proportion_z(np.array([a, b]), np.array([c, d]))
    assert p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(z)), rel=1e-9, abs=1e-300)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300), st.integers(2, 101))
def test_quantiles_read_off_a_sorted_sample_are_numpys(values, grid):
    current = np.array(values)
    reference = np.linspace(-1, 1, grid)
    assert stats.wasserstein_from_quantiles(reference, np.sort(current), presorted=True) == pytest.approx(
        stats.wasserstein_from_quantiles(reference, current), rel=1e-9, abs=1e-9)
