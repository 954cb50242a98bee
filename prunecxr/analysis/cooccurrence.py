"""Q3: how does disease co-occurrence influence class forgettability?

For every unique pair of classes: the Forgettability Curve Dissimilarity (FCD) of their two
curves, the absolute difference of their log test frequencies, and their co-occurrence (IoU over
test images); then the correlations of FCD with each, and the OLS model of paper Eq. 2,
``FCD ~ |LogFreqDiff| * IoU^(1/4)``.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from ..stats import correlation, ols, require_columns
from .forgetting import curve_matrix

METRICS = ("euclidean", "mse")


def fcd(curve_a, curve_b, metric: str = "euclidean") -> float:
    """Dissimilarity of two forgettability curves: Euclidean distance (default) or MSE."""
    a, b = np.asarray(curve_a, dtype=float), np.asarray(curve_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"curves differ in length: {a.shape} vs {b.shape}")
    if metric == "euclidean":
        return float(np.sqrt(((a - b) ** 2).sum()))
    if metric == "mse":
        return float(((a - b) ** 2).mean())
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def class_pair_table(curves: pd.DataFrame, labels, classes, metric: str = "euclidean",
                     method: str | None = None) -> pd.DataFrame:
    """One row per unique class pair (C * (C - 1) / 2 rows, in ``classes`` order).

    Columns: class_a, class_b, count_a, count_b (test positives), fcd, dlogfreq, intersection,
    union, iou, iou4.

    - ``fcd``: dissimilarity of the two classes' forgettability curves (all k > 0 of one
      ``method``). The paper's text defines FCD as the mean squared error between the curves,
      but its published numbers (Emphysema/Pneumomediastinum 0.177, Infiltration/Hernia 1.473)
      are the Euclidean distance between the two 19-point curves; ``metric="euclidean"``
      (default) reproduces the numbers, ``metric="mse"`` the text. Euclidean = sqrt(19 * MSE),
      a monotone transform, so rank correlations agree; Pearson r and OLS coefficients do not.
    - ``dlogfreq``: |ln(test count a) - ln(test count b)|, from the true per-class counts of the
      TEST labels. The reference code derived "frequency" (and IoU) from column sums of the
      co-occurrence matrix instead, which counts an image once per co-occurring finding; we use
      the class counts the paper describes.
    - ``iou``: |A and B| / |A or B| over test images (A, B = images positive for each class);
      ``iou4`` = iou ** 0.25, the paper's plotting and regression scale.

    A class with no test positives has no log frequency: its pairs are dropped with a warning.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    classes = list(classes)
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != len(classes):
        raise ValueError(f"labels must be (n_images, {len(classes)}) to match classes, "
                         f"got shape {labels.shape}")
    y = labels.astype(bool)
    mat = curve_matrix(curves, method, classes).to_numpy(dtype=float)
    counts = y.sum(axis=0)
    inter = y.T.astype(np.int64) @ y.astype(np.int64)
    absent = [c for c, n in zip(classes, counts) if n == 0]
    if absent:
        warnings.warn(f"dropping the pairs of class(es) with no test positives (log frequency "
                      f"undefined): {absent}", stacklevel=2)
    rows = []
    for i, j in itertools.combinations(range(len(classes)), 2):
        if counts[i] == 0 or counts[j] == 0:
            continue
        union = counts[i] + counts[j] - inter[i, j]
        iou = inter[i, j] / union
        rows.append({
            "class_a": classes[i], "class_b": classes[j],
            "count_a": int(counts[i]), "count_b": int(counts[j]),
            "fcd": fcd(mat[i], mat[j], metric),
            "dlogfreq": abs(np.log(counts[i]) - np.log(counts[j])),
            "intersection": int(inter[i, j]), "union": int(union),
            "iou": iou, "iou4": iou ** 0.25,
        })
    out = pd.DataFrame(rows, columns=["class_a", "class_b", "count_a", "count_b", "fcd",
                                      "dlogfreq", "intersection", "union", "iou", "iou4"])
    out.attrs["metric"] = metric
    return out


def fcd_ols(pair_table: pd.DataFrame) -> pd.DataFrame:
    """OLS of paper Eq. 2, ``fcd ~ dlogfreq * iou4`` (statsmodels formula API).

    Returns the tidy table of :func:`prunecxr.stats.ols`: terms Intercept, dlogfreq, iou4,
    dlogfreq:iou4 with coef, se, t, p, ci_low, ci_high, and n, r2, adj_r2 as columns and attrs.
    Paper (NIH): 0.27 + 0.21 dlogfreq - 0.05 iou4 - 0.31 interaction, interaction p = 0.005.
    Pairs with a NaN FCD are dropped (by patsy).
    """
    require_columns(pair_table, ["fcd", "dlogfreq", "iou4"], "pair_table")
    data = pair_table[["fcd", "dlogfreq", "iou4"]].astype(float)
    if data.dropna().shape[0] < 5:
        raise ValueError(f"fcd_ols needs at least 5 class pairs with defined values, "
                         f"got {data.dropna().shape[0]}")
    return ols("fcd ~ dlogfreq * iou4", data)


def fcd_correlations(pair_table: pd.DataFrame) -> pd.DataFrame:
    """Pearson r and Spearman rho (with p) of FCD against dlogfreq, iou and iou4.

    Columns: x, n, r, p_r, rho, p_rho. rho for iou and iou4 are equal (monotone transform).
    Paper (NIH): dlogfreq r = 0.71, rho = 0.64; IoU r = -0.43, rho = -0.47.
    """
    require_columns(pair_table, ["fcd", "dlogfreq", "iou", "iou4"], "pair_table")
    out = pd.concat([correlation(pair_table[x], pair_table["fcd"]).assign(x=x)
                     for x in ("dlogfreq", "iou", "iou4")], ignore_index=True)
    return out[["x", "n", "r", "p_r", "rho", "p_rho"]]


PAPER_EXAMPLES = (("Emphysema", "Pneumomediastinum"), ("Infiltration", "Hernia"))


def marked_pairs(pair_table: pd.DataFrame, highlight, classes) -> list[tuple[str, str]]:
    """The class pairs to mark in the FCD figure: ``highlight`` as ``"a|b"`` strings (a list,
    or one string separated by ``;``), or, when empty, the paper's two examples where this
    dataset has them; only pairs present in ``pair_table`` are returned. ``ValueError`` names
    an item that is not two classes of this dataset."""
    if isinstance(highlight, str):
        highlight = [h for h in highlight.split(";") if h.strip()]
    wanted = []
    for item in highlight or ():
        names = [s.strip() for s in str(item).split("|")]
        unknown = [n for n in names if n not in classes]
        if len(names) != 2 or unknown:
            raise ValueError(f"parameter highlight: {item!r} must be 'class a|class b' with "
                             f"classes of this dataset; unknown: {unknown}; classes: "
                             f"{list(classes)}")
        wanted.append(tuple(names))
    if not highlight:
        wanted = [p for p in PAPER_EXAMPLES if all(c in classes for c in p)]
    present = set(zip(pair_table["class_a"], pair_table["class_b"]))
    return [p for p in wanted if p in present or p[::-1] in present]


def example_pairs_text(pair_table: pd.DataFrame) -> str:
    """This build's values for the paper's two example pairs, beside the paper's."""
    from ..paper import paper

    rows = []
    for a, b in PAPER_EXAMPLES[::-1]:
        hit = pair_table[((pair_table["class_a"] == a) & (pair_table["class_b"] == b))
                         | ((pair_table["class_a"] == b) & (pair_table["class_b"] == a))]
        if len(hit):
            r = hit.iloc[0]
            rows.append(f"{a} / {b}: |ΔlogF| = {r['dlogfreq']:.2f}, IoU^¼ = {r['iou4']:.2f}, "
                        f"FCD = {r['fcd']:.3f}")
    text = ("In the paper (NIH-CXR-LT): " + paper("q3_far_pair")["text"] + "; "
            + paper("q3_close_pair")["text"] + ", lower than their frequency difference alone "
            "suggests (the authors' code: " + paper("q3_fcd_values")["text"] + ").")
    return (("Here: " + "; ".join(rows) + ". " + text) if rows else
            ("This dataset does not have the paper's example classes. " + text))


# ---------------------------------------------------------------------------------------------
# Permutation P values that respect the pair structure (Mantel / QAP)
# ---------------------------------------------------------------------------------------------

MANTEL_STATISTICS = ("rho_dlogfreq", "rho_iou4", "beta3")


def pair_matrices(pair_table: pd.DataFrame) -> tuple[list[str], dict[str, np.ndarray]]:
    """The pair table as symmetric (class x class) matrices of fcd, dlogfreq and iou4 over the
    classes it holds (diagonal NaN). Classes with an undefined FCD to any other class are left
    out (a permutation needs every pair of the classes it permutes). Returns (classes, mats)."""
    require_columns(pair_table, ["class_a", "class_b", "fcd", "dlogfreq", "iou4"], "pair_table")
    classes = list(pd.unique(pd.concat([pair_table["class_a"], pair_table["class_b"]])))
    index = {c: i for i, c in enumerate(classes)}
    ia = pair_table["class_a"].map(index).to_numpy()
    ib = pair_table["class_b"].map(index).to_numpy()
    mats = {}
    for name in ("fcd", "dlogfreq", "iou4"):
        m = np.full((len(classes), len(classes)), np.nan)
        v = pair_table[name].to_numpy(dtype=float)
        m[ia, ib] = v
        m[ib, ia] = v
        mats[name] = m
    off = ~np.eye(len(classes), dtype=bool)
    complete = np.array([np.isfinite(mats["fcd"][i][off[i]]).all()
                         & np.isfinite(mats["dlogfreq"][i][off[i]]).all()
                         & np.isfinite(mats["iou4"][i][off[i]]).all()
                         for i in range(len(classes))], dtype=bool)
    keep = np.flatnonzero(complete)
    return [classes[i] for i in keep], {k: m[np.ix_(keep, keep)] for k, m in mats.items()}


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` (n_perm, n) with the vector ``b`` (n,)."""
    ac = a - a.mean(axis=-1, keepdims=True)
    bc = b - b.mean()
    return (ac @ bc) / np.sqrt((ac ** 2).sum(axis=-1) * (bc ** 2).sum())


def mantel_statistics(fcd_values: np.ndarray, dlogfreq: np.ndarray, iou4: np.ndarray) -> dict:
    """Spearman rho of FCD with dlogfreq and with iou4, and beta3 of the OLS
    ``fcd ~ dlogfreq * iou4``, for one or many FCD vectors (rows of ``fcd_values``)."""
    y = np.atleast_2d(np.asarray(fcd_values, dtype=float))
    x1, x2 = np.asarray(dlogfreq, dtype=float), np.asarray(iou4, dtype=float)
    ry = _ranks(y)
    design = np.column_stack([np.ones_like(x1), x1, x2, x1 * x2])
    coef = np.linalg.lstsq(design, y.T, rcond=None)[0]  # (4, n_perm): one solve for all
    return {"rho_dlogfreq": _corr_rows(ry, _ranks(x1)), "rho_iou4": _corr_rows(ry, _ranks(x2)),
            "beta3": coef[3]}


def permutation_p(observed: float, null: np.ndarray) -> float:
    """Two-sided Monte Carlo P value, (1 + #{|null| >= |observed|}) / (1 + len(null)), with a
    relative tolerance for ties of floating-point noise (as scipy's permutation_test)."""
    null = np.asarray(null, dtype=float)
    if not np.isfinite(observed) or len(null) == 0:
        return float("nan")
    tol = 1e-12 * max(abs(observed), 1e-300)
    return float((1 + np.sum(np.abs(null) >= abs(observed) - tol)) / (1 + len(null)))


def mantel_null(fcd_matrix: np.ndarray, dlogfreq: np.ndarray, iou4: np.ndarray,
                permutations: np.ndarray) -> tuple[dict, dict]:
    """(observed, null) of :func:`mantel_statistics`: ``fcd_matrix`` (C x C, symmetric) and
    the predictors over its upper triangle (row-major, as ``numpy.triu_indices(C, 1)``); the
    null from each permutation p of the classes, FCD*(a, b) = FCD(p(a), p(b)).

    Vectorised: a permuted FCD vector is a rearrangement of the observed one, so its (average)
    ranks are the same rearrangement of the observed ranks, and with the predictors fixed the
    OLS coefficients are one fixed linear map of it (a row of the design's pseudo-inverse).
    """
    from scipy.stats import rankdata

    fcd_matrix = np.asarray(fcd_matrix, dtype=float)
    c = len(fcd_matrix)
    iu = np.triu_indices(c, 1)
    x1, x2 = np.asarray(dlogfreq, dtype=float), np.asarray(iou4, dtype=float)
    y = fcd_matrix[iu]
    ranks = np.zeros((c, c))
    ranks[iu] = rankdata(y)
    ranks = ranks + ranks.T
    rx1, rx2 = rankdata(x1), rankdata(x2)
    design = np.column_stack([np.ones_like(x1), x1, x2, x1 * x2])
    beta3 = np.linalg.pinv(design)[3]

    def stats(values, value_ranks):
        return {"rho_dlogfreq": _corr_rows(value_ranks, rx1),
                "rho_iou4": _corr_rows(value_ranks, rx2), "beta3": values @ beta3}

    observed = stats(y[None], ranks[iu][None])
    perms = np.asarray(permutations, dtype=int).reshape(-1, c)
    if not len(perms):
        return observed, {k: np.empty(0) for k in MANTEL_STATISTICS}
    a, b = perms[:, iu[0]], perms[:, iu[1]]
    return observed, stats(fcd_matrix[a, b], ranks[a, b])


def mantel_tests(pair_table: pd.DataFrame, n_perm: int = 2000, seed: int = 0,
                 permutations: np.ndarray | None = None) -> pd.DataFrame:
    """Permutation P values of Q3's statistics that respect the pair structure (Mantel / QAP).

    Each class is in C - 1 pairs, so the C (C - 1) / 2 pairs are not independent and the
    pair-wise P values of Spearman's test and of the OLS are too small. Here the class labels
    of the FCD matrix are permuted relative to the predictor matrices (|ΔlogF|, IoU^¼): for a
    permutation p of the classes, FCD*(a, b) = FCD(p(a), p(b)); rho and beta3 are recomputed
    for each, and P = (1 + #{|stat*| >= |stat|}) / (1 + n_perm), two-sided. This tests the null
    that the FCD matrix is unrelated to which classes the predictors describe (exchangeable
    classes); for beta3, permuting FCD as a whole also removes real main effects, which makes
    the test conservative for the interaction where main effects are strong.

    ``permutations`` (an (n, C) array of permutations of range(C)) replaces the ``n_perm``
    random ones of ``numpy.random.default_rng(seed)``. Rows: statistic (rho_dlogfreq, rho_iou4,
    beta3) with value, p_naive (Spearman's / the OLS t-test's, over pairs), p_perm, n_classes,
    n_pairs, n_perm. Fewer than 4 classes: values and P NaN.
    """
    classes, mats = pair_matrices(pair_table)
    c = len(classes)
    iu = np.triu_indices(c, 1)
    y, x1, x2 = (mats[k][iu] for k in ("fcd", "dlogfreq", "iou4"))
    naive = {k: np.nan for k in MANTEL_STATISTICS}
    if c >= 4:
        from scipy.stats import spearmanr

        from ..stats import ols as _ols

        naive["rho_dlogfreq"] = float(spearmanr(x1, y).pvalue)
        naive["rho_iou4"] = float(spearmanr(x2, y).pvalue)
        if len(y) >= 5:
            fit = _ols("fcd ~ dlogfreq * iou4", pd.DataFrame({"fcd": y, "dlogfreq": x1,
                                                               "iou4": x2}))
            naive["beta3"] = float(fit.set_index("term").loc["dlogfreq:iou4", "p"])
    if permutations is None:
        rng = np.random.default_rng(seed)
        permutations = rng.permuted(np.tile(np.arange(c), (n_perm if c >= 4 else 0, 1)),
                                    axis=1)
    permutations = np.asarray(permutations, dtype=int).reshape(-1, c)
    if c >= 4:
        stats, null = mantel_null(mats["fcd"], x1, x2, permutations)
    else:
        stats = {k: np.full(1, np.nan) for k in MANTEL_STATISTICS}
        null = {k: np.empty(0) for k in MANTEL_STATISTICS}
    rows = [{"statistic": k, "value": float(stats[k][0]), "p_naive": naive[k],
             "p_perm": permutation_p(float(stats[k][0]), null[k]), "n_classes": c,
             "n_pairs": len(y), "n_perm": len(permutations)} for k in MANTEL_STATISTICS]
    return pd.DataFrame(rows)
