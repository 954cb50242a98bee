"""Uncertainty that includes the test set: a two-level bootstrap over seeds and test images.

A class with a handful of test positives has an AP that moves with which images happen to be in
the test set, a source of uncertainty a bootstrap over seeds alone never sees. Here the seeds
and the test images are resampled together (images with replacement, the same draw for every
seed and for the dense and pruned outputs, so pairing is kept), and each class's relative
change in AP, ``median over seeds of AP_k / AP_0 - 1``, gets a percentile interval under both
schemes. Where the two agree the seed-only interval was enough; where the two-level one is much
wider, the test set, not the models, limits what can be said about that class.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..metrics import average_precision


def _median_change(labels, dense, pruned) -> np.ndarray:
    """Median over seeds of AP_k / AP_0 - 1 per class; ``labels`` (..., N, C) broadcast over
    seeds, ``dense``/``pruned`` (..., S, N, C)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ap0 = average_precision(labels, dense)
        apk = average_precision(labels, pruned)
        return np.nanmedian(apk / ap0 - 1.0, axis=-2)


def two_level_change(labels, dense, pruned, classes, n_boot: int = 200, seed: int = 0,
                     coverage: float = 0.95, chunk: int = 16) -> pd.DataFrame:
    """Each class's relative AP change between ``dense`` and ``pruned`` outputs with a seed-only
    and a two-level (seeds and test images) percentile bootstrap interval.

    ``labels`` (N, C) 0/1; ``dense`` and ``pruned`` (S, N, C) probabilities of the same S seeds.
    Columns: class, test_positives, change, seed_lo, seed_hi, both_lo, both_hi, width_ratio
    (two-level width / seed-only width), undefined_share (resamples in which the class had no
    positive test image, left out of its interval).
    """
    labels = np.asarray(labels)
    dense, pruned = np.asarray(dense, float), np.asarray(pruned, float)
    if dense.shape != pruned.shape or dense.ndim != 3 or dense.shape[1:] != labels.shape:
        raise ValueError(f"dense {dense.shape} and pruned {pruned.shape} must be (seeds, "
                         f"images, classes) matching labels {labels.shape}")
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    n_seeds, n_images, _ = dense.shape
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    images = rng.integers(0, n_images, size=(n_boot, n_images))
    seed_only, both = [], []
    for start in range(0, n_boot, chunk):  # in chunks: (chunk, seeds, images, classes) arrays
        s, i = seeds[start:start + chunk], images[start:start + chunk]
        seed_only.append(_median_change(labels, dense[s], pruned[s]))
        take = s[:, :, None], i[:, None, :]
        both.append(_median_change(labels[i][:, None], dense[take], pruned[take]))
    seed_only, both = np.concatenate(seed_only), np.concatenate(both)
    tail = 100 * (1 - coverage) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s_lo, s_hi = np.nanpercentile(seed_only, [tail, 100 - tail], axis=0)
        b_lo, b_hi = np.nanpercentile(both, [tail, 100 - tail], axis=0)
        ratio = (b_hi - b_lo) / (s_hi - s_lo)
    return pd.DataFrame({
        "class": list(classes), "test_positives": labels.sum(axis=0).astype(int),
        "change": _median_change(labels, dense, pruned), "seed_lo": s_lo, "seed_hi": s_hi,
        "both_lo": b_lo, "both_hi": b_hi, "width_ratio": ratio,
        "undefined_share": np.isnan(both).mean(axis=0)})


def two_level_sentence(table: pd.DataFrame, few: int = 20) -> str:
    """What resampling the test images adds, for the classes with fewer than ``few`` test
    positives against the rest (median ratio of interval widths)."""
    small = table["test_positives"] < few
    parts = []
    for name, rows in (("fewer than", table[small]), ("at least", table[~small])):
        if len(rows):
            parts.append(f"{rows['width_ratio'].median():.1f} times as wide for the {len(rows)} "
                         f"classes with {name} {few} test positives")
    if not parts:
        return "No class has a defined interval."
    return ("Resampling the test images as well as the seeds makes the intervals of the "
            "per-class change " + " and ".join(parts) + ".")


def store_two_level_change(store, method: str, sparsity: float, n_boot: int = 200,
                           seed: int = 0) -> pd.DataFrame:
    """:func:`two_level_change` of ``method`` at ``sparsity`` against its dense level, on
    every seed the store swept with it."""
    levels = np.asarray(store.levels(method), float)
    k = int(np.argmin(np.abs(levels - sparsity)))
    d = int(np.argmin(np.abs(levels)))
    preds = np.stack([store.predictions(method, s) for s in store.method_seeds(method)])
    return two_level_change(store.labels, preds[:, d], preds[:, k], store.classes,
                            n_boot=n_boot, seed=seed)
