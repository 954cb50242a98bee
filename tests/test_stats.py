"""prunecxr.stats against independent implementations (scipy, statsmodels, numpy, loops)."""

import itertools

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


def test_welch_needs_two_values_per_group():
    with pytest.raises(ValueError, match="at least two"):
        stats.welch([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least two"):
        stats.welch([1.0, np.nan], [1.0, 2.0])  # NaN dropped leaves one value


def test_welch_zero_variance_is_nan():
    res = stats.welch([1.0, 1.0], [1.0, 1.0]).iloc[0]
    assert np.isnan(res.t) and np.isnan(res.p)


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
                               [np.corrcoef(a[i], b[i])[0, 1] for i in range(len(a))], atol=1e-12)


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


def test_kruskal_all_identical_is_nan():
    assert np.isnan(stats.kruskal([2, 2, 2], [2, 2]).iloc[0].p)


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
