"""Statistics helpers, in one place: tests, correlations, multiple-testing correction, OLS, and
the one P-value formatter of the project.

The tests themselves are scipy's and statsmodels' (``ttest_ind(equal_var=False)``,
``kruskal``, ``mannwhitneyu``, ``pearsonr``, ``spearmanr``, ``ols``; Holm's step-down is
computed here and checked against ``multipletests(method="holm")``). What this module adds
on top is the project's NaN policy (NaN/inf values are dropped; an undefined test gives NaN,
without a warning, instead of raising) and a tidy one-row ``pandas.DataFrame`` per test (the
pingouin convention), so results of many calls concatenate into one table. The row-wise
correlations are vectorised here because they are several times faster than scipy's
``pearsonr(axis=1)`` on a test set's worth of rows; the tests check them against scipy.
"""

from __future__ import annotations

import warnings
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st


def require_columns(frame: pd.DataFrame, columns: Iterable[str], name: str = "frame") -> None:
    """Raise a ValueError naming the parameter and the missing columns, if any are missing."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; it has {list(frame.columns)}")


def _finite(x) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    return x[np.isfinite(x)]


# ---------------------------------------------------------------------------------------------
# Two-sample tests
# ---------------------------------------------------------------------------------------------

def welch(a, b) -> pd.DataFrame:
    """Welch's unequal-variance t-test of mean(a) vs mean(b) (two-sided), NaNs dropped:
    ``scipy.stats.ttest_ind(a, b, equal_var=False)``.

    Returns one row: n_a, n_b, mean_a, mean_b, t, df, p. t > 0 when mean(a) > mean(b).
    Raises ValueError when either group has fewer than two values (the variance, and so the
    test, is undefined). When both variances are zero, t, df and p are NaN.
    """
    a, b = _finite(a), _finite(b)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"Welch's t-test needs at least two values per group (got n_a={len(a)}, "
            f"n_b={len(b)}); with one seed per group, train a population of two or more seeds"
        )
    constant = np.ptp(a) == 0, np.ptp(b) == 0
    if all(constant):  # se = 0: scipy warns and reports df = 1
        t = df = p = np.nan
    else:
        with warnings.catch_warnings():
            if any(constant):  # a variance of exactly 0 is no "precision loss"
                warnings.simplefilter("ignore", RuntimeWarning)
            res = _st.ttest_ind(a, b, equal_var=False)
        t, df, p = float(res.statistic), float(res.df), float(res.pvalue)
    return pd.DataFrame([{"n_a": len(a), "n_b": len(b), "mean_a": a.mean(), "mean_b": b.mean(),
                          "t": t, "df": df, "p": p}])


def kruskal(*groups) -> pd.DataFrame:
    """Kruskal-Wallis H test, ``scipy.stats.kruskal`` (chi-square approximation,
    tie-corrected), NaNs dropped.

    Returns one row: H, df, p. H and p are NaN, without a warning, when fewer than two groups
    are given, a group is empty or all values are identical (H undefined).
    """
    groups = [_finite(g) for g in groups]
    dof = len(groups) - 1
    if dof < 1 or any(len(g) == 0 for g in groups) or np.ptp(np.concatenate(groups)) == 0:
        return pd.DataFrame([{"H": np.nan, "df": dof, "p": np.nan}])
    res = _st.kruskal(*groups)
    return pd.DataFrame([{"H": float(res.statistic), "df": dof, "p": float(res.pvalue)}])


def mann_whitney(a, b) -> pd.DataFrame:
    """Two-sided Mann-Whitney U test (scipy's ``method="auto"``: exact for small samples
    without ties, else normal approximation with tie and continuity correction).

    Returns one row: U (statistic of ``a``), p. NaN when a group is empty.
    """
    a, b = _finite(a), _finite(b)
    if len(a) == 0 or len(b) == 0:
        return pd.DataFrame([{"U": np.nan, "p": np.nan}])
    if np.ptp(np.concatenate([a, b])) == 0:  # all equal: no evidence of a difference
        return pd.DataFrame([{"U": len(a) * len(b) / 2, "p": 1.0}])
    res = _st.mannwhitneyu(a, b, alternative="two-sided")
    return pd.DataFrame([{"U": float(res.statistic), "p": float(res.pvalue)}])


def holm(p) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values in the order of ``p``; NaNs stay NaN and
    are not counted among the tests.

    The same numbers as statsmodels' ``multipletests(method="holm")`` (the tests compare
    them), computed here because that function runs ``gc.collect()`` on every call (about
    50 ms), and every Welch table and paired comparison adjusts its P values.
    """
    p = np.asarray(p, dtype=float)
    flat, out = p.ravel(), np.full(p.size, np.nan)
    ok = np.flatnonzero(np.isfinite(flat))
    order = ok[np.argsort(flat[ok], kind="stable")]
    stepped = np.maximum.accumulate(flat[order] * np.arange(len(order), 0, -1))
    out[order] = np.minimum(stepped, 1.0)
    return out.reshape(p.shape)


# ---------------------------------------------------------------------------------------------
# Correlations
# ---------------------------------------------------------------------------------------------

def correlation(x, y) -> pd.DataFrame:
    """Pearson r and Spearman rho of two samples (``scipy.stats.pearsonr``, ``spearmanr``),
    pairs with a NaN/inf in either dropped.

    Returns one row: n (pairs used), r, p_r, rho, p_rho, both p two-sided. Fewer than three
    pairs, or a constant sample, give NaN without a warning.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return pd.DataFrame([{"n": n, "r": np.nan, "p_r": np.nan, "rho": np.nan, "p_rho": np.nan}])
    pr, sr = _st.pearsonr(x, y), _st.spearmanr(x, y)
    return pd.DataFrame([{"n": n, "r": float(pr.statistic), "p_r": float(pr.pvalue),
                          "rho": float(sr.statistic), "p_rho": float(sr.pvalue)}])


def rowwise_pearson(a, b) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (shape (n, C) each),
    as ``scipy.stats.pearsonr(a, b, axis=1)`` but several times faster.

    A row in which either vector is constant has no defined correlation: NaN, without a warning.
    """
    a, b = _paired_rows(a, b)
    ac = a - a.mean(axis=1, keepdims=True)
    bc = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((ac ** 2).sum(axis=1) * (bc ** 2).sum(axis=1))
    num = (ac * bc).sum(axis=1)
    out = np.full(len(a), np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return np.clip(out, -1.0, 1.0)


def _paired_rows(a, b) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as finite 2-D float arrays of one shape, or a ValueError saying why not."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"a and b must be 2-D arrays of the same shape, got {a.shape} and "
                         f"{b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite (no NaN or inf)")
    return a, b


def rowwise_spearman(a, b) -> np.ndarray:
    """Spearman rank correlation of each row of ``a`` with the same row of ``b``: average ranks
    (``scipy.stats.rankdata(axis=1)``, as ``spearmanr`` ranks) correlated by
    :func:`rowwise_pearson`. A row where either vector is constant gives NaN.
    """
    a, b = _paired_rows(a, b)
    return rowwise_pearson(_st.rankdata(a, axis=1), _st.rankdata(b, axis=1))


# ---------------------------------------------------------------------------------------------
# Group comparisons and regression
# ---------------------------------------------------------------------------------------------

def compare_groups(frame: pd.DataFrame, group_col: str, value_cols: Sequence[str],
                   groups: tuple | None = None) -> pd.DataFrame:
    """Compare two groups of rows on each value column.

    ``groups=(a, b)`` names the two values of ``group_col`` to compare (default: the two distinct
    values, sorted descending so that ``True``/1 comes first). Returns one row per value column:
    variable, group_a, group_b, n_a, mean_a, sd_a, n_b, mean_b, sd_b (sample SD, ddof=1),
    p_kruskal, p_welch, p_mannwhitney (all two-sided; NaN where a test is undefined, e.g. fewer
    than two values in a group for Welch). Booleans are treated as 0/1, so a mean is a proportion.
    """
    require_columns(frame, [group_col, *value_cols], "frame")
    if groups is None:
        values = pd.unique(frame[group_col].dropna())
        if len(values) != 2:
            raise ValueError(f"group_col {group_col!r} must have exactly two values, "
                             f"got {list(values)}")
        groups = tuple(sorted(values, reverse=True))
    if len(groups) != 2:
        raise ValueError(f"groups must name two values of {group_col!r}, got {groups!r}")
    ga, gb = groups
    rows = []
    for col in value_cols:
        a = frame.loc[frame[group_col] == ga, col].astype(float).to_numpy()
        b = frame.loc[frame[group_col] == gb, col].astype(float).to_numpy()
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        try:
            p_welch = welch(a, b)["p"].iloc[0]
        except ValueError:
            p_welch = np.nan
        rows.append({
            "variable": col, "group_a": ga, "group_b": gb,
            "n_a": len(a), "mean_a": a.mean() if len(a) else np.nan,
            "sd_a": a.std(ddof=1) if len(a) > 1 else np.nan,
            "n_b": len(b), "mean_b": b.mean() if len(b) else np.nan,
            "sd_b": b.std(ddof=1) if len(b) > 1 else np.nan,
            "p_kruskal": kruskal(a, b)["p"].iloc[0],
            "p_welch": p_welch,
            "p_mannwhitney": mann_whitney(a, b)["p"].iloc[0],
        })
    out = pd.DataFrame(rows)
    out.attrs["group_col"] = group_col
    return out


def ols(formula: str, data: pd.DataFrame) -> pd.DataFrame:
    """Ordinary least squares with a statsmodels/patsy formula, as a tidy coefficient table.

    Columns: term, coef, se, t, p, ci_low, ci_high (95%), and the fit-level n, r2, adj_r2
    repeated on every row (so they survive concatenation); the same three, the formula and the
    fitted statsmodels result (``attrs["fit"]``) are also in ``attrs``.
    """
    import statsmodels.formula.api as smf

    fit = smf.ols(formula, data=data).fit()
    ci = fit.conf_int()
    out = pd.DataFrame({
        "term": list(fit.params.index), "coef": fit.params.to_numpy(), "se": fit.bse.to_numpy(),
        "t": fit.tvalues.to_numpy(), "p": fit.pvalues.to_numpy(),
        "ci_low": ci[0].to_numpy(), "ci_high": ci[1].to_numpy(),
    })
    out["n"] = int(fit.nobs)
    out["r2"] = fit.rsquared
    out["adj_r2"] = fit.rsquared_adj
    out.attrs.update(n=int(fit.nobs), r2=fit.rsquared, adj_r2=fit.rsquared_adj,
                     formula=formula, fit=fit)
    return out


def median_iqr(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """Median and interquartile range (linear-interpolated q25, q75) of ``value`` per group,
    NaNs skipped; columns ``*by``, median, q25, q75, mean, n (non-NaN values)."""
    require_columns(frame, [*by, value], "frame")
    g = frame.groupby(list(by), sort=True)[value]
    out = pd.DataFrame({
        "median": g.median(), "q25": g.quantile(0.25), "q75": g.quantile(0.75),
        "mean": g.mean(), "n": g.count(),
    })
    return out.reset_index()


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

def format_p(p) -> str:
    """A P value as the book prints it: ``"P < 0.001"`` below 0.001, else ``"P = "`` and three
    decimals (``"P = 0.042"``, ``"P = 1.000"``), except that a P below 0.05 never reads 0.050
    (``"P = 0.049"`` for 0.0495 <= P < 0.05); ``"P = n/a"`` for None or NaN.

    Raises ValueError for a value outside [0, 1] (not a probability).
    """
    if p is None or pd.isna(p):
        return "P = n/a"
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a P value must lie in [0, 1], got {p!r}")
    if p < 0.001:
        return "P < 0.001"
    return "P = 0.049" if 0.0495 <= p < 0.05 else f"P = {p:.3f}"
