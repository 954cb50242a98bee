"""The two-level bootstrap (seeds and test images): its point estimate, its pairing, its
intervals against a brute-force loop, and its coverage in a simulation where the truth is
known."""

from __future__ import annotations

import numpy as np
import pytest

from prunecxr.analysis.resampling import two_level_change, two_level_sentence
from prunecxr.metrics import average_precision


def population(n_seeds=5, n_images=120, rng=None, positives=(40, 8)):
    rng = rng or np.random.default_rng(0)
    labels = np.zeros((n_images, len(positives)), int)
    for c, p in enumerate(positives):
        labels[rng.choice(n_images, p, replace=False), c] = 1
    signal = labels + rng.normal(0, 0.8, size=(n_seeds, n_images, len(positives)))
    dense = 1 / (1 + np.exp(-2 * signal))
    pruned = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.8, size=signal.shape))))
    return labels, dense, pruned


def test_point_estimate_and_intervals_against_a_brute_force_loop():
    labels, dense, pruned = population()
    table = two_level_change(labels, dense, pruned, ["big", "small"], n_boot=40, seed=3)
    ap0, apk = average_precision(labels, dense), average_precision(labels, pruned)
    np.testing.assert_allclose(table["change"], np.median(apk / ap0 - 1, axis=0))
    rng = np.random.default_rng(3)  # the same draws, one resample at a time
    seeds = rng.integers(0, 5, size=(40, 5))
    images = rng.integers(0, 120, size=(40, 120))
    both = []
    for s, i in zip(seeds, images):
        y = labels[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            both.append(np.nanmedian(average_precision(y, pruned[s][:, i])
                                     / average_precision(y, dense[s][:, i]) - 1, axis=0))
    lo, hi = np.nanpercentile(np.array(both), [2.5, 97.5], axis=0)
    np.testing.assert_allclose(table["both_lo"], lo)
    np.testing.assert_allclose(table["both_hi"], hi)
    assert table["test_positives"].tolist() == [40, 8]


def test_resampling_images_widens_the_intervals():
    labels, dense, pruned = population(n_seeds=6, n_images=200, positives=(80, 6))
    table = two_level_change(labels, dense, pruned, ["big", "small"], n_boot=200).set_index("class")
    assert (table["width_ratio"] > 1).all()
    assert (table["both_hi"] - table["both_lo"]).loc["small"] > (
        table["both_hi"] - table["both_lo"]).loc["big"]  # few positives: the widest
    assert "fewer than 20" in two_level_sentence(table.reset_index())


@pytest.mark.parametrize("n_images", [150])
def test_two_level_interval_covers_the_population_change(n_images):
    """Draw test sets from a known population of images; the two-level interval should cover
    the change computed on a very large test set most of the time (the seed-only one, which
    treats the test set as fixed, covers it less often for a rare class)."""
    rng = np.random.default_rng(11)
    prevalence = 0.06
    big = 20000
    shift = rng.normal(0, 0.5, size=6)  # six seeds: how each pruned model differs

    def outputs(n):
        y = (rng.random((n, 1)) < prevalence).astype(int)
        signal = 1.5 * y + rng.normal(0, 1, size=(6, n, 1))
        dense = 1 / (1 + np.exp(-signal))
        pruned = 1 / (1 + np.exp(-(0.6 * signal + shift[:, None, None]
                                   * rng.normal(0, 1, size=(6, n, 1)))))
        return y, dense, pruned

    y, d, p = outputs(big)
    truth = np.median(average_precision(y, p) / average_precision(y, d) - 1, axis=0)[0]
    hits_both = hits_seed = 0
    trials = 40
    for _ in range(trials):
        y, d, p = outputs(n_images)
        if y.sum() < 3:
            continue
        t = two_level_change(y, d, p, ["c"], n_boot=150, seed=int(rng.integers(1e9))).iloc[0]
        hits_both += t["both_lo"] <= truth <= t["both_hi"]
        hits_seed += t["seed_lo"] <= truth <= t["seed_hi"]
    assert hits_both / trials >= 0.75       # near its nominal 95%, with 40 trials
    assert hits_both >= hits_seed           # resampling images never covers less here


def test_bad_shapes_are_named():
    labels, dense, pruned = population()
    with pytest.raises(ValueError, match="seeds, images, classes"):
        two_level_change(labels, dense[:, :10], pruned, ["a", "b"])


def test_seed_only_interval_undefined_share_defaults_and_checks():
    """The seed-only interval against a loop; the share of resamples in which a class had no
    positive image; the defaults (200 resamples, seed 0); the sentence's two groups; the
    messages for bad shapes and coverage."""
    from pandas.testing import assert_frame_equal

    rng = np.random.default_rng(7)
    # 8 seeds: enough distinct resample medians that a percentile one point off shows
    labels, dense, pruned = population(n_seeds=8, n_images=30, rng=rng, positives=(10, 1))
    table = two_level_change(labels, dense, pruned, ["big", "one"], n_boot=200, seed=2,
                             coverage=0.8)
    assert list(table.columns) == ["class", "test_positives", "change", "seed_lo", "seed_hi",
                                   "both_lo", "both_hi", "width_ratio", "undefined_share"]
    draws = np.random.default_rng(2)
    seeds = draws.integers(0, 8, size=(200, 8))
    images = draws.integers(0, 30, size=(200, 30))
    only = np.median(average_precision(labels, pruned[seeds].reshape(-1, 30, 2)).reshape(200, 8, 2)
                     / average_precision(labels, dense[seeds].reshape(-1, 30, 2)).reshape(200, 8, 2)
                     - 1, axis=1)
    lo, hi = np.percentile(only, [10, 90], axis=0)
    assert (np.percentile(only, 91, axis=0) != hi)[0]   # the test can tell 90 from 91
    np.testing.assert_allclose(table["seed_lo"], lo)
    np.testing.assert_allclose(table["seed_hi"], hi)
    none = np.array([[labels[i, c].sum() == 0 for c in range(2)] for i in images])
    np.testing.assert_allclose(table["undefined_share"], none.mean(axis=0))
    assert table["undefined_share"].iloc[1] > 0.2 and table["undefined_share"].iloc[0] == 0
    default = two_level_change(labels, dense, pruned, ["big", "one"])
    assert_frame_equal(default, two_level_change(labels, dense, pruned, ["big", "one"],
                                                            n_boot=200, seed=0))
    assert not default.equals(two_level_change(labels, dense, pruned, ["big", "one"],
                                               n_boot=200, seed=1))
    sentence_table = table.assign(test_positives=[20, 19], width_ratio=[1.5, 3.0])
    assert two_level_sentence(sentence_table, few=20) == (
        "Resampling the test images as well as the seeds makes the intervals of the per-class "
        "change 3.0 times as wide for the 1 classes with fewer than 20 test positives and 1.5 "
        "times as wide for the 1 classes with at least 20 test positives.")
    message = ("dense {} and pruned {} must be (seeds, images, classes) matching labels {}")
    for d, p, y in (((5, 30, 2), (4, 30, 2), (30, 2)), ((30, 2), (30, 2), (2,))):
        with pytest.raises(ValueError) as caught:
            two_level_change(np.zeros(y), np.zeros(d), np.zeros(p), ["a", "b"])
        assert str(caught.value) == message.format(d, p, y)
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError) as caught:
            two_level_change(labels, dense, pruned, ["big", "one"], coverage=bad)
        assert str(caught.value) == f"coverage must be in (0, 1), got {bad}"
