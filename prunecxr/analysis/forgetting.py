"""Q2: which classes are most affected by pruning, and why? ("forgettability")

Relative change in AP of each model and class against the same seed's dense model, the
forgettability curve of a class (paper Eq. 1: median over seeds, k = 0.05 .. 0.95), and two
summaries of each curve, both correlated with the natural log of the class's TRAIN count:
(i) the first k at which the curve falls to -20% or below, (ii) its value at the largest k.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import correlation, require_columns
from .overall import AP_COLUMNS, is_dense, select_method


def relative_change(ap_table: pd.DataFrame) -> pd.DataFrame:
    """(AP_k - AP_0) / AP_0 per method, seed, class and sparsity (k = 0 rows included, = 0).

    AP_0 is the same seed's dense AP for that class: the method's own k = 0 row, or, if the
    method has none, any method's k = 0 row for that seed (the dense model is shared). Where
    AP_0 is 0 or NaN (no test positives) the relative change is NaN, never inf.
    Columns: method, seed, sparsity, class, ap, ap0, rel_change.
    """
    require_columns(ap_table, AP_COLUMNS, "ap_table")
    dense = ap_table[is_dense(ap_table["sparsity"])]
    if dense.empty:
        raise ValueError("ap_table has no dense (sparsity 0) rows; relative change needs AP_0")
    own = dense[["method", "seed", "class", "ap"]].rename(columns={"ap": "ap0"})
    shared = (dense.drop_duplicates(["seed", "class"])[["seed", "class", "ap"]]
              .rename(columns={"ap": "ap0_shared"}))
    out = ap_table[list(AP_COLUMNS)].merge(own, on=["method", "seed", "class"], how="left")
    out = out.merge(shared, on=["seed", "class"], how="left")
    has_own = out["method"].isin(dense["method"].unique())
    out["ap0"] = out["ap0"].where(has_own, out["ap0_shared"])
    out = out.drop(columns="ap0_shared")
    ap0 = out["ap0"].to_numpy(dtype=float)
    ok = np.isfinite(ap0) & (ap0 != 0)
    rel = np.full(len(out), np.nan)
    rel[ok] = (out["ap"].to_numpy(dtype=float)[ok] - ap0[ok]) / ap0[ok]
    out["rel_change"] = rel
    return out


def forgettability_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Forgettability curve of every class (paper Eq. 1): median over seeds of the relative
    change in AP, for each sparsity k > 0 (k = 0 is 0 by construction and left out).

    ``table`` is the ``ap_table`` or a :func:`relative_change` table. NaN relative changes are
    skipped in the median. Columns: method, class, sparsity, median_rel_change, n_seeds (seeds
    with a defined value); classes keep their order of first appearance.
    """
    if "rel_change" not in table.columns:
        table = relative_change(table)
    require_columns(table, ["method", "seed", "sparsity", "class", "rel_change"], "table")
    rows = table[~is_dense(table["sparsity"])]
    order = list(pd.unique(table["class"]))
    g = rows.groupby(["method", "class", "sparsity"], sort=False)["rel_change"]
    out = pd.DataFrame({"median_rel_change": g.median(), "n_seeds": g.count()}).reset_index()
    out["_c"] = out["class"].map({c: i for i, c in enumerate(order)})
    out = out.sort_values(["method", "_c", "sparsity"], kind="stable").drop(columns="_c")
    return out.reset_index(drop=True)


def curve_matrix(curves: pd.DataFrame, method: str | None = None,
                 classes=None) -> pd.DataFrame:
    """Curves of one method as a (class x sparsity) matrix, rows in ``classes`` order if given."""
    require_columns(curves, ["method", "class", "sparsity", "median_rel_change"], "curves")
    one = select_method(curves, method, "curves")
    mat = one.pivot(index="class", columns="sparsity", values="median_rel_change")
    order = list(pd.unique(one["class"])) if classes is None else list(classes)
    absent = [c for c in order if c not in mat.index]
    if absent:
        raise ValueError(f"curves has no curve for class(es) {absent}")
    return mat.loc[order].sort_index(axis=1)


def forgetting_summary(curves: pd.DataFrame, train_counts: pd.Series, threshold: float = -0.2,
                       method: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-class summaries of the forgettability curves and their correlation with frequency.

    Returns ``(per_class, correlations)``:

    - ``per_class``: class, train_count, log_train_count (natural log; NaN for a zero count),
      first_drop (first sparsity with median relative change <= ``threshold``, i.e. a drop of
      20% or more by default; NaN if the curve never gets there), dropped (bool),
      final_change (the curve at the largest sparsity; ``attrs["final_sparsity"]`` says which).
    - ``correlations``: one row per outcome (first_drop, final_change) with n, r, p_r, rho,
      p_rho of the outcome against log_train_count. Classes with a NaN in either are dropped
      (so a class that never drops 20% is not in the first_drop correlation; n says how many
      classes were used).

    ``method`` selects one method when ``curves`` holds several.
    """
    if not isinstance(train_counts, pd.Series):
        raise TypeError("train_counts must be a pandas Series indexed by class name")
    mat = curve_matrix(curves, method)
    absent = [c for c in mat.index if c not in train_counts.index]
    if absent:
        raise ValueError(f"train_counts has no count for class(es) {absent}")
    ks = mat.columns.to_numpy(dtype=float)
    values = mat.to_numpy(dtype=float)
    hit = values <= threshold  # NaN compares False
    first = np.where(hit.any(axis=1), ks[np.argmax(hit, axis=1)], np.nan)
    counts = train_counts.reindex(mat.index).to_numpy(dtype=float)
    with np.errstate(divide="ignore"):
        logc = np.where(counts > 0, np.log(np.where(counts > 0, counts, 1)), np.nan)
    per_class = pd.DataFrame({
        "class": mat.index, "train_count": counts, "log_train_count": logc,
        "first_drop": first, "dropped": hit.any(axis=1), "final_change": values[:, -1],
    })
    per_class.attrs.update(final_sparsity=float(ks[-1]), threshold=threshold)
    corr = pd.concat([correlation(logc, per_class[o]).assign(outcome=o)
                      for o in ("first_drop", "final_change")], ignore_index=True)
    corr = corr[["outcome", "n", "r", "p_r", "rho", "p_rho"]]
    return per_class, corr
