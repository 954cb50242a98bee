"""Q1: what is the impact of pruning on overall performance?

mAP of each pruned model, its median and IQR over the population per sparsity, Welch's t-test of
dense vs k-sparse mAP per k (paper: first significant drop at k = 0.65 NIH, 0.60 MIMIC, P < 0.001),
and the distribution of trained weight magnitudes (paper: over half under 0.01).

All inputs are the store's tidy ``ap_table`` (columns method, seed, sparsity, class, ap).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

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
    maps = _as_map_table(table, "table")
    rows = select_method(maps, method, "table")
    dense = rows[is_dense(rows["sparsity"])]
    if dense.empty:
        dense = maps[is_dense(maps["sparsity"])].drop_duplicates("seed")
    if dense.empty:
        raise ValueError("table has no dense (sparsity 0) models to compare against")
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


def random_control_sentence(drops: dict[str, float], methods) -> str:
    """What the random-pruning control says about magnitude, from the first drops of l1 and
    random (:func:`first_drops`), computed rather than assumed."""
    def text(k):
        return f"k = {k:.2f}" if np.isfinite(k) else "not reached within the grid"

    if not {"l1", "random"} <= set(methods):
        return ("this build ran only " + ", ".join(methods) + " pruning, so there is no "
                "comparison (add methods=l1,random to the overrides).")
    k_l1, k_random = drops.get("l1", np.nan), drops.get("random", np.nan)
    if not (np.isfinite(k_l1) or np.isfinite(k_random)):
        verdict = "neither drops significantly within the grid, so this test cannot tell them apart."
    elif np.isfinite(k_random) and (not np.isfinite(k_l1) or k_random < k_l1):
        verdict = "random pruning hurts earlier: magnitude matters."
    elif k_random == k_l1:
        verdict = "both drop at the same sparsity, so this test cannot tell them apart."
    else:
        verdict = "L1 pruning hurts earlier, against expectation."
    return (f"under random pruning the first significant drop is {text(k_random)}, against "
            f"{text(k_l1)} under L1 pruning; {verdict}")
