"""The figures of the research questions, each named for what it draws (the paper's Figs. 1-6
and Q5's two), and the book's figure style.

The data chapter's figures (class counts, co-occurrence, training curves) are drawn beside the
tables they show, in :mod:`prunecxr.analysis.overview` and :mod:`prunecxr.analysis.convergence`.
Each function here takes the tidy tables of :mod:`prunecxr.analysis` and returns a
``matplotlib.figure.Figure`` built with the object-oriented API (no pyplot state, so it works
under Agg, in tests and in papermill alike; notebooks display the returned figure). Every
statistic printed on a figure (r, rho, P) is read from the computed tables, never typed in.
"""

from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.figure import Figure

from .stats import correlation, format_p, require_columns

# The one style of every figure: the Okabe-Ito palette (safe for the common colour-vision
# deficiencies), viridis for heatmaps, light grids. Chapters apply it with :func:`use_style`.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000")
STYLE = {
    "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
    "image.cmap": "viridis",
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}
PIE_COLOR, NONPIE_COLOR = OKABE_ITO[3], OKABE_ITO[0]


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib (figures made afterwards follow it)."""
    matplotlib.rcParams.update(STYLE)


def corr_text(row) -> str:
    """'r = 0.64 (P = 0.002), ρ = 0.61 (P = 0.005), n = 20' from a correlation row."""
    return (f"r = {row['r']:.2f} ({format_p(row['p_r'])}), "
            f"ρ = {row['rho']:.2f} ({format_p(row['p_rho'])}), n = {int(row['n'])}")


def _figure(ncols: int, nrows: int = 1, width: float = 5.0, height: float = 3.8) -> tuple:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


# -------------------------------------------------------------------------------------------
# Q1
# -------------------------------------------------------------------------------------------

def map_and_weights_figure(overall: pd.DataFrame, weights_hist: pd.DataFrame,
            first_drop: float | Mapping[str, float] | None = None,
            threshold: float | None = 0.01, fraction_below: float | None = None) -> Figure:
    """Fig. 1: mAP median (line) and IQR (band) vs sparsity per method (left), with the first
    significant drop marked (``first_drop``: a sparsity, or {method: sparsity}); log-scale
    histogram of weight magnitudes (right), with the ``threshold`` line and, if given, the
    ``fraction_below`` it.

    ``overall`` is :func:`prunecxr.analysis.overall_map`'s table, ``weights_hist``
    :func:`prunecxr.analysis.weight_magnitudes`'.
    """
    require_columns(overall, ["method", "sparsity", "median", "q25", "q75"], "overall")
    require_columns(weights_hist, ["left", "right", "fraction"], "weights_hist")
    fig, (ax, axh) = _figure(2)
    for method, grp in overall.groupby("method", sort=False):
        grp = grp.sort_values("sparsity")
        line, = ax.plot(grp["sparsity"], grp["median"], marker="o", ms=3, label=method)
        ax.fill_between(grp["sparsity"], grp["q25"], grp["q75"], alpha=0.25, color=line.get_color())
    drops = first_drop if isinstance(first_drop, Mapping) else (
        {} if first_drop is None else {None: first_drop})
    for method, k in drops.items():
        if k is not None and np.isfinite(k):
            label = f"first significant drop: k = {k:.2f}" + (f" ({method})" if method else "")
            ax.axvline(k, ls="--", color="0.3", lw=1, label=label)
    ax.set(xlabel="sparsity k", ylabel="mAP (median, IQR over seeds)",
           title="Overall effect of pruning")
    ax.legend(fontsize=8)
    edges = np.append(weights_hist["left"].to_numpy(), weights_hist["right"].to_numpy()[-1])
    axh.stairs(weights_hist["fraction"].to_numpy(), edges, fill=True, alpha=0.7)
    axh.set_xscale("log")
    axh.set(xlabel="|weight|", ylabel="fraction of weights", title="Weight magnitudes")
    if threshold is not None:
        text = f"|w| = {threshold:g}"
        if fraction_below is not None:
            text += f": {100 * fraction_below:.1f}% below"
        axh.axvline(threshold, ls=":", color="k", label=text)
        axh.legend(fontsize=8)
    return fig


# -------------------------------------------------------------------------------------------
# Q2
# -------------------------------------------------------------------------------------------

def spread_classes(train_counts: pd.Series, n: int = 6) -> list[str]:
    """n classes spread evenly over the frequency ranking (most to least frequent)."""
    order = train_counts.sort_values(ascending=False, kind="stable").index.tolist()
    if n >= len(order):
        return order
    return [order[i] for i in np.unique(np.round(np.linspace(0, len(order) - 1, n)).astype(int))]


def forgettability_curves_figure(mat: pd.DataFrame, classes: Sequence[str] | None = None,
                                 train_counts: pd.Series | None = None, n: int = 6) -> Figure:
    """Fig. 2: forgettability curves (median relative change in AP vs sparsity) of a subset of
    classes; ``mat`` is :func:`prunecxr.analysis.curve_matrix` (class x sparsity). Default
    subset: ``n`` classes spread across the frequency ranking (needs ``train_counts``; without
    it, spread across the matrix's class order). The legend gives each class's train count
    when ``train_counts`` is given."""
    if classes is None:
        classes = (spread_classes(train_counts.reindex(mat.index), n) if train_counts is not None
                   else [mat.index[i] for i in np.unique(
                       np.round(np.linspace(0, len(mat) - 1, min(n, len(mat)))).astype(int))])
    fig, (ax,) = _figure(1, width=6.5, height=4.2)
    ks = mat.columns.to_numpy(dtype=float)
    for c in classes:
        label = c if train_counts is None else f"{c} (n = {int(train_counts[c]):,})"
        ax.plot(ks, mat.loc[c].to_numpy(dtype=float), marker="o", ms=3, label=label)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axhline(-0.2, color="0.6", lw=0.8, ls=":")
    ax.set(xlabel="sparsity k", ylabel="relative change in AP (median over seeds)",
           title="Forgettability curves")
    ax.legend(fontsize=8, title="class (train count)" if train_counts is not None else None)
    return fig


def _label_extremes(ax, frame: pd.DataFrame, x: str, y: str, n_label: int) -> None:
    d = frame.dropna(subset=[x, y]).sort_values(x)
    for _, row in pd.concat([d.head(n_label), d.tail(n_label)]).drop_duplicates("class").iterrows():
        ax.annotate(row["class"], (row[x], row[y]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")


def forgetting_vs_frequency_figure(summary: pd.DataFrame, correlations: pd.DataFrame, n_label: int = 1) -> Figure:
    """Fig. 3: log train count vs first sparsity of a 20% drop (left) and vs relative change at
    the largest sparsity (right); r and rho printed from ``correlations`` (the second output of
    :func:`prunecxr.analysis.forgetting_summary`); the ``n_label`` most and least frequent
    classes labelled.

    Given the outputs of :func:`prunecxr.analysis.forgetting.forgetting_comparison`, a second
    row draws the sound statistics, and the raw change at the largest sparsity gets each class's
    chance floor (pi - AP_0) / AP_0, the change of a class fallen to chance: top, the paper's
    statistics (classes that never drop drawn open at the top, left out of its correlation);
    bottom, the first drop of the chance-corrected curve with classes that never drop ranked
    last, and the chance-corrected change (AP - pi) / (AP_0 - pi) - 1 (-1 = chance).
    """
    require_columns(summary, ["class", "log_train_count", "first_drop", "final_change"], "summary")
    require_columns(correlations, ["outcome", "n", "r", "p_r", "rho", "p_rho"], "correlations")
    sound = {"chance_floor", "cc_final_change", "cc_first_drop_censored",
             "censored", "cc_censored"} <= set(summary.columns)
    fig, axes = _figure(2, 2 if sound else 1)
    final_k = summary.attrs.get("final_sparsity")
    at_k = f"k = {final_k:.2f}" if final_k is not None else "the largest k"
    rows = correlations.set_index("outcome")
    ylabels = {"first_drop": "first sparsity with a ≥20% drop in AP",
               "final_change": f"relative change in AP at {at_k}"}
    for ax, outcome in zip(axes, ("first_drop", "final_change")):
        ax.scatter(summary["log_train_count"], summary[outcome], s=18)
        _label_extremes(ax, summary, "log_train_count", outcome, n_label)
        ax.set_title(corr_text(rows.loc[outcome]), fontsize=8)
        ax.set(xlabel="ln(train count)", ylabel=ylabels[outcome])
    if not sound:
        return fig
    top = summary.attrs.get("censor_value", 1.0)
    for ax, flag in ((axes[0], "censored"), (axes[2], "cc_censored")):
        never = summary[summary[flag].astype(bool)]
        if len(never):
            ax.scatter(never["log_train_count"], np.full(len(never), top), s=18,
                       facecolors="none", edgecolors=OKABE_ITO[0],
                       label="never drops (ranked last in the sound statistic)")
            ax.legend(fontsize=7, loc="lower right")
    ax = axes[1]
    x, floor = summary["log_train_count"], summary["chance_floor"]
    ax.vlines(x, floor, summary["final_change"], color="0.7", lw=0.8)
    ax.scatter(x, floor, marker="_", s=60, color=OKABE_ITO[3],
               label="chance floor (π − AP₀)/AP₀")
    ax.legend(fontsize=7, loc="lower right")
    if "chance_floor" in rows.index:
        f = rows.loc["chance_floor"]
        ax.set_title(corr_text(rows.loc["final_change"]) + f"\nchance floor alone: ρ = "
                     f"{f['rho']:.2f} ({format_p(f['p_rho'])})", fontsize=8)
    ax = axes[2]
    ax.scatter(summary["log_train_count"], summary["cc_first_drop_censored"], s=18,
               color=OKABE_ITO[2])
    _label_extremes(ax, summary, "log_train_count", "cc_first_drop_censored", n_label)
    if "cc_first_drop_censored" in rows.index:
        c = rows.loc["cc_first_drop_censored"]
        ax.set_title(f"ρ = {c['rho']:.2f} ({format_p(c['p_rho'])}), n = {int(c['n'])}",
                     fontsize=8)
    ax.set(xlabel="ln(train count)",
           ylabel="first ≥20% drop, chance-corrected\n(never dropping ranked last)")
    ax = axes[3]
    ax.scatter(summary["log_train_count"], summary["cc_final_change"], s=18, color=OKABE_ITO[2])
    ax.axhline(-1.0, ls=":", color="k", lw=1)
    _label_extremes(ax, summary, "log_train_count", "cc_final_change", n_label)
    if "cc_final_change" in rows.index:
        ax.set_title(corr_text(rows.loc["cc_final_change"]), fontsize=8)
    ax.set(xlabel="ln(train count)",
           ylabel=f"chance-corrected change at {at_k}\n(AP − π)/(AP₀ − π) − 1; −1 = chance")
    return fig


# -------------------------------------------------------------------------------------------
# Q3
# -------------------------------------------------------------------------------------------

def fcd_pairs_figure(pair_table: pd.DataFrame, highlight: Sequence[tuple[str, str]] | None = None) -> Figure:
    """Fig. 4: FCD vs |difference in log test frequency| (left) and vs IoU^(1/4) (right), one
    point per class pair; r and rho computed from ``pair_table``; ``highlight`` pairs
    (class_a, class_b), in either order, drawn in black and named."""
    require_columns(pair_table, ["class_a", "class_b", "fcd", "dlogfreq", "iou4"], "pair_table")
    fig, axes = _figure(2)
    hl = np.zeros(len(pair_table), dtype=bool)
    for a, b in highlight or []:
        hit = (((pair_table["class_a"] == a) & (pair_table["class_b"] == b))
               | ((pair_table["class_a"] == b) & (pair_table["class_b"] == a))).to_numpy()
        if not hit.any():
            raise ValueError(f"highlight pair ({a!r}, {b!r}) is not in pair_table")
        hl |= hit
    xlabels = {"dlogfreq": "|difference in ln(test count)|", "iou4": "IoU$^{1/4}$"}
    for ax, x in zip(axes, ("dlogfreq", "iou4")):
        ax.scatter(pair_table.loc[~hl, x], pair_table.loc[~hl, "fcd"], s=12, alpha=0.7)
        if hl.any():
            ax.scatter(pair_table.loc[hl, x], pair_table.loc[hl, "fcd"], s=30, color="k")
            for _, row in pair_table[hl].iterrows():
                ax.annotate(f"{row['class_a']} / {row['class_b']}", (row[x], row["fcd"]),
                            fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_title(corr_text(correlation(pair_table[x], pair_table["fcd"]).iloc[0]), fontsize=8)
        ax.set(xlabel=xlabels[x], ylabel=f"FCD ({pair_table.attrs.get('metric', 'euclidean')})")
    return fig


# -------------------------------------------------------------------------------------------
# Q4
# -------------------------------------------------------------------------------------------

def _ratio_bars(ax, names, ratios) -> None:
    ratios = np.asarray(ratios, dtype=float)
    finite = ratios[np.isfinite(ratios)]
    top = (finite.max() if len(finite) else 1.0) * 1.15
    heights = np.where(np.isinf(ratios), top, np.nan_to_num(ratios, nan=0.0))
    x = np.arange(len(names))
    bars = ax.bar(x, heights, color=OKABE_ITO[4], alpha=0.8)
    for xi, r, bar in zip(x, ratios, bars):
        if np.isinf(r):
            bar.set_hatch("//")
            ax.text(xi, top, "only\nPIEs", ha="center", va="bottom", fontsize=6)
        elif np.isnan(r):
            ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=6)
    ax.axhline(1.0, ls=":", color="k", lw=1)
    ax.set_xticks(x, names, rotation=90 if len(names) > 6 else 0, fontsize=7)


def pie_enrichment_figure(class_enrichment: pd.DataFrame, count_enrichment: pd.DataFrame,
            train_counts: pd.Series) -> Figure:
    """Fig. 5: prevalence in PIEs / prevalence in non-PIEs per class, classes sorted from most to
    least frequent in training (left), and per number of findings (right); dotted line = 1:1.
    Classes found only in PIEs (ratio inf) get a hatched bar at the top; NaN ratios say n/a."""
    require_columns(class_enrichment, ["class", "ratio"], "class_enrichment")
    require_columns(count_enrichment, ["findings", "ratio"], "count_enrichment")
    fig, (ax, axd) = _figure(2, width=5.5)
    ce = class_enrichment.assign(_n=train_counts.reindex(class_enrichment["class"]).to_numpy())
    ce = ce.sort_values("_n", ascending=False, kind="stable")
    _ratio_bars(ax, [f"{c} ({int(n):,})" for c, n in zip(ce["class"], ce["_n"])], ce["ratio"])
    ax.set(ylabel="prevalence in PIEs / in non-PIEs", title="Classes (train count)")
    _ratio_bars(axd, list(count_enrichment["findings"]), count_enrichment["ratio"])
    axd.set(xlabel="number of findings per image", ylabel="share in PIEs / in non-PIEs",
            title="Findings per image")
    return fig


def pie_gallery(images, labels, classes: Sequence[str], dense_probs, sparse_probs, idx,
                n: int = 8, top: int = 3, ncols: int = 2) -> Figure:
    """Up to ``n`` test images (positions ``idx``), each titled with its labels and the ``top``
    classes of the mean dense and the mean pruned predictions. Two per row by default, each
    drawn 4 inches wide with its pixels unsmoothed, so small findings stay visible in the book's
    text column."""
    idx = np.asarray(idx).ravel()
    idx = list((np.flatnonzero(idx) if idx.dtype == bool else idx)[:n])  # a mask or positions
    if not idx:
        raise ValueError("idx is empty: no images to show")
    classes = list(classes)
    labels, dense_probs, sparse_probs = map(np.asarray, (labels, dense_probs, sparse_probs))
    ncols = min(ncols, len(idx))
    nrows = int(np.ceil(len(idx) / ncols))
    fig, axes = _figure(ncols, nrows, width=4.0, height=5.0)
    for ax in axes[len(idx):]:
        ax.set_axis_off()

    def short(p):
        return ", ".join(f"{classes[j]} {p[j]:.2f}" for j in np.argsort(-p, kind="stable")[:top])

    for ax, i in zip(axes, idx):
        img = np.asarray(images[i])
        rng = (0, 255) if img.dtype == np.uint8 else (None, None)  # no per-image contrast stretch
        ax.imshow(img, cmap="gray", vmin=rng[0], vmax=rng[1], interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        lab = ", ".join(c for c, v in zip(classes, labels[i]) if v) or "(none)"
        title = "\n".join([*textwrap.wrap(f"#{i} labels: {lab}", 56),
                           *textwrap.wrap(f"dense: {short(dense_probs[i])}", 56),
                           *textwrap.wrap(f"pruned: {short(sparse_probs[i])}", 56)])
        ax.set_title(title, fontsize=8, loc="left")
    return fig


# Panel titles of the phantom's ground truth in pie_comparison_figure (its twin of Fig. 6).
TRUTH_TITLES = {"agrees_with_label": "label not corrupted (share)",
                "quality": "image quality (generator scale)",
                "difficulty": "difficulty (generator scale)"}


def pie_comparison_figure(stats: pd.DataFrame, labels: tuple[str, str] = ("PIE", "non-PIE"),
            titles: Mapping[str, str] | None = None,
            adjusted: Mapping[str, float] | None = None) -> Figure:
    """Fig. 6: mean ± SD per question (or ground-truth variable) for PIEs vs non-PIEs, one panel
    per row of ``stats`` (:func:`prunecxr.analysis.reader_study_stats` or
    :func:`prunecxr.analysis.phantom_truth_stats`), Kruskal-Wallis P in each title; with
    ``adjusted`` (variable -> P within strata of the number of findings, as
    :func:`prunecxr.analysis.pies.stratified_truth` gives it) that P on a second line."""
    require_columns(stats, ["variable", "mean_a", "sd_a", "mean_b", "sd_b", "p_kruskal"], "stats")
    titles = {"agrees_with_label": "fully agrees with label", "quality": "image quality (1-5)",
              "difficulty": "diagnosis difficulty (1-5)", "label_corrupted": "label corrupted",
              **(titles or {})}
    fig, axes = _figure(len(stats), width=3.2)
    for ax, (_, row) in zip(axes, stats.iterrows()):
        ax.bar([0, 1], [row["mean_a"], row["mean_b"]], yerr=[row["sd_a"], row["sd_b"]],
               color=[PIE_COLOR, NONPIE_COLOR], capsize=4, alpha=0.8)
        ax.set_xticks([0, 1], list(labels))
        extra = ""
        if adjusted is not None and row["variable"] in adjusted:
            extra = f"\nwithin strata {format_p(adjusted[row['variable']])}"
        ax.set_title(f"{titles.get(row['variable'], row['variable'])}\n"
                     f"Kruskal-Wallis {format_p(row['p_kruskal'])}{extra}", fontsize=9)
    return fig


def pie_sensitivity_figure(sensitivity: pd.DataFrame, rule_level: float | None = None,
                           paper_level: float | None = None) -> Figure:
    """The main PIE findings at several levels: per row kind of ``sensitivity``
    (:func:`prunecxr.analysis.pies.sensitivity_table`: the pooled rarest classes, 4+ findings)
    one panel of the odds ratio (PIEs vs other images) with its exact interval against the
    level, on a log scale; levels that fail the spread guard hollow and grey; dotted line 1:1,
    dashed vertical lines at the damage rule's level and the paper's."""
    require_columns(sensitivity, ["level", "group", "odds_ratio", "ci_low", "ci_high", "guard"],
                    "sensitivity")
    groups = list(dict.fromkeys(sensitivity["group"]))
    fig, axes = _figure(len(groups), width=4.2)
    for ax, g in zip(np.atleast_1d(axes), groups):
        t = sensitivity[sensitivity["group"] == g].sort_values("level")
        finite = np.isfinite(t["ci_low"]) & (t["pie_with"] > 0) if "pie_with" in t else np.isfinite(t["ci_low"])
        lo, hi = t["ci_low"].clip(lower=1e-2), t["ci_high"].clip(upper=1e3).fillna(1e3)
        est = t["odds_ratio"].where(finite, np.nan).clip(lower=1e-2, upper=1e3)
        for ok, color, face in ((True, PIE_COLOR, PIE_COLOR), (False, "0.6", "none")):
            m = (t["guard"] == ok).to_numpy()
            if m.any():
                ax.vlines(t["level"][m], lo[m], hi[m], color=color, lw=1.5)
                ax.plot(t["level"][m], est.fillna(1e-2)[m], "o", color=color, mfc=face,
                        label="guard passed" if ok else "guard failed (outputs do not vary)")
        ax.axhline(1, ls=":", color="0.3", lw=1)
        for k, style, name in ((rule_level, "--", "damage rule"), (paper_level, "-.", "paper")):
            if k is not None and np.isfinite(k):
                ax.axvline(k, ls=style, color="0.4", lw=1)
                ax.text(k, 1.5e2, f" {name}", fontsize=7, rotation=90, va="top")
        ax.set_yscale("log")
        ax.set_ylim(1e-2, 1e3)
        ax.set(xlabel="sparsity k of the pruned models", ylabel="odds ratio, PIEs vs others",
               title=g)
        ax.legend(fontsize=7, loc="lower left")
    return fig


# -------------------------------------------------------------------------------------------
# Q5 (beyond the paper)
# -------------------------------------------------------------------------------------------

def damage_curves_figure(curve: pd.DataFrame, matched: pd.DataFrame | None = None,
            units: Mapping[str, str] | None = None) -> Figure:
    """Fig. 7: each method's median mAP (left) and its loss vs dense (right) against its level,
    the share of weight storage removed; the matched losses as horizontal lines and each
    method's matched levels as markers on them (hollow where the grid does not resolve it).

    ``curve`` is :func:`prunecxr.analysis.damage_curve`'s table, ``matched``
    :func:`prunecxr.analysis.matched_levels`'; ``units`` labels each method in the legend.
    """
    require_columns(curve, ["method", "level", "median_map", "loss"], "curve")
    fig, (ax, axl) = _figure(2)
    colors = {}
    for method, grp in curve.groupby("method", sort=False):
        grp = grp.sort_values("level")
        label = method + (f" ({units[method]})" if units and method in units else "")
        line, = ax.plot(grp["level"], grp["median_map"], marker="o", ms=3, label=label)
        colors[method] = line.get_color()
        axl.plot(grp["level"], grp["loss"], marker="o", ms=3, color=line.get_color())
    if matched is not None:
        require_columns(matched, ["method", "loss", "level", "resolved"], "matched")
        for target in sorted(matched["loss"].unique()):
            axl.axhline(target, ls=":", color="0.4", lw=1)
        for m in matched[matched["level"].notna()].itertuples():
            axl.plot(m.level, m.loss, marker="D", ms=6, color=colors.get(m.method, "k"),
                     mfc=colors.get(m.method, "k") if m.resolved else "none")
    ax.set(xlabel="share of weight storage removed", ylabel="mAP (median over seeds)",
           title="Overall performance per compression method")
    ax.legend(fontsize=8)
    axl.set(xlabel="share of weight storage removed", ylabel="loss of mAP vs dense",
            title="Matched damage (diamonds; hollow: not resolved)", ylim=(-0.05, 1.0))
    return fig


def matched_damage_figure(damage: pd.DataFrame) -> Figure:
    """Fig. 8: at each matched loss, the median relative AP change of the rarest classes and of
    the others per method (left, with bootstrap 95% intervals), and Spearman's rho of per-class
    change vs ln(train count) (right). Hollow markers: matched points the grid does not resolve.

    ``damage`` is :func:`prunecxr.analysis.matched_damage`'s table.
    """
    need = ["method", "loss", "resolved", "rare_change", "rare_change_lo", "rare_change_hi",
            "other_change", "other_change_lo", "other_change_hi", "rho", "rho_lo", "rho_hi"]
    require_columns(damage, need, "damage")
    methods = list(dict.fromkeys(damage["method"]))
    losses = sorted(damage["loss"].unique())
    fig, (ax, axr) = _figure(2, width=5.5)
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        color = OKABE_ITO[j % len(OKABE_ITO)]
        d = damage[damage["method"] == method].set_index("loss").reindex(losses)
        x = np.arange(len(losses)) + (j - (len(methods) - 1) / 2) * width
        for col, marker, label in (("rare_change", "v", f"{method}: rarest"),
                                   ("other_change", "o", f"{method}: others")):
            err = np.vstack([d[col] - d[f"{col}_lo"], d[f"{col}_hi"] - d[col]])
            ax.errorbar(x, d[col], yerr=np.abs(err), fmt=marker, color=color, ms=5, capsize=2,
                        mfc="none" if col == "other_change" else color, label=label)
        err = np.vstack([d["rho"] - d["rho_lo"], d["rho_hi"] - d["rho"]])
        axr.errorbar(x, d["rho"], yerr=np.abs(err), fmt="o", color=color, capsize=2, label=method)
        unresolved = ~d["resolved"].fillna(False).astype(bool)
        axr.plot(x[unresolved.to_numpy()], d["rho"][unresolved], "x", color="k", ms=7)
    for a in (ax, axr):
        a.set_xticks(np.arange(len(losses)), [f"{100 * t:.0f}% mAP lost" for t in losses])
        a.axhline(0, color="0.3", lw=0.8)
    ax.set(ylabel="median relative change in AP", title="Rarest classes vs the rest")
    axr.set(ylabel="ρ(change, ln train count)  (> 0: rarer lose more)",
            title="Frequency vs damage (x: not resolved)")
    ax.legend(fontsize=7, ncol=2)
    axr.legend(fontsize=7)
    return fig


def method_differences_figure(comparisons: pd.DataFrame, reference: str = "l1") -> Figure:
    """The Q5 answer: every method against ``reference`` at matched damage, side by side.

    Left: the difference (method minus reference) in the rare-vs-rest gap; right: in Spearman's
    rho; each with its paired bootstrap 95% interval, one marker per matched loss (circle,
    square, triangle). Filled: the comparison is decided and differs after Holm; open with a
    line: decided, no difference; grey x: not decided (too few seeds or a grid that cannot
    resolve the point). ``comparisons`` is
    :func:`prunecxr.analysis.compression.paired_comparisons`' table.
    """
    need = ["method", "loss", "decided", "gap_diff", "gap_diff_lo", "gap_diff_hi", "rho_diff",
            "rho_diff_lo", "rho_diff_hi", "gap_differs", "rho_differs"]
    fig, axes = _figure(2, width=5.0)
    if comparisons is None or comparisons.empty:
        for a in axes:
            a.text(0.5, 0.5, "no method to compare", ha="center", transform=a.transAxes)
        return fig
    require_columns(comparisons, need, "comparisons")
    methods = list(dict.fromkeys(comparisons["method"]))
    losses = sorted(comparisons["loss"].unique())
    step = 0.6 / max(len(losses), 1)
    markers = "osv^D"
    for a, kind, title in ((axes[0], "gap", f"rare-vs-rest gap, method − {reference}"),
                           (axes[1], "rho", f"ρ(change, ln count), method − {reference}")):
        for j, loss in enumerate(losses):
            d = comparisons[comparisons["loss"] == loss].set_index("method").reindex(methods)
            x = np.arange(len(methods)) + (j - (len(losses) - 1) / 2) * step
            color = OKABE_ITO[j % len(OKABE_ITO)]
            decided = d["decided"].fillna(False).astype(bool).to_numpy()
            differs = (d[f"{kind}_differs"] == True).to_numpy()  # noqa: E712
            err = np.abs(np.vstack([d[f"{kind}_diff"] - d[f"{kind}_diff_lo"],
                                    d[f"{kind}_diff_hi"] - d[f"{kind}_diff"]]))
            a.errorbar(x[decided], d[f"{kind}_diff"][decided], yerr=err[:, decided],
                       fmt=markers[j % len(markers)], color=color, capsize=2, mfc="none",
                       label=f"{100 * loss:.0f}% mAP lost")
            a.plot(x[differs], d[f"{kind}_diff"][differs], markers[j % len(markers)],
                   color=color, ms=7)
            a.errorbar(x[~decided], d[f"{kind}_diff"][~decided], yerr=err[:, ~decided],
                       fmt="x", color="0.6", capsize=2, lw=0.8,
                       label="not decided" if j == 0 else None)
        a.axhline(0, color="0.3", lw=0.8)
        a.set_xticks(np.arange(len(methods)), methods, rotation=30, ha="right")
        a.set(title=title, ylabel="difference at matched damage")
        a.legend(fontsize=7)
    axes[0].set_ylabel(f"gap difference (< 0: rarest lose more than under {reference})")
    axes[1].set_ylabel(f"ρ difference (> 0: frequency matters more than under {reference})")
    return fig
