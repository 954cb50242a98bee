"""Q5 (beyond the paper): compression methods compared at matched overall damage.

Methods differ in what their level means (a sparsity, a share of channels, a bit width), so
comparing them level by level says little. Here each method is read at the level where its
population's median overall mAP has lost a given share of its dense value (5%, 10%, 20%), and
what happens to each class there is compared between methods.

- :func:`damage_curve`: median mAP over seeds per method and level, and its loss vs dense.
- :func:`matched_levels`: the level of each method where the loss first reaches each target
  (linear interpolation between the two grid levels around the crossing; NaN if never), and
  whether the grid resolves it: the grid level at or above the crossing has lost at most
  twice the target (``RESOLUTION``), else the interpolation spans too large a jump to read
  per-class changes from.
- :func:`class_change_at`: every seed's per-class relative AP change at those levels
  (interpolated the same way).
- :func:`matched_damage`: per method and target, the median change of the rarest classes and
  of the rest, and Spearman's rho of per-class change vs ln(train count) (the Q2 statistic),
  each with a percentile bootstrap 95% interval over seeds. The matched level is the
  population's; the bootstrap resamples seeds given that level.
- :func:`matched_pies` and :func:`pie_overlap`: the PIEs of each method at its matched level
  (population-mean outputs interpolated between the grid levels around it, on the seeds every
  method shares; Q4's definition), their enrichment for the rarest classes and for images with
  many findings, and the Jaccard overlap of the PIE sets of every pair of methods.
- :func:`paired_comparisons`: every method against the reference (l1) at matched damage, the
  difference in the rare-vs-rest gap and in rho, by a paired bootstrap over the seeds both
  share with the matched levels found again in every resample; Holm over the comparisons.

Tables are the store's ``ap_table`` (columns method, seed, sparsity, class, ap); ``level`` names
the column that orders a method's grid (``sparsity`` for pruning).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as _st

from ..stats import require_columns, rowwise_spearman
from .forgetting import relative_change
from .overall import map_per_model

LOSSES = (0.05, 0.10, 0.20)
RESOLUTION = 2.0  # a matched point is resolved if the grid level above it lost <= 2x the target


def _levels_as_sparsity(table: pd.DataFrame, level: str) -> pd.DataFrame:
    """The table with its level column named ``sparsity`` (what the Q1/Q2 functions read)."""
    if level == "sparsity":
        return table
    return table.drop(columns="sparsity", errors="ignore").rename(columns={level: "sparsity"})


def damage_curve(ap_table: pd.DataFrame, level: str = "sparsity") -> pd.DataFrame:
    """Median mAP over seeds per (method, level) and its relative loss vs the method's level-0
    median: columns method, level, median_map, loss (0 at the dense level, 1 = mAP gone)."""
    maps = map_per_model(_levels_as_sparsity(ap_table, level))
    med = maps.groupby(["method", "sparsity"], sort=True)["map"].median().reset_index()
    out = []
    for method, g in med.groupby("method", sort=False):
        dense = g.loc[np.isclose(g["sparsity"], 0.0), "map"]
        if dense.empty:
            raise ValueError(f"method {method!r} has no level-0 (dense) rows to measure loss from")
        out.append(g.assign(loss=1.0 - g["map"] / float(dense.iloc[0])))
    return (pd.concat(out, ignore_index=True)
            .rename(columns={"sparsity": "level", "map": "median_map"}))


def matched_levels(ap_table: pd.DataFrame, losses=LOSSES, level: str = "sparsity") -> pd.DataFrame:
    """The level at which each method's median mAP first loses each share in ``losses``.

    Columns method, loss, level, reached, grid_level (the first grid level at or above the
    target), grid_loss (its loss) and resolved (``grid_loss <= RESOLUTION * loss``). Between
    the last grid level below the target and the first at or above it the loss is taken as
    linear in the level; a target the grid never reaches gives NaN (reached False).
    """
    if any(not 0 < float(x) < 1 for x in losses):
        raise ValueError(f"losses must be fractions in (0, 1), got {list(losses)}")
    curve = damage_curve(ap_table, level)
    rows = []
    for method, g in curve.groupby("method", sort=False):
        ks, loss = g["level"].to_numpy(float), g["loss"].to_numpy(float)
        for target in losses:
            hit = np.flatnonzero(loss >= target)
            if len(hit) == 0:
                rows.append({"method": method, "loss": float(target), "level": np.nan,
                             "reached": False, "grid_level": np.nan, "grid_loss": np.nan,
                             "resolved": False})
                continue
            i = int(hit[0])
            at = ks[0] if i == 0 else ks[i - 1] + (target - loss[i - 1]) / (
                loss[i] - loss[i - 1]) * (ks[i] - ks[i - 1])
            rows.append({"method": method, "loss": float(target), "level": float(at),
                         "reached": True, "grid_level": float(ks[i]), "grid_loss": float(loss[i]),
                         "resolved": bool(loss[i] <= RESOLUTION * target)})
    return pd.DataFrame(rows, columns=["method", "loss", "level", "reached", "grid_level",
                                       "grid_loss", "resolved"])


def class_change_at(ap_table: pd.DataFrame, matched: pd.DataFrame,
                    level: str = "sparsity") -> pd.DataFrame:
    """Each seed's relative AP change per class at each matched level of its method.

    Columns method, loss, level, seed, class, rel_change; the change is interpolated linearly
    between the grid levels around the matched one (NaN where the class has no dense AP).
    """
    require_columns(matched, ["method", "loss", "level"], "matched")
    rel = relative_change(_levels_as_sparsity(ap_table, level))
    rows = []
    for (method, seed, cls), g in rel.groupby(["method", "seed", "class"], sort=True):
        g = g.sort_values("sparsity")
        for m in matched[(matched["method"] == method) & matched["level"].notna()].itertuples():
            rows.append({"method": method, "loss": m.loss, "level": m.level, "seed": seed,
                         "class": cls, "rel_change": float(np.interp(
                             m.level, g["sparsity"].to_numpy(float), g["rel_change"].to_numpy(float)))})
    return pd.DataFrame(rows, columns=["method", "loss", "level", "seed", "class", "rel_change"])


def _summaries(per_class: np.ndarray, logc: np.ndarray, rare: np.ndarray) -> np.ndarray:
    """Rows of (median change of the rare classes, of the others, Spearman rho vs ln count)
    from per-class changes ``per_class`` (rows x classes; NaN = no value), vectorised."""
    per_class = np.atleast_2d(per_class)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups give NaN
        rare_v = np.nanmedian(per_class[:, rare], axis=1) if rare.any() else np.full(len(per_class), np.nan)
        other = np.nanmedian(per_class[:, ~rare], axis=1) if (~rare).any() else np.full(len(per_class), np.nan)
    good = np.isfinite(per_class) & np.isfinite(logc)
    rho = np.full(len(per_class), np.nan)
    cols = good.all(axis=0)  # classes valued in every row
    full = (good == cols).all(axis=1) if cols.sum() >= 3 else np.zeros(len(good), bool)
    if full.any():  # rows valued on the same classes: one vectorised rank correlation
        rho[full] = rowwise_spearman(np.broadcast_to(logc[cols], (int(full.sum()), int(cols.sum()))),
                                     per_class[full][:, cols])
    for r in np.flatnonzero(~full):  # rows with their own missing classes
        if good[r].sum() >= 3:
            rho[r] = _st.spearmanr(logc[good[r]], per_class[r, good[r]]).statistic
    return np.column_stack([rare_v, other, rho])


def matched_damage(ap_table: pd.DataFrame, train_counts: pd.Series, losses=LOSSES,
                   n_rare: int = 5, n_boot: int = 2000, seed: int = 0,
                   level: str = "sparsity") -> pd.DataFrame:
    """At each method's matched levels: how much the rarest classes lose, against the rest.

    ``n_rare`` rarest classes by ``train_counts`` (the paper's Q4 choice of five). Columns
    method, loss, level, resolved (see :func:`matched_levels`), n_seeds, rare_change,
    other_change, rare_minus_other, rho (per-class change vs ln train count; > 0 means rarer
    classes lose more), each statistic with ``_lo``/``_hi`` bounds of a percentile bootstrap 95%
    interval over seeds (``n_boot`` resamples, generator seeded by ``seed``). A class's change is
    its median over the (resampled) seeds; NaN changes are skipped.
    """
    matched = matched_levels(ap_table, losses, level)
    changes = class_change_at(ap_table, matched, level)
    rare_names = list(train_counts.sort_values(kind="stable").index[:n_rare])
    rng = np.random.default_rng(seed)
    rows = []
    for (method, loss), g in changes.groupby(["method", "loss"], sort=False):
        x = g.pivot(index="seed", columns="class", values="rel_change")  # seeds x classes
        logc = np.log(train_counts.reindex(x.columns).astype(float)).to_numpy()
        rare = np.asarray(x.columns.isin(rare_names))
        values = x.to_numpy(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            point = _summaries(np.nanmedian(values, axis=0), logc, rare)[0]
            picks = rng.integers(0, len(values), size=(n_boot, len(values)))
            boot = _summaries(np.nanmedian(values[picks], axis=1), logc, rare)
        m = matched[(matched["method"] == method) & (matched["loss"] == loss)].iloc[0]
        row = {"method": method, "loss": loss, "level": float(g["level"].iloc[0]),
               "resolved": bool(m["resolved"]), "n_seeds": len(values)}
        diff = boot[:, 0] - boot[:, 1]
        for name, value, samples in (("rare_change", point[0], boot[:, 0]),
                                     ("other_change", point[1], boot[:, 1]),
                                     ("rare_minus_other", point[0] - point[1], diff),
                                     ("rho", point[2], boot[:, 2])):
            lo, hi = np.nanpercentile(samples, [2.5, 97.5]) if np.isfinite(samples).any() else (np.nan, np.nan)
            row.update({name: float(value), f"{name}_lo": float(lo), f"{name}_hi": float(hi)})
        rows.append(row)
    return pd.DataFrame(rows)


def shared_seeds(store, methods) -> list[int]:
    """The seeds every one of ``methods`` was swept on (in order)."""
    seeds = None
    for m in methods:
        seeds = list(store.method_seeds(m)) if seeds is None else [
            s for s in seeds if s in set(store.method_seeds(m))]
    return seeds or []


def interpolated_outputs(store, method: str, level: float, seeds) -> np.ndarray:
    """Population-mean sigmoid outputs (n_test, C) of ``method`` at ``level``, linear between
    the means at the two grid levels around it (at a grid level: that level's mean)."""
    from .pies import mean_probabilities

    ks = np.asarray(store.levels(method), dtype=float)
    i = int(np.clip(np.searchsorted(ks, level, side="left"), 1, len(ks) - 1))
    w = float(np.clip((level - ks[i - 1]) / (ks[i] - ks[i - 1]), 0.0, 1.0))
    both = mean_probabilities(store, method, [ks[i - 1], ks[i]], seeds=seeds)
    return (1.0 - w) * both[0] + w * both[1]


def matched_pies(store, matched: pd.DataFrame, fraction: float = 0.05, n_rare: int = 5,
                 max_findings: int = 4, seeds=None) -> tuple[pd.DataFrame, dict]:
    """PIEs of each method at each matched damage (Q4's definition, at the matched level).

    For every reached row of :func:`matched_levels`: the population-mean predictions of the
    method's ``seeds`` (default: the seeds every method of ``matched`` shares, so population
    size never differs between methods) at its level 0 and at the matched ``level``
    (interpolated between the two grid levels around it, :func:`interpolated_outputs`) give
    per-image agreement scores (Spearman, as Q4), and the ``fraction`` least agreeing images
    are the PIEs. Returns a table (method, loss, level, n_seeds, n_pies, rare_ratio: prevalence
    among PIEs / among the rest of images with any of the ``n_rare`` rarest classes,
    multi_ratio: the same for images with ``max_findings`` or more findings) and the PIE
    masks, keyed by (method, loss).
    """
    from .pies import findings_enrichment, mean_probabilities, select_pies

    require_columns(matched, ["method", "loss", "reached", "level"], "matched")
    if seeds is None:
        seeds = shared_seeds(store, list(dict.fromkeys(matched["method"])))
    rare = list(store.train_counts.sort_values(kind="stable").index[:n_rare])
    has_rare = store.labels[:, [store.classes.index(c) for c in rare]].any(axis=1)
    rows, masks = [], {}
    for m in matched[matched["reached"]].itertuples():
        dense = mean_probabilities(store, m.method, float(store.levels(m.method)[0]), seeds=seeds)
        at = interpolated_outputs(store, m.method, float(m.level), seeds)
        scores = rowwise_spearman(dense, at)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mask = select_pies(scores, fraction)
        masks[(m.method, m.loss)] = mask
        findings = findings_enrichment(mask, store.labels, store.classes, max_findings=max_findings)
        rare_pie, rare_non = has_rare[mask].mean(), has_rare[~mask].mean()
        rows.append({"method": m.method, "loss": m.loss, "level": m.level,
                     "n_seeds": len(seeds), "n_pies": int(mask.sum()),
                     "rare_ratio": float(rare_pie / rare_non) if rare_non > 0 else np.nan,
                     "multi_ratio": float(findings["ratio"].iloc[-1])})
    return pd.DataFrame(rows, columns=["method", "loss", "level", "n_seeds", "n_pies",
                                       "rare_ratio", "multi_ratio"]), masks


def jaccard(a, b) -> float:
    """|a and b| / |a or b| of two boolean masks (NaN when both are empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else np.nan


def pie_overlap(masks: dict) -> pd.DataFrame:
    """Jaccard overlap of the PIE sets of every pair of methods at each matched loss.

    ``masks`` as returned by :func:`matched_pies`. Columns loss, method_a, method_b, jaccard.
    """
    rows = []
    for loss in sorted({k[1] for k in masks}):
        methods = [k[0] for k in masks if k[1] == loss]
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                rows.append({"loss": loss, "method_a": a, "method_b": b,
                             "jaccard": jaccard(masks[(a, loss)], masks[(b, loss)])})
    return pd.DataFrame(rows, columns=["loss", "method_a", "method_b", "jaccard"])


# ------------------------------------------------------------------ the Q5 chapter's tables

def method_table(store) -> pd.DataFrame:
    """One row per method of ``store``: unit, levels, grid, seeds swept, sweep seconds per seed
    (median) and in all."""
    seconds = store.sweep_seconds().groupby("method")["seconds"]
    rows = []
    for m in store.methods:
        f = store.level_facts(m)
        f = f[f["seed"] == store.method_seeds(m)[0]]
        rows.append({"method": m, "unit": f["unit"].iloc[0], "levels": len(f),
                     "grid": ", ".join(f"{x:g}" for x in f["nominal"]),
                     "seeds": len(store.method_seeds(m)),
                     "sweep s per seed": float(seconds.median()[m]),
                     "sweep s in all": float(seconds.sum()[m])})
    return pd.DataFrame(rows)


def matched_in_units(store, matched: pd.DataFrame) -> pd.DataFrame:
    """:func:`matched_levels` with each matched level also in its method's own unit
    (``nominal``: sparsity, share of channels, bits) and as ``storage removed``: the share of
    the dense 32-bit storage saved counting everything the compressed model must store
    (:func:`prunecxr.compress.stored_bits`; NaN for results swept before it was recorded),
    both interpolated between grid entries; ``level`` is the weights-only share."""
    nominal, units, storage = [], [], []
    for row in matched.itertuples():
        f = store.level_facts(row.method)
        units.append(f["unit"].iloc[0])
        if not row.reached:
            nominal.append(np.nan)
            storage.append(np.nan)
            continue
        g = f.drop_duplicates("nominal")
        nominal.append(float(np.interp(row.level, g["level"].to_numpy(float),
                                       g["nominal"].to_numpy(float))))
        if "storage_removed" in f:  # median over seeds per grid entry
            st = f.groupby("nominal", sort=False)[["level", "storage_removed"]].median()
            storage.append(float(np.interp(row.level, st["level"].to_numpy(float),
                                           st["storage_removed"].to_numpy(float))))
        else:
            storage.append(np.nan)
    return matched.assign(nominal=nominal, unit=units, storage_removed=storage)[
        ["method", "loss", "level", "storage_removed", "nominal", "unit", "grid_level",
         "grid_loss", "resolved"]]


def storage_table(store) -> pd.DataFrame:
    """Per method and grid entry (median over seeds): the weights-only share removed
    (``level``) beside the share of all stored bits removed (``storage_removed``) and bits per
    weight of the dense model; empty for results swept before storage was recorded."""
    rows = []
    for m in store.methods:
        f = store.level_facts(m)
        if "stored_bits" not in f:
            return pd.DataFrame()
        g = f.groupby("nominal", sort=False)[["level", "storage_removed", "stored_bits"]].median()
        dense_bits = g["stored_bits"].iloc[0] / (1.0 - g["storage_removed"].iloc[0])
        for nominal, r in g.iterrows():
            rows.append({"method": m, "nominal": nominal, "unit": f["unit"].iloc[0],
                         "weights removed": r["level"], "storage removed": r["storage_removed"],
                         "bits per dense weight": 32 * r["stored_bits"] / dense_bits})
    return pd.DataFrame(rows)


def finetune_effect(ap_table: pd.DataFrame, method: str = "l1_ft", reference: str = "l1",
                    level: str = "sparsity") -> pd.DataFrame:
    """The effect of fine-tuning alone: ``method``'s level 0 (the trained model fine-tuned
    without a mask, :class:`prunecxr.compress.PruneFinetune`) against ``reference``'s level 0
    (the trained model), per shared seed: mAP of each and the paired difference, with its
    median and a 95% t-interval of the mean over seeds in the last row ("all")."""
    maps = map_per_model(_levels_as_sparsity(ap_table, level))
    dense = maps[np.isclose(maps["sparsity"], 0.0)].pivot(index="seed", columns="method",
                                                          values="map")
    if method not in dense or reference not in dense:
        return pd.DataFrame()
    d = dense[[reference, method]].dropna()
    diff = (d[method] - d[reference]).to_numpy(float)
    out = pd.DataFrame({"seed": d.index.astype(str), f"{reference} (trained)": d[reference],
                        f"{method} level 0 (fine-tuned)": d[method], "difference": diff})
    lo = hi = np.nan
    if len(diff) >= 2 and np.ptp(diff) > 0:
        lo, hi = _st.ttest_1samp(diff, 0.0).confidence_interval(0.95)
    summary = {"seed": "all", f"{reference} (trained)": float(np.median(d[reference])),
               f"{method} level 0 (fine-tuned)": float(np.median(d[method])),
               "difference": float(np.mean(diff)) if len(diff) else np.nan,
               "95% t-interval": f"[{lo:+.4f}, {hi:+.4f}]"}
    return pd.concat([out, pd.DataFrame([summary])], ignore_index=True)


def first_step_losses(curve: pd.DataFrame) -> pd.Series:
    """Each method's loss at its first grid level above 0 (from :func:`damage_curve`)."""
    return pd.Series({m: float(g.sort_values("level")["loss"].iloc[1])
                      for m, g in curve.groupby("method", sort=False) if len(g) > 1},
                     name="first_step_loss", dtype=float)


def comparison_display(comparisons: pd.DataFrame) -> pd.DataFrame:
    """:func:`paired_comparisons` for reading: per method and loss, each difference with its
    paired interval and Holm P, and whether it was decided."""
    if comparisons.empty:
        return comparisons

    def cell(r, k):
        p = r[f"{k}_p_holm"]
        return (f"{r[f'{k}_diff']:+.3f} [{r[f'{k}_diff_lo']:+.3f}, {r[f'{k}_diff_hi']:+.3f}]"
                + (f", P_Holm {p:.3f}" if np.isfinite(p) else ""))

    return pd.DataFrame([{
        "method": r["method"], "mAP lost": f"{100 * r['loss']:.0f}%", "seeds": r["n_seeds"],
        "decided": r["decided"], "gap − ref gap": cell(r, "gap"), "ρ − ref ρ": cell(r, "rho"),
        "resamples reaching it": f"{r['reached']:.1%}"} for _, r in comparisons.iterrows()])


def damage_display(damage: pd.DataFrame) -> pd.DataFrame:
    """:func:`matched_damage` for reading: each statistic as "value [low, high]"."""
    def interval(row, name):
        return f"{row[name]:+.3f} [{row[name + '_lo']:+.3f}, {row[name + '_hi']:+.3f}]"

    return pd.DataFrame([{
        "method": r["method"], "mAP lost": f"{100 * r['loss']:.0f}%", "resolved": r["resolved"],
        "seeds": r["n_seeds"], "rarest": interval(r, "rare_change"),
        "others": interval(r, "other_change"), "rarest − others": interval(r, "rare_minus_other"),
        "ρ vs ln count": interval(r, "rho")} for _, r in damage.iterrows()])


def overlap_with(overlap: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Rows of :func:`pie_overlap` that involve ``reference``: columns loss, method (the
    other one), jaccard."""
    mine = overlap[(overlap["method_a"] == reference) | (overlap["method_b"] == reference)]
    other = np.where(mine["method_a"] == reference, mine["method_b"], mine["method_a"])
    return mine.assign(method=other)[["loss", "method", "jaccard"]].reset_index(drop=True)


def overlap_matrix(overlap: pd.DataFrame, masks: dict, loss: float) -> pd.DataFrame:
    """Jaccard index of the PIE sets of every pair of methods that reached ``loss``."""
    methods = [m for (m, x) in masks if x == loss]
    matrix = pd.DataFrame(np.eye(len(methods)), index=methods, columns=methods)
    for r in overlap[overlap["loss"] == loss].itertuples():
        matrix.loc[r.method_a, r.method_b] = matrix.loc[r.method_b, r.method_a] = r.jaccard
    return matrix


def channel_savings(store) -> pd.DataFrame:
    """What channel pruning saves, per share of channels removed (first seed of the first
    channel method): weights removed, parameters and MACs left, channels; empty without one."""
    structured = [m for m in store.methods if m.startswith("channel_")]
    if not structured:
        return pd.DataFrame()
    f = store.level_facts(structured[0])
    return (f[f["seed"] == f["seed"].iloc[0]][["nominal", "level", "params_share", "macs_share",
                                               "channels"]]
            .rename(columns={"nominal": "share of channels removed", "level": "weights removed",
                             "params_share": "parameters left", "macs_share": "MACs left"}))


# ------------------------------------------------------------------ methods against the reference

MIN_SEEDS = 8  # a comparison is decided only on at least this many shared seeds (the count
#   whose interval coverage tests/test_compression_paired.py simulates)
RESAMPLES_REACHED = 0.975  # ... and only if the matched level is reached in this share of resamples
COMPARISON_STATS = ("gap", "rho")  # rare-minus-other median change; Spearman rho vs ln count
# Coverage of the paired percentile 95% interval at MIN_SEEDS seeds with no true difference,
# measured by simulation (tests/test_compression_paired.py's model; 400 builds x 1,000
# resamples at 5% and 20% mAP lost, the smaller of the two; the test rechecks it): the
# intervals are conservative for "no difference", so a "differs" verdict errs at most at the
# nominal rate. With a planted difference (the method's rarest classes 1.5x as sensitive) the
# gap's interval still covers the truth 0.98-0.99 of the time, but rho's only 0.02-0.25:
# Spearman's rho of per-class medians over 8 seeds is pulled toward 0 where classes differ
# little, so rho's interval tests "no difference" and is not an interval for its size.
COVERAGE = {"gap": 0.985, "rho": 0.98}


def method_array(ap_table: pd.DataFrame, method: str, seeds, classes,
                 level: str = "sparsity") -> tuple[np.ndarray, np.ndarray]:
    """(levels, AP[seed, level, class]) of ``method`` on ``seeds`` and ``classes``, in order."""
    t = ap_table[(ap_table["method"] == method) & ap_table["seed"].isin(list(seeds))]
    cube = t.pivot_table(index=["seed", level], columns="class", values="ap", dropna=False)
    ks = np.sort(t[level].unique().astype(float))
    cube = cube.reindex(pd.MultiIndex.from_product([list(seeds), ks]), columns=list(classes))
    return ks, cube.to_numpy(float).reshape(len(seeds), len(ks), len(classes))


def matched_changes(ap: np.ndarray, ks: np.ndarray, target: float,
                    picks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The matched point found again in every resample of seeds.

    ``ap``: AP[seed, level, class]; ``picks``: (B, n) seed indices, one resample per row. For
    each row: the median over the picked seeds of each level's mAP (nan-mean over classes),
    its loss against level 0, the level where that loss first reaches ``target`` (linear
    between the grid levels around it, as :func:`matched_levels`), and each class's relative
    AP change at that level (each picked seed's, interpolated the same way, then the median
    over the picked seeds, NaN skipped). Returns (level [B], per-class change [B, C],
    grid_loss [B]: the loss at the first grid level at or above the target); rows whose
    resample never reaches the target are NaN.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        maps = np.nanmean(ap, axis=2)  # seeds x levels
        med = np.median(maps[picks], axis=1)  # B x levels
        loss = 1.0 - med / med[:, :1]
        reached = loss >= target
        ok = reached.any(axis=1)
        i = np.where(ok, reached.argmax(axis=1), 1).clip(1, len(ks) - 1)
        rows = np.arange(len(picks))
        lo_loss, hi_loss = loss[rows, i - 1], loss[rows, i]
        w = np.clip((target - lo_loss) / (hi_loss - lo_loss), 0.0, 1.0)
        at = ks[i - 1] + w * (ks[i] - ks[i - 1])
        ap0 = ap[:, :1, :]
        rel = np.where(np.isfinite(ap0) & (ap0 != 0), (ap - ap0) / np.where(ap0 == 0, 1, ap0),
                       np.nan)  # seeds x levels x classes
        sel = rel[picks]  # B x n x levels x classes
        lo = sel[rows, :, i - 1, :]
        hi = sel[rows, :, i, :]
        change = np.nanmedian(lo + w[:, None, None] * (hi - lo), axis=1)
    at[~ok], change[~ok], hi_loss = np.nan, np.nan, np.where(ok, hi_loss, np.nan)
    return at, change, hi_loss


def gap_and_rho(change: np.ndarray, logc: np.ndarray, rare: np.ndarray) -> np.ndarray:
    """(rare-minus-other median change, Spearman rho vs ln count) per row of ``change``."""
    s = _summaries(change, logc, rare)
    return np.column_stack([s[:, 0] - s[:, 1], s[:, 2]])


def bootstrap_p(samples: np.ndarray) -> float:
    """Two-sided percentile-bootstrap P value of "no difference": twice the smaller share of
    resamples on either side of 0 (each counted with the observed one, (k + 1) / (B + 1)),
    capped at 1. It is the smallest alpha at which the 1 - alpha percentile interval
    excludes 0, so P < 0.05 exactly when the 95% interval lies on one side of 0."""
    x = samples[np.isfinite(samples)]
    if not len(x):
        return np.nan
    below, above = (np.sum(x <= 0) + 1) / (len(x) + 1), (np.sum(x >= 0) + 1) / (len(x) + 1)
    return float(min(1.0, 2 * min(below, above)))


def paired_difference(ap_m: np.ndarray, ks_m: np.ndarray, ap_r: np.ndarray, ks_r: np.ndarray,
                      target: float, logc: np.ndarray, rare: np.ndarray, n_boot: int = 2000,
                      seed: int = 0, ci: float = 0.95) -> dict:
    """Method minus reference in (gap, rho) at matched ``target`` loss, paired over seeds.

    ``ap_m`` and ``ap_r`` hold the same seeds in the same order (AP[seed, level, class]). One
    resample of seeds (with replacement) serves both methods; in each, both matched levels are
    found again (:func:`matched_changes`), then the difference. Returns the point estimates
    (all seeds), the percentile intervals, the bootstrap P (:func:`bootstrap_p`) and
    ``reached``: the share of resamples where both methods reach the target.
    """
    n = len(ap_m)
    if len(ap_r) != n:
        raise ValueError(f"the methods must share their seeds (got {n} and {len(ap_r)})")
    rng = np.random.default_rng(seed)
    all_seeds = np.arange(n)[None, :]
    picks = np.vstack([all_seeds, rng.integers(0, n, size=(n_boot, n))])
    lev_m, ch_m, gl_m = matched_changes(ap_m, ks_m, target, picks)
    lev_r, ch_r, gl_r = matched_changes(ap_r, ks_r, target, picks)
    sm, sr = gap_and_rho(ch_m, logc, rare), gap_and_rho(ch_r, logc, rare)
    diff = sm - sr
    both = np.isfinite(lev_m[1:]) & np.isfinite(lev_r[1:])
    out = {"n_seeds": n, "level": float(lev_m[0]), "ref_level": float(lev_r[0]),
           "reached": float(both.mean()) if n_boot else np.nan}
    q = 100 * np.array([(1 - ci) / 2, (1 + ci) / 2])
    for j, name in enumerate(COMPARISON_STATS):
        boot = diff[1:, j][both]
        boot = boot[np.isfinite(boot)]
        lo, hi = np.percentile(boot, q) if len(boot) else (np.nan, np.nan)
        out.update({name: float(sm[0, j]), f"ref_{name}": float(sr[0, j]),
                    f"{name}_diff": float(diff[0, j]), f"{name}_diff_lo": float(lo),
                    f"{name}_diff_hi": float(hi), f"{name}_p": bootstrap_p(boot)})
    return out


def paired_comparisons(ap_table: pd.DataFrame, train_counts: pd.Series, reference: str = "l1",
                       losses=LOSSES, n_rare: int = 5, n_boot: int = 2000, seed: int = 0,
                       level: str = "sparsity", min_seeds: int = MIN_SEEDS,
                       alpha: float = 0.05) -> pd.DataFrame:
    """Every other method against ``reference`` at each matched loss, paired over shared seeds.

    One row per (method, loss) where both reach the loss: n_seeds (shared), level and
    ref_level (matched, on all shared seeds), resolved (both grids resolve their point,
    :func:`matched_levels`), the method's and the reference's gap (rarest minus other classes'
    median change) and rho (per-class change vs ln train count), their differences
    ``*_diff`` (method minus reference) with percentile 95% intervals ``_lo``/``_hi`` and
    bootstrap P ``*_p`` (:func:`paired_difference`), ``reached`` (share of resamples where
    both reach the loss) and ``decided``: the comparison counts only with at least
    ``min_seeds`` shared seeds, both points resolved and ``reached`` >= RESAMPLES_REACHED.
    ``*_p_holm``: Holm's adjustment over the decided comparisons of that statistic, and
    ``*_differs``: ``*_p_holm < alpha`` (NaN where not decided).
    """
    from ..stats import holm

    classes = list(train_counts.index)
    classes = [c for c in classes if c in set(ap_table["class"])]
    logc = np.log(train_counts.reindex(classes).astype(float)).to_numpy()
    rare = np.isin(classes, list(train_counts.sort_values(kind="stable").index[:n_rare]))
    matched = matched_levels(ap_table, losses, level)
    resolved = {(r.method, r.loss): bool(r.resolved) for r in matched.itertuples()}
    reached = {(r.method, r.loss): bool(r.reached) for r in matched.itertuples()}
    ref_seeds = set(ap_table.loc[ap_table["method"] == reference, "seed"])
    rows = []
    for method in [m for m in ap_table["method"].unique() if m != reference]:
        seeds = sorted(ref_seeds & set(ap_table.loc[ap_table["method"] == method, "seed"]))
        if len(seeds) < 2:
            continue
        ks_m, ap_m = method_array(ap_table, method, seeds, classes, level)
        ks_r, ap_r = method_array(ap_table, reference, seeds, classes, level)
        for target in losses:
            target = float(target)
            if not (reached.get((method, target)) and reached.get((reference, target))):
                continue
            row = paired_difference(ap_m, ks_m, ap_r, ks_r, target, logc, rare, n_boot, seed)
            ok = resolved[(method, target)] and resolved[(reference, target)]
            rows.append({"method": method, "loss": target, "resolved": ok, **row,
                         "decided": bool(ok and len(seeds) >= min_seeds
                                         and row["reached"] >= RESAMPLES_REACHED)})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    for name in COMPARISON_STATS:
        p = out[f"{name}_p"].where(out["decided"])
        out[f"{name}_p_holm"] = holm(p.to_numpy(float))
        out[f"{name}_differs"] = (out[f"{name}_p_holm"] < alpha).where(out["decided"])
    return out
