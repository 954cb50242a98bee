"""Q1 (prunecxr.analysis.overall) against loops, scipy, statsmodels and scikit-learn's AP."""

import statistics
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from sklearn.metrics import average_precision_score
from statsmodels.stats.multitest import multipletests

from ci import under_mutmut
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


def _maps(rows):
    """A map_per_model-style table of method l1 from (seed, sparsity, map) triples, in order."""
    return pd.DataFrame([("l1", s, k, m) for s, k, m in rows],
                        columns=["method", "seed", "sparsity", "map"])


def test_welch_by_sparsity_sorts_levels_and_switches_p_column_with_adjust():
    """Levels come out in ascending order whatever the rows' order (a map table is used as
    given); ``significant`` reads the unadjusted P by default and Holm's with adjust="holm",
    here at an alpha between the smallest P and its Holm value, so the two disagree; a P equal
    to alpha is not below it."""
    rng = np.random.default_rng(3)
    dense = [(s, 0.0, 0.5 + 0.01 * rng.standard_normal()) for s in range(4)]
    levels = {0.75: -0.02, 0.25: 0.0, 0.5: -0.01}          # rows of 0.75 first
    sparse = [(s, k, 0.5 + d + 0.01 * rng.standard_normal()) for k, d in levels.items()
              for s in range(4)]
    maps = _maps(sparse + dense)
    plain = overall.welch_by_sparsity(maps, alpha=0.5)
    assert list(plain["sparsity"]) == [0.25, 0.5, 0.75]
    for _, row in plain.iterrows():
        s = maps[np.isclose(maps.sparsity, row.sparsity)]["map"]
        assert row.p == pytest.approx(st.ttest_ind([m for _, _, m in dense], s,
                                                   equal_var=False).pvalue)
    p_min = plain["p"].min()
    alpha = (p_min + plain["p_holm"].min()) / 2     # Holm's smallest is 3 x the smallest P
    assert p_min < alpha < 1
    for adjust, column in ((None, "p"), ("holm", "p_holm")):
        out = overall.welch_by_sparsity(maps, alpha=alpha, adjust=adjust)
        assert list(out["significant"]) == list(out[column] < alpha)
        assert out.attrs == {"alpha": alpha, "adjust": adjust}
    assert overall.welch_by_sparsity(maps, alpha=alpha)["significant"].any()
    assert not overall.welch_by_sparsity(maps, alpha=alpha, adjust="holm")["significant"].any()
    assert not overall.welch_by_sparsity(maps, alpha=p_min)["significant"].any()   # P = alpha


def test_first_significant_drop_default_alpha_and_strict_edges():
    """Without ``alpha`` or a recorded one the bound is 0.001; a P equal to alpha is not below
    it, and a level whose mean equals the dense mean is no drop, however small its P."""
    t = pd.DataFrame({"sparsity": [0.1, 0.2, 0.3, 0.4], "mean_dense": [0.5] * 4,
                      "mean_sparse": [0.4, 0.5, 0.45, 0.3], "p": [0.01, 1e-9, 5e-4, 1e-6]})
    assert not t.attrs
    assert overall.first_significant_drop(t) == 0.3        # 0.01 is not below 0.001
    assert overall.first_significant_drop(t, alpha=0.05) == 0.1
    assert overall.first_significant_drop(t, alpha=5e-4) == 0.4   # P = alpha is not below it
    assert np.isnan(overall.first_significant_drop(t.assign(mean_sparse=0.5), alpha=0.05))


def test_level_at_least_tolerance_is_inclusive():
    """A level at the target, or below it by the tolerance (1e-9) or less, counts as reached."""
    assert overall.level_at_least([0.0, 0.5], 1e-9) == 0.0
    assert overall.level_at_least([0.7 - 0.4, 0.5], 0.3) == 0.7 - 0.4     # 0.29999999999999993
    assert overall.level_at_least([0.0, 0.5], 2e-9) == 0.5
    assert np.isnan(overall.level_at_least([0.0, 0.5], 0.6))


def test_interval_text_whole():
    """The estimate and its interval as signed percentages with the confidence; the estimate
    alone without an interval; "n/a" for an undefined number."""
    assert overall.interval_text(-0.123, -0.201, -0.045) == "-12.3% (95% CI -20.1% to -4.5%)"
    assert overall.interval_text(0.05, 0.01, 0.2, 0.9) == "+5.0% (90% CI +1.0% to +20.0%)"
    assert (overall.interval_text(0.05, np.nan, np.nan)
            == "+5.0% (no interval: fewer than two seeds)")
    assert (overall.interval_text(np.nan, np.nan, np.nan)
            == "n/a (no interval: fewer than two seeds)")
    assert overall.interval_text(-0.5, -0.9, np.inf) == "-50.0% (95% CI -90.0% to n/a)"


def _paired_maps(n_seeds=4, effects=None, rng_seed=5):
    """Dense mAP per seed and, per level, the same seed's model changed by ``effect`` (a
    relative change) plus noise: a map table of method l1, dense rows last."""
    rng = np.random.default_rng(rng_seed)
    dense = 0.5 + 0.05 * rng.standard_normal(n_seeds)
    effects = {0.25: 0.1, 0.5: -0.05, 0.75: -0.2} if effects is None else effects
    rows = [(s, k, dense[s] * (1 + e + 0.01 * rng.standard_normal()))
            for k, e in effects.items() for s in range(n_seeds)]
    return _maps(rows + [(s, 0.0, dense[s]) for s in range(n_seeds)])


def _paired_by_hand(maps, k, confidence):
    """(P of the paired t-test, t-interval of the relative change) at level k, from scipy."""
    wide = maps.pivot(index="seed", columns="sparsity", values="map")
    d, s = wide[0.0].to_numpy(), wide[k].to_numpy()
    rel = s / d - 1
    half = st.t.ppf((1 + confidence) / 2, len(rel) - 1) * rel.std(ddof=1) / np.sqrt(len(rel))
    return st.ttest_rel(d, s).pvalue, (rel.mean() - half, rel.mean() + half)


@pytest.mark.parametrize("n_seeds", [2, 4])
def test_paired_by_sparsity_tests_from_two_seeds_at_the_callers_confidence(n_seeds):
    """Two paired seeds are enough for the test and the interval; the interval is taken at the
    caller's confidence, and ``attrs`` record level and confidence."""
    maps = _paired_maps(n_seeds)
    out = overall.paired_by_sparsity(maps, level=0.1, confidence=0.8)
    assert out.attrs == {"level": 0.1, "confidence": 0.8}
    assert list(out["sparsity"]) == [0.25, 0.5, 0.75] and out["n"].eq(n_seeds).all()
    for _, row in out.iterrows():
        p, interval = _paired_by_hand(maps, row.sparsity, 0.8)
        assert row.p == pytest.approx(p)
        assert (row.rel_lo, row.rel_hi) == pytest.approx(interval)


def test_paired_by_sparsity_drop_is_a_decrease_with_holm_p_strictly_below_level():
    """A significant increase is no drop; a decrease is one only while its Holm P is strictly
    below the level (a level equal to it does not count)."""
    maps = _paired_maps(6, {0.25: 0.3, 0.5: -0.3})
    out = overall.paired_by_sparsity(maps, level=0.05).set_index("sparsity")
    assert out.loc[0.25, "p_holm"] < 0.05 and out.loc[0.5, "p_holm"] < 0.05
    assert list(out["drop"]) == [False, True]
    at = overall.paired_by_sparsity(maps, level=out.loc[0.5, "p_holm"])
    assert not at["drop"].any()


def test_paired_by_sparsity_counts_each_seeds_first_row_once():
    """Rows repeated later for a seed (a re-evaluation appended, its mAP different) leave the
    result as it was: each seed's first dense and first pruned row are paired, once."""
    maps = _paired_maps()
    again = _maps([(0, 0.0, 0.9), (1, 0.5, 0.1)])
    pd.testing.assert_frame_equal(overall.paired_by_sparsity(pd.concat([maps, again])),
                                  overall.paired_by_sparsity(maps))


def test_grid_messages_whole():
    """The errors about the grid, word for word: a level outside (0, 1), too few dense seeds
    for Welch's test, no pruned level (either test)."""
    maps = _paired_maps()
    for level in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError) as caught:
            overall.paired_by_sparsity(maps, level=level)
        assert str(caught.value) == f"level must be in (0, 1), got {level!r}"
    with pytest.raises(ValueError) as caught:
        overall.welch_by_sparsity(_maps([(0, 0.0, 0.5), (0, 0.5, 0.4), (1, 0.5, 0.41)]))
    assert str(caught.value) == ("welch_by_sparsity needs at least two seeds per group (dense "
                                 "and each sparsity); table has 1 dense model(s)")
    for test in (overall.welch_by_sparsity, overall.paired_by_sparsity):
        with pytest.raises(ValueError) as caught:
            test(maps[maps.sparsity == 0])
        assert str(caught.value) == "table has no sparsity > 0 for method 'l1'"


def test_map_per_model_rows_sorted_and_its_warning_at_the_callers_line():
    """Models come out sorted by method, seed and sparsity whatever the rows' order; the
    warning about a class without an AP names the caller's line (stacklevel 2)."""
    ap = make_ap_table(seeds=(0, 1), empty_class=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shuffled = overall.map_per_model(ap.sample(frac=1, random_state=2))
    assert under_mutmut() or caught[0].filename == __file__
    keys = list(zip(shuffled["method"], shuffled["seed"], shuffled["sparsity"]))
    assert keys == sorted(keys) and len(keys) == 2 * 2 * len(SPARSITIES)


def test_dense_models_borrowed_once_per_seed_from_the_first_method():
    """A method without k = 0 rows is compared against the table's dense models, one per seed
    (the first listed: here l1's, though random has its own too)."""
    maps = overall.map_per_model(make_ap_table(seeds=(0, 1, 2)))
    snip = maps[(maps.method == "l1") & (maps.sparsity > 0)].assign(method="snip")
    out = overall.welch_by_sparsity(pd.concat([maps, snip]), alpha=0.05, method="snip")
    l1_dense = maps[(maps.method == "l1") & (maps.sparsity == 0)]["map"]
    assert out["n_dense"].eq(3).all()
    assert out["mean_dense"].to_numpy() == pytest.approx(np.full(3, l1_dense.mean()))


def test_method_and_table_messages_whole():
    """The errors choosing a method and its dense models name the table, word for word."""
    maps = overall.map_per_model(make_ap_table(seeds=(0, 1)))
    with pytest.raises(ValueError) as caught:
        overall.select_method(maps, None)
    assert str(caught.value) == ("frame holds methods ['l1', 'random']; pass method= to "
                                 "choose one")
    with pytest.raises(ValueError) as caught:
        overall.welch_by_sparsity(maps, method="snip")
    assert str(caught.value) == "method 'snip' not in table; available: ['l1', 'random']"
    with pytest.raises(ValueError) as caught:
        overall.welch_by_sparsity(maps.drop(columns="seed"))
    assert str(caught.value) == ("table is missing column(s) ['seed']; it has ['method', "
                                 "'sparsity', 'map', 'n_classes']")
    with pytest.raises(ValueError) as caught:
        overall.paired_by_sparsity(maps[maps.sparsity > 0])
    assert str(caught.value) == "table has no dense (sparsity 0) models to compare against"
