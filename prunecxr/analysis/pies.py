"""Q4: which images are most vulnerable to pruning? Pruning-identified exemplars (PIEs).

Average the population's sigmoid outputs at k = 0 and at k = 0.9; per test image, the Spearman
rank correlation between the two C-dimensional vectors measures how much the dense and the
pruned models agree; the int(0.05 * N) images with the lowest correlation are the PIEs. Then
compare how often each class, and each number of findings, appears in PIEs vs non-PIEs.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from ..stats import rowwise_spearman

NAN_POLICIES = ("exclude", "lowest")


def _sparsity_index(sparsities, value: float, name: str) -> int:
    sparsities = np.asarray(sparsities, dtype=float)
    hit = np.flatnonzero(np.isclose(sparsities, value))
    if len(hit) == 0:
        raise ValueError(f"{name}={value} is not among the method's levels "
                         f"{sparsities.tolist()}")
    return int(hit[0])


def _levels(store, method: str) -> np.ndarray:
    """The method's levels (its sparsities, for a pruning method on the shared grid)."""
    return store.levels(method) if hasattr(store, "levels") else store.sparsities


def mean_probabilities(store, method: str = "l1", sparsity: float | Sequence[float] = 0.0,
                       seeds: Sequence[int] | None = None) -> np.ndarray:
    """Population-mean sigmoid outputs at one level (n_test, C), or at several (m, n_test, C).

    ``sparsity`` is a level of ``method`` (``store.levels(method)``: the sparsity for pruning).

    Reads one seed's predictions at a time (``store.predictions(method, seed)``), so memory
    stays at one seed's array plus the running sum (float64).
    """
    many = np.ndim(sparsity) > 0
    ks = list(np.atleast_1d(np.asarray(sparsity, dtype=float)))
    idx = [_sparsity_index(_levels(store, method), k, "sparsity") for k in ks]
    seeds = list(store.method_seeds(method) if seeds is None else seeds)
    if not seeds:
        raise ValueError("seeds is empty")
    total = None
    for seed in seeds:
        p = np.asarray(store.predictions(method, seed))[idx].astype(np.float64)
        total = p if total is None else total + p
    mean = total / len(seeds)
    return mean if many else mean[0]


def pie_scores(store, method: str = "l1", dense: float = 0.0, sparse: float = 0.9) -> pd.Series:
    """Per test image, Spearman correlation of the mean dense and mean k-sparse predictions.

    Returns a float Series named ``spearman``, index aligned with ``store.meta``. An image whose
    mean prediction vector is constant at either sparsity (every class tied) has no rank
    correlation: NaN. :func:`select_pies` by default never selects those (see its ``nan_policy``).
    """
    _sparsity_index(_levels(store, method), dense, "dense")
    _sparsity_index(_levels(store, method), sparse, "sparse")
    both = mean_probabilities(store, method, [dense, sparse])
    rho = rowwise_spearman(both[0], both[1])
    index = store.meta.index if hasattr(store, "meta") and len(store.meta) == len(rho) else None
    return pd.Series(rho, index=index, name="spearman")


def select_pies(scores, fraction: float = 0.05, nan_policy: str = "exclude") -> np.ndarray:
    """Boolean mask of the PIEs: the ``int(fraction * N)`` lowest scores (N = all images).

    Ties are broken deterministically: a stable sort by score, so among equal scores the image
    that comes first in the test order is selected first. NaN scores (undefined correlation,
    see :func:`pie_scores`): ``nan_policy="exclude"`` (default) never selects them, since
    agreement cannot be measured, and warns with their count; ``"lowest"`` ranks them below every
    finite score (treats an unrankable output as maximal disagreement). Positionally aligned
    with the test metadata.
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    s = np.asarray(scores, dtype=float).ravel()
    n_pie = int(fraction * len(s))
    nan = np.isnan(s)
    if nan.any() and nan_policy == "exclude":
        warnings.warn(f"{int(nan.sum())} image(s) have an undefined agreement score (NaN) "
                      "and are never selected as PIEs", stacklevel=2)
        n_pie = min(n_pie, int((~nan).sum()))
    # Stable sort by (NaN group, score, position): NaN images last ("exclude") or first ("lowest").
    nan_key = nan if nan_policy == "exclude" else ~nan
    order = np.lexsort((np.where(nan, 0.0, s), nan_key))
    mask = np.zeros(len(s), dtype=bool)
    mask[order[:n_pie]] = True
    return mask


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = np.full(a.shape, np.nan)
    pos = b > 0
    out[pos] = a[pos] / b[pos]
    out[~pos & (a > 0)] = np.inf
    return out


def _check(pies, labels, classes):
    pies = np.asarray(pies)
    if pies.dtype != bool:
        raise TypeError(f"pies must be a boolean mask, got dtype {pies.dtype}")
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape != (len(pies), len(classes)):
        raise ValueError(f"labels must have shape ({len(pies)}, {len(classes)}) to match pies "
                         f"and classes, got {labels.shape}")
    if pies.all() or not pies.any():
        raise ValueError("pies must contain at least one PIE and one non-PIE")
    return pies, labels.astype(bool)


def class_enrichment(pies, labels, classes) -> pd.DataFrame:
    """Per class: prevalence among PIEs / prevalence among non-PIEs.

    Columns class, n_pie, n_nonpie (positives), prevalence_pie, prevalence_nonpie, ratio.
    ratio is inf when the class occurs only in PIEs, NaN when it occurs in neither.
    """
    pies, y = _check(pies, labels, classes)
    n_pie, n_non = y[pies].sum(axis=0), y[~pies].sum(axis=0)
    prev_pie, prev_non = n_pie / pies.sum(), n_non / (~pies).sum()
    return pd.DataFrame({"class": list(classes), "n_pie": n_pie, "n_nonpie": n_non,
                         "prevalence_pie": prev_pie, "prevalence_nonpie": prev_non,
                         "ratio": _ratio(prev_pie, prev_non)})


def findings_enrichment(pies, labels, classes, no_finding: str = "No Finding",
                        max_findings: int = 4) -> pd.DataFrame:
    """Per number of findings d = 0, 1, ..., max_findings-1, max_findings+: the share of PIEs
    with d findings / the share of non-PIEs with d findings.

    d counts the class columns that are positive, "No Finding" excluded (the reference code also
    counted an id column by accident). Columns findings ("0", ..., "4+"), n_pie, n_nonpie,
    prevalence_pie, prevalence_nonpie, ratio (inf/NaN as in :func:`class_enrichment`).
    """
    pies, y = _check(pies, labels, classes)
    keep = [i for i, c in enumerate(classes) if c != no_finding]
    d = np.minimum(y[:, keep].sum(axis=1), max_findings)
    names = [str(i) for i in range(max_findings)] + [f"{max_findings}+"]
    n_pie = np.bincount(d[pies], minlength=max_findings + 1)
    n_non = np.bincount(d[~pies], minlength=max_findings + 1)
    prev_pie, prev_non = n_pie / pies.sum(), n_non / (~pies).sum()
    return pd.DataFrame({"findings": names, "n_pie": n_pie, "n_nonpie": n_non,
                         "prevalence_pie": prev_pie, "prevalence_nonpie": prev_non,
                         "ratio": _ratio(prev_pie, prev_non)})


def pie_enrichment(pies, labels, classes, no_finding: str = "No Finding",
                   max_findings: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(class_enrichment(...), findings_enrichment(...))`` for the paper's Fig. 5."""
    return (class_enrichment(pies, labels, classes),
            findings_enrichment(pies, labels, classes, no_finding, max_findings))


# ------------------------------------------------------------------------------------------
# The PIE level chosen by a damage rule, with a guard (issue: claims that survive a statistician)
# ------------------------------------------------------------------------------------------

def chance_map(labels) -> float:
    """The mAP of a model that ranks images at random: the mean test prevalence over the
    classes with at least one positive (a class's chance AP is its prevalence)."""
    y = np.asarray(labels, dtype=bool)
    pos = y.sum(axis=0)
    prev = pos / len(y)
    return float(prev[pos > 0].mean()) if (pos > 0).any() else float("nan")


def output_spread(probs) -> float:
    """How much a population's mean outputs vary between images: the across-image SD
    (ddof 0) of each class's mean output, averaged over classes. 0 for an output that is the
    same on every image (a constant prior ranks no image above another)."""
    p = np.asarray(probs, dtype=float)
    return float(p.std(axis=0).mean())


def damage_table(maps: pd.DataFrame, probs, levels, labels, method: str = "l1",
                 dense: float = 0.0, min_spread: float = 0.1) -> pd.DataFrame:
    """Per level of ``method``: the population's median mAP over seeds, its share of the dense
    mAP above chance lost, the across-image spread of the mean outputs and whether it passes
    the guard.

    ``maps`` is :func:`prunecxr.analysis.map_per_model`'s table (method, seed, sparsity, map);
    ``probs`` the population-mean outputs at ``levels`` (m, n_test, C), as
    :func:`mean_probabilities` returns them. Columns: level, median_map, chance, loss
    (``(mAP0 - mAPk) / (mAP0 - chance)``, NaN where the dense mAP is not above chance), spread,
    spread_ratio (spread / the dense level's spread) and guard (``spread_ratio >= min_spread``).
    """
    levels = np.asarray(levels, dtype=float)
    probs = np.asarray(probs, dtype=float)
    if probs.shape[0] != len(levels):
        raise ValueError(f"probs has {probs.shape[0]} levels, levels has {len(levels)}")
    m = maps[maps["method"] == method].groupby("sparsity")["map"].median()
    med = np.array([float(m[np.isclose(m.index, k)].iloc[0]) if np.isclose(m.index, k).any()
                    else np.nan for k in levels])
    i0 = _sparsity_index(levels, dense, "dense")
    chance = chance_map(labels)
    above = med[i0] - chance
    loss = (med[i0] - med) / above if above > 0 else np.full(len(levels), np.nan)
    spread = np.array([output_spread(p) for p in probs])
    ratio = spread / spread[i0] if spread[i0] > 0 else np.full(len(levels), np.nan)
    return pd.DataFrame({"level": levels, "median_map": med, "chance": chance, "loss": loss,
                         "spread": spread, "spread_ratio": ratio,
                         "guard": np.nan_to_num(ratio, nan=0.0) >= min_spread})


def damage_level(table: pd.DataFrame, pie_loss: float = 0.2, dense: float = 0.0) -> dict:
    """The damage rule on :func:`damage_table`: the lowest level above ``dense`` at which the
    population has lost at least ``pie_loss`` of its dense mAP above chance.

    Returns {"level", "loss", "spread_ratio", "guard", "reached"}; level NaN and reached False
    where no level of the grid loses that much (guard then False: nothing to analyse).
    """
    t = table[(table["level"] > dense + 1e-9) & (table["loss"] >= pie_loss)]
    if t.empty:
        return {"level": float("nan"), "loss": float("nan"), "spread_ratio": float("nan"),
                "guard": False, "reached": False}
    row = t.sort_values("level").iloc[0]
    return {"level": float(row["level"]), "loss": float(row["loss"]),
            "spread_ratio": float(row["spread_ratio"]), "guard": bool(row["guard"]),
            "reached": True}


def pies_at_levels(probs, levels, dense: float = 0.0, fraction: float = 0.05) -> dict:
    """{level: PIE mask} at every level but ``dense``, from the population-mean outputs
    (m, n_test, C) at ``levels``: the same scores and selection as :func:`pie_scores` and
    :func:`select_pies`."""
    levels = np.asarray(levels, dtype=float)
    probs = np.asarray(probs, dtype=float)
    i0 = _sparsity_index(levels, dense, "dense")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, k in enumerate(levels):
            if i != i0:
                out[round(float(k), 6)] = select_pies(rowwise_spearman(probs[i0], probs[i]),
                                                      fraction=fraction)
    return out


# ------------------------------------------------------------------------------------------
# Enrichment with exact intervals
# ------------------------------------------------------------------------------------------

# "Over-represented" is decided on the conditional exact interval of the odds ratio (PIE vs
# other images, having the finding vs not): holds when the interval lies above 1; does not hold
# when it lies below ENRICHMENT_MARGIN (the data rule out even a doubling, under-representation
# included); not resolved when it contains both 1 and the margin (too little data to tell) or
# when no image has the finding.
ENRICHMENT_MARGIN = 2.0


def exact_enrichment(pies, has, confidence: float = 0.95) -> dict:
    """PIEs against the other images for one binary property ``has`` (per image).

    Counts (pie_with, pie_without, other_with, other_without), the prevalence ratio (the
    paper's statistic), the conditional maximum-likelihood odds ratio with its conditional exact
    interval (:func:`scipy.stats.contingency.odds_ratio`, the interval that inverts Fisher's
    one-sided exact tests), Fisher's two-sided exact P and the number of PIEs expected to have
    it if PIEs were a random draw (``expected_pie``).
    """
    from scipy.stats import fisher_exact
    from scipy.stats.contingency import odds_ratio

    pies, has = np.asarray(pies, dtype=bool), np.asarray(has, dtype=bool)
    a, b = int((pies & has).sum()), int((pies & ~has).sum())
    c, d = int((~pies & has).sum()), int((~pies & ~has).sum())
    out = {"pie_with": a, "pie_without": b, "other_with": c, "other_without": d,
           "ratio": float(_ratio([a / max(a + b, 1)], [c / max(c + d, 1)])[0]),
           "expected_pie": (a + b) * (a + c) / max(a + b + c + d, 1)}
    if a + c == 0 or b + d == 0 or a + b == 0 or c + d == 0:
        return {**out, "odds_ratio": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = odds_ratio([[a, b], [c, d]], kind="conditional")
        ci = res.confidence_interval(confidence_level=confidence)
    return {**out, "odds_ratio": float(res.statistic), "ci_low": float(ci.low),
            "ci_high": float(ci.high), "p": float(fisher_exact([[a, b], [c, d]])[1])}


def enrichment_verdict(ci_low: float, ci_high: float,
                       margin: float = ENRICHMENT_MARGIN) -> bool | None:
    """Over-represented? True: the interval lies above 1; False: it lies below ``margin``;
    None (not resolved): no interval, or it holds both 1 and ``margin``."""
    if np.isnan(ci_low) or np.isnan(ci_high):
        return None
    if ci_low > 1:
        return True
    if ci_high < margin:
        return False
    return None


def interval_coverage(n_pie: int, n_other: int, p0: float, ratio: float = 1.0,
                      n_sim: int = 200, confidence: float = 0.95, seed: int = 0) -> float:
    """Simulated coverage of :func:`exact_enrichment`'s interval: ``n_sim`` draws of
    ``n_pie`` PIEs with prevalence ``ratio * p0`` and ``n_other`` images with ``p0``; the share
    of defined intervals that contain the true odds ratio (NaN if none is defined)."""
    rng = np.random.default_rng(seed)
    p1 = min(p0 * ratio, 1.0)
    if not 0 < p0 < 1 or not 0 < p1 < 1 or n_pie < 1 or n_other < 1:
        return float("nan")
    true_or = p1 * (1 - p0) / (p0 * (1 - p1))
    pie = np.r_[np.ones(n_pie, bool), np.zeros(n_other, bool)]
    hits = total = 0
    for _ in range(n_sim):
        a, c = rng.binomial(n_pie, p1), rng.binomial(n_other, p0)
        r = exact_enrichment(pie, np.r_[np.arange(n_pie) < a, np.arange(n_other) < c],
                             confidence)
        if np.isfinite(r["ci_low"]):
            total += 1
            hits += r["ci_low"] <= true_or <= r["ci_high"]
    return hits / total if total else float("nan")


def findings_count(labels, classes, no_finding: str = "No Finding") -> np.ndarray:
    """Number of positive classes per image, No Finding excluded."""
    y = np.asarray(labels, dtype=bool)
    keep = [i for i, c in enumerate(classes) if c != no_finding]
    return y[:, keep].sum(axis=1)


def enrichment_intervals(pies, labels, classes, rare_classes: Sequence[str],
                         no_finding: str = "No Finding", max_findings: int = 4,
                         confidence: float = 0.95) -> pd.DataFrame:
    """Exact enrichment of PIEs (:func:`exact_enrichment`) per class, for images with any of
    ``rare_classes`` (pooled) and for images with ``max_findings`` or more findings.

    Columns group, kind ("class", "rarest (pooled)", "findings"), the counts, ratio,
    odds_ratio, ci_low, ci_high, p, expected_pie and over (:func:`enrichment_verdict`: True,
    False or None).
    """
    y = np.asarray(labels, dtype=bool)
    classes = list(classes)
    rows = []
    for j, c in enumerate(classes):
        rows.append({"group": c, "kind": "class", **exact_enrichment(pies, y[:, j], confidence)})
    idx = [classes.index(c) for c in rare_classes]
    rows.append({"group": f"any of the {len(idx)} rarest", "kind": "rarest (pooled)",
                 **exact_enrichment(pies, y[:, idx].any(axis=1), confidence)})
    many = findings_count(y, classes, no_finding) >= max_findings
    rows.append({"group": f"{max_findings}+ findings", "kind": "findings",
                 **exact_enrichment(pies, many, confidence)})
    out = pd.DataFrame(rows)
    out["confidence"] = confidence
    out["over"] = [enrichment_verdict(lo, hi) for lo, hi in zip(out["ci_low"], out["ci_high"])]
    return out


def interval_text(row) -> str:
    """"3 of 6 PIEs vs 10 of 125 others; OR 11 (95% exact CI 1.7 to 70)"."""
    n_pie = row["pie_with"] + row["pie_without"]
    n_other = row["other_with"] + row["other_without"]
    head = f"{row['pie_with']} of {n_pie} PIEs vs {row['other_with']} of {n_other} others"
    if not np.isfinite(row["ci_low"]):
        return head + "; no interval (no image has it, or no PIE)"

    def g(x):
        return "∞" if np.isinf(x) else f"{x:.2g}" if x < 10 else f"{x:.0f}"
    conf = row["confidence"] if "confidence" in row else 0.95
    return (f"{head}; OR {g(row['odds_ratio'])} ({conf:.0%} exact CI {g(row['ci_low'])} to "
            f"{g(row['ci_high'])})")


def sensitivity_table(masks: dict, labels, classes, rare_classes, damage: pd.DataFrame,
                      levels: Sequence[float] | None = None, confidence: float = 0.95
                      ) -> pd.DataFrame:
    """The main PIE findings at several levels: per level in ``levels`` (default: every level
    in ``masks``), the pooled rarest-class row and the 4+ findings row of
    :func:`enrichment_intervals`, with the level's loss, spread ratio and guard from
    :func:`damage_table`."""
    levels = sorted(masks) if levels is None else [round(float(k), 6) for k in levels]
    rows = []
    for k in levels:
        e = enrichment_intervals(masks[k], labels, classes, rare_classes, confidence=confidence)
        d = damage[np.isclose(damage["level"], k)].iloc[0]
        for _, r in e[e["kind"] != "class"].iterrows():
            rows.append({"level": k, "loss": float(d["loss"]),
                         "spread_ratio": float(d["spread_ratio"]), "guard": bool(d["guard"]),
                         **r.to_dict()})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Ground truth within strata of the number of findings
# ------------------------------------------------------------------------------------------

def strata_of(n_findings, max_findings: int = 4) -> np.ndarray:
    """Strata "0", "1", ..., "4+" of a number of findings."""
    n = np.minimum(np.asarray(n_findings, dtype=int), max_findings)
    return np.array([f"{max_findings}+" if v == max_findings else str(v) for v in n])


def cmh_test(binary, pies, strata) -> dict:
    """Cochran-Mantel-Haenszel test of PIE status against a binary variable within strata
    (:class:`statsmodels.stats.contingency_tables.StratifiedTable`, no continuity correction).

    Strata without both PIEs and other images, or without both values of the variable, carry
    no information and are left out. Returns {"odds_ratio" (Mantel-Haenszel pooled), "ci_low",
    "ci_high", "statistic", "p", "n_strata"} (NaN where no stratum is informative).
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    x, pies, strata = (np.asarray(binary, dtype=bool), np.asarray(pies, dtype=bool),
                       np.asarray(strata))
    tables = []
    for s in pd.unique(strata):
        m = strata == s
        t = np.array([[(pies & x & m).sum(), (pies & ~x & m).sum()],
                      [(~pies & x & m).sum(), (~pies & ~x & m).sum()]], dtype=float)
        if (t.sum(axis=0) > 0).all() and (t.sum(axis=1) > 0).all():
            tables.append(t)
    nan = {"odds_ratio": np.nan, "ci_low": np.nan, "ci_high": np.nan, "statistic": np.nan,
           "p": np.nan, "n_strata": len(tables)}
    if not tables:
        return nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = StratifiedTable(tables)
        test = st.test_null_odds(correction=False)
        lo, hi = st.oddsratio_pooled_confint()
    return {"odds_ratio": float(st.oddsratio_pooled), "ci_low": float(lo), "ci_high": float(hi),
            "statistic": float(test.statistic), "p": float(test.pvalue), "n_strata": len(tables)}


def adjusted_difference(values, pies, strata) -> dict:
    """PIE minus other images' mean of a continuous variable within strata: OLS
    ``value ~ is_pie + C(stratum)`` (statsmodels formula) with heteroskedasticity-robust
    (HC3) errors. Returns {"difference", "ci_low", "ci_high", "p", "n_strata"}."""
    import statsmodels.formula.api as smf

    frame = pd.DataFrame({"value": np.asarray(values, dtype=float),
                          "is_pie": np.asarray(pies, dtype=bool).astype(float),
                          "stratum": np.asarray(strata).astype(str)}).dropna()
    nan = {"difference": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan,
           "n_strata": int(frame["stratum"].nunique())}
    if frame["is_pie"].nunique() < 2 or len(frame) < frame["stratum"].nunique() + 3:
        return nan
    formula = "value ~ is_pie" + (" + C(stratum)" if frame["stratum"].nunique() > 1 else "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.ols(formula, frame).fit(cov_type="HC3")
    lo, hi = fit.conf_int().loc["is_pie"]
    return {"difference": float(fit.params["is_pie"]), "ci_low": float(lo), "ci_high": float(hi),
            "p": float(fit.pvalues["is_pie"]), "n_strata": nan["n_strata"]}


def stratified_truth(meta: pd.DataFrame, pies, stratum_col: str = "n_findings",
                     max_findings: int = 4) -> pd.DataFrame:
    """PIEs against the other images on the phantom's ground truth, within strata of the
    number of findings the generator drew (``meta[stratum_col]``, 4+ pooled), beside the
    unadjusted comparison.

    One row per variable: label_corrupted (binary: :func:`cmh_test`, effect = the
    Mantel-Haenszel odds ratio), quality and difficulty (continuous:
    :func:`adjusted_difference`, effect = the adjusted mean difference). Columns variable,
    test, effect, ci_low, ci_high, p (stratified), p_unadjusted (Kruskal-Wallis, the paper's
    test), mean_pie, mean_other, n_strata.
    """
    from scipy.stats import kruskal

    pies = np.asarray(pies, dtype=bool)
    strata = strata_of(meta[stratum_col].to_numpy(), max_findings)
    rows = []
    for var in ("label_corrupted", "quality", "difficulty"):
        x = meta[var].to_numpy(dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                p_u = float(kruskal(x[pies], x[~pies]).pvalue)
            except ValueError:  # every value the same
                p_u = float("nan")
        if var == "label_corrupted":
            r = cmh_test(x > 0.5, pies, strata)
            row = {"test": "Cochran-Mantel-Haenszel", "effect": r["odds_ratio"]}
        else:
            r = adjusted_difference(x, pies, strata)
            row = {"test": "OLS + C(stratum), HC3", "effect": r["difference"]}
        rows.append({"variable": var, **row, "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                     "p": r["p"], "p_unadjusted": p_u, "mean_pie": float(x[pies].mean()),
                     "mean_other": float(x[~pies].mean()), "n_strata": r["n_strata"]})
    return pd.DataFrame(rows)
