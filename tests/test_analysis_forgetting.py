"""Q2 (prunecxr.analysis.forgetting) against plain Python loops and scipy."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from sklearn.metrics import average_precision_score

from prunecxr.analysis import forgetting

KS = [0.0, 0.3, 0.6, 0.9]


def make_ap_table(seeds=(0, 1, 2), n=60, n_classes=3, rng_seed=0):
    """AP of random predictions by scikit-learn; class c2 has no test positives (AP NaN)."""
    rng = np.random.default_rng(rng_seed)
    y = (rng.uniform(size=(n, n_classes)) < 0.3).astype(int)
    y[:, 2] = 0
    rows = []
    for seed in seeds:
        base = rng.normal(size=(n, n_classes))
        for k in KS:
            s = y * (1 - k) * 2 + base + rng.normal(0, 0.5, base.shape)
            for c in range(n_classes):
                ap = np.nan if y[:, c].sum() == 0 else average_precision_score(y[:, c], s[:, c])
                rows.append(("l1", seed, k, f"c{c}", ap))
    return pd.DataFrame(rows, columns=["method", "seed", "sparsity", "class", "ap"])


def test_relative_change_matches_loop():
    ap = make_ap_table()
    rel = forgetting.relative_change(ap)
    lookup = {(r.seed, r.sparsity, r._4): r.ap for r in ap.itertuples()}
    for r in rel.itertuples():
        ap0 = lookup[(r.seed, 0.0, r._4)]
        if math.isnan(ap0):
            assert math.isnan(r.rel_change)
        else:
            assert r.rel_change == pytest.approx((r.ap - ap0) / ap0)
            assert r.ap0 == ap0
    assert list(rel.columns) == ["method", "seed", "sparsity", "class", "ap", "ap0", "rel_change"]
    assert (rel.loc[rel.sparsity == 0, "rel_change"].dropna() == 0).all()


def test_relative_change_ap0_zero_is_nan_not_inf():
    ap = pd.DataFrame({"method": "l1", "seed": 0, "sparsity": [0.0, 0.5, 0.0, 0.5],
                       "class": ["a", "a", "b", "b"], "ap": [0.0, 0.3, 0.4, 0.1]})
    rel = forgetting.relative_change(ap).set_index(["class", "sparsity"])["rel_change"]
    assert np.isnan(rel[("a", 0.5)]) and not np.isinf(rel).any()
    assert rel[("b", 0.5)] == pytest.approx(-0.75)


def test_relative_change_uses_shared_dense_when_method_has_none():
    ap = pd.DataFrame({"method": ["l1", "l1", "random"], "seed": 0, "sparsity": [0.0, 0.5, 0.5],
                       "class": "a", "ap": [0.4, 0.2, 0.1]})
    rel = forgetting.relative_change(ap)
    assert rel.loc[rel.method == "random", "rel_change"].iloc[0] == pytest.approx(-0.75)


def test_relative_change_keeps_every_row_once_and_needs_a_dense_row():
    """Two methods with their own dense rows: each row once, in the table's order, against its
    own method's AP_0; a method without one takes the seed's first dense AP; a seed with no
    dense model at all keeps its rows with AP_0 and the change NaN. No dense row anywhere is
    an error that says so."""
    rows = [("l1", 0, 0.0, "a", 0.4), ("ft", 0, 0.0, "a", 0.5), ("l1", 0, 0.5, "a", 0.2),
            ("ft", 0, 0.5, "a", 0.25), ("random", 0, 0.5, "a", 0.1), ("l1", 1, 0.5, "a", 0.3),
            ("random", 1, 0.5, "a", 0.2)]
    ap = pd.DataFrame(rows, columns=["method", "seed", "sparsity", "class", "ap"])
    rel = forgetting.relative_change(ap)
    pd.testing.assert_frame_equal(rel[list(ap.columns)], ap)
    expected_ap0 = [0.4, 0.5, 0.4, 0.5, 0.4, np.nan, np.nan]
    assert rel["ap0"].tolist() == pytest.approx(expected_ap0, nan_ok=True)
    expected = [(r[4] - a0) / a0 for r, a0 in zip(rows, expected_ap0)]
    assert rel["rel_change"].tolist() == pytest.approx(expected, nan_ok=True)
    with pytest.raises(ValueError, match=r"^ap_table has no dense \(sparsity 0\) rows; "
                                         r"relative change needs AP_0$"):
        forgetting.relative_change(ap[ap["sparsity"] > 0])


def test_forgettability_curves_are_seed_medians_excluding_k0():
    ap = make_ap_table(seeds=(0, 1, 2, 3))
    rel = forgetting.relative_change(ap)
    curves = forgetting.forgettability_curves(ap)
    pd.testing.assert_frame_equal(curves, forgetting.forgettability_curves(rel))
    assert sorted(curves["sparsity"].unique()) == KS[1:]
    assert list(pd.unique(curves["class"])) == ["c0", "c1", "c2"]
    for r in curves.itertuples():
        vals = [x.rel_change for x in rel.itertuples()
                if x._4 == r._2 and x.sparsity == r.sparsity and not math.isnan(x.rel_change)]
        if vals:
            assert r.median_rel_change == pytest.approx(statistics.median(vals))
        else:
            assert math.isnan(r.median_rel_change)
        assert r.n_seeds == len(vals)


def hand_curves():
    ks = [0.25, 0.5, 0.75, 0.95]
    values = {"common": [0.0, -0.05, -0.1, -0.15],   # never drops 20%
              "mid": [-0.05, -0.2, -0.5, -0.7],       # exactly -0.2 counts as a drop
              "rare": [-0.3, -0.6, -0.9, -0.99],
              "rarer": [-0.1, -0.4, -0.95, -1.0],
              "empty": [np.nan] * 4}                   # no test positives
    rows = [("l1", c, k, v) for c, vs in values.items() for k, v in zip(ks, vs)]
    return pd.DataFrame(rows, columns=["method", "class", "sparsity", "median_rel_change"])


def test_forgetting_summary_hand_case_and_correlations():
    counts = pd.Series({"common": 5000, "mid": 800, "rare": 50, "rarer": 20, "empty": 10})
    per_class, corr = forgetting.forgetting_summary(hand_curves(), counts)
    pc = per_class.set_index("class")
    assert np.isnan(pc.loc["common", "first_drop"]) and not pc.loc["common", "dropped"]
    assert pc.loc["mid", "first_drop"] == 0.5
    assert pc.loc["rare", "first_drop"] == 0.25
    assert pc.loc["rarer", "first_drop"] == 0.5
    assert pc.loc["rare", "final_change"] == -0.99
    assert pc.loc["common", "log_train_count"] == pytest.approx(math.log(5000))
    assert per_class.attrs["final_sparsity"] == 0.95

    c = corr.set_index("outcome")
    # first_drop: common (never) and empty (NaN) are dropped -> mid, rare, rarer
    x = [math.log(800), math.log(50), math.log(20)]
    assert c.loc["first_drop", "n"] == 3
    assert c.loc["first_drop", "r"] == pytest.approx(st.pearsonr(x, [0.5, 0.25, 0.5]).statistic)
    x4 = [math.log(n) for n in (5000, 800, 50, 20)]
    y4 = [-0.15, -0.7, -0.99, -1.0]
    assert c.loc["final_change", "n"] == 4
    assert c.loc["final_change", "r"] == pytest.approx(st.pearsonr(x4, y4).statistic)
    assert c.loc["final_change", "rho"] == pytest.approx(st.spearmanr(x4, y4).statistic)
    assert c.loc["final_change", "p_rho"] == pytest.approx(st.spearmanr(x4, y4).pvalue)


def test_forgetting_summary_threshold_and_errors():
    counts = pd.Series({"common": 5000, "mid": 800, "rare": 50, "rarer": 20, "empty": 10})
    pc, _ = forgetting.forgetting_summary(hand_curves(), counts, threshold=-0.1)
    assert pc.set_index("class").loc["common", "first_drop"] == 0.75
    # Two methods with different curves: each summary must come from its own method's curves.
    rand = hand_curves().assign(method="random")
    rand["median_rel_change"] = (rand["median_rel_change"] * 0.5).where(rand["class"] != "common",
                                                                        -0.5)
    two = pd.concat([hand_curves(), rand])
    with pytest.raises(ValueError, match="method="):
        forgetting.forgetting_summary(two, counts)
    pc_l1, corr_l1 = forgetting.forgetting_summary(two, counts, method="l1")
    pc_rand, corr_rand = forgetting.forgetting_summary(two, counts, method="random")
    pc_l1, pc_rand = pc_l1.set_index("class"), pc_rand.set_index("class")
    alone = forgetting.forgetting_summary(hand_curves(), counts)[0].set_index("class")
    pd.testing.assert_frame_equal(pc_l1, alone)
    # random: common at -0.5 from the start; mid halves to -0.1, -0.25 (first drop at 0.75)
    assert pc_rand.loc["common", "first_drop"] == 0.25 and pc_rand.loc["common", "dropped"]
    assert pc_rand.loc["mid", "first_drop"] == 0.75 and pc_l1.loc["mid", "first_drop"] == 0.5
    assert pc_rand.loc["rare", "final_change"] == pytest.approx(-0.495)
    assert pc_rand.loc["common", "final_change"] == -0.5
    x4 = [math.log(n) for n in (5000, 800, 50, 20)]
    assert corr_rand.set_index("outcome").loc["final_change", "r"] == pytest.approx(
        st.pearsonr(x4, [-0.5, -0.35, -0.495, -0.5]).statistic)
    assert corr_l1.set_index("outcome").loc["final_change", "r"] == pytest.approx(
        st.pearsonr(x4, [-0.15, -0.7, -0.99, -1.0]).statistic)
    with pytest.raises(ValueError, match="train_counts has no count"):
        forgetting.forgetting_summary(hand_curves(), counts.drop("mid"))


def test_forgetting_summary_zero_and_one_training_images_and_attrs():
    """ln(1) = 0 is a real value, a zero count has no logarithm (NaN, not -inf), and the
    threshold used is recorded."""
    counts = pd.Series({"common": 1, "mid": 0, "rare": 50, "rarer": 20, "empty": 10})
    per_class, _ = forgetting.forgetting_summary(hand_curves(), counts, threshold=-0.3)
    assert per_class.attrs == {"final_sparsity": 0.95, "threshold": -0.3}
    pc = per_class.set_index("class")
    assert pc.loc["common", "log_train_count"] == 0.0 and pc.loc["common", "train_count"] == 1
    assert np.isnan(pc.loc["mid", "log_train_count"]) and pc.loc["mid", "train_count"] == 0
    assert pc.loc["rare", "log_train_count"] == pytest.approx(math.log(50))
    assert pc.loc["mid", "first_drop"] == 0.75  # -0.5 is the first at or below -0.3


@pytest.mark.parametrize("call, name", [
    (lambda f: forgetting.relative_change(f), "ap_table"),
    (lambda f: forgetting.forgettability_curves(f.assign(rel_change=1.0)), "table"),
    (lambda f: forgetting.curve_matrix(f), "curves"),
])
def test_a_table_without_its_columns_is_named(call, name):
    with pytest.raises(ValueError) as caught:
        call(pd.DataFrame({"other": [1]}))
    assert str(caught.value).startswith(f"{name} is missing column(s) [")


def test_forgettability_curves_order_rows_by_method_class_then_sparsity():
    """Rows come by method, then class in order of first appearance in the table, then
    sparsity ascending, whatever order the table's rows come in."""
    ap = pd.concat([make_ap_table(seeds=(0, 1)),
                    make_ap_table(seeds=(0, 1)).assign(method="random")])
    ap["class"] = ap["class"].map({"c0": "zeta", "c1": "alpha", "c2": "mu"})
    shuffled = ap.sample(frac=1, random_state=3).reset_index(drop=True)
    curves = forgetting.forgettability_curves(shuffled)
    order = list(pd.unique(shuffled["class"]))
    expected = [(m, c, k) for m in ("l1", "random") for c in order for k in KS[1:]]
    assert list(curves[["method", "class", "sparsity"]].itertuples(index=False, name=None)) == (
        expected)
    assert curves.index.tolist() == list(range(len(expected)))


def test_forgetting_summary_types_columns_and_index():
    """train_counts must be a Series (the error names it); integer counts come back as floats
    like their logarithm; the correlation table is indexed 0, 1 (one row per outcome)."""
    counts = pd.Series({"common": 5000, "mid": 800, "rare": 50, "rarer": 20, "empty": 10})
    with pytest.raises(TypeError, match="^train_counts must be a pandas Series"):
        forgetting.forgetting_summary(hand_curves(), counts.to_dict())
    per_class, corr = forgetting.forgetting_summary(hand_curves(), counts)
    assert per_class["train_count"].dtype == np.float64
    assert per_class["train_count"].tolist() == [5000.0, 800.0, 50.0, 20.0, 10.0]
    assert corr.index.tolist() == [0, 1]
    assert corr["outcome"].tolist() == ["first_drop", "final_change"]


# ------------------------------------------------------------------ chance-corrected change

# class: (prevalence, AP_0, AP at k = 0.5); the edges of the correction and of its floor
CHANCE_CASES = {"plain": (0.2, 0.6, 0.3), "at_chance": (0.25, 0.25, 0.1),
                "below": (0.3, 0.1, 0.05), "zero_ap0": (0.1, 0.0, 0.2),
                "one_ap0": (0.5, 1.0, 0.5), "nan_pi": (np.nan, 0.4, 0.3),
                "no_pos": (0.0, np.nan, np.nan)}


def test_chance_corrected_change_columns_match_a_direct_computation():
    """prevalence, chance_floor = (pi - AP_0) / AP_0 and cc_change = (AP - pi) / (AP_0 - pi) - 1,
    row by row against plain Python: cc_change only where AP_0 > pi (NaN at AP_0 = pi, never
    inf), the floor NaN where AP_0 is 0 or NaN or pi is NaN (defined at AP_0 = 1); all float64."""
    table = pd.DataFrame([("l1", 0, k, c, ap) for c, (_, ap0, ap) in CHANCE_CASES.items()
                          for k, ap in ((0.0, ap0), (0.5, ap))],
                         columns=["method", "seed", "sparsity", "class", "ap"])
    prevalence = pd.Series({c: v[0] for c, v in CHANCE_CASES.items()} | {"unused": 0.4})
    out = forgetting.chance_corrected_change(table, prevalence)
    pd.testing.assert_frame_equal(out.iloc[:, :7], forgetting.relative_change(table))
    assert list(out.columns[7:]) == ["prevalence", "chance_floor", "cc_change"]
    assert (out.dtypes.iloc[7:] == np.float64).all()

    def direct(pi, ap0, ap):
        ok = not (math.isnan(pi) or math.isnan(ap0))
        floor = (pi - ap0) / ap0 if ok and ap0 != 0 else math.nan
        return floor, (ap - pi) / (ap0 - pi) - 1 if ok and ap0 > pi else math.nan

    for r in out.itertuples():
        pi, ap0, _ = CHANCE_CASES[r._4]
        assert r.prevalence == pi or math.isnan(pi) and math.isnan(r.prevalence)
        expected = direct(pi, ap0, r.ap)
        assert (r.chance_floor, r.cc_change) == pytest.approx(expected, nan_ok=True), r._4
    by = out.set_index(["class", "sparsity"])
    assert by.loc[("one_ap0", 0.5), "chance_floor"] == -0.5  # AP_0 = 1 has a floor
    assert by.loc[("one_ap0", 0.5), "cc_change"] == -1.0
    assert by.loc[("below", 0.5), "chance_floor"] == pytest.approx(2.0)


def test_chance_corrected_change_argument_errors_name_prevalence():
    table = pd.DataFrame({"method": "l1", "seed": 0, "sparsity": [0.0, 0.5],
                          "class": "a", "ap": [0.6, 0.3]})
    with pytest.raises(TypeError, match="^prevalence must be a pandas Series indexed by class"):
        forgetting.chance_corrected_change(table, {"a": 0.2})
    with pytest.raises(ValueError, match=r"^prevalence has no value for class\(es\) \['a'\]"):
        forgetting.chance_corrected_change(table, pd.Series({"b": 0.2}))


# ------------------------------------------------------------------ curve matrix

def test_curve_matrix_follows_classes_and_names_what_is_missing():
    """Rows in the order of ``classes`` (first appearance without it), sparsity columns
    ascending; a class with no curve, or an unselected method, is an error naming ``curves``."""
    curves = hand_curves()
    mat = forgetting.curve_matrix(curves.iloc[::-1], classes=["rare", "empty", "common"])
    assert mat.index.tolist() == ["rare", "empty", "common"]
    assert mat.columns.tolist() == [0.25, 0.5, 0.75, 0.95]
    assert mat.loc["rare"].tolist() == [-0.3, -0.6, -0.9, -0.99]
    assert mat.loc["empty"].isna().all()
    assert forgetting.curve_matrix(curves).index.tolist() == [
        "common", "mid", "rare", "rarer", "empty"]
    with pytest.raises(ValueError, match=r"^curves has no curve for class\(es\) \['nope'\]$"):
        forgetting.curve_matrix(curves, classes=["common", "nope"])
    two = pd.concat([curves, curves.assign(method="random")])
    with pytest.raises(ValueError, match=r"^curves holds methods \['l1', 'random'\]"):
        forgetting.curve_matrix(two)
    with pytest.raises(ValueError, match="^method 'x' not in curves;"):
        forgetting.curve_matrix(two, method="x")
