"""Q1: what is the impact of pruning on overall performance?

mAP of each pruned model, its median and IQR over the population per sparsity, Welch's t-test of
dense vs k-sparse mAP per k (paper: first significant drop at k = 0.65 NIH, 0.60 MIMIC, P < 0.001),
and the distribution of trained weight magnitudes (paper: over half under 0.01).

Beside the paper's statistics, the ones that fit this design (the claims' verdicts use these):

- :func:`paired_by_sparsity`: each pruned model against its own dense model (same seed), a
  two-sided paired t-test per k with Holm over the levels tested, and the effect size, the
  relative mAP change (sparse/dense - 1 per seed) with its t-interval over seeds
  (:func:`t_interval`; its coverage by simulation: :func:`t_interval_coverage`);
- :func:`fraction_below_sd`: the share of weights below a fixed fraction of their own layer's
  standard deviation, which, unlike an absolute threshold, does not depend on the weights' scale.

All inputs are the store's tidy ``ap_table`` (columns method, seed, sparsity, class, ap).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as st

from ..stats import holm, median_iqr, require_columns, welch

AP_COLUMNS = ("method", "seed", "sparsity", "class", "ap")


def is_dense(sparsity) -> np.ndarray:
    """True where a sparsity is 0 (the uncompressed model), float-tolerant."""
    return np.isclose(np.asarray(sparsity, dtype=float), 0.0)


def select_method(frame: pd.DataFrame, method: str | None, name: str = "frame") -> pd.DataFrame:
    """Rows of one pruning method. ``method=None`` is allowed only when there is one method."""
    require_columns(frame, ["method"], name)
    methods = list(pd.unique(frame["method"]))
    if method is None:
        if len(methods) != 1:
            raise ValueError(f"{name} holds methods {methods}; pass method= to choose one")
        method = methods[0]
    if method not in methods:
        raise ValueError(f"method {method!r} not in {name}; available: {methods}")
    return frame[frame["method"] == method]


def map_per_model(ap_table: pd.DataFrame) -> pd.DataFrame:
    """mAP of every model: nan-mean of AP over classes per (method, seed, sparsity).

    Returns columns method, seed, sparsity, map, n_classes (classes with a defined AP). Classes
    whose AP is NaN (no positives in the test split) are left out of the mean, with one warning
    naming them.
    """
    require_columns(ap_table, AP_COLUMNS, "ap_table")
    missing = sorted(ap_table.loc[ap_table["ap"].isna(), "class"].unique())
    if missing:
        warnings.warn(f"mAP excludes {len(missing)} class(es) with undefined AP (no test "
                      f"positives): {missing}", stacklevel=2)
    g = ap_table.groupby(["method", "seed", "sparsity"], sort=True)["ap"]
    return pd.DataFrame({"map": g.mean(), "n_classes": g.count()}).reset_index()


def _as_map_table(table: pd.DataFrame, name: str) -> pd.DataFrame:
    if "map" in table.columns:
        require_columns(table, ("method", "seed", "sparsity", "map"), name)
        return table
    return map_per_model(table)


def overall_map(table: pd.DataFrame) -> pd.DataFrame:
    """Population summary of mAP per (method, sparsity): median, q25, q75 over seeds.

    ``table`` is either the ``ap_table`` or the output of :func:`map_per_model` (recognised by
    its ``map`` column). Returns columns method, sparsity, median, q25, q75, mean, n (seeds).
    The paper's Fig. 1 (left) plots the median; the IQR is the band.
    """
    return median_iqr(_as_map_table(table, "table"), ["method", "sparsity"], "map")


def _method_and_dense(table: pd.DataFrame, method: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mAP rows of ``method``, its dense models): the method's own k = 0 rows or, if it has
    none, the table's k = 0 rows (the uncompressed model does not depend on the method)."""
    maps = _as_map_table(table, "table")
    rows = select_method(maps, method, "table")
    dense = rows[is_dense(rows["sparsity"])]
    if dense.empty:
        dense = maps[is_dense(maps["sparsity"])].drop_duplicates("seed")
    if dense.empty:
        raise ValueError("table has no dense (sparsity 0) models to compare against")
    return rows, dense


def welch_by_sparsity(table: pd.DataFrame, alpha: float = 0.001, method: str = "l1",
                      adjust: str | None = None) -> pd.DataFrame:
    """Welch's t-test of dense (k = 0) vs k-sparse mAP over seeds, for each k > 0 of one method.

    ``table`` is the ``ap_table`` or a :func:`map_per_model` table. Returns columns method,
    sparsity, n_dense, n_sparse, mean_dense, mean_sparse, diff (sparse - dense), t (dense minus
    sparse, so a drop gives t > 0), df, p, p_holm (Holm-adjusted across the sparsities tested),
    significant. ``significant`` is ``p < alpha`` by default (``adjust=None``: unadjusted, as the
    paper did) or ``p_holm < alpha`` with ``adjust="holm"``; ``attrs`` record alpha and adjust.
    The dense models are the method's own k = 0 rows, or, if it has none, the k = 0 rows of the
    table (the uncompressed model does not depend on the pruning method).
    Raises ValueError with fewer than two seeds in a group.
    """
    if adjust not in (None, "holm"):
        raise ValueError(f"adjust must be None or 'holm', got {adjust!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    rows, dense = _method_and_dense(table, method)
    if dense["map"].notna().sum() < 2:
        raise ValueError("welch_by_sparsity needs at least two seeds per group (dense and each "
                         f"sparsity); table has {dense['map'].notna().sum()} dense model(s)")
    out = []
    for k, grp in rows[~is_dense(rows["sparsity"])].groupby("sparsity", sort=True):
        res = welch(dense["map"], grp["map"]).iloc[0]
        out.append({"method": method, "sparsity": k,
                    "n_dense": int(res.n_a), "n_sparse": int(res.n_b),
                    "mean_dense": res.mean_a, "mean_sparse": res.mean_b,
                    "diff": res.mean_b - res.mean_a, "t": res.t, "df": res.df, "p": res.p})
    out = pd.DataFrame(out)
    if out.empty:
        raise ValueError(f"table has no sparsity > 0 for method {method!r}")
    out["p_holm"] = holm(out["p"])
    used = out["p_holm"] if adjust == "holm" else out["p"]
    out["significant"] = used < alpha
    out.attrs.update(alpha=alpha, adjust=adjust)
    return out


def first_significant_drop(welch_table: pd.DataFrame, use: str = "p",
                           alpha: float | None = None) -> float:
    """Smallest sparsity whose mAP is significantly *lower* than the dense models' (NaN if none).

    ``use`` picks the p-value column ("p", unadjusted as in the paper, or "p_holm"); ``alpha``
    defaults to the one recorded by :func:`welch_by_sparsity` (else 0.001).
    """
    if use not in ("p", "p_holm"):
        raise ValueError(f"use must be 'p' or 'p_holm', got {use!r}")
    require_columns(welch_table, ["sparsity", "mean_dense", "mean_sparse", use], "welch_table")
    alpha = welch_table.attrs.get("alpha", 0.001) if alpha is None else alpha
    drop = (welch_table["mean_sparse"] < welch_table["mean_dense"]) & (welch_table[use] < alpha)
    ks = welch_table.loc[drop, "sparsity"]
    return float(ks.min()) if len(ks) else float("nan")


def weight_magnitudes(weights, bins: int | np.ndarray = 60) -> pd.DataFrame:
    """Histogram of |w| on a log10 scale (the paper's Fig. 1, right).

    ``bins`` is a number of equal-width bins in log10|w| spanning the nonzero magnitudes, or an
    array of log10 bin edges. Exact zeros (already pruned weights) have no logarithm: they are
    left out and counted in ``attrs["n_zero"]``. Columns: log10_left, log10_right, left, right
    (|w| units), count, fraction (of all weights, zeros included in the denominator).
    """
    mag = np.abs(np.asarray(weights, dtype=np.float64).ravel())
    if mag.size == 0:
        raise ValueError("weights is empty")
    if not np.isfinite(mag).all():
        raise ValueError("weights contains NaN or inf")
    nz = mag[mag > 0]
    logs = np.log10(nz)
    if np.ndim(bins) == 0:
        if int(bins) < 1:
            raise ValueError(f"bins must be a positive integer or an array of edges, got {bins!r}")
        lo, hi = (np.floor(logs.min()), np.ceil(logs.max())) if len(logs) else (-1.0, 0.0)
        edges = np.linspace(lo, hi if hi > lo else lo + 1, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=float)
    counts, edges = np.histogram(logs, bins=edges)
    out = pd.DataFrame({"log10_left": edges[:-1], "log10_right": edges[1:],
                        "left": 10 ** edges[:-1], "right": 10 ** edges[1:],
                        "count": counts, "fraction": counts / mag.size})
    out.attrs.update(n=int(mag.size), n_zero=int(mag.size - nz.size))
    return out


def fraction_below(weights, threshold: float = 0.01) -> float:
    """Fraction of weights with |w| < threshold (paper: over half under 0.01)."""
    mag = np.abs(np.asarray(weights, dtype=np.float64).ravel())
    if mag.size == 0:
        raise ValueError("weights is empty")
    return float((mag < threshold).mean())


def first_drops(maps: pd.DataFrame, methods, alpha: float = 0.001) -> dict[str, float]:
    """The first significant drop (:func:`first_significant_drop`) of each method that has
    enough seeds for Welch's test (methods with too few are left out)."""
    drops = {}
    for method in methods:
        try:
            drops[method] = first_significant_drop(welch_by_sparsity(maps, alpha=alpha,
                                                                     method=method))
        except ValueError:
            continue
    return drops


def random_control_sentence(maps: pd.DataFrame, methods, at: float, level: float = 0.05,
                            confidence: float = 0.95) -> str:
    """What the random-pruning control says about magnitude, computed rather than assumed:
    the relative mAP change of random and of L1 pruning at sparsity ``at`` (each pruned model
    against its own dense model), and their difference paired by seed with its t-interval
    (:func:`method_difference`). Random pruning "loses more" only when the interval of the
    difference lies below 0; L1 "loses more" only when it lies above; otherwise the build cannot
    tell them apart. Also the first paired drop (Holm, ``level``) of each method."""
    if not {"l1", "random"} <= set(methods):
        return ("this build ran only " + ", ".join(methods) + " pruning, so there is no "
                "comparison (add methods=l1,random to the overrides).")
    firsts = {}
    for m in ("l1", "random"):
        try:
            table = paired_by_sparsity(maps, level=level, method=m)
        except ValueError:
            firsts[m] = "not tested"
            continue
        k = first_paired_drop(table)
        firsts[m] = (f"k = {k:.2f}" if np.isfinite(k) else "not reached within the grid"
                     if table["p"].notna().any() else "not tested (fewer than two seeds)")
    lead = (f"the first drop by the paired test (Holm, P < {level:g}) is {firsts['random']} "
            f"under random pruning and {firsts['l1']} under L1 pruning")
    if not np.isfinite(at):
        return lead + "."
    d = method_difference(maps, "random", "l1", at, confidence)
    change = (f"at k = {at:.2f} mAP changes by {interval_text(d['a'], d['a_lo'], d['a_hi'], confidence)} "
              f"under random pruning and by {interval_text(d['b'], d['b_lo'], d['b_hi'], confidence)} "
              f"under L1 pruning; the difference, paired by seed over {d['n']} "
              f"seed{'' if d['n'] == 1 else 's'}, is "
              f"{interval_text(d['diff'], d['diff_lo'], d['diff_hi'], confidence)}")
    if not np.isfinite(d["diff_lo"]):
        verdict = "too few seeds to compare the two."
    elif d["diff_hi"] < 0:
        verdict = "random pruning loses more: magnitude matters."
    elif d["diff_lo"] > 0:
        verdict = "L1 pruning loses more, against expectation."
    else:
        verdict = "the interval includes no difference, so this build cannot tell them apart."
    return f"{lead}; {change}: {verdict}"


# ------------------------------------------------------------------ paired statistics (sound)

#: the fraction of a layer's SD below which a weight counts as small, scale-free: the median of
#: |w|/SD for a Gaussian layer, Phi^-1(3/4) = 0.674, so a Gaussian layer has exactly half its
#: weights below it and "over half" means more concentrated near zero than a bell curve of the
#: same spread (a uniform layer, PyTorch's default initialisation, gives 39%; Laplace 61.5%).
SD_FRACTION = float(st.norm.ppf(0.75))


def gaussian_share_below(fraction: float = SD_FRACTION) -> float:
    """Share of a Gaussian layer's weights with |w| < fraction x SD: 2 Phi(fraction) - 1."""
    return float(2 * st.norm.cdf(fraction) - 1)


def fraction_below_sd(layers, fraction: float = SD_FRACTION) -> float:
    """Share of all weights whose |w| is below ``fraction`` x their own layer's standard
    deviation (``np.std`` of the layer's weights), pooled over ``layers`` (a sequence of arrays,
    one per Conv2d/Linear weight): a scale-free version of :func:`fraction_below`."""
    below = total = 0
    for w in layers:
        w = np.asarray(w, dtype=np.float64).ravel()
        if w.size == 0:
            continue
        if not np.isfinite(w).all():
            raise ValueError("a layer contains NaN or inf")
        below += int((np.abs(w) < fraction * w.std()).sum())
        total += w.size
    if total == 0:
        raise ValueError("layers hold no weights")
    return below / total


def t_interval(x, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the t-interval of the mean of ``x`` over its finite values,
    mean +- t_{n-1, (1+confidence)/2} SD / sqrt(n); (mean, NaN, NaN) with fewer than two."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    if len(x) < 2:
        return m, float("nan"), float("nan")
    half = st.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return m, float(m - half), float(m + half)


def t_interval_coverage(n: int, n_sim: int = 4000, confidence: float = 0.95, effect: float = -0.1,
                        skewed: bool = False, seed: int = 0) -> float:
    """Share of :func:`t_interval` intervals of the relative mAP change over ``n`` seeds that
    contain the true mean change, in ``n_sim`` simulated populations.

    The model (fixed, stated here): dense mAP per seed 0.2 exp(0.25 Z) (seed-to-seed SD about
    0.05, as measured on the default build); each seed's relative change ``effect`` + 0.05 E,
    E standard normal or, with ``skewed``, a standardised gamma(2) (right-skewed); evaluation
    noise N(0, 0.005) on the pruned mAP. The truth, the mean relative change, is ``effect``.
    """
    rng = np.random.default_rng(seed)
    dense = 0.2 * np.exp(0.25 * rng.standard_normal((n_sim, n)))
    e = ((rng.gamma(2.0, size=(n_sim, n)) - 2.0) / np.sqrt(2.0) if skewed
         else rng.standard_normal((n_sim, n)))
    sparse = dense * (1 + effect + 0.05 * e) + rng.normal(0, 0.005, (n_sim, n))
    rel = sparse / dense - 1
    half = (st.t.ppf((1 + confidence) / 2, n - 1) * rel.std(axis=1, ddof=1) / np.sqrt(n))
    m = rel.mean(axis=1)
    return float(np.mean((m - half <= effect) & (effect <= m + half)))


def coverage_text(ns, n_sim: int = 20000, confidence: float = 0.95) -> str:
    """"0.946 at 3 seeds and 0.947 at 8 seeds (skewed changes: 0.941, 0.937)": the simulated
    coverage (:func:`t_interval_coverage`) of the nominal ``confidence`` t-interval at each n."""
    ns = sorted({int(n) for n in ns if int(n) >= 2})
    if not ns:
        return "not defined (fewer than two seeds)"
    plain = [f"{t_interval_coverage(n, n_sim, confidence):.3f} at {n} seeds" for n in ns]
    skew = [f"{t_interval_coverage(n, n_sim, confidence, skewed=True):.3f}" for n in ns]
    return " and ".join(plain) + f" (right-skewed changes: {', '.join(skew)})"


def paired_by_sparsity(table: pd.DataFrame, level: float = 0.05, method: str = "l1",
                       confidence: float = 0.95) -> pd.DataFrame:
    """Each k-sparse model against its own dense model (same seed), for each k > 0 of one method.

    ``table`` is the ``ap_table`` or a :func:`map_per_model` table; the dense models are chosen
    as in :func:`welch_by_sparsity`. Per k, over the seeds with both mAPs: the paired t-test
    (``scipy.stats.ttest_rel``, two-sided) of sparse vs dense mAP, Holm over the levels tested,
    and the relative change sparse/dense - 1 per seed with its t-interval (:func:`t_interval`).
    Returns columns method, sparsity, n (paired seeds), mean_dense, mean_sparse, diff (mean
    paired difference, sparse - dense), t (dense minus sparse, so a drop gives t > 0), p,
    p_holm, drop (diff < 0 and p_holm < level), rel, rel_lo, rel_hi; ``attrs`` record level and
    confidence. A level with fewer than two paired seeds gets NaN for its test and interval.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    rows, dense = _method_and_dense(table, method)
    dense = dense.drop_duplicates("seed").set_index("seed")["map"]
    out = []
    for k, grp in rows[~is_dense(rows["sparsity"])].groupby("sparsity", sort=True):
        both = pd.DataFrame({"d": dense, "s": grp.drop_duplicates("seed").set_index("seed")["map"]})
        both = both.dropna()
        n = len(both)
        t = p = np.nan
        if n >= 2:
            with warnings.catch_warnings():  # identical differences: scipy warns, gives NaN
                warnings.simplefilter("ignore")
                res = st.ttest_rel(both["d"], both["s"])
            t, p = float(res.statistic), float(res.pvalue)
        rel, lo, hi = t_interval(both["s"] / both["d"] - 1, confidence)
        out.append({"method": method, "sparsity": k, "n": n,
                    "mean_dense": both["d"].mean(), "mean_sparse": both["s"].mean(),
                    "diff": (both["s"] - both["d"]).mean(), "t": t, "p": p,
                    "rel": rel, "rel_lo": lo, "rel_hi": hi})
    out = pd.DataFrame(out)
    if out.empty:
        raise ValueError(f"table has no sparsity > 0 for method {method!r}")
    out["p_holm"] = holm(out["p"])
    out["drop"] = (out["diff"] < 0) & (out["p_holm"] < level)
    out = out[["method", "sparsity", "n", "mean_dense", "mean_sparse", "diff", "t", "p",
               "p_holm", "drop", "rel", "rel_lo", "rel_hi"]]
    out.attrs.update(level=level, confidence=confidence)
    return out


def first_paired_drop(paired: pd.DataFrame) -> float:
    """Smallest sparsity whose paired mAP drop is significant after Holm (NaN if none)."""
    ks = paired.loc[paired["drop"].astype(bool), "sparsity"]
    return float(ks.min()) if len(ks) else float("nan")


def level_at_least(sparsities, target: float) -> float:
    """The smallest of ``sparsities`` at or above ``target`` (float-tolerant), NaN if none."""
    ks = np.asarray(sparsities, dtype=float)
    ks = ks[ks >= target - 1e-9]
    return float(ks.min()) if len(ks) else float("nan")


def method_difference(maps: pd.DataFrame, a: str, b: str, at: float,
                      confidence: float = 0.95) -> dict:
    """Relative mAP change at sparsity ``at`` of methods ``a`` and ``b`` (each pruned model
    against its own dense model) and their difference a - b paired by seed, with t-intervals:
    keys n, a, a_lo, a_hi, b, b_lo, b_hi, diff, diff_lo, diff_hi."""
    rel = {}
    for m in (a, b):
        rows = select_method(maps, m, "maps")
        dense = maps[is_dense(maps["sparsity"])].drop_duplicates("seed").set_index("seed")["map"]
        own = rows[is_dense(rows["sparsity"])]
        if not own.empty:
            dense = own.drop_duplicates("seed").set_index("seed")["map"]
        at_k = rows[np.isclose(rows["sparsity"].astype(float), at)]
        rel[m] = at_k.drop_duplicates("seed").set_index("seed")["map"] / dense - 1
    both = pd.DataFrame(rel).dropna()
    out = {"n": len(both)}
    for name, x in (("a", both[a]), ("b", both[b]), ("diff", both[a] - both[b])):
        m, lo, hi = t_interval(x, confidence)
        out.update({name: m, f"{name}_lo": lo, f"{name}_hi": hi})
    return out


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:+.1f}%"


def interval_text(m: float, lo: float, hi: float, confidence: float = 0.95) -> str:
    """"-12.3% (95% CI -20.1% to -4.5%)", or the estimate alone without an interval."""
    if not np.isfinite(lo):
        return f"{_pct(m)} (no interval: fewer than two seeds)"
    return f"{_pct(m)} ({100 * confidence:.0f}% CI {_pct(lo)} to {_pct(hi)})"
