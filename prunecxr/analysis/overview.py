"""Data and methods at a glance: the tables and figures of the book's "Data and methods" chapter.

Everything here takes plain arrays and DataFrames (class names, a 0/1 label matrix, count
series, the tidy training history) and returns a DataFrame or a matplotlib Figure, so it works
on any dataset behind the :mod:`prunecxr.data` interface and is tested without a results store.

- :func:`class_table` / :func:`class_counts_figure`: positives per class and split, log scale.
- :func:`iou_matrix` / :func:`cooccurrence_figure`: co-occurrence as intersection over union of
  the true label sets (|A and B| / |A or B| over images), the paper's co-occurrence measure.
- :func:`findings_per_image`: how many images carry d = 0, 1, 2, 3, 4+ findings.
- (the training curves and the convergence preconditions live in :mod:`.convergence`)
- :func:`sparsity_table`: requested vs achieved sparsity of the pruned models.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

NO_FINDING = "No Finding"

__all__ = [
    "class_table",
    "class_counts_figure",
    "iou_matrix",
    "cooccurrence_figure",
    "findings_per_image",
    "sparsity_table",
    "dataset_facts",
    "headline_numbers",
    "comparison_table",
    "PAPER_HEADLINES",
]


def class_table(
    classes: Sequence[str],
    train_counts: pd.Series | Sequence[int],
    test_counts: pd.Series | Sequence[int] | None = None,
    n_train: int | None = None,
) -> pd.DataFrame:
    """Positives per class, most frequent first.

    Columns: ``class``, ``train`` (count), ``train_share`` (fraction of train images when
    ``n_train`` is given), ``test`` (count, when given) and ``rank`` (1 = most frequent in train).
    The order of ``classes`` decides ties.
    """
    classes = list(classes)
    train = _as_counts(train_counts, classes, "train_counts")
    table = pd.DataFrame({"class": classes, "train": train})
    if n_train:
        table["train_share"] = table["train"] / float(n_train)
    if test_counts is not None:
        table["test"] = _as_counts(test_counts, classes, "test_counts")
    table = table.sort_values("train", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def class_counts_figure(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Horizontal bars of positives per class (log scale), train and, when present, test.

    ``table`` is :func:`class_table`'s output.
    """
    fig = Figure(figsize=(6.4, 0.26 * len(table) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(table))
    has_test = "test" in table
    h = 0.4 if has_test else 0.8
    ax.barh(y - (h / 2 if has_test else 0), table["train"].clip(lower=0.8), height=h,
            label="train", color="#3b6ea8")
    if has_test:
        ax.barh(y + h / 2, table["test"].clip(lower=0.8), height=h, label="test", color="#e3913d")
    ax.set_yticks(y, table["class"])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("positive images (log scale)")
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.legend(loc="lower right", frameon=False)
    if title:
        ax.set_title(title)
    return fig


def iou_matrix(labels: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Intersection over union of every pair of classes' positive image sets.

    ``IoU[a, b] = |A and B| / |A or B|`` from true counts; the diagonal is 1 for a class with
    positives and NaN for a class without any (0/0). Symmetric DataFrame indexed by class.
    """
    y = np.asarray(labels)
    if y.ndim != 2 or y.shape[1] != len(classes):
        raise ValueError(f"labels must have shape (n, {len(classes)}), got {y.shape}")
    y = (y > 0).astype(np.int64)
    inter = y.T @ y
    counts = np.diag(inter)
    union = counts[:, None] + counts[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return pd.DataFrame(iou, index=list(classes), columns=list(classes))


def cooccurrence_figure(iou: pd.DataFrame, power: float = 0.25, title: str | None = None) -> Figure:
    """Heatmap of pairwise IoU (off-diagonal), colour on the IoU^power scale (paper: 1/4).

    The diagonal is left blank: it is 1 by definition and would swamp the colour scale.
    """
    values = iou.to_numpy(dtype=float).copy()
    np.fill_diagonal(values, np.nan)
    shown = np.power(values, power)
    n = len(iou)
    size = max(4.5, 0.33 * n + 2.0)
    fig = Figure(figsize=(size + 0.9, size), layout="constrained")
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#f2f2f2")
    image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=0.0,
                      vmax=max(float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0, 1e-6))
    ax.set_xticks(np.arange(n), list(iou.columns), rotation=90, fontsize=7)
    ax.set_yticks(np.arange(n), list(iou.index), fontsize=7)
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    label = "IoU" if power == 1 else f"IoU$^{{{_power_label(power)}}}$"
    bar.set_label(label)
    if title:
        ax.set_title(title)
    return fig


def findings_per_image(labels: np.ndarray, classes: Sequence[str], top: int = 4) -> pd.DataFrame:
    """Images by number of findings d = 0, 1, ..., top-1, top+ ("No Finding" is not counted).

    Columns: ``findings`` (label such as ``"0"`` or ``"4+"``), ``images``, ``share``.
    """
    y = np.asarray(labels) > 0
    keep = [i for i, c in enumerate(classes) if c != NO_FINDING]
    d = y[:, keep].sum(axis=1)
    bins = np.minimum(d, top)
    counts = np.bincount(bins, minlength=top + 1)[: top + 1]
    names = [str(i) for i in range(top)] + [f"{top}+"]
    total = max(int(counts.sum()), 1)
    return pd.DataFrame({"findings": names, "images": counts.astype(int), "share": counts / total})


def sparsity_table(sparsities: Sequence[float], achieved: dict[str, np.ndarray]) -> pd.DataFrame:
    """Requested sparsity k beside the achieved fraction of zero prunable weights.

    ``achieved`` maps a label (e.g. ``"l1, seed 0"``) to an array aligned with ``sparsities``.
    Columns: ``k`` then one column per label.
    """
    table = pd.DataFrame({"k": np.asarray(sparsities, dtype=float)})
    for name, values in achieved.items():
        values = np.asarray(values, dtype=float)
        if values.shape != table["k"].shape:
            raise ValueError(f"achieved[{name!r}] has shape {values.shape}, expected {table['k'].shape}")
        table[name] = values
    return table


def _as_counts(values, classes: list[str], name: str) -> np.ndarray:
    if isinstance(values, pd.Series):
        missing = [c for c in classes if c not in values.index]
        if missing:
            raise ValueError(f"{name} lacks classes {missing}")
        values = values.reindex(classes)
    out = np.asarray(values, dtype=float)
    if out.shape != (len(classes),):
        raise ValueError(f"{name} must have one count per class ({len(classes)}), got {out.shape}")
    return out.astype(int)


def _power_label(power: float) -> str:
    inv = 1.0 / power
    return f"1/{int(round(inv))}" if abs(inv - round(inv)) < 1e-9 else f"{power:g}"


# ------------------------------------------------------------------------------------------
# Facts about a results store, and the paper's headline claims beside this build's numbers
# ------------------------------------------------------------------------------------------


def dataset_facts(store) -> dict:
    """Plain-Python facts about a store's data and configuration, for tables and glue.

    Keys: dataset_name, dataset_description, n_classes, n_train, n_val, n_test, image_size,
    from ..data.registry import description as dataset_description
    population, arch, weights, methods, n_sparsities, max_sparsity, profile, config_key.
    """
    from .. import io

    info = {}
    path = store.results_dir / "dataset.json"
    if path.exists():
        info = io.read_json(path)
    n_images = info.get("n_images", {})
    cfg = store.config
    return {
        "dataset_name": store.dataset,
        "dataset_description": dataset_description(store.dataset),
        "n_classes": len(store.classes),
        "n_train": int(n_images.get("train", 0)),
        "n_val": int(n_images.get("val", 0)),
        "n_test": int(len(store.labels)),
        "image_size": int(info.get("image_size", cfg.get("image_size", 0))),
        "population": len(store.seeds),
        "arch": str(cfg.get("arch", "")),
        "weights": str(cfg.get("weights", "")),
        "methods": list(store.methods),
        "n_sparsities": int(len(store.sparsities)),
        "max_sparsity": float(np.max(store.sparsities)),
        "profile": str(cfg.get("profile", "")),
        "config_key": str(cfg.get("key", "")),
    }


def _nan(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return x


def headline_numbers(store, method: str = "l1", alpha: float = 0.001, threshold: float = -0.2,
                     metric: str = "euclidean", dense: float = 0.0, sparse: float = 0.9,
                     fraction: float = 0.05, n_rare: int = 5, responses: pd.DataFrame | None = None
                     ) -> dict:
    """Every headline number of the paper, computed on ``store`` with the analysis library.

    Returns a flat dict of Python floats/strings (NaN where a number is undefined here, e.g. no
    significant drop within the grid). ``responses`` is a tidy reader-study table (as from
    :func:`prunecxr.study.load_responses`); without it the reader-study numbers are NaN.
    """
    import warnings

    from . import cooccurrence, forgetting, overall, pies as pies_mod, readers

    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ap = store.ap_table(store.grid_methods)
        maps = overall.map_per_model(ap)
        welch = overall.welch_by_sparsity(maps, alpha=alpha, method=method)
        summary = overall.overall_map(maps)
        dense_rows = summary[(summary["method"] == method) & np.isclose(summary["sparsity"], 0)]
        out["dense_map"] = _nan(dense_rows["median"].iloc[0]) if len(dense_rows) else np.nan
        out["first_drop"] = overall.first_significant_drop(welch)
        out["fraction_below_001"] = overall.fraction_below(store.prunable_weights(store.seeds[0]))

        curves = forgetting.forgettability_curves(ap)
        per_class, corr = forgetting.forgetting_summary(curves, store.train_counts,
                                                        threshold=threshold, method=method)
        for outcome in ("first_drop", "final_change"):
            row = corr.set_index("outcome").loc[outcome]
            for stat in ("n", "r", "p_r", "rho", "p_rho"):
                out[f"freq_{outcome}_{stat}"] = _nan(row[stat])
        out["final_sparsity"] = float(per_class.attrs.get("final_sparsity", np.nan))
        ranked = per_class.sort_values("train_count", ascending=False, kind="stable")
        for tag, row in (("frequent", ranked.iloc[0]), ("rare", ranked.iloc[-1])):
            out[f"{tag}_class"] = str(row["class"])
            out[f"{tag}_train_count"] = int(row["train_count"])
            out[f"{tag}_final_change"] = _nan(row["final_change"])
            out[f"{tag}_first_drop"] = _nan(row["first_drop"])

        pairs = cooccurrence.class_pair_table(curves, store.labels, store.classes, metric=metric,
                                              method=method)
        fcd_corr = cooccurrence.fcd_correlations(pairs).set_index("x")
        for x in ("dlogfreq", "iou"):
            for stat in ("n", "r", "p_r", "rho", "p_rho"):
                out[f"fcd_{x}_{stat}"] = _nan(fcd_corr.loc[x, stat])
        try:
            fit = cooccurrence.fcd_ols(pairs).set_index("term")
            out.update(ols_intercept=_nan(fit.loc["Intercept", "coef"]),
                       ols_dlogfreq=_nan(fit.loc["dlogfreq", "coef"]),
                       ols_iou4=_nan(fit.loc["iou4", "coef"]),
                       ols_interaction=_nan(fit.loc["dlogfreq:iou4", "coef"]),
                       ols_interaction_p=_nan(fit.loc["dlogfreq:iou4", "p"]),
                       ols_r2=_nan(fit["r2"].iloc[0]))
        except ValueError:
            out.update(ols_intercept=np.nan, ols_dlogfreq=np.nan, ols_iou4=np.nan,
                       ols_interaction=np.nan, ols_interaction_p=np.nan, ols_r2=np.nan)

        scores = pies_mod.pie_scores(store, method=method, dense=dense, sparse=sparse)
        pie_mask = pies_mod.select_pies(scores, fraction=fraction)
        out["n_pies"] = int(pie_mask.sum())
        cls, fnd = pies_mod.pie_enrichment(pie_mask, store.labels, store.classes)
        rare = store.train_counts.sort_values(kind="stable").index[:n_rare]
        ratios = cls.set_index("class").loc[list(rare), "ratio"].to_numpy(dtype=float)
        defined = ratios[~np.isnan(ratios)]
        finite = defined[np.isfinite(defined)]
        out["rare_ratio_min"] = _nan(defined.min()) if len(defined) else np.nan
        out["rare_ratio_max"] = _nan(finite.max()) if len(finite) else np.nan
        out["rare_ratio_n_defined"] = int(len(defined))
        out["rare_ratio_n_only_pies"] = int(np.isinf(defined).sum())
        out["rare_classes"] = ", ".join(rare)
        top = fnd.iloc[-1]
        out["many_findings_label"] = str(top["findings"])
        out["many_findings_ratio"] = _nan(top["ratio"])

        truth = None
        if all(c in store.meta.columns for c in readers.TRUTH_COLUMNS):
            meta = store.meta.copy()
            meta["label_corrupted"] = (meta["label_corrupted"].astype(str).str.lower()
                                       .isin(["true", "1", "1.0"]))
            truth = readers.phantom_truth_stats(meta, pie_mask).set_index("variable")
        for var in readers.TRUTH_COLUMNS:
            for stat in ("mean_a", "mean_b", "p_kruskal"):
                out[f"truth_{var}_{stat}"] = (_nan(truth.loc[var, stat]) if truth is not None
                                              else np.nan)
        stats = readers.reader_study_stats(responses).set_index("variable") \
            if responses is not None else None
        out["reader_n"] = int(len(responses)) if responses is not None else 0
        for var in readers.QUESTIONS:
            for stat in ("mean_a", "mean_b", "p_kruskal"):
                out[f"reader_{var}_{stat}"] = (_nan(stats.loc[var, stat]) if stats is not None
                                               else np.nan)
    return out


def _fmt(x: float, spec: str = ".2f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def _p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "P = n/a"
    return "P < 0.001" if p < 0.001 else f"P = {p:.3f}"


def _corr(n: dict, prefix: str) -> str:
    return (f"r = {_fmt(n[prefix + '_r'])}, ρ = {_fmt(n[prefix + '_rho'])} "
            f"({_p(n[prefix + '_p_rho'])}, n = {int(n[prefix + '_n']) if np.isfinite(n[prefix + '_n']) else 0})")


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("holds" if ok else "does not hold")


def _signed(rho: float, p: float, sign: int, level: float) -> bool | None:
    if not (np.isfinite(rho) and np.isfinite(p)):
        return None
    return bool(sign * rho > 0 and p < level)


# The paper's numbers (Holste et al. 2023, Sec. 3 and REFERENCE.md), as data.
PAPER_HEADLINES = {
    "q1_first_drop": ("0.65 (P < 0.001)", "0.60 (P < 0.001)"),
    "q1_weights": ("over half", ""),
    "q2_first_drop": ("r = 0.64, ρ = 0.61 (P = 0.005)", "r = 0.82, ρ = 0.93 (P ≪ 0.001)"),
    "q2_final_change": ("r = 0.80, ρ = 0.75 (P < 0.001)", "r = 0.76, ρ = 0.75 (P < 0.001)"),
    "q2_examples": ("No Finding (44,625): -0.41 at k = 0.95, first 20% drop 0.90; "
                    "Hernia (130): -0.98, 0.70",
                    "Support Devices (73,641): -0.37, 0.95; Pneumoperitoneum (448): -0.94, 0.60"),
    "q3_dlogfreq": ("r = 0.71, ρ = 0.64 (P ≪ 0.001)", "r = 0.59, ρ = 0.60"),
    "q3_iou": ("r = -0.43, ρ = -0.47 (P ≪ 0.001)", "r = -0.28, ρ = -0.30"),
    "q3_ols": ("FCD = 0.27 + 0.21 |ΔlogF| - 0.05 IoU^¼ - 0.31 |ΔlogF|·IoU^¼; β3 P = 0.005", ""),
    "q4_rare": ("3-15x", ""),
    "q4_many": ("3.2x (4+ findings)", ""),
    "q4_readers": ("agreement 55% vs 57.5% (P = 0.35); quality 3.6 vs 3.8 (P = 0.09); "
                   "difficulty 2.5 vs 2.05 (P = 0.25)", ""),
    "q4_truth": ("radiologists perceived more label noise, lower quality, higher difficulty "
                 "(none significant)", ""),
}


def comparison_table(n: dict, level: float = 0.05, first_drop_at_least: float = 0.6) -> pd.DataFrame:
    """The paper's headline claims beside this build's numbers (from :func:`headline_numbers`).

    Columns: question, claim, ``paper (NIH-CXR-LT)``, ``paper (MIMIC-CXR-LT)``, ``this build``,
    verdict ("holds", "does not hold" or "n/a"). A correlation claim holds when ρ has the
    claimed sign and P < ``level``; the compressibility claim when the first significant drop
    is at k >= ``first_drop_at_least`` (or there is none in the grid).
    """
    fd = n["first_drop"]
    rows = []

    def add(key, question, claim, build, ok):
        nih, mimic = PAPER_HEADLINES[key]
        rows.append({"question": question, "claim": claim, "paper (NIH-CXR-LT)": nih,
                     "paper (MIMIC-CXR-LT)": mimic, "this build": build, "verdict": _verdict(ok)})

    add("q1_first_drop", "Q1", f"mAP holds up to high sparsity (first significant drop at "
        f"k ≥ {first_drop_at_least:.2f})",
        f"{_fmt(fd)}" if np.isfinite(fd) else "no significant drop in the grid",
        bool(not np.isfinite(fd) or fd >= first_drop_at_least - 1e-9))
    add("q1_weights", "Q1", "over half of the trained weights have |w| < 0.01",
        f"{_fmt(100 * n['fraction_below_001'], '.1f')}%",
        bool(n["fraction_below_001"] > 0.5) if np.isfinite(n["fraction_below_001"]) else None)
    add("q2_first_drop", "Q2", "rarer classes are forgotten earlier (ρ > 0 with ln train count)",
        _corr(n, "freq_first_drop"), _signed(n["freq_first_drop_rho"], n["freq_first_drop_p_rho"], 1, level))
    add("q2_final_change", "Q2", "rarer classes lose more AP at the highest sparsity (ρ > 0)",
        _corr(n, "freq_final_change"),
        _signed(n["freq_final_change_rho"], n["freq_final_change_p_rho"], 1, level))
    fc, rc = n["frequent_final_change"], n["rare_final_change"]
    add("q2_examples", "Q2", "the most frequent class loses less than the rarest",
        f"{n['frequent_class']} ({n['frequent_train_count']:,}): {_fmt(fc)} at k = "
        f"{_fmt(n['final_sparsity'])}, first 20% drop {_fmt(n['frequent_first_drop'])}; "
        f"{n['rare_class']} ({n['rare_train_count']:,}): {_fmt(rc)}, {_fmt(n['rare_first_drop'])}",
        bool(rc < fc) if np.isfinite(fc) and np.isfinite(rc) else None)
    add("q3_dlogfreq", "Q3", "pairs further apart in frequency forget differently (FCD, ρ > 0)",
        _corr(n, "fcd_dlogfreq"), _signed(n["fcd_dlogfreq_rho"], n["fcd_dlogfreq_p_rho"], 1, level))
    add("q3_iou", "Q3", "pairs that co-occur more forget alike (FCD vs IoU, ρ < 0)",
        _corr(n, "fcd_iou"), _signed(n["fcd_iou_rho"], n["fcd_iou_p_rho"], -1, level))
    ok = (bool(n["ols_interaction"] < 0 and n["ols_interaction_p"] < level)
          if np.isfinite(n["ols_interaction"]) and np.isfinite(n["ols_interaction_p"]) else None)
    add("q3_ols", "Q3", "negative interaction of |ΔlogF| and IoU^¼ in the OLS of FCD (β3 < 0)",
        f"FCD = {_fmt(n['ols_intercept'])} + {_fmt(n['ols_dlogfreq'])} |ΔlogF| + "
        f"{_fmt(n['ols_iou4'])} IoU^¼ + {_fmt(n['ols_interaction'])} |ΔlogF|·IoU^¼; "
        f"β3 {_p(n['ols_interaction_p'])}", ok)
    lo, hi = n["rare_ratio_min"], n["rare_ratio_max"]
    build = (f"{_fmt(lo, '.1f')}x to {_fmt(hi, '.1f')}x" if np.isfinite(lo) else "n/a")
    if n["rare_ratio_n_only_pies"]:
        build += f" ({n['rare_ratio_n_only_pies']} only among PIEs)"
    if n["rare_ratio_n_defined"] < 5:
        build += f"; {5 - n['rare_ratio_n_defined']} of the five absent from the test set"
    add("q4_rare", "Q4", "the five rarest classes are over-represented among PIEs (every ratio > 1)",
        build, bool(lo > 1) if np.isfinite(lo) else None)
    r = n["many_findings_ratio"]
    add("q4_many", "Q4", f"images with {n['many_findings_label']} findings are over-represented "
        "among PIEs", "only among PIEs" if np.isinf(r) else f"{_fmt(r, '.1f')}x",
        bool(r > 1) if not np.isnan(r) else None)
    if n.get("reader_n"):
        build = (f"agreement {_fmt(100 * n['reader_agrees_with_label_mean_a'], '.1f')}% vs "
                 f"{_fmt(100 * n['reader_agrees_with_label_mean_b'], '.1f')}% "
                 f"({_p(n['reader_agrees_with_label_p_kruskal'])}); quality "
                 f"{_fmt(n['reader_quality_mean_a'])} vs {_fmt(n['reader_quality_mean_b'])} "
                 f"({_p(n['reader_quality_p_kruskal'])}); difficulty "
                 f"{_fmt(n['reader_difficulty_mean_a'])} vs {_fmt(n['reader_difficulty_mean_b'])} "
                 f"({_p(n['reader_difficulty_p_kruskal'])})")
        ok = bool(n["reader_agrees_with_label_mean_a"] < n["reader_agrees_with_label_mean_b"]
                  and n["reader_quality_mean_a"] < n["reader_quality_mean_b"]
                  and n["reader_difficulty_mean_a"] > n["reader_difficulty_mean_b"])
    else:
        build, ok = "no human responses included in this build", None
    add("q4_readers", "Q4", "readers see PIEs as noisier, lower quality, harder (direction only)",
        build, ok)
    if np.isfinite(n["truth_label_corrupted_mean_a"]):
        build = (f"labels corrupted {_fmt(100 * n['truth_label_corrupted_mean_a'], '.1f')}% vs "
                 f"{_fmt(100 * n['truth_label_corrupted_mean_b'], '.1f')}% "
                 f"({_p(n['truth_label_corrupted_p_kruskal'])}); quality "
                 f"{_fmt(n['truth_quality_mean_a'])} vs {_fmt(n['truth_quality_mean_b'])} "
                 f"({_p(n['truth_quality_p_kruskal'])}); difficulty "
                 f"{_fmt(n['truth_difficulty_mean_a'])} vs {_fmt(n['truth_difficulty_mean_b'])} "
                 f"({_p(n['truth_difficulty_p_kruskal'])})")
        ok = bool(n["truth_label_corrupted_mean_a"] > n["truth_label_corrupted_mean_b"]
                  and n["truth_label_corrupted_p_kruskal"] < level
                  and n["truth_quality_mean_a"] < n["truth_quality_mean_b"]
                  and n["truth_quality_p_kruskal"] < level
                  and n["truth_difficulty_mean_a"] > n["truth_difficulty_mean_b"]
                  and n["truth_difficulty_p_kruskal"] < level)
    else:
        build, ok = "no per-image ground truth in this dataset", None
    add("q4_truth", "Q4 (ground truth)", "PIEs have more label noise, lower quality and higher "
        f"difficulty (each P < {level:g}; phantom ground truth, not radiologists)", build, ok)
    return pd.DataFrame(rows)
