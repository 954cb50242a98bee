"""Q3 (prunecxr.analysis.cooccurrence) against loops, numpy lstsq and scipy."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from ci import under_mutmut
from prunecxr.analysis import cooccurrence as co

KS = [round(0.05 * i, 2) for i in range(1, 20)]  # the paper's 19 points


def random_setup(n_classes=6, n=300, seed=0):
    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(n_classes)]
    prev = np.geomspace(0.4, 0.02, n_classes)
    labels = (rng.uniform(size=(n, n_classes)) < prev).astype(np.uint8)
    rows = []
    for i, c in enumerate(classes):
        curve = -np.asarray(KS) ** (2 + i) + rng.normal(0, 0.02, len(KS))
        rows += [("l1", c, k, v) for k, v in zip(KS, curve)]
    curves = pd.DataFrame(rows, columns=["method", "class", "sparsity", "median_rel_change"])
    return curves, labels, classes


def loop_pairs(curves, labels, classes, metric):
    table = {}
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            a = [labels[r][i] for r in range(len(labels))]
            b = [labels[r][j] for r in range(len(labels))]
            sa = {r for r, v in enumerate(a) if v}
            sb = {r for r, v in enumerate(b) if v}
            ca = curves[curves["class"] == classes[i]].sort_values("sparsity")["median_rel_change"]
            cb = curves[curves["class"] == classes[j]].sort_values("sparsity")["median_rel_change"]
            sq = [(x - y) ** 2 for x, y in zip(ca, cb)]
            d = math.sqrt(sum(sq)) if metric == "euclidean" else sum(sq) / len(sq)
            iou = len(sa & sb) / len(sa | sb)
            table[(classes[i], classes[j])] = (d, abs(math.log(len(sa)) - math.log(len(sb))), iou)
    return table


@pytest.mark.parametrize("metric", ["euclidean", "mse"])
def test_class_pair_table_matches_loop(metric):
    curves, labels, classes = random_setup()
    out = co.class_pair_table(curves, labels, classes, metric=metric)
    assert len(out) == 6 * 5 // 2
    ref = loop_pairs(curves, labels, classes, metric)
    for r in out.itertuples():
        d, dlog, iou = ref[(r.class_a, r.class_b)]
        assert r.fcd == pytest.approx(d)
        assert r.dlogfreq == pytest.approx(dlog)
        assert r.iou == pytest.approx(iou)
        assert r.iou4 == pytest.approx(iou ** 0.25)
    assert out.attrs["metric"] == metric


def test_euclidean_is_sqrt_19_mse_on_paper_grid():
    curves, labels, classes = random_setup()
    e = co.class_pair_table(curves, labels, classes)["fcd"]
    m = co.class_pair_table(curves, labels, classes, metric="mse")["fcd"]
    np.testing.assert_allclose(e, np.sqrt(19 * m))


def test_hand_case_iou_and_counts():
    classes = ["A", "B", "C"]
    labels = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 0], [0, 0, 1]])
    curves = pd.DataFrame({"method": "l1", "class": np.repeat(classes, 2),
                           "sparsity": [0.5, 0.9] * 3,
                           "median_rel_change": [0, -0.3, -0.4, 0.0, 0.0, 0.0]})
    out = co.class_pair_table(curves, labels, classes).set_index(["class_a", "class_b"])
    ab = out.loc[("A", "B")]
    assert (ab.count_a, ab.count_b, ab.intersection, ab.union) == (3, 3, 2, 4)
    assert ab.iou == 0.5 and ab.dlogfreq == 0.0
    assert ab.fcd == pytest.approx(0.5)  # sqrt(0.4^2 + 0.3^2)
    ac = out.loc[("A", "C")]
    assert ac.iou == pytest.approx(1 / 4) and ac.dlogfreq == pytest.approx(math.log(3 / 2))


def test_class_without_test_positives_is_dropped_with_warning():
    curves, labels, classes = random_setup()
    labels[:, 3] = 0
    with pytest.warns(UserWarning, match="c3") as caught:
        out = co.class_pair_table(curves, labels, classes)
    assert under_mutmut() or caught[0].filename == __file__       # at the caller's line
    assert len(out) == 5 * 4 // 2
    assert "c3" not in set(out.class_a) | set(out.class_b)
    labels[:, 1:] = 0                         # one class left: no pair, but the same columns
    with pytest.warns(UserWarning, match="c5"):
        none = co.class_pair_table(curves, labels, classes)
    assert none.empty and list(none.columns) == list(out.columns) == [
        "class_a", "class_b", "count_a", "count_b", "fcd", "dlogfreq", "intersection", "union",
        "iou", "iou4"]


def test_class_pair_table_validates():
    curves, labels, classes = random_setup()
    with pytest.raises(ValueError, match="metric"):
        co.class_pair_table(curves, labels, classes, metric="l1")
    with pytest.raises(ValueError, match="labels must be"):
        co.class_pair_table(curves, labels[:, :3], classes)
    with pytest.raises(ValueError, match="no curve for class"):
        co.class_pair_table(curves, np.c_[labels, labels[:, :1]], classes + ["new"])


def test_fcd_ols_matches_lstsq():
    curves, labels, classes = random_setup(n_classes=9, n=500)
    pairs = co.class_pair_table(curves, labels, classes)
    out = co.fcd_ols(pairs)
    X = np.column_stack([np.ones(len(pairs)), pairs.dlogfreq, pairs.iou4,
                         pairs.dlogfreq * pairs.iou4])
    beta, *_ = np.linalg.lstsq(X, pairs.fcd.to_numpy(), rcond=None)
    resid = pairs.fcd.to_numpy() - X @ beta
    dof = len(pairs) - 4
    se = np.sqrt(np.diag(resid @ resid / dof * np.linalg.inv(X.T @ X)))
    assert list(out.term) == ["Intercept", "dlogfreq", "iou4", "dlogfreq:iou4"]
    np.testing.assert_allclose(out.coef, beta, rtol=1e-8)
    np.testing.assert_allclose(out.p, 2 * st.t.sf(np.abs(beta / se), dof), rtol=1e-6)
    assert out.attrs["n"] == len(pairs) == 36
    with pytest.raises(ValueError, match="at least 5"):
        co.fcd_ols(pairs.head(3))


def test_fcd_correlations_match_scipy():
    curves, labels, classes = random_setup(n_classes=8, n=400)
    pairs = co.class_pair_table(curves, labels, classes)
    out = co.fcd_correlations(pairs).set_index("x")
    for x in ("dlogfreq", "iou", "iou4"):
        assert out.loc[x, "r"] == pytest.approx(st.pearsonr(pairs[x], pairs.fcd).statistic)
        assert out.loc[x, "rho"] == pytest.approx(st.spearmanr(pairs[x], pairs.fcd).statistic)
        assert out.loc[x, "p_r"] == pytest.approx(st.pearsonr(pairs[x], pairs.fcd).pvalue)
    assert out.loc["iou", "rho"] == pytest.approx(out.loc["iou4", "rho"])
    assert list(co.fcd_correlations(pairs).index) == [0, 1, 2]


def test_class_pair_table_reads_the_method_asked_for_and_counts_in_integers():
    curves, labels, classes = random_setup()
    other = curves.assign(method="random", median_rel_change=curves["median_rel_change"] * 3)
    both = pd.concat([curves, other])
    got = co.class_pair_table(both, labels.astype(float), classes, method="random")
    expected = co.class_pair_table(other, labels, classes)
    pd.testing.assert_frame_equal(got, expected)
    assert got["intersection"].dtype.kind == "i" and got["union"].dtype.kind == "i"


def test_marked_pairs_from_highlight_or_the_papers_examples():
    """A list or a ';'-separated string of 'a|b' (spaces ignored), kept only where the pair
    table has the pair in either order; empty: the paper's examples this dataset has; a bad
    item names itself, the unknown classes and the dataset's classes."""
    classes = ["Emphysema", "Pneumomediastinum", "Infiltration", "Hernia", "Mass"]
    pairs = pd.DataFrame({"class_a": ["Pneumomediastinum", "Infiltration", "Mass"],
                          "class_b": ["Emphysema", "Mass", "Hernia"]})
    assert co.marked_pairs(pairs, "Mass | Infiltration; ;Hernia|Mass", classes) == [
        ("Mass", "Infiltration"), ("Hernia", "Mass")]
    assert co.marked_pairs(pairs, ["Emphysema|Hernia", "Mass|Hernia"], classes) == [
        ("Mass", "Hernia")]                                    # Emphysema|Hernia: not in the table
    assert co.marked_pairs(pairs, "", classes) == [("Emphysema", "Pneumomediastinum")]
    assert co.marked_pairs(pairs, [], classes) == co.marked_pairs(pairs, None, classes)
    assert co.marked_pairs(pairs, None, ["Mass", "Hernia", "Infiltration"]) == []
    for bad, unknown in (("Mass|Nodule", ["Nodule"]), ("Mass", []), ("Mass|Hernia|Infiltration", [])):
        with pytest.raises(ValueError) as caught:
            co.marked_pairs(pairs, [bad], classes)
        assert str(caught.value) == (
            f"parameter highlight: {bad!r} must be 'class a|class b' with classes of this "
            f"dataset; unknown: {unknown}; classes: {classes}")


@pytest.mark.parametrize("call", [co.fcd_ols, co.fcd_correlations, co.pair_matrices])
def test_a_pair_table_without_its_columns_is_named(call):
    with pytest.raises(ValueError) as caught:
        call(pd.DataFrame({"other": [1]}))
    assert str(caught.value).startswith("pair_table is missing column(s) [")


def test_fcd_defaults_to_euclidean_and_names_bad_curves_and_metrics():
    a, b = [0, 1, 2], [1, 1, 0]
    assert co.fcd(a, b) == co.fcd(a, b, "euclidean") == pytest.approx(math.sqrt(1 + 0 + 4))
    assert co.fcd(np.array(a, dtype=np.int64), b) == co.fcd(a, b)
    with pytest.raises(ValueError) as caught:
        co.fcd([0, 1], [0, 1, 2])
    assert str(caught.value) == "curves differ in length: (2,) vs (3,)"
    with pytest.raises(ValueError) as caught:
        co.fcd(a, b, "manhattan")
    assert str(caught.value) == f"metric must be one of {co.METRICS}, got 'manhattan'"


def test_fcd_ols_needs_five_defined_pairs_and_reads_integers_as_floats():
    tiny = pd.DataFrame({"fcd": [0.1, 0.4, 0.2, 0.9, 0.5, np.nan],
                         "dlogfreq": [0, 1, 2, 3, 4, 5], "iou4": [1, 0, 1, 0, 1, 1]})
    out = co.fcd_ols(tiny)                                   # exactly 5 defined pairs: fitted
    assert set(out["term"]) == {"Intercept", "dlogfreq", "iou4", "dlogfreq:iou4"}
    assert out.attrs["n"] == 5
    with pytest.raises(ValueError) as caught:
        co.fcd_ols(tiny.iloc[1:])
    assert str(caught.value) == ("fcd_ols needs at least 5 class pairs with defined values, "
                                 "got 4")


def test_pair_matrices_leave_out_classes_with_an_undefined_pair():
    """A NaN FCD for one pair drops both its classes; the others' matrices stay square, in
    first-appearance order, symmetric with a NaN diagonal, each entry the pair table's value."""
    curves, labels, classes = random_setup()
    pairs = co.class_pair_table(curves, labels, classes)
    pairs.loc[(pairs["class_a"] == "c1") & (pairs["class_b"] == "c3"), "fcd"] = np.nan
    kept, mats = co.pair_matrices(pairs)
    assert kept == ["c0", "c2", "c4", "c5"]
    lookup = {frozenset((r["class_a"], r["class_b"])): r for _, r in pairs.iterrows()}
    for name in ("fcd", "dlogfreq", "iou4"):
        assert mats[name].shape == (4, 4)
        for i, a in enumerate(kept):
            for j, b in enumerate(kept):
                want = np.nan if a == b else lookup[frozenset((a, b))][name]
                np.testing.assert_equal(mats[name][i, j], want)
