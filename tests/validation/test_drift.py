import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

import mlops_nb as mlops
from mlops_nb.errors import InvalidInputError
from mlops_nb.validation.profile import ReferenceProfile


def frame(rng, n, shift=0.0, cats=("a", "b", "c"), p=None):
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "y": rng.exponential(1 + shift, n),
                         "k": rng.choice(list(cats), n, p=p), "flag": rng.choice([True, False], n)})


def row(report, column):
    return report.columns.set_index("column").loc[column]


def test_small_reference_tests_agree_with_scipy():
    rng = np.random.default_rng(1)
    ref, cur = frame(rng, 400), frame(rng, 300, shift=0.3, p=[0.5, 0.3, 0.2])
    report = mlops.drift(ref, cur)
    ks = stats.ks_2samp(ref["x"], cur["x"])
    assert row(report, "x")["test"] == "ks"
    assert abs(row(report, "x")["statistic"] - ks.statistic) < 1e-9
    assert abs(row(report, "x")["p_value"] - ks.pvalue) < 1e-9
    # Evidently's chi-squared: the current counts' goodness of fit to the reference's shares.
    ref_counts = np.array([(ref["k"] == c).sum() for c in "abc"])
    cur_counts = np.array([(cur["k"] == c).sum() for c in "abc"])
    chi2, p = stats.chisquare(cur_counts, ref_counts * cur_counts.sum() / ref_counts.sum())
    assert row(report, "k")["test"] == "chi2"
    assert abs(row(report, "k")["statistic"] - chi2) < 1e-9 and abs(row(report, "k")["p_value"] - p) < 1e-9
    flags = np.array([[(ref["flag"].astype(str) == v).sum() for v in ("False", "True")],
                      [(cur["flag"].astype(str) == v).sum() for v in ("False", "True")]])
    _, p_flag, _, _ = stats.chi2_contingency(flags, correction=False)
    assert row(report, "flag")["test"] == "z" and abs(row(report, "flag")["p_value"] - p_flag) < 1e-9


def test_large_reference_distances_agree_with_scipy():
    rng = np.random.default_rng(2)
    ref, cur = frame(rng, 5000), frame(rng, 3000, shift=0.2, p=[0.4, 0.4, 0.2])
    report = mlops.drift(ref, cur)
    w = stats.wasserstein_distance(ref["x"], cur["x"]) / np.std(ref["x"])
    assert row(report, "x")["test"] == "wasserstein" and abs(row(report, "x")["statistic"] - w) < 1e-9
    p_ref = np.array([(ref["k"] == c).mean() for c in "abc"])
    p_cur = np.array([(cur["k"] == c).mean() for c in "abc"])
    assert row(report, "k")["test"] == "jensenshannon"
    assert abs(row(report, "k")["statistic"] - distance.jensenshannon(p_ref, p_cur)) < 1e-9


@pytest.mark.parametrize("n_ref, n_cur", [(500, 400), (20_000, 15_000)])
def test_a_shift_is_detected_and_a_resample_is_not(n_ref, n_cur):
    rng = np.random.default_rng(3)
    ref = frame(rng, n_ref)
    same = mlops.drift(ref, frame(rng, n_cur))
    shifted = mlops.drift(ref, frame(rng, n_cur, shift=0.8, p=[0.1, 0.2, 0.7]))
    assert not same.drifted and same.share < 0.5
    assert shifted.drifted and {"x", "y", "k"} <= set(shifted.drifted_columns)


def test_every_column_says_its_test_threshold_sizes_and_effect():
    rng = np.random.default_rng(4)
    report = mlops.drift(frame(rng, 300), frame(rng, 200), tests={"x": "psi"}, thresholds={"y": 0.01})
    assert list(report.columns.columns) == ["column", "kind", "test", "threshold", "statistic", "p_value",
                                            "effect_size", "drifted", "n_reference", "n_current"]
    x, y = row(report, "x"), row(report, "y")
    assert x["test"] == "psi" and x["threshold"] == 0.1 and y["threshold"] == 0.01
    assert (report.columns["n_reference"] == 300).all() and (report.columns["n_current"] == 200).all()
    assert report.columns["effect_size"].notna().all()


def test_nan_inf_unseen_and_vanished_are_signals_not_crashes():
    rng = np.random.default_rng(5)
    ref = frame(rng, 300)
    cur = frame(rng, 300, cats=("a", "b", "new"))
    cur.loc[:50, "x"] = np.nan
    cur.loc[51:60, "y"] = np.inf
    report = mlops.drift(ref, cur)
    signals = set(zip(report.signals["column"], report.signals["signal"]))
    assert {("x", "missing_values"), ("y", "infinite_values"), ("k", "unseen_categories"),
            ("k", "vanished_categories")} <= signals
    assert row(report, "x")["n_current"] == 249 and row(report, "y")["n_current"] == 290


def test_a_column_empty_on_one_side_counts_as_drifted():
    rng = np.random.default_rng(6)
    cur = frame(rng, 100)
    cur["x"] = np.nan
    report = mlops.drift(frame(rng, 100), cur)
    assert row(report, "x")["drifted"] and ("x", "no_values") in set(zip(report.signals["column"],
                                                                           report.signals["signal"]))


def test_a_stored_profile_gives_the_same_decisions(tmp_path):
    rng = np.random.default_rng(7)
    for n in (600, 20_000):
        ref, cur = frame(rng, n), frame(rng, n // 2, shift=0.3)
        direct = mlops.drift(ref, cur)
        path = mlops.profile_reference(ref).save(tmp_path / "profile.json")
        stored = mlops.drift(ReferenceProfile.load(path), cur)
        assert list(direct.columns["drifted"]) == list(stored.columns["drifted"])
        for column in ("x", "k"):
            a, b = row(direct, column)["statistic"], row(stored, column)["statistic"]
            assert math.isclose(a, b, rel_tol=0.02), (n, column, a, b)
        assert (tmp_path / "profile.json").stat().st_size < 200_000


@pytest.mark.parametrize("ref, cur, message", [
    (pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}), "share no column"),
    (pd.DataFrame({"a": []}), pd.DataFrame({"a": [1.0]}), "reference frame is empty"),
    (pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": []}), "current frame is empty"),
    ([1, 2], pd.DataFrame({"a": [1.0]}), "must be a DataFrame or a ReferenceProfile"),
])
def test_bad_input_is_a_clear_error(ref, cur, message):
    with pytest.raises(InvalidInputError, match=message):
        mlops.drift(ref, cur)


def test_unknown_test_or_column_override_is_refused():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInputError, match="unknown test"):
        mlops.drift(df, df, tests={"a": "anova"})
    with pytest.raises(InvalidInputError, match="not compared"):
        mlops.drift(df, df, thresholds={"b": 0.2})


def test_report_renders_and_saves_one_html_file(tmp_path):
    rng = np.random.default_rng(8)
    report = mlops.drift(frame(rng, 300), frame(rng, 300, shift=1.0))
    html = report._repr_html_()
    assert "drift detected" in html and "<table" in html and "grey: reference" in html
    path = report.save_html(tmp_path / "drift.html")
    text = path.read_text()
    assert text.startswith("<!doctype html>") and "<script" not in text and "http" not in text
    assert report.to_dict()["drifted"] is True


def test_a_reference_profile_stored_with_its_dataset_is_used_by_name(home):
    rng = np.random.default_rng(9)
    ref = frame(rng, 2000)
    with mlops.start_run():
        mlops.log_dataset(ref, "customers", reference=True)
        mlops.log_dataset(ref.head(10), "sample")
    report = mlops.drift("customers", frame(rng, 1000, shift=1.0))
    assert report.drifted and report.n_reference == 2000
    with pytest.raises(mlops.MlopsError, match="has no stored reference profile: log it with"):
        mlops.drift("sample", ref)
    with pytest.raises(mlops.MlopsError, match="no dataset 'nope'"):
        mlops.drift("nope", ref)


def test_validation_and_gate_reports_save_as_html(tmp_path):
    df = pd.DataFrame({"a": [1.0, 2.0]})
    path = mlops.validate(df, mlops.infer_schema(df)).save_html(tmp_path / "validation.html")
    assert "validation ok" in path.read_text()


@pytest.mark.parametrize("rows, test, drifted", [(3000, "jensenshannon", False), (800, "chi2", True)])
def test_small_integer_codes_are_categories_as_in_evidently(rows, test, drifted):
    # A rating 1..8 with 6% of the mass moved from 1 to 8: Evidently 0.7 calls it categorical (at most 10
    # integer values), so Jensen-Shannon on large samples (quiet) and chi-squared on small ones (drift).
    rng = np.random.default_rng(3)
    shares = np.full(8, 0.125)
    moved = shares.copy()
    moved[0], moved[-1] = 0.065, 0.185
    ref = pd.DataFrame({"rating": rng.choice(np.arange(1, 9), rows, p=shares)})
    cur = pd.DataFrame({"rating": rng.choice(np.arange(1, 9), rows, p=moved)})
    result = row(mlops.drift(ref, cur), "rating")
    assert (result["kind"], result["test"], bool(result["drifted"])) == ("categorical", test, drifted)


def test_categorical_and_few_valued_columns_drift_as_their_text_and_numbers_do():
    # The monitor reads text features as pandas categoricals and counts small integer codes as numbers:
    # each gives the report the same columns give as plain text and numbers.
    rng = np.random.default_rng(3)
    ref, cur = frame(rng, 5_000), frame(rng, 2_000, p=[0.2, 0.3, 0.5])
    ref["code"], cur["code"] = rng.integers(0, 3, 5_000).astype(float), rng.integers(0, 4, 2_000).astype(float)
    plain = mlops.drift(ref, cur)
    as_categories = cur.assign(k=cur["k"].astype("category").cat.add_categories(["never"]))
    typed = mlops.drift(ref, as_categories)
    pd.testing.assert_frame_equal(plain.columns, typed.columns)
    pd.testing.assert_frame_equal(plain.signals, typed.signals)
    assert row(plain, "k")["drifted"] and row(plain, "code")["test"] == "jensenshannon"
    assert "unseen_categories" in set(plain.signals["signal"])  # code 3 is new, "never" counted no row
