"""Q2: which classes are most affected by pruning, and why? ("forgettability")

Relative change in AP of each model and class against the same seed's dense model, the
forgettability curve of a class (paper Eq. 1: median over seeds, k = 0.05 .. 0.95), and two
summaries of each curve, both correlated with the natural log of the class's TRAIN count:
(i) the first k at which the curve falls to -20% or below, (ii) its value at the largest k.

Beside the paper's statistics, the sound ones (:func:`forgetting_comparison`): the
chance-corrected change (AP - pi) / (AP_0 - pi) - 1, with pi the class's test prevalence (the
AP of a random ranking, to which a destroyed class falls; the raw change then sits on the floor
(pi - AP_0) / AP_0, fixed by prevalence), and the first drop with classes that never drop
ranked last (censored) instead of left out.
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


# ---------------------------------------------------------------------------------------------
# The sound statistics: chance-corrected change, censored first drop
# ---------------------------------------------------------------------------------------------

def test_prevalence(labels, classes) -> pd.Series:
    """Share of test images positive for each class: pi, the expected AP of a random ranking
    (the AP a class falls to once the model no longer ranks its images)."""
    labels = np.asarray(labels, dtype=float)
    classes = list(classes)
    if labels.ndim != 2 or labels.shape[1] != len(classes):
        raise ValueError(f"labels must be (n_images, {len(classes)}) to match classes, "
                         f"got shape {labels.shape}")
    return pd.Series(labels.mean(axis=0), index=classes, name="prevalence")


def chance_corrected_change(ap_table: pd.DataFrame, prevalence: pd.Series) -> pd.DataFrame:
    """The relative change of :func:`relative_change` beside its chance-corrected version.

    With pi the class's test prevalence (the AP of a random ranking), the chance-corrected
    change is (AP_k - pi) / (AP_0 - pi) - 1: 0 where nothing is lost, -1 where the class has
    fallen to chance, whatever its prevalence. The raw change has a floor set by prevalence,
    (pi - AP_0) / AP_0, reached when the class falls to chance; ``chance_floor`` holds it.
    Where AP_0 <= pi (the dense model does not beat chance: nothing to lose) the corrected
    change is NaN. Adds columns prevalence, chance_floor, cc_change.
    """
    if not isinstance(prevalence, pd.Series):
        raise TypeError("prevalence must be a pandas Series indexed by class name")
    out = relative_change(ap_table)
    absent = sorted(set(out["class"]) - set(prevalence.index))
    if absent:
        raise ValueError(f"prevalence has no value for class(es) {absent}")
    pi = out["class"].map(prevalence).to_numpy(dtype=float)
    ap, ap0 = out["ap"].to_numpy(dtype=float), out["ap0"].to_numpy(dtype=float)
    above = np.isfinite(ap0) & np.isfinite(pi) & (ap0 > pi)
    cc = np.full(len(out), np.nan)
    cc[above] = (ap[above] - pi[above]) / (ap0[above] - pi[above]) - 1.0
    floor = np.full(len(out), np.nan)
    ok = np.isfinite(ap0) & (ap0 != 0) & np.isfinite(pi)
    floor[ok] = (pi[ok] - ap0[ok]) / ap0[ok]
    return out.assign(prevalence=pi, chance_floor=floor, cc_change=cc)


def censored_first_drop(first_drop, curve_complete, sparsities) -> np.ndarray:
    """First drop with classes that never drop within the grid ranked last (right-censored).

    A class whose curve never reaches the threshold, and whose curve is defined at every
    sparsity (so it was seen not to drop), gets a value above the grid's largest sparsity (the
    largest plus one grid step), so a rank correlation puts it after every class that drops,
    tied with the other censored ones. A class with an undefined point and no drop stays NaN
    (it may have dropped where it is undefined).
    """
    first = np.asarray(first_drop, dtype=float)
    ks = np.sort(np.asarray(sparsities, dtype=float))
    step = float(np.diff(ks).min()) if len(ks) > 1 else 0.05
    censored = ~np.isfinite(first) & np.asarray(curve_complete, dtype=bool)
    return np.where(censored, round(ks[-1] + step, 10), first)


def forgetting_comparison(ap_table: pd.DataFrame, labels, classes, train_counts: pd.Series,
                          threshold: float = -0.2, method: str | None = None
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's summaries of forgettability beside the sound ones, per class and as
    correlations with ln(train count).

    Returns ``(per_class, correlations)``. ``per_class`` holds the columns of
    :func:`forgetting_summary` (the paper's raw curves) and: prevalence (pi), ap0 (median
    dense AP over seeds), chance_floor (median over seeds of (pi - AP_0) / AP_0, the raw
    change of a class fallen to chance), first_drop_censored (:func:`censored_first_drop`),
    censored (bool), and the same on the chance-corrected curves (cc_first_drop, cc_dropped,
    cc_first_drop_censored, cc_censored, cc_final_change). ``correlations`` has one row per
    outcome (first_drop, first_drop_censored, final_change, chance_floor, cc_first_drop,
    cc_first_drop_censored, cc_final_change) with n, r, p_r, rho, p_rho against
    log_train_count. For a censored outcome only rho is meaningful (r depends on the value
    given to the censored classes). ``per_class.attrs``: final_sparsity, threshold,
    censor_value.
    """
    prevalence = test_prevalence(labels, classes)
    table = select_method(chance_corrected_change(ap_table, prevalence), method, "ap_table")
    raw = forgettability_curves(table)
    cc = forgettability_curves(table.assign(rel_change=table["cc_change"]))
    pc_raw, _ = forgetting_summary(raw, train_counts, threshold, method)
    pc_cc, _ = forgetting_summary(cc, train_counts, threshold, method)
    ks = curve_matrix(raw, method).columns.to_numpy(dtype=float)
    complete_raw = np.isfinite(curve_matrix(raw, method).to_numpy(dtype=float)).all(axis=1)
    complete_cc = np.isfinite(curve_matrix(cc, method).to_numpy(dtype=float)).all(axis=1)
    per_seed = table.drop_duplicates(["seed", "class"]).groupby("class", sort=False)
    out = pc_raw.copy()
    out["prevalence"] = prevalence.reindex(out["class"]).to_numpy()
    out["ap0"] = per_seed["ap0"].median().reindex(out["class"]).to_numpy()
    out["chance_floor"] = per_seed["chance_floor"].median().reindex(out["class"]).to_numpy()
    out["first_drop_censored"] = censored_first_drop(out["first_drop"], complete_raw, ks)
    out["censored"] = ~out["dropped"].to_numpy() & complete_raw
    out["cc_first_drop"] = pc_cc["first_drop"].to_numpy()
    out["cc_dropped"] = pc_cc["dropped"].to_numpy()
    out["cc_first_drop_censored"] = censored_first_drop(pc_cc["first_drop"], complete_cc, ks)
    out["cc_censored"] = ~pc_cc["dropped"].to_numpy() & complete_cc
    out["cc_final_change"] = pc_cc["final_change"].to_numpy()
    step = float(np.diff(ks).min()) if len(ks) > 1 else 0.05
    out.attrs.update(pc_raw.attrs, censor_value=round(float(ks[-1] + step), 10))
    outcomes = ("first_drop", "first_drop_censored", "final_change", "chance_floor",
                "cc_first_drop", "cc_first_drop_censored", "cc_final_change")
    corr = pd.concat([correlation(out["log_train_count"], out[o]).assign(outcome=o)
                      for o in outcomes], ignore_index=True)
    return out, corr[["outcome", "n", "r", "p_r", "rho", "p_rho"]]
