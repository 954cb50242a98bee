"""Q2's and Q3's sound statistics: the chance-corrected change, the censored first drop and the
Mantel/QAP permutation P values, against independent implementations and simulations; and the
three-way verdict rules of their claims on synthetic values whose answer is known."""

import itertools
import math
import statistics
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from prunecxr import claims
from prunecxr.analysis import cooccurrence as co
from prunecxr.analysis import forgetting
from prunecxr.claims import q2 as claims_q2
from prunecxr.claims.core import Settings
from prunecxr.metrics import average_precision

KS = [0.0, 0.25, 0.5, 0.75, 0.95]


# ------------------------------------------------------------------ chance correction (Q2)

def test_a_random_ranking_has_expected_ap_equal_to_the_prevalence():
    """The chance level pi that the correction subtracts: the AP of random scores averages
    the class's prevalence (simulated; 400 rankings of 2,000 images, pi = 0.05 and 0.3)."""
    rng = np.random.default_rng(0)
    n, pis = 2000, np.array([0.05, 0.3])
    labels = (rng.uniform(size=(n, 2)) < pis).astype(np.uint8)
    prevalence = labels.mean(axis=0)
    aps = np.array([average_precision(labels, rng.uniform(size=(n, 2))) for _ in range(400)])
    assert aps.mean(axis=0) == pytest.approx(prevalence, abs=0.006)
    # ... so a class fallen to chance has chance-corrected change -1 whatever its prevalence,
    # while its raw change is the floor (pi - AP0) / AP0, set by prevalence.
    table = pd.DataFrame([("l1", 0, 0.0, "rare", 0.5), ("l1", 0, 0.9, "rare", aps[0, 0]),
                          ("l1", 0, 0.0, "common", 0.5), ("l1", 0, 0.9, "common", aps[0, 1])],
                         columns=["method", "seed", "sparsity", "class", "ap"])
    out = forgetting.chance_corrected_change(
        table, pd.Series(prevalence, index=["rare", "common"])).set_index(["class", "sparsity"])
    for i, c in enumerate(["rare", "common"]):
        row = out.loc[(c, 0.9)]
        expected = (aps[0, i] - prevalence[i]) / (0.5 - prevalence[i]) - 1
        assert row["cc_change"] == pytest.approx(expected)
        assert row["chance_floor"] == pytest.approx((prevalence[i] - 0.5) / 0.5)
        assert row["rel_change"] == pytest.approx((aps[0, i] - 0.5) / 0.5)
        assert out.loc[(c, 0.0), "cc_change"] == 0.0
    cc = out.xs(0.9, level="sparsity")["cc_change"]
    assert cc.to_numpy() == pytest.approx([-1, -1], abs=0.1)
    floors = out.xs(0.9, level="sparsity")["chance_floor"]
    assert floors["rare"] < floors["common"]  # the raw floor differs by prevalence alone


def test_chance_correction_is_undefined_where_the_dense_model_does_not_beat_chance():
    table = pd.DataFrame([("l1", 0, 0.0, "a", 0.2), ("l1", 0, 0.5, "a", 0.1),
                          ("l1", 0, 0.0, "b", 0.6), ("l1", 0, 0.5, "b", 0.35)],
                         columns=["method", "seed", "sparsity", "class", "ap"])
    out = forgetting.chance_corrected_change(table, pd.Series({"a": 0.25, "b": 0.1}))
    a = out[out["class"] == "a"]
    assert a["cc_change"].isna().all() and np.isfinite(a["rel_change"]).all()
    b = out[(out["class"] == "b") & (out["sparsity"] == 0.5)].iloc[0]
    assert b["cc_change"] == pytest.approx((0.35 - 0.1) / (0.6 - 0.1) - 1)  # -0.5
    with pytest.raises(ValueError, match="prevalence has no value"):
        forgetting.chance_corrected_change(table, pd.Series({"a": 0.25}))


# ------------------------------------------------------------------ censored first drop (Q2)

def test_censored_first_drop_ranks_never_dropping_classes_last():
    first = np.array([0.3, 0.5, np.nan, 0.25, np.nan, 0.75, np.nan])
    complete = np.array([True, True, True, True, True, True, False])  # last: undefined point
    grid = [round(0.05 * i, 2) for i in range(1, 20)]  # the paper's 19 points
    out = forgetting.censored_first_drop(first, complete, grid)
    assert out[2] == out[4] == 1.0 and np.isnan(out[6])  # 0.95 + one step of 0.05
    counts = np.array([900, 200, 5000, 60, 3000, 800, 40])
    logc = np.log(counts)
    keep = np.isfinite(out)
    # explicit ranks: dropped classes by their sparsity, the two censored tied last (5.5)
    # (0.25 -> 1, 0.3 -> 2, 0.5 -> 3, 0.75 -> 4)
    y_ranks = np.array([2, 3, 5.5, 1, 5.5, 4, np.nan])
    x_ranks = st.rankdata(logc[keep])
    expected = st.pearsonr(x_ranks, y_ranks[keep]).statistic
    assert st.spearmanr(logc[keep], out[keep]).statistic == pytest.approx(expected)
    # what the paper does instead: leave the never-dropping classes out
    left_out = np.isfinite(first)
    assert st.spearmanr(logc[left_out], first[left_out]).statistic != pytest.approx(expected)


def ap_table_and_labels():
    """Four classes, two seeds; AP per sparsity chosen so both raw and chance-corrected curves
    are known; prevalences 0.5, 0.25, 0.125, 0.0625 from 16 labelled images."""
    classes = ["a", "b", "c", "d"]
    labels = np.zeros((16, 4), dtype=np.uint8)
    for j, n in enumerate([8, 4, 2, 1]):
        labels[:n, j] = 1
    ap = {"a": [0.9, 0.88, 0.87, 0.86, 0.85],   # never drops
          "b": [0.6, 0.55, 0.45, 0.3, 0.25],     # falls to chance (0.25) at 0.95
          "c": [0.5, 0.5, 0.35, 0.2, 0.125],
          "d": [0.4, 0.3, 0.2, 0.1, 0.0625]}
    rows = [("l1", s, k, c, v) for s in (0, 1) for c in classes for k, v in zip(KS, ap[c])]
    table = pd.DataFrame(rows, columns=["method", "seed", "sparsity", "class", "ap"])
    return table, labels, classes, pd.Series({"a": 5000, "b": 600, "c": 90, "d": 12})


def test_forgetting_comparison_hand_case():
    table, labels, classes, counts = ap_table_and_labels()
    pc, corr = forgetting.forgetting_comparison(table, labels, classes, counts)
    pc = pc.set_index("class")
    assert pc["prevalence"].tolist() == [0.5, 0.25, 0.125, 0.0625]
    assert pc.loc["b", "cc_final_change"] == pytest.approx(-1.0)
    assert pc.loc["b", "final_change"] == pytest.approx((0.25 - 0.6) / 0.6)
    assert pc.loc["b", "chance_floor"] == pytest.approx((0.25 - 0.6) / 0.6)
    assert pc.loc["a", "cc_final_change"] == pytest.approx((0.85 - 0.5) / (0.9 - 0.5) - 1)
    assert pc.loc["a", "censored"] and not pc.loc["a", "dropped"]
    assert pc.loc["a", "first_drop_censored"] == 1.15 and np.isnan(pc.loc["a", "first_drop"])
    # c: raw -0.3 at 0.5 (dropped 20%); chance-corrected (0.35 - 0.125) / 0.375 - 1 = -0.4
    assert pc.loc["c", "first_drop"] == 0.5 and pc.loc["c", "cc_first_drop"] == 0.5
    assert pc.loc["d", "first_drop"] == 0.25
    c = corr.set_index("outcome")
    logc = np.log(counts.to_numpy(dtype=float))
    assert c.loc["first_drop", "n"] == 3  # the paper's: the never-dropping class left out
    assert c.loc["first_drop_censored", "n"] == 4
    assert c.loc["first_drop_censored", "rho"] == pytest.approx(
        st.spearmanr(logc, pc["first_drop_censored"]).statistic)
    assert c.loc["cc_final_change", "rho"] == pytest.approx(
        st.spearmanr(logc, pc["cc_final_change"]).statistic)
    assert pc.attrs["censor_value"] == 1.15  # 0.95 + the grid's step (0.2)


# ------------------------------------------------------------------ Mantel / QAP (Q3)

def tiny_pairs(c=6, seed=0, effect=0.0):
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=c), rng.uniform(0.1, 1, size=c)
    curves = rng.normal(size=(c, 5)) + effect * u[:, None]
    rows = []
    for a, b in itertools.combinations(range(c), 2):
        rows.append({"class_a": f"c{a}", "class_b": f"c{b}",
                     "fcd": float(np.sqrt(((curves[a] - curves[b]) ** 2).sum())),
                     "dlogfreq": abs(u[a] - u[b]), "iou4": (v[a] * v[b]) ** 0.5})
    return pd.DataFrame(rows)


def test_mantel_rho_p_matches_scipy_permutation_test_over_class_labels():
    """Exact over all 720 orderings of 6 classes: scipy's permutation_test, permuting the
    class labels (one sample of class indices, permutation_type='pairings'), on |rho|."""
    pairs = tiny_pairs(6, seed=3)
    classes, mats = co.pair_matrices(pairs)
    iu = np.triu_indices(len(classes), 1)
    every = np.array([p for p in itertools.permutations(range(6)) if p != tuple(range(6))])
    ours = co.mantel_tests(pairs, permutations=every).set_index("statistic")
    for stat, x in (("rho_dlogfreq", "dlogfreq"), ("rho_iou4", "iou4")):
        def abs_rho(p):
            p = np.asarray(p)
            return abs(st.spearmanr(mats[x][iu], mats["fcd"][p[iu[0]], p[iu[1]]]).statistic)

        ref = st.permutation_test((np.arange(6),), abs_rho, permutation_type="pairings",
                                  alternative="greater", vectorized=False, n_resamples=10**4)
        assert ours.loc[stat, "p_perm"] == pytest.approx(ref.pvalue)
        assert ours.loc[stat, "value"] == pytest.approx(
            st.spearmanr(mats[x][iu], mats["fcd"][iu]).statistic)
        assert ours.loc[stat, "p_naive"] == pytest.approx(
            st.spearmanr(mats[x][iu], mats["fcd"][iu]).pvalue)


def test_mantel_beta3_p_matches_a_brute_force_loop_of_statsmodels_fits():
    """beta3 refitted with statsmodels for each of the 119 other orderings of 5 classes."""
    import statsmodels.formula.api as smf

    pairs = tiny_pairs(5, seed=1)
    classes, mats = co.pair_matrices(pairs)
    iu = np.triu_indices(5, 1)
    every = [p for p in itertools.permutations(range(5)) if p != tuple(range(5))]

    def beta3(fcd):
        data = pd.DataFrame({"fcd": fcd, "dlogfreq": mats["dlogfreq"][iu],
                             "iou4": mats["iou4"][iu]})
        return smf.ols("fcd ~ dlogfreq * iou4", data).fit().params["dlogfreq:iou4"]

    observed = beta3(mats["fcd"][iu])
    null = [beta3(mats["fcd"][np.asarray(p)[iu[0]], np.asarray(p)[iu[1]]]) for p in every]
    expected = (1 + sum(abs(b) >= abs(observed) - 1e-9 for b in null)) / (1 + len(null))
    ours = co.mantel_tests(pairs, permutations=np.array(every)).set_index("statistic")
    assert ours.loc["beta3", "value"] == pytest.approx(observed)
    assert ours.loc["beta3", "p_perm"] == pytest.approx(expected)
    # the naive P is the OLS t-test's, the same as fcd_ols reports
    assert ours.loc["beta3", "p_naive"] == pytest.approx(
        co.fcd_ols(pairs).set_index("term").loc["dlogfreq:iou4", "p"])
    # and the vectorised statistics equal the plain definition for the permuted vectors
    ref = co.mantel_statistics(mats["fcd"][np.array(every)[:, iu[0]], np.array(every)[:, iu[1]]],
                               mats["dlogfreq"][iu], mats["iou4"][iu])
    assert ref["beta3"] == pytest.approx(null)


def test_mantel_statistics_of_one_vector_are_spearman_and_ols():
    rng = np.random.default_rng(3)
    fcd, x1, x2 = rng.normal(size=30), rng.normal(size=30), rng.uniform(size=30)
    out = co.mantel_statistics(fcd, x1, x2)
    assert sorted(out) == ["beta3", "rho_dlogfreq", "rho_iou4"]
    assert out["rho_dlogfreq"][0] == pytest.approx(st.spearmanr(fcd, x1).statistic)
    assert out["rho_iou4"][0] == pytest.approx(st.spearmanr(fcd, x2).statistic)
    design = np.column_stack([np.ones(30), x1, x2, x1 * x2])
    assert out["beta3"][0] == pytest.approx(np.linalg.lstsq(design, fcd, rcond=None)[0][3])


def test_mantel_is_seeded_fast_and_sizes_are_reported():
    pairs = tiny_pairs(20, seed=0)
    start = time.perf_counter()
    a = co.mantel_tests(pairs, n_perm=2000, seed=7)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0, f"2,000 permutations of 20 classes took {elapsed:.2f} s"
    b = co.mantel_tests(pairs, n_perm=2000, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert (a["n_classes"] == 20).all() and (a["n_pairs"] == 190).all()
    assert (a["n_perm"] == 2000).all()
    assert ((a["p_perm"] >= 1 / 2001) & (a["p_perm"] <= 1)).all()
    few = co.mantel_tests(tiny_pairs(3), n_perm=50)
    assert few["p_perm"].isna().all() and few["value"].isna().all()
    assert (few["n_perm"] == 0).all()                    # no permutation drawn for 3 classes


def test_mantel_defaults_and_the_four_class_edge():
    """By default 2,000 row-wise permutations from numpy.random.default_rng(0), the same as
    passing them; none: the values without P; four classes (six pairs) are enough for every
    value and P."""
    pairs = tiny_pairs(5, seed=2)
    perms = np.random.default_rng(0).permuted(np.tile(np.arange(5), (2000, 1)), axis=1)
    default = co.mantel_tests(pairs)
    pd.testing.assert_frame_equal(default, co.mantel_tests(pairs, permutations=perms))
    assert (default["n_perm"] == 2000).all()
    none = co.mantel_tests(pairs, n_perm=0)                # no permutation: values, no P
    assert np.isfinite(none["value"]).all() and none["p_perm"].isna().all()
    assert (none["n_perm"] == 0).all()
    four = co.mantel_tests(tiny_pairs(4, seed=2), n_perm=50)
    assert np.isfinite(four[["value", "p_naive", "p_perm"]].to_numpy()).all()
    assert (four["n_perm"] == 50).all() and (four["n_pairs"] == 6).all()


def test_permutation_p_edges_and_its_relative_tolerance():
    """NaN for an undefined statistic or an empty null; (1 + hits) / (1 + n) otherwise; a null
    value within 1e-12 relative of |observed| is a tie (counted), one 1e-9 below is not, at any
    scale of the statistic."""
    assert np.isnan(co.permutation_p(np.nan, [0.1, 0.2]))
    assert np.isnan(co.permutation_p(0.5, []))
    assert co.permutation_p(0.5, [-0.7]) == 1.0 and co.permutation_p(0.5, [0.1]) == 0.5
    for obs in (3e-7, 0.3, 3e5):
        assert co.permutation_p(obs, [obs * (1 - 1e-14), -obs * (1 - 1e-14)]) == 1.0
        assert co.permutation_p(-obs, [obs * (1 - 1e-9)]) == 0.5


def _null_dataset(rng, c=20, m=19):
    """Curves independent of the classes' frequency and co-occurrence: no association."""
    u, v = rng.normal(size=c), rng.uniform(size=c)
    curves = np.cumsum(rng.normal(0, 0.1, size=(c, m)), axis=1)
    fcd = np.sqrt(((curves[:, None] - curves[None]) ** 2).sum(-1))
    iu = np.triu_indices(c, 1)
    return fcd, np.abs(u[:, None] - u[None])[iu], np.sqrt(np.outer(v, v))[iu]


def test_null_rejection_rate_of_permutation_p_is_near_the_level_and_naive_is_not():
    """300 null datasets of 20 classes (190 pairs), 199 permutations each: the permutation P
    rejects at 5% in 2-9% of them; the pair-wise Spearman P, treating pairs as independent,
    rejects far more often (anti-conservative)."""
    rng = np.random.default_rng(2)
    perm, naive = {k: [] for k in co.MANTEL_STATISTICS}, []
    for _ in range(300):
        fcd, x1, x2 = _null_dataset(rng)
        perms = rng.permuted(np.tile(np.arange(20), (199, 1)), axis=1)
        observed, null = co.mantel_null(fcd, x1, x2, perms)
        for k in co.MANTEL_STATISTICS:
            perm[k].append(co.permutation_p(observed[k][0], null[k]))
        naive.append(st.spearmanr(x2, fcd[np.triu_indices(20, 1)]).pvalue)
    rates = {k: np.mean(np.array(v) < 0.05) for k, v in perm.items()}
    for k, rate in rates.items():
        assert 0.02 <= rate <= 0.09, (k, rate)
    naive_rate = np.mean(np.array(naive) < 0.05)
    assert naive_rate > 0.12 and naive_rate > 2 * rates["rho_iou4"], (naive_rate, rates)


# ------------------------------------------------------------------ verdict rules

S = Settings()


def test_q2_rules_three_ways():
    for key in ("q2_first_drop", "q2_final_change"):
        rule = claims.CLAIMS[key].rule
        assert rule({"cc_rho": 0.6, "cc_p": 0.001, "cc_n": 20}, S) is True      # planted effect
        assert rule({"cc_rho": 0.05, "cc_p": 0.8, "cc_n": 20}, S) is False      # no effect
        assert rule({"cc_rho": -0.6, "cc_p": 0.001, "cc_n": 20}, S) is False    # wrong sign
        assert rule({"cc_rho": 0.5, "cc_p": 0.2, "cc_n": 6}, S) is None         # too few classes
        assert rule({"cc_rho": np.nan, "cc_p": np.nan, "cc_n": 2}, S) is None   # undefined
        # the paper's rule reads the paper's statistic, not the sound one
        paper = claims.CLAIMS[key].paper_rule
        assert paper({"rho": 0.6, "p_rho": 0.001}, S) is True
        assert paper({"rho": 0.6, "p_rho": 0.2}, S) is False


def test_q3_rules_three_ways():
    for key, sign in (("q3_dlogfreq", 1), ("q3_iou", -1), ("q3_ols", -1)):
        rule = claims.CLAIMS[key].rule
        v = {"perm_value": 0.4 * sign, "p_perm": 0.001, "n_classes": 20}
        assert rule(v, S) is True
        assert rule({**v, "perm_value": -0.4 * sign}, S) is False
        assert rule({**v, "p_perm": 0.5}, S) is False
        assert rule({**v, "p_perm": 0.5, "n_classes": 6}, S) is None
        assert rule({**v, "perm_value": np.nan}, S) is None


def test_planted_and_absent_effects_through_the_permutation_test():
    """A planted association of FCD with |ΔlogF| over 20 classes holds; none does not hold;
    five classes cannot decide."""
    rule = claims.CLAIMS["q3_dlogfreq"].rule

    def values(pairs):
        row = co.mantel_tests(pairs, n_perm=999, seed=0).set_index("statistic").loc["rho_dlogfreq"]
        return {"perm_value": row["value"], "p_perm": row["p_perm"], "n_classes": row["n_classes"]}

    assert rule(values(tiny_pairs(20, seed=4, effect=3.0)), S) is True
    assert rule(values(tiny_pairs(20, seed=4, effect=0.0)), S) is False
    assert rule(values(tiny_pairs(5, seed=4, effect=0.0)), S) is None


def test_sound_texts_and_reasons_are_filled():
    for key in ("q2_first_drop", "q2_final_change", "q3_dlogfreq", "q3_iou", "q3_ols"):
        c = claims.CLAIMS[key]
        assert c.sound is not None and c.paper_rule is not None
        assert c.why and not c.why.endswith(".") and c.rule_text.endswith(".")
    assert claims_q2.MIN_CLASSES == 10


def test_claims_on_the_frozen_smoke_results_carry_both_statistics():
    from pathlib import Path

    from prunecxr.store import load

    store = load(Path(__file__).parent / "fixtures" / "smoke_results")
    ev = claims.Evidence(store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = claims.evaluate(ev, ["q2_first_drop", "q2_final_change", "q3_dlogfreq",
                                     "q3_iou", "q3_ols"])
    pc, corr = claims_q2.comparison(ev)
    c = corr.set_index("outcome")
    v = found["q2_final_change"].values
    assert v["cc_rho"] == pytest.approx(c.loc["cc_final_change", "rho"])
    paper = ev.forgetting[1].set_index("outcome")
    assert v["rho"] == pytest.approx(paper.loc["final_change", "rho"])
    for row in ("first_drop", "final_change"):  # the same raw curves as the paper's statistic
        assert c.loc[row, "rho"] == pytest.approx(paper.loc[row, "rho"])
        assert c.loc[row, "n"] == paper.loc[row, "n"]
    assert found["q3_iou"].values["perm_value"] == pytest.approx(found["q3_iou"].values["rho"])
    for r in found.values():
        assert r.verdict in claims.VERDICTS and r.sound and r.build
        assert (r.why == "") == (r.verdict == r.paper_verdict)
    assert math.isfinite(found["q3_ols"].values["p_perm"])


def test_forgetting_figure_draws_the_chance_floor_and_the_sound_row():
    import matplotlib

    matplotlib.use("Agg")
    from prunecxr import plots

    table, labels, classes, counts = ap_table_and_labels()
    pc, corr = forgetting.forgetting_comparison(table, labels, classes, counts)
    fig = plots.forgetting_vs_frequency_figure(pc, corr)
    assert len(fig.axes) == 4
    legends = [t.get_text() for ax in fig.axes if ax.get_legend()
               for t in ax.get_legend().get_texts()]
    assert any("chance floor" in t for t in legends)
    assert any("never drops" in t for t in legends)  # class a is drawn at the censor value
    titles = " ".join(ax.get_title() for ax in fig.axes)
    c = corr.set_index("outcome")
    for row in ("chance_floor", "cc_first_drop_censored", "cc_final_change"):
        assert f"ρ = {c.loc[row, 'rho']:.2f}" in titles
    floor_marks = next(col for col in fig.axes[1].collections
                       if "chance floor" in str(col.get_label())).get_offsets()
    assert np.asarray(floor_marks)[:, 1] == pytest.approx(pc["chance_floor"].to_numpy())
    # without the sound columns: the paper's two panels, as before
    summary, raw_corr = forgetting.forgetting_summary(
        forgetting.forgettability_curves(table), counts)
    assert len(plots.forgetting_vs_frequency_figure(summary, raw_corr).axes) == 2


# ------------------------------------------------------------ Q3's values and texts, whole

def _q3_evidence(ols=None, n_perm=200, method="l1", metric="euclidean"):
    from prunecxr.claims.evidence import Evidence

    ev = Evidence.__new__(Evidence)   # only what Q3 reads: pairs, OLS table, settings, memo
    ev.__dict__.update(pairs=tiny_pairs(c=7, seed=3), ols=ols,
                       settings=Settings(n_perm=n_perm, method=method, metric=metric))
    return ev


def test_q3_mantel_is_the_seeded_permutation_table_cached_per_setting():
    from prunecxr.claims import q3

    ev = _q3_evidence(n_perm=99)
    table = q3.mantel(ev)
    pd.testing.assert_frame_equal(
        table, co.mantel_tests(ev.pairs, n_perm=99, seed=q3.PERM_SEED).set_index("statistic"))
    assert q3.PERM_SEED == 0 and set(table["n_perm"]) == {99}
    assert "q3_mantel_l1_euclidean_99" in ev.__dict__["_memo"]


def test_q3_ols_values_equation_and_permutation_text():
    from prunecxr.claims import q3

    ols = pd.DataFrame({"term": ["Intercept", "dlogfreq", "iou4", "dlogfreq:iou4"],
                        "coef": [1.5, -0.25, 0.5, -0.3125], "p": [0.1, 0.2, 0.3, 0.004],
                        "r2": [0.4, 0.4, 0.4, 0.4]})
    v = q3._q3_ols(_q3_evidence(ols))
    assert v == {"intercept": 1.5, "b_dlogfreq": -0.25, "b_iou4": 0.5, "b3": -0.3125,
                 "p3": 0.004, "r2": 0.4}
    none = q3._q3_ols(_q3_evidence(None))
    assert list(none) == ["intercept", "b_dlogfreq", "b_iou4", "b3", "p3", "r2"]
    assert all(np.isnan(x) for x in none.values())
    assert q3.ols_equation(v) == "FCD = 1.50 - 0.25 |ΔlogF| + 0.50 IoU^¼ - 0.31 |ΔlogF|·IoU^¼"
    assert q3.ols_equation({**v, "b_dlogfreq": 0.0, "b3": 0.75}) == (
        "FCD = 1.50 + 0.00 |ΔlogF| + 0.50 IoU^¼ + 0.75 |ΔlogF|·IoU^¼")
    assert q3.ols_equation(none) == "not fitted (too few class pairs)"
    perm = {"perm_value": 0.6123, "p_perm": 0.03, "n_classes": 20.0, "n_perm": 2000}
    assert q3.perm_text(perm) == (
        f"Permuting the labels of 20 classes 2,000 times: ρ = {claims.core.fmt(0.6123)}, "
        f"{claims.core.format_p(0.03)}.")
    for undefined in ({**perm, "perm_value": np.nan}, {**perm, "p_perm": np.nan}):
        assert q3.perm_text(undefined, "β3") == (
            "β3 is not defined here (fewer than 4 classes with every pair defined).")


def test_q2_examples_are_the_most_frequent_and_the_rarest_class():
    from types import SimpleNamespace

    per_class = pd.DataFrame({"class": ["b", "a", "c", "d"], "train_count": [50, 900, 50, 7],
                              "final_change": [-0.1, -0.05, -0.2, -0.6],
                              "first_drop": [0.5, 0.8, 0.4, 0.2]})
    per_class.attrs["final_sparsity"] = 0.9
    v = claims_q2._q2_examples(SimpleNamespace(forgetting=(per_class, None)))
    assert v == {"final_sparsity": 0.9, "frequent_class": "a", "frequent_count": 900,
                 "frequent_final": -0.05, "frequent_first": 0.8, "rare_class": "d",
                 "rare_count": 7, "rare_final": -0.6, "rare_first": 0.2}
    ties = per_class.assign(train_count=[900, 900, 7, 7])     # stable: first of each tie
    v = claims_q2._q2_examples(SimpleNamespace(forgetting=(ties, None)))
    assert (v["frequent_class"], v["rare_class"]) == ("b", "d")
    no_attr = per_class.copy()
    no_attr.attrs = {}
    assert np.isnan(claims_q2._q2_examples(SimpleNamespace(forgetting=(no_attr, None)))[
        "final_sparsity"])
    # 30 classes in three tied counts (long enough for numpy's unstable sort to reorder ties):
    # the first class of the largest count, the last of the smallest, as a direct loop finds
    counts = [(i * 7) % 3 * 100 + 7 for i in range(30)]
    many = pd.DataFrame({"class": [f"c{i}" for i in range(30)], "train_count": counts,
                         "final_change": -0.5, "first_drop": 0.5})
    v = claims_q2._q2_examples(SimpleNamespace(forgetting=(many, None)))
    assert v["frequent_class"] == f"c{counts.index(max(counts))}"
    assert v["rare_class"] == f"c{max(i for i, n in enumerate(counts) if n == min(counts))}"


def test_q2_values_and_sound_texts_from_the_forgetting_comparison():
    """On the frozen fixture: the comparison is forgetting_comparison of the evidence's method
    at its drop threshold (cached per setting); every value of a Q2 claim is read from it; the
    sound texts are whole."""
    from pathlib import Path
    from prunecxr.claims.core import fmt, format_p
    from prunecxr.store import load

    store = load(Path(__file__).parent / "fixtures" / "smoke_results")
    s = Settings(drop=-0.3)     # not the default; the statistics below are defined here
    ev = claims.Evidence(store, s)
    per_class, corr = claims_q2.comparison(ev)
    direct = forgetting.forgetting_comparison(store.ap_table(["l1"]), store.labels, store.classes,
                                              store.train_counts, threshold=-0.3, method="l1")
    pd.testing.assert_frame_equal(per_class, direct[0])
    pd.testing.assert_frame_equal(corr, direct[1])
    assert "q2_comparison_l1_-0.3" in ev.__dict__["_memo"]
    c = corr.set_index("outcome")
    v = claims_q2._corr(ev, "first_drop", "cc_first_drop_censored")
    expect = {"cc_n": c.loc["cc_first_drop_censored", "n"],
              "cc_rho": c.loc["cc_first_drop_censored", "rho"],
              "cc_p": c.loc["cc_first_drop_censored", "p_rho"],
              "floor_rho": c.loc["chance_floor", "rho"], "floor_p": c.loc["chance_floor", "p_rho"],
              "final_sparsity": per_class.attrs["final_sparsity"],
              "n_censored": int(per_class["cc_censored"].sum()),
              "n_censored_raw": int(per_class["censored"].sum()),
              "raw_censored_rho": c.loc["first_drop_censored", "rho"],
              "raw_censored_p": c.loc["first_drop_censored", "p_rho"]}
    for k, want in expect.items():
        assert np.isfinite(v[k]) and v[k] == pytest.approx(float(want)), k
    assert v["n_censored_raw"] > 0
    no_attrs = (per_class.copy(), corr)                 # a comparison that lost its attrs
    no_attrs[0].attrs = {}
    ev.__dict__["_memo"]["q2_comparison_l1_-0.3"] = no_attrs
    assert np.isnan(claims_q2._corr(ev, "first_drop", "cc_first_drop_censored")["final_sparsity"])
    ev.__dict__["_memo"]["q2_comparison_l1_-0.3"] = (per_class, corr)
    rho = (f"ρ = {fmt(v['cc_rho'])} ({format_p(v['cc_p'])}, n = {int(v['cc_n'])} classes)"
           if np.isfinite(v["cc_rho"]) and np.isfinite(v["cc_p"]) else "ρ not defined here")
    assert claims_q2.first_drop_sound(v) == (
        f"First drop of the chance-corrected curve, classes that never drop ranked last "
        f"({v['n_censored']} here): {rho}; of the raw curve with the same censoring, ρ = "
        f"{fmt(v['raw_censored_rho'])}, {format_p(v['raw_censored_p'])}.")
    hand = {**v, "cc_rho": 0.5, "cc_p": 0.01, "cc_n": 12, "final_sparsity": 0.95,
            "floor_rho": -0.25, "floor_p": 0.2}
    assert claims_q2.final_change_sound(hand) == (
        f"Chance-corrected change (AP − π)/(AP₀ − π) − 1 at k = {fmt(0.95)}: ρ = {fmt(0.5)} "
        f"({format_p(0.01)}, n = 12 classes); the chance floor (π − AP₀)/AP₀ alone gives ρ = "
        f"{fmt(-0.25)}, {format_p(0.2)}.")
    for rho_, p_ in ((np.nan, 0.01), (0.5, np.nan)):
        assert claims_q2._rho_text(rho_, p_, 12) == "ρ not defined here"


def test_forgetting_comparison_reads_one_method_and_aligns_classes():
    """With a second method beside it, the comparison of one method equals that method alone;
    per-class columns (prevalence, dense AP, chance floor) follow the class, whatever order the
    table's rows come in; a method is named as the table asks."""
    table, labels, classes, counts = ap_table_and_labels()
    other = table.assign(method="random", ap=table["ap"] * 0.5)
    both = pd.concat([other, table]).iloc[::-1].reset_index(drop=True)    # rows reversed
    alone = forgetting.forgetting_comparison(table, labels, classes, counts)
    got = forgetting.forgetting_comparison(both, labels, classes, counts, method="l1")
    a = alone[0].set_index("class")
    g = got[0].set_index("class").loc[a.index.tolist()]
    pd.testing.assert_frame_equal(g, a, check_like=True)
    assert g["ap0"].tolist() == [0.9, 0.6, 0.5, 0.4]
    assert g.attrs["censor_value"] == alone[0].attrs["censor_value"]
    pd.testing.assert_frame_equal(got[1], alone[1])
    # a class with no pruned rows has no curve: left out, each other class keeps its own values
    no_b = table[(table["class"] != "b") | (table["sparsity"] == 0)].iloc[::-1]
    without = forgetting.forgetting_comparison(no_b, labels, classes, counts)[0]
    pd.testing.assert_frame_equal(without.set_index("class"), a.drop(index="b").loc[
        without["class"]], check_like=True)
    with pytest.raises(ValueError) as caught:
        forgetting.forgetting_comparison(both, labels, classes, counts)
    assert str(caught.value) == ("ap_table holds methods ['l1', 'random']; pass method= to "
                                 "choose one")


def test_test_prevalence_and_censoring_edges():
    classes = ["a", "b"]
    prev = forgetting.test_prevalence(np.array([[1, 0], [1, 1], [0, 0], [1, 0]]), classes)
    assert prev.name == "prevalence" and prev.tolist() == [0.75, 0.25]
    for bad in (np.zeros((4, 3)), np.zeros(4)):
        with pytest.raises(ValueError) as caught:
            forgetting.test_prevalence(bad, classes)
        assert str(caught.value) == (f"labels must be (n_images, 2) to match classes, got shape "
                                     f"{bad.shape}")
    # a censored class gets the grid's last level plus its step; one level: plus 0.05
    got = forgetting.censored_first_drop([np.nan, 0.3], [1, 1], [0.1, 0.5, 0.3])
    assert got.tolist() == [0.7, 0.3]
    assert forgetting.censored_first_drop([np.nan], [True], [0.4]).tolist() == [0.45]
    assert forgetting.censored_first_drop([np.nan], [True], [0.2, 0.5]).tolist() == [0.8]
    assert np.isnan(forgetting.censored_first_drop([np.nan], [False], [0.4, 0.6])[0])


# -------------------------------------------- forgetting_comparison against a direct loop (Q2)

def _sweep(grid, seeds=(0, 1, 2), partial=(1, 2)):
    """AP of 7 classes on a sparsity grid; the ``partial`` seeds' sweeps stop after the first
    pruned level (so seeds differ in row counts). k0 has a high prevalence: its chance-corrected
    curve drops, its raw one does not; k5 has an undefined point; k6's dense AP is below its
    prevalence (chance-corrected change undefined)."""
    rng = np.random.default_rng(7)
    positives = [20, 10, 6, 4, 2, 8, 38]
    labels = np.zeros((40, 7), dtype=np.uint8)
    for j, n in enumerate(positives):
        labels[rng.permutation(40)[:n], j] = 1
    decay = [0.05, 0.1, 0.5, 1.0, 1.5, 0.3, 0.8]
    rows = []
    for s in seeds:
        levels = grid[:2] if s in partial else grid
        for c, d in enumerate(decay):
            ap0 = (0.55 + 0.1 * rng.uniform()) if c == 0 else rng.uniform(0.3, 0.9)
            for k in levels:
                ap = ap0 * (1 - d * k * rng.uniform(0.5, 1.5))
                rows.append(("l1", s, k, f"k{c}", np.nan if (c == 5 and k == grid[-1] and
                                                             k > 0) else max(ap, 0.01)))
    table = pd.DataFrame(rows, columns=["method", "seed", "sparsity", "class", "ap"])
    classes = [f"k{c}" for c in range(7)]
    counts = pd.Series([4000, 1500, 700, 300, 90, 40, 12], index=classes)
    return table, labels, classes, counts


def _direct_comparison(table, labels, classes, counts, threshold=-0.2):
    """forgetting_comparison's per-class columns and correlations by plain loops."""
    pi = dict(zip(classes, labels.mean(axis=0)))
    grid = sorted(k for k in table["sparsity"].unique() if k > 0)
    step = min(np.diff(grid)) if len(grid) > 1 else 0.05
    censor = round(grid[-1] + step, 10)
    ap = {(r.seed, r.sparsity, r._4): r.ap for r in table.itertuples()}
    seeds = sorted(table["seed"].unique())
    rows = []
    for c in classes:
        ap0 = {s: ap[(s, 0.0, c)] for s in seeds}
        row = {"class": c, "train_count": float(counts[c]), "log_train_count": np.log(counts[c])}
        for tag, change in (("", lambda a, a0: (a - a0) / a0),
                            ("cc_", lambda a, a0: (a - pi[c]) / (a0 - pi[c]) - 1
                             if a0 > pi[c] else np.nan)):
            curve = []
            for k in grid:
                vals = [change(ap[(s, k, c)], ap0[s]) for s in seeds if (s, k, c) in ap]
                vals = [v for v in vals if np.isfinite(v)]
                curve.append(statistics.median(vals) if vals else np.nan)
            hits = [k for k, v in zip(grid, curve) if v <= threshold]
            complete = all(np.isfinite(curve))
            first = hits[0] if hits else np.nan
            row.update({f"{tag}first_drop": first, f"{tag}dropped": bool(hits),
                        f"{tag}final_change": curve[-1],
                        f"{tag}first_drop_censored": censor if complete and not hits else first,
                        f"{tag}censored": complete and not hits})
        row.update(prevalence=pi[c], ap0=statistics.median(ap0.values()),
                   chance_floor=statistics.median((pi[c] - a0) / a0 for a0 in ap0.values()))
        rows.append(row)
    columns = ["class", "train_count", "log_train_count", "first_drop", "dropped",
               "final_change", "prevalence", "ap0", "chance_floor", "first_drop_censored",
               "censored", "cc_first_drop", "cc_dropped", "cc_first_drop_censored",
               "cc_censored", "cc_final_change"]
    per_class = pd.DataFrame(rows)[columns]
    corr = []
    for o in ("first_drop", "first_drop_censored", "final_change", "chance_floor",
              "cc_first_drop", "cc_first_drop_censored", "cc_final_change"):
        x, y = per_class["log_train_count"].to_numpy(), per_class[o].to_numpy(dtype=float)
        keep = np.isfinite(x) & np.isfinite(y)
        defined = keep.sum() >= 3 and np.ptp(y[keep]) > 0
        corr.append((o, int(keep.sum()),
                     st.spearmanr(x[keep], y[keep]).statistic if defined else np.nan))
    return per_class, pd.DataFrame(corr, columns=["outcome", "n", "rho"]), censor


@pytest.mark.parametrize("grid", [
    [0.0, 0.2, 0.4, 0.6, 0.8],          # k6, k5 and partial seeds as described in _sweep
    [0.0, 1 / 7, 2 / 7, 3 / 7],         # a censor value 4/7 that needs its 10-digit rounding
    [0.0, 0.3, 0.5],                    # two levels: the step is their difference
    [0.0, 0.6],                         # one level: the step is 0.05
])
def test_forgetting_comparison_matches_a_direct_loop(grid):
    """Every per-class column, their order and types, the attrs and the correlations (one row
    per outcome, indexed 0..6) of forgetting_comparison equal a direct computation: medians
    over the seeds each level has, the dense AP and chance floor as medians over seeds (not
    over rows), censoring only for curves defined everywhere, the censor value the grid's last
    level plus its smallest step, the same value in the column and in attrs."""
    table, labels, classes, counts = _sweep(grid)
    pc, corr = forgetting.forgetting_comparison(table, labels, classes, counts)
    want, want_corr, censor = _direct_comparison(table, labels, classes, counts)
    pd.testing.assert_frame_equal(pc, want, check_exact=False, rtol=1e-12)
    assert pc.attrs == {"final_sparsity": grid[-1], "threshold": -0.2, "censor_value": censor}
    assert list(corr.columns) == ["outcome", "n", "r", "p_r", "rho", "p_rho"]
    assert corr.index.tolist() == list(range(7))
    assert corr["outcome"].tolist() == want_corr["outcome"].tolist()
    assert corr["n"].tolist() == want_corr["n"].tolist()
    np.testing.assert_allclose(corr["rho"], want_corr["rho"], rtol=1e-12)
    never = pc["first_drop_censored"][pc["censored"]].tolist()
    assert never and never == [pc.attrs["censor_value"]] * len(never)
