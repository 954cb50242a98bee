"""Statistics helpers, in one place: tests, correlations, multiple-testing correction, OLS.

Each test returns a tidy one-row ``pandas.DataFrame`` (the pingouin convention), so results of
many calls concatenate into one table. Welch, Pearson, Spearman, Kruskal-Wallis and Holm are
written out here from their textbook formulas (a few lines each) so that the unit tests can check
them against scipy and statsmodels as independent implementations; Mann-Whitney's exact
distribution is taken from scipy (and checked in the tests by enumerating permutations).
"""

from __future__ import annotations

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
    """Welch's unequal-variance t-test of mean(a) vs mean(b) (two-sided), NaNs dropped.

    Returns one row: n_a, n_b, mean_a, mean_b, t, df, p. t > 0 when mean(a) > mean(b).
    Raises ValueError when either group has fewer than two values (the variance, and so the
    test, is undefined). When both variances are zero, t and p are NaN.
    """
    a, b = _finite(a), _finite(b)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"Welch's t-test needs at least two values per group (got n_a={len(a)}, "
            f"n_b={len(b)}); with one seed per group, train a population of two or more seeds"
        )
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se2 = va + vb
    if se2 == 0:
        t = df = p = np.nan
    else:
        t = (a.mean() - b.mean()) / np.sqrt(se2)
        df = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
        p = 2 * _st.t.sf(abs(t), df)
    return pd.DataFrame([{"n_a": len(a), "n_b": len(b), "mean_a": a.mean(), "mean_b": b.mean(),
                          "t": t, "df": df, "p": p}])


def kruskal(*groups) -> pd.DataFrame:
    """Kruskal-Wallis H test (chi-square approximation, tie-corrected), NaNs dropped.

    Returns one row: H, df, p. p is NaN when all values are identical (H undefined) or a group
    is empty.
    """
    groups = [_finite(g) for g in groups]
    if len(groups) < 2 or any(len(g) == 0 for g in groups):
        return pd.DataFrame([{"H": np.nan, "df": len(groups) - 1, "p": np.nan}])
    pooled = np.concatenate(groups)
    n = len(pooled)
    ranks = _st.rankdata(pooled)
    _, ties = np.unique(pooled, return_counts=True)
    correction = 1 - (ties ** 3 - ties).sum() / (n ** 3 - n) if n > 1 else 0.0
    if correction == 0:
        return pd.DataFrame([{"H": np.nan, "df": len(groups) - 1, "p": np.nan}])
    bounds = np.cumsum([0] + [len(g) for g in groups])
    h = sum(ranks[lo:hi].sum() ** 2 / (hi - lo) for lo, hi in zip(bounds[:-1], bounds[1:]))
    h = (12 / (n * (n + 1)) * h - 3 * (n + 1)) / correction
    dof = len(groups) - 1
    return pd.DataFrame([{"H": h, "df": dof, "p": _st.chi2.sf(h, dof)}])


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
    """Holm-Bonferroni step-down adjusted p-values (same order as ``p``; NaNs stay NaN and are
    not counted among the tests)."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


# ---------------------------------------------------------------------------------------------
# Correlations
# ---------------------------------------------------------------------------------------------

def _pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(), y - y.mean()
    den = np.sqrt((xc ** 2).sum() * (yc ** 2).sum())
    return float((xc * yc).sum() / den) if den > 0 else np.nan


def _r_pvalue(r: float, n: int) -> float:
    """Two-sided p of a correlation coefficient under H0 (t distribution with n - 2 df)."""
    if not np.isfinite(r) or n < 3:
        return np.nan
    if abs(r) >= 1:
        return 0.0
    t = r * np.sqrt((n - 2) / (1 - r * r))
    return float(2 * _st.t.sf(abs(t), n - 2))


def correlation(x, y) -> pd.DataFrame:
    """Pearson r and Spearman rho of two samples, pairs with a NaN/inf in either dropped.

    Returns one row: n (pairs used), r, p_r, rho, p_rho. Both p-values are two-sided from the
    t distribution with n - 2 degrees of freedom (scipy's default for Pearson and Spearman).
    Fewer than three pairs, or a constant sample, give NaN.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3:
        return pd.DataFrame([{"n": n, "r": np.nan, "p_r": np.nan, "rho": np.nan, "p_rho": np.nan}])
    r = _pearson_r(x, y)
    rho = _pearson_r(_st.rankdata(x), _st.rankdata(y))
    return pd.DataFrame([{"n": n, "r": r, "p_r": _r_pvalue(r, n),
                          "rho": rho, "p_rho": _r_pvalue(rho, n)}])


def rowwise_pearson(a, b) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (shape (n, C) each).

    A row in which either vector is constant has no defined correlation: NaN, explicitly
    (no division warning).
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
    """Spearman rank correlation of each row of ``a`` with the same row of ``b``, vectorised.

    Rows are ranked with average ranks for ties (``scipy.stats.rankdata(axis=1)``, as
    ``scipy.stats.spearmanr`` does), then correlated with :func:`rowwise_pearson`. A row where
    either vector is constant (all ranks tied) gives NaN.
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
