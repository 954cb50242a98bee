"""Q1 (prunecxr.analysis.overall) against loops, scipy, statsmodels and scikit-learn's AP."""

import statistics
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from sklearn.metrics import average_precision_score
from statsmodels.stats.multitest import multipletests

from prunecxr.analysis import overall

SPARSITIES = [0.0, 0.25, 0.5, 0.75]


def make_ap_table(seeds=(0, 1, 2, 3), n=80, n_classes=4, empty_class=None, rng_seed=0):
    """AP of random predictions that lose signal as sparsity grows, by scikit-learn.

    ``empty_class`` (an index) has no test positives: AP NaN, as the store reports it.
    """
    rng = np.random.default_rng(rng_seed)
    y = (rng.uniform(size=(n, n_classes)) < 0.3).astype(int)
    if empty_class is not None:
        y[:, empty_class] = 0
    rows = []
    for method in ("l1", "random"):
        for seed in seeds:
            signal = rng.normal(size=(n, n_classes))
            for k in SPARSITIES:
                scores = y * (1 - k) * 2 + signal + rng.normal(0, 0.3, (n, n_classes))
                for c in range(n_classes):
                    ap = (np.nan if y[:, c].sum() == 0
                          else average_precision_score(y[:, c], scores[:, c]))
                    rows.append((method, seed, k, f"c{c}", ap))
    return pd.DataFrame(rows, columns=["method", "seed", "sparsity", "class", "ap"])


def test_map_per_model_is_nanmean_over_classes_and_warns_once():
    ap = make_ap_table(empty_class=2)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        maps = overall.map_per_model(ap)
    assert len([w for w in rec if "excludes 1 class" in str(w.message)]) == 1
    assert "c2" in str(rec[0].message)
    for (m, s, k), grp in ap.groupby(["method", "seed", "sparsity"]):
        vals = [v for v in grp["ap"] if not np.isnan(v)]
        row = maps[(maps.method == m) & (maps.seed == s) & (maps.sparsity == k)].iloc[0]
        assert row["map"] == pytest.approx(sum(vals) / len(vals))
        assert row["n_classes"] == 3
    assert len(maps) == 2 * 4 * len(SPARSITIES)


def test_overall_map_median_and_iqr_over_seeds():
    ap = make_ap_table()
    maps = overall.map_per_model(ap)
    out = overall.overall_map(ap)
    pd.testing.assert_frame_equal(out, overall.overall_map(maps))  # both inputs accepted
    for _, row in out.iterrows():
        v = maps[(maps.method == row.method) & (maps.sparsity == row.sparsity)]["map"].to_numpy()
        assert row["median"] == pytest.approx(np.median(v))
        assert row["q25"] == pytest.approx(np.percentile(v, 25))
        assert row["q75"] == pytest.approx(np.percentile(v, 75))
        assert row["n"] == 4


def test_welch_by_sparsity_matches_scipy_and_statsmodels_holm():
    ap = make_ap_table(seeds=range(6))
    maps = overall.map_per_model(ap)
    out = overall.welch_by_sparsity(ap, alpha=0.01)
    l1 = maps[maps.method == "l1"]
    dense = l1[l1.sparsity == 0]["map"].to_numpy()
    assert list(out["sparsity"]) == SPARSITIES[1:]
    for _, row in out.iterrows():
        sparse = l1[l1.sparsity == row.sparsity]["map"].to_numpy()
        ref = st.ttest_ind(dense, sparse, equal_var=False)
        assert row.t == pytest.approx(ref.statistic) and row.p == pytest.approx(ref.pvalue)
        assert row.mean_dense == pytest.approx(dense.mean())
        assert row.mean_sparse == pytest.approx(sparse.mean())
    np.testing.assert_allclose(out["p_holm"], multipletests(out["p"], method="holm")[1])
    assert (out["significant"] == (out["p"] < 0.01)).all()
    holm = overall.welch_by_sparsity(ap, alpha=0.01, adjust="holm")
    assert (holm["significant"] == (holm["p_holm"] < 0.01)).all()
    assert out.attrs == {"alpha": 0.01, "adjust": None}
    with pytest.raises(ValueError, match="adjust"):
        overall.welch_by_sparsity(ap, adjust="bonferroni")
    with pytest.raises(ValueError, match="method 'snip'"):
        overall.welch_by_sparsity(ap, method="snip")


def test_welch_by_sparsity_one_seed_needs_two():
    """A population of one seed: Welch's test is undefined and the error says so."""
    ap = make_ap_table(seeds=(0,))
    with pytest.raises(ValueError, match="at least two seeds"):
        overall.welch_by_sparsity(ap)
    assert overall.overall_map(ap)["n"].eq(1).all()  # the summary itself still works


def test_first_significant_drop_ignores_increases_and_respects_p_column():
    t = pd.DataFrame({"sparsity": [0.1, 0.2, 0.3, 0.4], "mean_dense": [0.5] * 4,
                      "mean_sparse": [0.49, 0.6, 0.4, 0.3], "p": [0.01, 1e-5, 5e-4, 1e-6],
                      "p_holm": [0.03, 4e-5, 1.5e-3, 4e-6]})
    assert overall.first_significant_drop(t, alpha=0.001) == 0.3  # 0.2 is an increase
    assert overall.first_significant_drop(t, use="p_holm", alpha=0.001) == 0.4
    assert np.isnan(overall.first_significant_drop(t, alpha=1e-9))
    t.attrs["alpha"] = 0.05
    assert overall.first_significant_drop(t) == 0.1
    with pytest.raises(ValueError, match="use"):
        overall.first_significant_drop(t, use="q")


def test_first_significant_drop_end_to_end():
    ap = make_ap_table(seeds=range(8))
    w = overall.welch_by_sparsity(ap, alpha=0.001)
    first = overall.first_significant_drop(w)
    hits = [r.sparsity for r in w.itertuples() if r.p < 0.001 and r.mean_sparse < r.mean_dense]
    assert hits, "the fixture loses signal with k, so some sparsity must drop"
    assert first == min(hits)


def test_weight_magnitudes_hand_case():
    w = np.array([0.0, 0.001, -0.005, 0.02, -0.5, 3.0])
    h = overall.weight_magnitudes(w, bins=np.array([-3.0, -2.0, -1.0, 0.0, 1.0]))
    assert list(h["count"]) == [2, 1, 1, 1]
    np.testing.assert_allclose(h["fraction"], np.array([2, 1, 1, 1]) / 6)
    np.testing.assert_allclose(h["left"], [0.001, 0.01, 0.1, 1.0])
    assert h.attrs["n_zero"] == 1 and h.attrs["n"] == 6
    assert overall.fraction_below(w, 0.01) == pytest.approx(3 / 6)


def test_weight_magnitudes_random_counts_every_nonzero_weight():
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.02, 5000)
    w[:100] = 0
    h = overall.weight_magnitudes(w, bins=40)
    assert h["count"].sum() == 4900 and len(h) == 40
    assert h["log10_left"].iloc[0] <= np.log10(np.abs(w[100:]).min())
    assert overall.fraction_below(w, 0.01) == pytest.approx(
        sum(abs(x) < 0.01 for x in w) / len(w))
    with pytest.raises(ValueError, match="empty"):
        overall.fraction_below([])


def test_messages_name_the_table_the_caller_passed():
    maps = pd.DataFrame({"method": ["l1"], "seed": [0], "map": [0.5]})
    with pytest.raises(ValueError) as caught:
        overall.overall_map(maps)
    assert str(caught.value) == ("table is missing column(s) ['sparsity']; it has "
                                 "['method', 'seed', 'map']")
    with pytest.raises(ValueError) as caught:
        overall.method_difference(maps.assign(sparsity=0.0), "random", "l1", 0.5)
    assert str(caught.value) == "method 'random' not in maps; available: ['l1']"


def test_weight_magnitudes_columns_default_bins_and_edges():
    """Every column against its definition; 60 bins by default spanning whole decades; all
    zeros or one magnitude still give a decade; bad input named."""
    w = np.array([0.0, 0.003, -0.04, 0.5], dtype=np.float32)
    h = overall.weight_magnitudes(w)
    assert len(h) == 60 and list(h.columns) == ["log10_left", "log10_right", "left", "right",
                                                "count", "fraction"]
    assert (h["log10_left"].iloc[0], h["log10_right"].iloc[-1]) == (-3.0, 0.0)
    np.testing.assert_allclose(h["right"], 10 ** h["log10_right"])
    np.testing.assert_allclose(h["log10_right"][:-1], h["log10_left"][1:])
    assert h["count"].sum() == 3 and h["fraction"].sum() == pytest.approx(3 / 4)
    one = overall.weight_magnitudes([0.01, -0.01], bins=4)          # lo == hi: one decade
    assert (one["log10_left"].iloc[0], one["log10_right"].iloc[-1]) == (-2.0, -1.0)
    zeros = overall.weight_magnitudes(np.zeros(5), bins=2)         # no logarithm at all
    assert list(zeros["log10_left"]) == [-1.0, -0.5] and zeros["count"].sum() == 0
    assert zeros.attrs == {"n": 5, "n_zero": 5}
    assert len(overall.weight_magnitudes(w, bins=1)) == 1
    assert overall.weight_magnitudes(w, bins=[-3, -1, 0])["log10_left"].dtype == float
    for bad, message in (([], "weights is empty"), ([0.1, np.nan], "weights contains NaN or inf")):
        with pytest.raises(ValueError) as caught:
            overall.weight_magnitudes(bad)
        assert str(caught.value) == message
    with pytest.raises(ValueError) as caught:
        overall.weight_magnitudes(w, bins=0)
    assert str(caught.value) == "bins must be a positive integer or an array of edges, got 0"
    assert overall.weight_magnitudes([0.5]).attrs == {"n": 1, "n_zero": 0}   # one weight


def test_welch_by_sparsity_edges_two_seeds_shuffled_rows_and_alpha_bounds():
    """Two seeds per group is enough; rows in any order give levels in ascending order with
    the group sizes; alpha must lie strictly inside (0, 1)."""
    ap = make_ap_table(seeds=(0, 1)).sample(frac=1, random_state=1)
    out = overall.welch_by_sparsity(ap, alpha=0.05)
    maps = overall.map_per_model(ap)
    l1 = maps[maps.method == "l1"]
    assert list(out["sparsity"]) == SPARSITIES[1:]
    assert out["method"].eq("l1").all() and out["n_dense"].eq(2).all() and out["n_sparse"].eq(2).all()
    dense = l1[l1.sparsity == 0]["map"].to_numpy()
    for _, row in out.iterrows():
        sparse = l1[l1.sparsity == row.sparsity]["map"].to_numpy()
        ref = st.ttest_ind(dense, sparse, equal_var=False)
        assert row["diff"] == pytest.approx(sparse.mean() - dense.mean())
        assert row.df == pytest.approx(ref.df) and row.p == pytest.approx(ref.pvalue)
    for alpha in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
            overall.welch_by_sparsity(ap, alpha=alpha)


def test_first_drops_per_method_leaves_out_those_without_enough_seeds():
    """Each method's first significant drop from its own Welch table at the caller's alpha; a
    method the table lacks, or one with a single seed, is left out."""
    maps = overall.map_per_model(make_ap_table(seeds=(0, 1, 2, 3, 4, 5)))
    one = maps[(maps.seed == 0) & (maps.method == "l1")].assign(method="single")
    both = pd.concat([maps, one])
    for alpha in (0.001, 0.2):
        drops = overall.first_drops(both, ["absent", "l1", "single", "random"], alpha=alpha)
        assert list(drops) == ["l1", "random"]      # a left-out method does not stop the rest
        for m in ("l1", "random"):
            direct = overall.first_significant_drop(
                overall.welch_by_sparsity(both, alpha=alpha, method=m))
            assert drops[m] == direct or (np.isnan(drops[m]) and np.isnan(direct))
    assert overall.first_drops(both, ["random"]) == {"random": overall.first_significant_drop(
        overall.welch_by_sparsity(both, alpha=0.001, method="random"))}


@pytest.mark.parametrize("call, name", [
    (lambda f: overall.select_method(f, None, "maps"), "maps"),
    (lambda f: overall.map_per_model(f), "ap_table"),
    (lambda f: overall.overall_map(f.assign(map=1.0)), "table"),
    (lambda f: overall.first_significant_drop(f), "welch_table"),
])
def test_a_table_without_its_columns_is_named(call, name):
    with pytest.raises(ValueError) as caught:
        call(pd.DataFrame({"other": [1]}))
    assert str(caught.value).startswith(f"{name} is missing column(s) [")


def test_fraction_below_default_bound_edges_and_float32_weights():
    """The default bound is 0.01; |w| equal to it is not below; a float32 weight is compared in
    float64 (float32(0.01) is 0.0099999998, below 0.01, which a float32 comparison, reading
    0.01 as float32(0.01), would miss); an empty input is named."""
    w = np.array([0.01, -0.01, 0.0099, 0.5, -0.002])
    assert overall.fraction_below(w) == overall.fraction_below(w, 0.01) == 2 / 5
    assert overall.fraction_below(w, 0.5) == 4 / 5
    w32 = np.array([0.01, -0.01, 0.02, 0.5], dtype=np.float32)
    assert overall.fraction_below(w32) == 2 / 4
    with pytest.raises(ValueError, match="^weights is empty$"):
        overall.fraction_below(np.array([], dtype=np.float32))


def test_fraction_below_sd_measures_float32_layers_in_float64():
    """A float32 weight just under its layer's bound (fraction x SD, in float64: the largest
    float32 below it) counts as below, as an exact loop (statistics.pstdev) says; in float32
    arithmetic the bound rounds onto the weight and it would not."""
    w = np.random.default_rng(0).normal(size=9).astype(np.float32)
    for _ in range(4):          # w[0] settles on the largest float32 below its layer's bound
        bound = overall.SD_FRACTION * w.astype(np.float64).std()
        w[0] = np.float32(bound)
        if float(w[0]) >= bound:
            w[0] = np.nextafter(w[0], np.float32(0))
    x = [float(v) for v in w]
    bound = overall.SD_FRACTION * statistics.pstdev(x)
    assert abs(x[0]) < bound and (bound - abs(x[0])) / bound > 1e-9   # clear of float64 noise
    assert overall.fraction_below_sd([w]) == sum(abs(v) < bound for v in x) / len(x)
