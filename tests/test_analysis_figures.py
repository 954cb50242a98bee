"""Figures (prunecxr.plots, re-exported by prunecxr.analysis): right number of panels, and the
statistics printed on them are the computed ones."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from prunecxr import analysis as A
from prunecxr import plots
from prunecxr.plots import corr_text
from prunecxr.stats import format_p


def texts(fig):
    out = []
    for ax in fig.axes:
        out += [ax.get_title(loc=loc) for loc in ("left", "center", "right")]
        out += [ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return "\n".join(out)


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.axison]


def curves_and_counts(n_classes=8):
    rng = np.random.default_rng(0)
    ks = [round(0.05 * i, 2) for i in range(1, 20)]
    classes = [f"c{i}" for i in range(n_classes)]
    counts = pd.Series(np.geomspace(5000, 20, n_classes).astype(int), index=classes)
    rows = [("l1", c, k, -k ** (1 + 3 / np.log(counts[c])) + rng.normal(0, 0.01))
            for c in classes for k in ks]
    curves = pd.DataFrame(rows, columns=["method", "class", "sparsity", "median_rel_change"])
    labels = (rng.uniform(size=(400, n_classes)) < counts.to_numpy() / 10000).astype(int)
    labels[0] = 1  # every class has a test positive
    return curves, counts, classes, labels


def test_map_and_weights_figure_two_panels_and_drop_marker():
    overall = pd.DataFrame({"method": "l1", "sparsity": [0, 0.5, 0.9], "median": [0.3, 0.29, 0.1],
                            "q25": [0.28, 0.27, 0.08], "q75": [0.32, 0.31, 0.12]})
    w = np.random.default_rng(0).normal(0, 0.02, 1000)
    fig = plots.map_and_weights_figure(overall, A.weight_magnitudes(w), first_drop=0.65,
                    fraction_below=A.fraction_below(w))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    t = texts(fig)
    assert "k = 0.65" in t
    assert f"{100 * A.fraction_below(w):.1f}% below" in t


def test_forgettability_curves_figure_spread_subset_with_counts():
    curves, counts, _, _ = curves_and_counts()
    fig = plots.forgettability_curves_figure(A.curve_matrix(curves), train_counts=counts, n=4)
    assert len(fig.axes) == 1
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(legend) == 4 and legend[0] == f"c0 (n = {counts['c0']:,})"
    assert legend[-1].startswith("c7")  # spread reaches the rarest class
    fig = plots.forgettability_curves_figure(A.curve_matrix(curves), classes=["c2", "c5"])
    assert len(fig.axes[0].get_lines()) == 2 + 2  # two curves + two reference lines


def test_forgetting_vs_frequency_figure_prints_computed_correlations():
    curves, counts, _, _ = curves_and_counts()
    summary, corr = A.forgetting_summary(curves, counts)
    fig = plots.forgetting_vs_frequency_figure(summary, corr)
    assert len(fig.axes) == 2
    t = texts(fig)
    for _, row in corr.iterrows():
        assert corr_text(row) in t
        assert f"ρ = {row['rho']:.2f}" in t and f"r = {row['r']:.2f}" in t
    assert "c0" in t and "c7" in t  # most and least frequent labelled


def test_fcd_pairs_figure_prints_computed_rho_and_highlights():
    curves, _, classes, labels = curves_and_counts()
    pairs = A.class_pair_table(curves, labels, classes)
    fig = plots.fcd_pairs_figure(pairs, highlight=[("c5", "c1")])
    assert len(fig.axes) == 2
    t = texts(fig)
    c = A.fcd_correlations(pairs).set_index("x")
    assert f"ρ = {c.loc['dlogfreq', 'rho']:.2f}" in t
    assert f"ρ = {c.loc['iou4', 'rho']:.2f}" in t
    assert "c1 / c5" in t
    with pytest.raises(ValueError, match="highlight pair"):
        plots.fcd_pairs_figure(pairs, highlight=[("c1", "zz")])


def test_pie_enrichment_figure_and_gallery():
    rng = np.random.default_rng(1)
    classes = ["No Finding", "a", "b", "c"]
    labels = (rng.uniform(size=(100, 4)) < [0.5, 0.3, 0.1, 0.02]).astype(int)
    labels[0, 3] = 1
    mask = np.zeros(100, bool)
    mask[[0, 5, 9, 20, 33]] = True
    labels[~mask, 3] = 0  # class c only in PIEs: ratio inf
    ce, fe = A.pie_enrichment(mask, labels, classes)
    counts = pd.Series([500, 300, 100, 5], index=classes)
    fig = plots.pie_enrichment_figure(ce, fe, counts)
    assert len(fig.axes) == 2 and "only\nPIEs" in texts(fig)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks[0].startswith("No Finding") and ticks[-1].startswith("c")

    images = rng.integers(0, 255, (100, 16, 16), dtype=np.uint8)
    probs = rng.uniform(size=(100, 4))
    fig = plots.pie_gallery(images, labels, classes, probs, probs[:, ::-1], np.flatnonzero(mask), n=5)
    assert len(visible_axes(fig)) == 5
    assert "labels:" in texts(fig)
    fig = plots.pie_gallery(images, labels, classes, probs, probs, mask, n=8)  # a mask works too
    assert len(visible_axes(fig)) == 5 and "#33 labels" in texts(fig)


def test_pie_comparison_figure_panels_and_p_values():
    stats = pd.DataFrame({"variable": ["agrees_with_label", "quality", "difficulty"],
                          "mean_a": [0.55, 3.6, 2.5], "sd_a": [0.5, 1, 1],
                          "mean_b": [0.575, 3.8, 2.05], "sd_b": [0.5, 1, 1],
                          "p_kruskal": [0.35, 0.09, 0.0004]})
    fig = plots.pie_comparison_figure(stats)
    assert len(fig.axes) == 3
    t = texts(fig)
    assert format_p(0.35) in t and "P = 0.090" in t and "P < 0.001" in t
