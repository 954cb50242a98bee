"""Per-class AP and AUROC for multi-label predictions, vectorised, with scikit-learn semantics.

Both metrics take ``labels`` (N, C) of 0/1 and ``scores`` (..., N, C); any leading dims of
``scores`` (e.g. sparsity levels, seeds) are scored in the same call, with the labels broadcast.
Each column is sorted once; there is no Python loop over classes or leading dims.

- ``average_precision`` equals ``sklearn.metrics.average_precision_score(y[:, c], s[:, c])``:
  precision and recall are taken at each *distinct* score (tied scores enter together) and
  ``AP = sum_n (R_n - R_{n-1}) P_n``.
- ``auroc`` equals ``sklearn.metrics.roc_auc_score``: the Mann-Whitney statistic with average
  ranks, so a tied positive/negative pair counts one half.

A class without positives (or, for AUROC, without negatives) gets NaN on purpose, where
scikit-learn warns and returns a number that has no meaning; ``mean_ap`` then leaves it out and
says so (the torchmetrics convention of explicit NaN handling).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["UndefinedMetricWarning", "auroc", "average_precision", "mean_ap"]


class UndefinedMetricWarning(UserWarning):
    """Some per-class values were undefined (NaN) and were left out of an average."""


def _sorted_columns(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validate, then return (labels, scores) as (..., C, N), each row sorted by ascending score."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim < 2:
        raise ValueError(f"scores must have shape (..., N, C), got {s.shape}")
    if y.ndim < 2:
        raise ValueError(f"labels must have shape (N, C), got {y.shape}")
    try:
        y = np.broadcast_to(y, s.shape)
    except ValueError:
        raise ValueError(f"labels {y.shape} do not match scores {s.shape}") from None
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1 (binary indicator matrix)")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinity")
    s = np.moveaxis(s, -2, -1)
    y = np.moveaxis(y, -2, -1)
    order = np.argsort(s, axis=-1)  # order within ties is irrelevant: tied scores are grouped
    return (
        np.take_along_axis(y, order, axis=-1).astype(np.float64),
        np.take_along_axis(s, order, axis=-1),
    )


def average_precision(labels, scores) -> np.ndarray:
    """Per-class average precision, shape ``(..., C)``; NaN for a class without positives."""
    y, s = _sorted_columns(labels, scores)
    y, s = y[..., ::-1], s[..., ::-1]  # descending score
    n = s.shape[-1]
    # a threshold ends where the next (lower) score differs, or at the last sample
    is_end = np.ones(s.shape, dtype=bool)
    is_end[..., :-1] = s[..., :-1] != s[..., 1:]
    tps = np.cumsum(y, axis=-1)
    npos = tps[..., -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tps / np.arange(1, n + 1)
        recall = tps / npos
    # recall at the previous threshold: running max of recall over threshold ends, shifted by one
    at_ends = np.where(is_end, recall, 0.0)
    prev = np.zeros_like(recall)
    prev[..., 1:] = np.maximum.accumulate(at_ends, axis=-1)[..., :-1]
    ap = np.sum(np.where(is_end, (recall - prev) * precision, 0.0), axis=-1)
    ap[npos[..., 0] == 0] = np.nan
    return ap


def auroc(labels, scores) -> np.ndarray:
    """Per-class ROC AUC, shape ``(..., C)``; NaN for a class without positives or negatives."""
    y, s = _sorted_columns(labels, scores)
    n = s.shape[-1]
    pos = np.arange(n)
    is_start = np.ones(s.shape, dtype=bool)
    is_start[..., 1:] = s[..., 1:] != s[..., :-1]
    is_end = np.ones(s.shape, dtype=bool)
    is_end[..., :-1] = is_start[..., 1:]
    # first and last position of each sample's tie group -> its average (1-based) rank
    first = np.maximum.accumulate(np.where(is_start, pos, 0), axis=-1)
    last = np.minimum.accumulate(np.where(is_end, pos, n - 1)[..., ::-1], axis=-1)[..., ::-1]
    rank = (first + last) / 2.0 + 1.0
    npos = y.sum(axis=-1)
    nneg = n - npos
    u = (y * rank).sum(axis=-1) - npos * (npos + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = u / (npos * nneg)
    auc[(npos == 0) | (nneg == 0)] = np.nan
    return auc


def mean_ap(ap, axis: int = -1):
    """Mean over classes (``axis``) ignoring NaN classes; warns how many were left out.

    All-NaN gives NaN (without numpy's RuntimeWarning). Works for any per-class metric array.
    """
    a = np.asarray(ap, dtype=np.float64)
    nan = np.isnan(a)
    if nan.any():
        c_axis = axis % a.ndim
        bad = np.flatnonzero(nan.any(axis=tuple(i for i in range(a.ndim) if i != c_axis)))
        warnings.warn(
            f"{bad.size} of {a.shape[c_axis]} classes are undefined (NaN, e.g. no positive "
            f"labels) and were excluded from the mean: class indices {bad.tolist()}",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    count = np.sum(~nan, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(np.where(nan, 0.0, a), axis=axis) / count
