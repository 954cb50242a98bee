"""The drawn data of each paper figure equal the statistic the figure claims to show, computed
here independently (numpy medians and quartiles over seeds, prevalence ratios by counting), from
a synthetic AP table whose seeds differ, so that a median and a quartile cannot coincide."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prunecxr import analysis, plots

KS = [0.0, 0.25, 0.5, 0.75, 0.9]
CLASSES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def ap_table():
    rng = np.random.default_rng(3)
    rows = [{"method": m, "seed": s, "sparsity": k, "level": k, "class": c,
             "ap": float(np.clip(0.8 - (0.6 if m == "random" else 0.4) * k ** 2
                                 - 0.1 * i * k + rng.normal(0, 0.05), 0.01, 1))}
            for m in ("l1", "random") for s in range(7) for k in KS
            for i, c in enumerate(CLASSES)]
    return pd.DataFrame(rows)


def test_map_figure_draws_the_median_and_quartiles_over_seeds(ap_table):
    maps = analysis.map_per_model(ap_table)
    summary = analysis.overall_map(maps)
    hist = analysis.weight_magnitudes(np.random.default_rng(0).normal(0, 0.02, 5000))
    fig = plots.map_and_weights_figure(summary, hist)
    ax = fig.axes[0]
    per_seed = ap_table.groupby(["method", "sparsity", "seed"])["ap"].mean()  # mAP per model
    for line, band in zip(ax.lines, ax.collections):
        method = line.get_label()
        x = np.asarray(line.get_xdata(), float)
        values = per_seed.loc[method].unstack("seed").loc[x].to_numpy()
        np.testing.assert_allclose(line.get_ydata(), np.median(values, axis=1))
        lower, upper = np.percentile(values, [25, 75], axis=1)
        path = band.get_paths()[0].vertices  # fill_between: upper then lower edge, closed
        np.testing.assert_allclose(np.sort(np.unique(np.round(path[:, 1], 12))),
                                   np.sort(np.unique(np.round(np.r_[lower, upper], 12))))
    assert {line.get_label() for line in ax.lines} == {"l1", "random"}


def test_forgettability_curves_draw_the_median_relative_change_over_seeds(ap_table):
    curves = analysis.forgettability_curves(ap_table[ap_table["method"] == "l1"])
    matrix = analysis.curve_matrix(curves, "l1", CLASSES)
    counts = pd.Series([400, 200, 50, 10], index=CLASSES)
    fig = plots.forgettability_curves_figure(matrix, classes=CLASSES, train_counts=counts)
    l1 = ap_table[ap_table["method"] == "l1"].pivot_table(index=["class", "seed"],
                                                         columns="sparsity", values="ap")
    drawn = [line for line in fig.axes[0].lines if " (n = " in str(line.get_label())]
    assert len(drawn) == len(CLASSES)
    for line, c in zip(drawn, CLASSES):
        per_seed = l1.loc[c]
        rel = per_seed.sub(per_seed[0.0], axis=0).div(per_seed[0.0], axis=0)
        x = np.asarray(line.get_xdata(), float)
        assert 0 < len(x) and set(x) <= set(KS)
        np.testing.assert_allclose(line.get_ydata(), rel[x].median(axis=0).to_numpy(),
                                   atol=1e-12)
        assert line.get_label().startswith(f"{c} (n = ")


def test_enrichment_bars_are_prevalence_among_pies_over_prevalence_among_the_rest():
    rng = np.random.default_rng(5)
    labels = (rng.random((300, 4)) < [0.5, 0.3, 0.1, 0.05]).astype(int)
    pies = np.zeros(300, bool)
    pies[rng.choice(300, 30, replace=False)] = True
    classes = ["No Finding", "x", "y", "z"]
    by_class, by_count = analysis.pie_enrichment(pies, labels, classes)
    counts = pd.Series([900, 300, 100, 20], index=classes)
    fig = plots.pie_enrichment_figure(by_class, by_count, counts)
    heights = [bar.get_height() for bar in fig.axes[0].patches[:len(classes)]]
    expected = [labels[pies, j].mean() / labels[~pies, j].mean() for j in range(4)]
    finite = np.isfinite(expected)
    np.testing.assert_allclose(np.asarray(heights)[finite], np.asarray(expected)[finite])


def test_comparison_figure_draws_each_groups_mean():
    stats = pd.DataFrame({"variable": ["quality", "difficulty"], "mean_a": [3.1, 2.7],
                          "sd_a": [0.4, 0.5], "mean_b": [3.6, 2.2], "sd_b": [0.3, 0.6],
                          "p_kruskal": [0.01, 0.2]})
    fig = plots.pie_comparison_figure(stats)
    for ax, (_, row) in zip(fig.axes, stats.iterrows()):
        drawn = sorted(round(float(b.get_height()), 12) for b in ax.patches)
        assert drawn == sorted([row["mean_a"], row["mean_b"]])
