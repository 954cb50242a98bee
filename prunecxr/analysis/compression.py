"""Q5 (beyond the paper): compression methods compared at matched overall damage.

Methods differ in what their level means (a sparsity, a share of channels, a bit width), so
comparing them level by level says little. Here each method is read at the level where its
population's median overall mAP has lost a given share of its dense value (5%, 10%, 20%), and
what happens to each class there is compared between methods.

- :func:`damage_curve`: median mAP over seeds per method and level, and its loss vs dense.
- :func:`matched_levels`: the level of each method where the loss first reaches each target
  (linear interpolation between the two grid levels around the crossing; NaN if never).
- :func:`class_change_at`: every seed's per-class relative AP change at those levels
  (interpolated the same way).
- :func:`matched_damage`: per method and target, the median change of the rarest classes and
  of the rest, and Spearman's rho of per-class change vs ln(train count) (the Q2 statistic),
  each with a percentile bootstrap 95% interval over seeds. The matched level is the
  population's; the bootstrap resamples seeds given that level.

Tables are the store's ``ap_table`` (columns method, seed, sparsity, class, ap); ``level`` names
the column that orders a method's grid (``sparsity`` for pruning).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _st

from ..stats import require_columns
from .forgetting import relative_change
from .overall import map_per_model

LOSSES = (0.05, 0.10, 0.20)


def _levels_as_sparsity(table: pd.DataFrame, level: str) -> pd.DataFrame:
    """The table with its level column named ``sparsity`` (what the Q1/Q2 functions read)."""
    return table if level == "sparsity" else table.rename(columns={level: "sparsity"})


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

    Columns method, loss, level, reached. Between the last grid level below the target and the
    first at or above it the loss is taken as linear in the level; a target the grid never
    reaches gives NaN (reached False).
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
                             "reached": False})
                continue
            i = int(hit[0])
            at = ks[0] if i == 0 else ks[i - 1] + (target - loss[i - 1]) / (
                loss[i] - loss[i - 1]) * (ks[i] - ks[i - 1])
            rows.append({"method": method, "loss": float(target), "level": float(at),
                         "reached": True})
    return pd.DataFrame(rows, columns=["method", "loss", "level", "reached"])


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


def _summaries(changes: pd.DataFrame, train_counts: pd.Series, rare: list) -> tuple[float, float, float]:
    """(median change of the rare classes, of the others, Spearman rho vs ln count) for one
    method and target, from per-seed changes (class medians over seeds first)."""
    per_class = changes.groupby("class")["rel_change"].median()
    ok = per_class.notna()
    rare_v = per_class[ok & per_class.index.isin(rare)]
    other = per_class[ok & ~per_class.index.isin(rare)]
    logc = np.log(train_counts.reindex(per_class.index).astype(float))
    good = ok & np.isfinite(logc)
    rho = _st.spearmanr(logc[good], per_class[good]).statistic if good.sum() >= 3 else np.nan
    return (float(rare_v.median()) if len(rare_v) else np.nan,
            float(other.median()) if len(other) else np.nan, float(rho))


def matched_damage(ap_table: pd.DataFrame, train_counts: pd.Series, losses=LOSSES,
                   n_rare: int = 5, n_boot: int = 2000, seed: int = 0,
                   level: str = "sparsity") -> pd.DataFrame:
    """At each method's matched levels: how much the rarest classes lose, against the rest.

    ``n_rare`` rarest classes by ``train_counts`` (the paper's Q4 choice of five). Columns
    method, loss, level, n_seeds, rare_change, other_change, rare_minus_other, rho (per-class
    change vs ln train count; > 0 means rarer classes lose more), each statistic with
    ``_lo``/``_hi`` bounds of a percentile bootstrap 95% interval over seeds (``n_boot``
    resamples, generator seeded by ``seed``).
    """
    matched = matched_levels(ap_table, losses, level)
    changes = class_change_at(ap_table, matched, level)
    rare = list(train_counts.sort_values(kind="stable").index[:n_rare])
    rng = np.random.default_rng(seed)
    rows = []
    for (method, loss), g in changes.groupby(["method", "loss"], sort=False):
        seeds = np.array(sorted(g["seed"].unique()))
        point = _summaries(g, train_counts, rare)
        by_seed = {s: d for s, d in g.groupby("seed")}
        boot = np.array([_summaries(pd.concat([by_seed[s] for s in rng.choice(seeds, len(seeds))]),
                                    train_counts, rare) for _ in range(n_boot)])
        diff = boot[:, 0] - boot[:, 1]
        row = {"method": method, "loss": loss, "level": float(g["level"].iloc[0]),
               "n_seeds": len(seeds)}
        for name, value, samples in (("rare_change", point[0], boot[:, 0]),
                                     ("other_change", point[1], boot[:, 1]),
                                     ("rare_minus_other", point[0] - point[1], diff),
                                     ("rho", point[2], boot[:, 2])):
            lo, hi = np.nanpercentile(samples, [2.5, 97.5]) if np.isfinite(samples).any() else (np.nan, np.nan)
            row.update({name: value, f"{name}_lo": float(lo), f"{name}_hi": float(hi)})
        rows.append(row)
    return pd.DataFrame(rows)
