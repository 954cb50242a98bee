"""prunecxr.stats against independent implementations (scipy, statsmodels, numpy, loops)."""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from prunecxr import stats


@pytest.mark.parametrize("seed,na,nb", [(0, 5, 7), (1, 30, 30), (2, 2, 9)])
def test_welch_matches_scipy(seed, na, nb):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, na), rng.normal(0.5, 3, nb)
    res = stats.welch(a, b).iloc[0]
    ref = st.ttest_ind(a, b, equal_var=False)
    assert res.t == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)
    assert res.df == pytest.approx(ref.df)
    assert (res.n_a, res.n_b) == (na, nb)
    assert res.mean_a == pytest.approx(a.mean())


def test_welch_drops_nan_and_inf():
    a, b = np.array([1.0, np.nan, 2.5, 3.0, np.inf]), np.array([0.2, 0.4, -np.inf, 0.1])
    res = stats.welch(a, b).iloc[0]
    ref = st.ttest_ind(a[np.isfinite(a)], b[np.isfinite(b)], equal_var=False)
    assert (res.n_a, res.n_b) == (3, 3)
    assert (res.t, res.df, res.p) == pytest.approx((ref.statistic, ref.df, ref.pvalue))


def test_welch_needs_two_values_per_group():
    with pytest.raises(ValueError, match="at least two"):
        stats.welch([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least two"):
        stats.welch([1.0, np.nan], [1.0, 2.0])  # NaN dropped leaves one value


def test_welch_zero_variance_is_nan_without_warning(recwarn):
    res = stats.welch([1.0, 1.0], [1.0, 1.0]).iloc[0]
    assert np.isnan(res.t) and np.isnan(res.df) and np.isnan(res.p)
    assert not recwarn.list


def test_holm_matches_statsmodels_and_keeps_nan():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.05, 12)
    p[[2, 7]] = [0.0004, 0.9]
    ref = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(stats.holm(p), ref)
    with_nan = np.insert(p, 4, np.nan)
    out = stats.holm(with_nan)
    assert np.isnan(out[4])
    np.testing.assert_allclose(np.delete(out, 4), ref)


@pytest.mark.parametrize("seed", range(6))
def test_holm_matches_statsmodels_with_ties_caps_and_shapes(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    p = rng.choice([0.001, 0.01, 0.02, 0.3, 0.6], n) if seed % 2 else rng.uniform(0, 1, n) ** 3
    ref = multipletests(p, method="holm")[1]
    out = stats.holm(p.tolist())
    assert out.dtype == float and out.shape == p.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-15)
    assert (out <= 1).all() and (out >= p).all()
    # a 2-D input keeps its shape, and adjusts over all its cells
    if n % 2 == 0:
        two_d = stats.holm(p.reshape(2, -1))
        assert two_d.shape == (2, n // 2)
        np.testing.assert_allclose(two_d.ravel(), ref, rtol=0, atol=1e-15)


def test_holm_of_nothing_or_only_nan_is_nan():
    assert stats.holm([]).shape == (0,)
    assert np.isnan(stats.holm([np.nan, np.inf])).all()
    assert stats.holm([0.2]).tolist() == [0.2]
    assert stats.holm([0.6, 0.6]).tolist() == [1.0, 1.0]


def test_correlation_matches_scipy_with_ties_and_nans():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 6, 40).astype(float)  # ties
    y = x + rng.normal(0, 2, 40)
    x[3], y[10] = np.nan, np.inf
    res = stats.correlation(x, y).iloc[0]
    keep = np.isfinite(x) & np.isfinite(y)
    pr, sr = st.pearsonr(x[keep], y[keep]), st.spearmanr(x[keep], y[keep])
    assert res.n == 38
    assert res.r == pytest.approx(pr.statistic) and res.p_r == pytest.approx(pr.pvalue)
    assert res.rho == pytest.approx(sr.statistic) and res.p_rho == pytest.approx(sr.pvalue)


def test_correlation_constant_or_short_is_nan_without_warning(recwarn):
    assert stats.correlation([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]).iloc[0][
        ["r", "p_r", "rho", "p_rho"]].isna().all()
    assert stats.correlation([1.0, 2.0, np.nan], [2.0, 1.0, 3.0]).iloc[0][
        ["r", "p_r", "rho", "p_rho"]].isna().all()                      # two pairs left
    assert not recwarn.list


def test_correlation_hand_cases():
    res = stats.correlation([1, 2, 3, 4], [1, 3, 2, 4]).iloc[0]
    assert res.rho == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert res.r == pytest.approx(0.8)
    assert np.isnan(stats.correlation([1, 2], [2, 1]).iloc[0].r)  # n < 3
    assert np.isnan(stats.correlation([1, 1, 1], [1, 2, 3]).iloc[0].rho)  # constant


def test_rowwise_spearman_matches_scipy_loop():
    rng = np.random.default_rng(5)
    a = np.round(rng.uniform(0, 1, (50, 7)), 1)  # ties within rows
    b = np.round(a + rng.normal(0, 0.3, a.shape), 1)
    got = stats.rowwise_spearman(a, b)
    ref = [st.spearmanr(a[i], b[i]).statistic for i in range(len(a))]
    np.testing.assert_allclose(got, ref, atol=1e-12)
    np.testing.assert_allclose(stats.rowwise_pearson(a, b),
                               [st.pearsonr(a[i], b[i]).statistic for i in range(len(a))],
                               atol=1e-12)


def test_rowwise_spearman_constant_row_is_nan_without_warning(recwarn):
    a = np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [0.3, 0.2, 0.1]])
    b = np.array([[0.3, 0.2, 0.1], [0.1, 0.2, 0.3], [0.7, 0.7, 0.7]])
    out = stats.rowwise_spearman(a, b)
    assert out[0] == pytest.approx(-1.0)
    assert np.isnan(out[1]) and np.isnan(out[2])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    with pytest.raises(ValueError, match="same shape"):
        stats.rowwise_spearman(a, b[:, :2])


@pytest.mark.parametrize("k", [2, 3])
def test_kruskal_matches_scipy(k):
    rng = np.random.default_rng(6 + k)
    groups = [rng.integers(1, 6, 15 + i) for i in range(k)]  # Likert-like, many ties
    res = stats.kruskal(*groups).iloc[0]
    ref = st.kruskal(*groups)
    assert res.H == pytest.approx(ref.statistic)
    assert res.p == pytest.approx(ref.pvalue)


def test_kruskal_undefined_is_nan_without_warning(recwarn):
    assert np.isnan(stats.kruskal([2, 2, 2], [2, 2]).iloc[0].p)         # all identical
    assert np.isnan(stats.kruskal([1.0, 2.0], [np.nan]).iloc[0].p)      # empty after NaN drop
    assert not recwarn.list


def test_kruskal_drops_nan():
    a, b = [1.0, 2.0, np.nan, 4.0, 4.0], [3.0, np.inf, 5.0, 6.0]
    res = stats.kruskal(a, b).iloc[0]
    ref = st.kruskal([1.0, 2.0, 4.0, 4.0], [3.0, 5.0, 6.0])
    assert (res.H, res.p) == pytest.approx((ref.statistic, ref.pvalue))


def test_mann_whitney_u_by_loop_and_exact_p_by_enumeration():
    a, b = np.array([1.1, 3.4, 2.2, 5.0]), np.array([0.3, 0.9, 2.0, 4.1])
    res = stats.mann_whitney(a, b).iloc[0]
    u_loop = sum((x > y) + 0.5 * (x == y) for x in a for y in b)
    assert res.U == u_loop
    pooled = np.concatenate([a, b])
    us = []
    for idx in itertools.combinations(range(8), 4):
        xa = pooled[list(idx)]
        xb = np.delete(pooled, list(idx))
        us.append(sum(x > y for x in xa for y in xb))
    us = np.array(us)
    p_exact = min(1.0, 2 * min((us <= u_loop).mean(), (us >= u_loop).mean()))
    assert res.p == pytest.approx(p_exact)
    assert stats.mann_whitney([1, 1], [1, 1]).iloc[0].p == 1.0


def test_compare_groups_matches_scipy():
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"g": np.repeat([True, False], [12, 15]),
                          "x": rng.integers(1, 6, 27), "y": rng.normal(0, 1, 27)})
    out = stats.compare_groups(frame, "g", ["x", "y"])
    assert list(out["variable"]) == ["x", "y"]
    assert out["group_a"].iloc[0] is True or out["group_a"].iloc[0] == True  # noqa: E712
    for _, row in out.iterrows():
        a = frame.loc[frame.g, row.variable].astype(float)
        b = frame.loc[~frame.g, row.variable].astype(float)
        assert (row.n_a, row.n_b) == (12, 15)
        assert row.mean_a == pytest.approx(a.mean()) and row.sd_b == pytest.approx(b.std(ddof=1))
        assert row.p_kruskal == pytest.approx(st.kruskal(a, b).pvalue)
        assert row.p_welch == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue)
        assert row.p_mannwhitney == pytest.approx(
            st.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    with pytest.raises(ValueError, match="missing column"):
        stats.compare_groups(frame, "g", ["nope"])
    with pytest.raises(ValueError, match="exactly two"):
        stats.compare_groups(frame.assign(g=np.arange(27) % 3), "g", ["x"])


def test_ols_matches_numpy_lstsq():
    rng = np.random.default_rng(9)
    n = 60
    d = pd.DataFrame({"u": rng.uniform(0, 4, n), "v": rng.uniform(0, 1, n)})
    d["y"] = 0.3 + 0.2 * d.u - 0.1 * d.v - 0.3 * d.u * d.v + rng.normal(0, 0.1, n)
    out = stats.ols("y ~ u * v", d)
    X = np.column_stack([np.ones(n), d.u, d.v, d.u * d.v])
    beta, *_ = np.linalg.lstsq(X, d.y.to_numpy(), rcond=None)
    resid = d.y.to_numpy() - X @ beta
    sigma2 = resid @ resid / (n - 4)
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X)))
    p = 2 * st.t.sf(np.abs(beta / se), n - 4)
    r2 = 1 - resid @ resid / ((d.y - d.y.mean()) ** 2).sum()
    assert list(out["term"]) == ["Intercept", "u", "v", "u:v"]
    np.testing.assert_allclose(out["coef"], beta, rtol=1e-8)
    np.testing.assert_allclose(out["se"], se, rtol=1e-8)
    np.testing.assert_allclose(out["p"], p, rtol=1e-6)
    assert out.attrs["r2"] == pytest.approx(r2) and out["n"].iloc[0] == n


def test_median_iqr_matches_numpy():
    rng = np.random.default_rng(10)
    f = pd.DataFrame({"k": np.repeat([0, 1], 7), "v": rng.normal(size=14)})
    f.loc[3, "v"] = np.nan
    out = stats.median_iqr(f, ["k"], "v").set_index("k")
    for k in (0, 1):
        v = f.loc[f.k == k, "v"].dropna().to_numpy()
        assert out.loc[k, "median"] == pytest.approx(np.median(v))
        assert out.loc[k, "q25"] == pytest.approx(np.quantile(v, 0.25))
        assert out.loc[k, "q75"] == pytest.approx(np.quantile(v, 0.75))
        assert out.loc[k, "n"] == len(v)


def test_degenerate_inputs_give_the_documented_rows():
    """Empty or too-small groups, all-equal values: the same columns, NaN where undefined."""
    from scipy import stats as scs

    from prunecxr import stats as S

    empty = S.kruskal([1.0, 2.0], [])
    assert list(empty.columns) == ["H", "df", "p"] and empty["df"].item() == 1
    assert np.isnan(empty["H"].item()) and np.isnan(empty["p"].item())
    one = S.kruskal([1.0, 2.0, 3.0])
    assert list(one.columns) == ["H", "df", "p"] and one["df"].item() == 0
    tied = S.kruskal([2.0, 2.0], [2.0, 2.0, 2.0])             # H undefined: all identical
    assert list(tied.columns) == ["H", "df", "p"] and tied["df"].item() == 1
    assert np.isnan(tied["p"].item())
    singles = S.kruskal([1.0], [3.0], [2.0])                    # one value per group is fine
    ref = scs.kruskal([1.0], [3.0], [2.0])
    assert singles["H"].item() == pytest.approx(ref.statistic)
    assert singles["p"].item() == pytest.approx(ref.pvalue)

    mw = S.mann_whitney([], [1.0, 2.0])
    assert list(mw.columns) == ["U", "p"] and mw.isna().all(axis=None)
    mw = S.mann_whitney([1.0], [2.0, 3.0])                      # one value is enough
    ref = scs.mannwhitneyu([1.0], [2.0, 3.0], alternative="two-sided")
    assert (mw["U"].item(), mw["p"].item()) == pytest.approx((ref.statistic, ref.pvalue))
    eq = S.mann_whitney([4.0, 4.0, 4.0], [4.0, 4.0])
    assert list(eq.columns) == ["U", "p"] and (eq["U"].item(), eq["p"].item()) == (3.0, 1.0)

    few = S.correlation([1.0, 2.0], [2.0, 1.0])
    assert list(few.columns) == ["n", "r", "p_r", "rho", "p_rho"] and few["n"].item() == 2
    assert few[["r", "p_r", "rho", "p_rho"]].isna().all(axis=None)
    x3, y3 = [1.0, 2.0, 4.0], [1.0, 3.0, 2.0]                   # n = 3: p is defined
    c3 = S.correlation(x3, y3)
    assert c3["p_r"].item() == pytest.approx(scs.pearsonr(x3, y3).pvalue)
    assert c3["p_rho"].item() == pytest.approx(scs.spearmanr(x3, y3).pvalue)
    with pytest.raises(ValueError, match="x and y must have the same length, got 3 and 2"):
        S.correlation(x3, [1.0, 2.0])

    with warnings.catch_warnings():
        warnings.simplefilter("error")                          # the NaN policy: no warnings
        w = S.welch([1.0, 1.0], [1.0, 1.0])                     # both variances zero
        assert np.isnan(w["t"].item()) and np.isnan(w["p"].item())
        w = S.welch([0.0, 2.0], [5.0, 5.0])                     # se^2 = 1 + 0 exactly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)         # scipy: "precision loss"
        ref = scs.ttest_ind([0.0, 2.0], [5.0, 5.0], equal_var=False)
    assert w["t"].item() == pytest.approx(-4.0) == pytest.approx(ref.statistic)
    assert w["p"].item() == pytest.approx(ref.pvalue)

    adj = S.holm([0.5, 0.04, 0.6, np.nan])                      # capped at 1, NaN kept
    np.testing.assert_allclose(adj, [1.0, 0.12, 1.0, np.nan])
    np.testing.assert_allclose(S.holm([0.01]), [0.01])          # one test: unchanged


def test_ols_table_matches_statsmodels_column_by_column():
    import statsmodels.formula.api as smf

    from prunecxr import stats as S

    rng = np.random.default_rng(5)
    data = pd.DataFrame({"x": rng.normal(size=40), "z": rng.normal(size=40)})
    data["y"] = 1 + 2 * data["x"] - data["z"] + rng.normal(size=40)
    table = S.ols("y ~ x * z", data)
    fit = smf.ols("y ~ x * z", data=data).fit()
    ci = fit.conf_int()
    assert list(table.columns) == ["term", "coef", "se", "t", "p", "ci_low", "ci_high", "n",
                                   "r2", "adj_r2"]
    np.testing.assert_allclose(table["t"], fit.tvalues)
    np.testing.assert_allclose(table["ci_low"], ci[0])
    np.testing.assert_allclose(table["ci_high"], ci[1])
    assert (table["ci_low"] < table["coef"]).all() and (table["coef"] < table["ci_high"]).all()
    np.testing.assert_allclose(table["r2"], fit.rsquared)
    np.testing.assert_allclose(table["adj_r2"], fit.rsquared_adj)
    assert table.attrs["adj_r2"] == pytest.approx(fit.rsquared_adj)
    assert table.attrs["formula"] == "y ~ x * z" and table.attrs["fit"].nobs == 40


@pytest.mark.parametrize("p,text", [
    (0.0, "P < 0.001"), (1e-12, "P < 0.001"), (0.000999, "P < 0.001"),
    (0.001, "P = 0.001"), (0.0014, "P = 0.001"), (0.0016, "P = 0.002"), (0.0123, "P = 0.012"),
    (0.0449, "P = 0.045"), (0.0495, "P = 0.049"), (0.04999, "P = 0.049"), (0.05, "P = 0.050"),
    (0.3456, "P = 0.346"), (0.9996, "P = 1.000"), (1.0, "P = 1.000"),
    (np.float32(0.25), "P = 0.250"), (np.nan, "P = n/a"), (None, "P = n/a"), (pd.NA, "P = n/a"),
])
def test_format_p(p, text):
    assert stats.format_p(p) == text


def test_format_p_below_alpha_never_reads_as_alpha():
    """Three decimals, yet a P below 0.05 (or 0.001) is never printed as that threshold."""
    for p in np.linspace(0.0009, 0.06, 20001):
        text = stats.format_p(p)
        if p < 0.05:
            assert text != "P = 0.050", p
        if p < 0.001:
            assert text == "P < 0.001", p
        else:
            error = abs(float(text.removeprefix("P = ")) - p)
            assert error <= (0.001 if 0.0495 <= p < 0.05 else 0.0005 + 1e-12), p


@pytest.mark.parametrize("p", [-0.01, 1.01, np.inf])
def test_format_p_rejects_non_probabilities(p):
    with pytest.raises(ValueError, match="must lie in"):
        stats.format_p(p)


def test_median_iqr_groups_in_sorted_order_with_every_column():
    frame = pd.DataFrame({"m": ["b", "a", "b", "a", "b"], "v": [3.0, 1.0, 5.0, np.nan, 4.0]})
    out = stats.median_iqr(frame, ["m"], "v")
    assert list(out.columns) == ["m", "median", "q25", "q75", "mean", "n"]
    assert list(out["m"]) == ["a", "b"]                      # sorted, not first seen
    b = np.array([3.0, 5.0, 4.0])
    assert out.iloc[1][["median", "q25", "q75", "mean", "n"]].tolist() == [
        4.0, np.percentile(b, 25), np.percentile(b, 75), 4.0, 3]
    with pytest.raises(ValueError) as caught:
        stats.median_iqr(frame, ["m"], "w")
    assert str(caught.value) == "frame is missing column(s) ['w']; it has ['m', 'v']"


@pytest.mark.parametrize("call, name", [
    (lambda f: stats.compare_groups(f, "g", ["x"]), "frame"),
    (lambda f: stats.median_iqr(f, ["g"], "x"), "frame"),
])
def test_a_missing_column_names_the_parameter(call, name):
    with pytest.raises(ValueError) as caught:
        call(pd.DataFrame({"other": [1]}))
    assert str(caught.value).startswith(f"{name} is missing column(s) [")


def test_compare_groups_small_groups_attrs_and_named_groups():
    """One value in a group: its SD and Welch's P are NaN, the rest computed; values read as
    floats (booleans as 0/1); the group column is kept in attrs; groups that are not two
    values are named."""
    frame = pd.DataFrame({"g": ["a", "b", "b", "b"], "x": [True, False, True, True]})
    out = stats.compare_groups(frame, "g", ["x"], groups=("a", "b"))
    row = out.iloc[0]
    assert list(out.columns) == ["variable", "group_a", "group_b", "n_a", "mean_a", "sd_a",
                                 "n_b", "mean_b", "sd_b", "p_kruskal", "p_welch", "p_mannwhitney"]
    assert (row.group_a, row.group_b, row.n_a, row.n_b) == ("a", "b", 1, 3)
    assert row.mean_a == 1.0 and np.isnan(row.sd_a) and np.isnan(row.p_welch)
    assert row.mean_b == pytest.approx(2 / 3) and row.sd_b == pytest.approx(np.std([0, 1, 1],
                                                                                 ddof=1))
    assert out.attrs["group_col"] == "g"
    two = stats.compare_groups(frame.assign(g=["a", "a", "b", "b"]), "g", ["x"], ("a", "b"))
    assert two.iloc[0].sd_a == pytest.approx(np.std([1, 0], ddof=1))   # two values: defined
    none = stats.compare_groups(frame, "g", ["x"], groups=("a", "zzz")).iloc[0]
    assert none.n_b == 0 and np.isnan(none.mean_b) and np.isnan(none.sd_b)
    with pytest.raises(ValueError) as caught:
        stats.compare_groups(frame, "g", ["x"], groups=("a",))
    assert str(caught.value) == "groups must name two values of 'g', got ('a',)"


def test_kruskal_and_mann_whitney_rows_on_edges_quietly():
    """The computed rows have the documented columns (Kruskal's df = groups - 1); a single
    value in the second group is enough; 0/1 data (a range of exactly 1) is tested, not taken
    as all equal; an empty group is NaN without scipy's small-sample warning."""
    row = stats.kruskal([1.0, 2.0, 4.0], [3.0, 5.0], [0.5, 6.0])
    assert list(row.columns) == ["H", "df", "p"] and row["df"].item() == 2
    w = stats.welch([1.0, 2.0, 4.0], [3.0, 5.0])
    assert list(w.columns) == ["n_a", "n_b", "mean_a", "mean_b", "t", "df", "p"]
    assert w["mean_b"].item() == 4.0
    ref = st.mannwhitneyu([1.0, 2.0, 3.0], [2.5], alternative="two-sided")
    one = stats.mann_whitney([1.0, 2.0, 3.0], [2.5])
    assert (one["U"].item(), one["p"].item()) == pytest.approx((ref.statistic, ref.pvalue))
    a, b = [0, 0, 0, 1], [1, 1, 1, 1, 0]
    ref = st.mannwhitneyu(a, b, alternative="two-sided")
    binary = stats.mann_whitney(a, b)
    assert (binary["U"].item(), binary["p"].item()) == pytest.approx((ref.statistic, ref.pvalue))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stats.mann_whitney([], [1.0, 2.0]).isna().all(axis=None)
        assert stats.mann_whitney([1.0, 2.0], [np.nan]).isna().all(axis=None)


def test_compare_groups_undefined_summaries_are_nan_without_a_warning():
    """An empty group's mean and SD, and a one-value group's SD, are NaN quietly (the NaN
    policy); two values in either group give a sample SD."""
    frame = pd.DataFrame({"g": ["a", "b", "b", "c", "c", "c"], "x": [1.0, 2.0, 4.0, 0.0, 1.0, 5.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = {groups: stats.compare_groups(frame, "g", ["x"], groups=groups).iloc[0]
                for groups in (("zzz", "a"), ("a", "zzz"), ("c", "b"))}
    for row, empty, lone in ((rows[("zzz", "a")], "a", "b"), (rows[("a", "zzz")], "b", "a")):
        assert row[f"n_{empty}"] == 0 and row[[f"mean_{empty}", f"sd_{empty}"]].isna().all()
        assert row[f"mean_{lone}"] == 1.0 and np.isnan(row[f"sd_{lone}"])   # one value: a
    assert rows[("c", "b")]["sd_b"] == pytest.approx(np.std([2.0, 4.0], ddof=1))
    assert rows[("c", "b")]["sd_a"] == pytest.approx(np.std([0.0, 1.0, 5.0], ddof=1))


def test_booleans_are_read_as_zero_one_and_float32_rows_in_float64():
    """The tests and correlations read booleans as 0/1 (as compare_groups does), 0/1 data
    included (a range of exactly 1 is not constant); row-wise correlations of float32 rows
    (model outputs) are computed in float64: the float64 copy's result, exactly."""
    rng = np.random.default_rng(11)
    a, b = rng.random(12) < 0.3, rng.random(9) < 0.7
    for test in (stats.mann_whitney, stats.kruskal, stats.welch):
        pd.testing.assert_frame_equal(test(a, b), test(a.astype(float), b.astype(float)))
    x = rng.normal(size=12)
    for y in (a, a.astype(float)):
        got = stats.correlation(x, y).iloc[0]
        ref = st.pearsonr(x, a.astype(float))
        assert (got.r, got.p_r) == pytest.approx((ref.statistic, ref.pvalue))
    pd.testing.assert_frame_equal(stats.correlation(a, x), stats.correlation(a.astype(float), x))
    p, q = rng.random((6, 9)).astype(np.float32), rng.random((6, 9)).astype(np.float32)
    wide_p, wide_q = p.astype(np.float64), q.astype(np.float64)
    np.testing.assert_array_equal(stats.rowwise_pearson(p, wide_q),
                                  stats.rowwise_pearson(wide_p, wide_q))
    np.testing.assert_array_equal(stats.rowwise_pearson(wide_p, q),
                                  stats.rowwise_pearson(wide_p, wide_q))


def test_rowwise_correlations_refuse_nan_or_inf_in_either_array():
    a = np.array([[0.1, 0.2, 0.3], [0.3, 0.1, 0.2]])
    for bad_a, bad_b in ((a, np.where(a > 0.25, np.nan, a)), (np.where(a > 0.25, np.inf, a), a)):
        for fn in (stats.rowwise_spearman, stats.rowwise_pearson):
            with pytest.raises(ValueError, match=r"^a and b must be finite \(no NaN or inf\)$"):
                fn(bad_a, bad_b)


def test_rowwise_pearson_of_exact_lines_stays_within_one_and_table_checks_named():
    """Rows that are exact lines of each other correlate +-1, never beyond (rounding alone
    would give 1 + 4e-16); ols keeps n in attrs; a table that is not a DataFrame, or lacks a
    column without a name given, is refused naming it."""
    a = np.random.default_rng(0).random((200, 7))
    for sign in (1.0, -1.0):
        r = stats.rowwise_pearson(a, sign * 3.0 * a + 1.0)
        assert np.all(np.abs(r) <= 1.0) and r == pytest.approx(np.full(200, sign))
    d = pd.DataFrame({"u": np.arange(8.0), "y": np.arange(8.0) ** 1.5})
    assert stats.ols("y ~ u", d).attrs["n"] == 8
    with pytest.raises(TypeError, match="^table must be a pandas DataFrame, got list$"):
        stats.require_columns([1, 2], ["x"], "table")
    with pytest.raises(ValueError, match=r"^frame is missing column\(s\) \['x'\]"):
        stats.require_columns(d, ["x"])
