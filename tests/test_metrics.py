"""AP and AUROC per class against scikit-learn, including ties, degenerate classes and batching."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ci import under_mutmut
from prunecxr.metrics import UndefinedMetricWarning, auroc, average_precision, mean_ap


def sk_per_class(fn, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """scikit-learn column by column; NaN where the class is undefined (our convention)."""
    out = np.full(y.shape[1], np.nan)
    for c in range(y.shape[1]):
        npos = y[:, c].sum()
        if npos == 0 or (fn is roc_auc_score and npos == len(y)):
            continue
        out[c] = fn(y[:, c], s[:, c])
    return out


def data(shape, seed, kind="float"):
    rng = np.random.default_rng(seed)
    n, c = shape
    y = (rng.random((n, c)) < rng.uniform(0.05, 0.6, c)).astype(int)
    y[rng.integers(n), :] = 1  # at least one positive per class
    s = rng.random((n, c))
    if kind == "round1":
        s = np.round(s, 1)
    elif kind == "int03":
        s = rng.integers(0, 4, (n, c)).astype(float)
    elif kind == "informative":
        s = s + y * rng.uniform(0, 1, c)
    return y, s


SHAPES = [(2, 1), (5, 3), (37, 4), (200, 7), (1000, 20)]
KINDS = ["float", "round1", "int03", "informative"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fn", [average_precision, auroc], ids=["ap", "auroc"])
def test_matches_sklearn(fn, kind, shape):
    sk = average_precision_score if fn is average_precision else roc_auc_score
    for seed in range(3):
        y, s = data(shape, seed, kind)
        np.testing.assert_allclose(fn(y, s), sk_per_class(sk, y, s), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fn", [average_precision, auroc], ids=["ap", "auroc"])
def test_degenerate_columns(fn):
    sk = average_precision_score if fn is average_precision else roc_auc_score
    n = 50
    rng = np.random.default_rng(7)
    y = np.zeros((n, 5), dtype=int)
    s = rng.random((n, 5))
    y[::3, 0] = 1
    s[:, 0] = 0.3  # all-equal scores: AP = prevalence, AUROC = 0.5
    y[17, 1] = 1  # a single positive
    y[[4, 9], 2] = 1
    s[[4, 9, 11, 30], 2] = s[:, 2].max() + 1  # positives tied with negatives at the top
    y[:, 3] = 1  # no negatives: AP = 1 by sklearn, AUROC undefined
    # column 4: no positives
    got = fn(y, s)
    np.testing.assert_allclose(got, sk_per_class(sk, y, s), rtol=1e-12, atol=1e-14)
    assert np.isnan(got[4])
    if fn is average_precision:
        assert got[0] == pytest.approx(y[:, 0].mean())
        assert got[2] == pytest.approx(0.5)  # 2 positives among 4 tied at the top
        assert got[3] == 1.0
    else:
        assert got[0] == 0.5 and np.isnan(got[3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # undefined classes are NaN without numpy's warning
        np.testing.assert_array_equal(fn(y, s), got)


@pytest.mark.parametrize("fn", [average_precision, auroc], ids=["ap", "auroc"])
def test_batched_equals_per_slice(fn):
    y, _ = data((120, 6), 11)
    rng = np.random.default_rng(12)
    s = np.round(rng.random((3, 4, 120, 6)), 2)
    got = fn(y, s)
    assert got.shape == (3, 4, 6)
    for i in range(3):
        for j in range(4):
            np.testing.assert_array_equal(got[i, j], fn(y, s[i, j]))
    # labels may carry the leading dims too
    np.testing.assert_array_equal(fn(np.broadcast_to(y, s.shape), s), got)


def test_ties_are_grouped_not_ordered():
    """Permuting samples inside a tie must not change AP (it would if ties were broken by order)."""
    y = np.array([[1], [0], [0], [1], [0], [1]])
    s = np.array([[0.9], [0.9], [0.5], [0.5], [0.5], [0.1]])
    ap = average_precision(y, s)[0]
    # thresholds 0.9: P=1/2 R=1/3; 0.5: P=2/5 R=2/3; 0.1: P=3/6 R=1
    assert ap == pytest.approx((1 / 3) * (1 / 2) + (1 / 3) * (2 / 5) + (1 / 3) * (3 / 6))
    perm = [1, 0, 4, 3, 2, 5]
    assert average_precision(y[perm], s[perm])[0] == ap
    assert ap == pytest.approx(average_precision_score(y[:, 0], s[:, 0]))


def test_input_validation():
    """Each bad input is named in a whole message."""
    y, s = data((10, 2), 0)
    with pytest.raises(ValueError, match=r"^labels must be 0/1 \(binary indicator matrix\)$"):
        average_precision(y * 2, s)
    with pytest.raises(ValueError, match="^scores contain NaN or infinity$"):
        auroc(y, np.where(y == 1, np.nan, s))
    with pytest.raises(ValueError, match="do not match"):
        average_precision(y[:5], s)
    with pytest.raises(ValueError, match=r"^scores must have shape \(\.\.\., N, C\), got \(10,\)$"):
        average_precision(y[:, 0], s[:, 0])
    with pytest.raises(ValueError, match=r"^labels must have shape \(N, C\), got \(10,\)$"):
        auroc(y[:, 0], s)
    assert average_precision(y.astype(bool), s).shape == (2,)


def test_mean_ap_excludes_nan_and_warns():
    ap = np.array([0.5, np.nan, 0.25, np.nan])
    with pytest.warns(UndefinedMetricWarning, match=r"2 of 4 classes .*\[1, 3\]"):
        assert mean_ap(ap) == pytest.approx(0.375)
    batched = np.array([[0.5, np.nan, 1.0], [0.1, np.nan, 0.3]])
    with pytest.warns(UndefinedMetricWarning, match="1 of 3 classes"):
        np.testing.assert_allclose(mean_ap(batched), [0.75, 0.2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mean_ap(np.array([0.2, 0.4])) == pytest.approx(0.3)  # no warning without NaN
        np.testing.assert_allclose(mean_ap(batched[:, [0, 2]], axis=0), [0.3, 0.65])


def test_mean_ap_all_nan_is_nan_without_runtime_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = mean_ap(np.array([np.nan, np.nan]))
    assert np.isnan(out)
    assert [w.category for w in caught] == [UndefinedMetricWarning]


def test_sweep_with_empty_class_end_to_end():
    """A whole (S, N, C) sweep in one call; a class without positives is NaN and left out of mAP."""
    y, _ = data((300, 5), 21)
    y[:, 2] = 0
    rng = np.random.default_rng(22)
    s = rng.random((4, 300, 5))
    ap = average_precision(y, s)
    assert np.isnan(ap[:, 2]).all() and not np.isnan(np.delete(ap, 2, axis=1)).any()
    with pytest.warns(UndefinedMetricWarning, match="1 of 5"):
        m = mean_ap(ap)
    np.testing.assert_allclose(m, np.delete(ap, 2, axis=1).mean(axis=1))


def test_mean_ap_is_float64_and_warns_at_the_callers_line():
    """float32 input still averages in float64; the warning points at the caller (stacklevel)."""
    ap32 = np.array([0.1, 0.2, 0.7], dtype=np.float32)
    out = mean_ap(ap32)
    assert out.dtype == np.float64
    assert out == np.mean(ap32.astype(np.float64))
    with pytest.warns(UndefinedMetricWarning, match="1 of 2 classes are undefined") as record:
        mean_ap(np.array([0.5, np.nan]))
    import prunecxr.metrics as metrics_module

    assert record[0].filename != metrics_module.__file__   # the caller's line, not the library's


def test_mean_ap_warns_at_its_callers_line_and_quietly_for_all_nan():
    with pytest.warns(UndefinedMetricWarning) as caught:
        mean_ap(np.array([0.5, np.nan]))
    assert under_mutmut() or caught[0].filename == __file__    # stacklevel 2: the caller
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=RuntimeWarning)
        with pytest.warns(UndefinedMetricWarning):
            assert np.isnan(mean_ap(np.array([np.nan, np.nan])))
