"""Q4's sound statistics (issue: claims that survive a statistician): the damage rule and the
spread guard on synthetic outputs with known answers, exact enrichment intervals against
scipy, their coverage at the sizes used, Cochran-Mantel-Haenszel against statsmodels and a
hand computation (and on a confounded simulation), each verdict rule on planted, null and
too-small inputs, and the phantom's statement of what depends on the labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.contingency_tables import StratifiedTable

from prunecxr import claims
from prunecxr.analysis import pies
from prunecxr.claims import FAILS, HOLDS, UNRESOLVED, q4
from prunecxr.claims.core import _verdict


# --------------------------------------------------------------- damage rule and spread guard

LEVELS = np.array([0.0, 0.3, 0.6, 0.9])


def _maps(medians):
    rows = [{"method": "l1", "seed": s, "sparsity": k, "map": m + d}
            for k, m in zip(LEVELS, medians) for s, d in enumerate((-0.01, 0.0, 0.01))]
    return pd.DataFrame(rows)


def _labels(n=200, c=4, prevalence=0.25, seed=0):
    y = np.zeros((n, c), dtype=bool)
    y[: int(prevalence * n)] = True  # every class prevalence 0.25: chance mAP 0.25
    return y


def test_chance_map_is_the_mean_prevalence_of_classes_with_positives():
    y = np.zeros((10, 3), dtype=bool)
    y[:2, 0] = True
    y[:5, 1] = True
    assert pies.chance_map(y) == pytest.approx((0.2 + 0.5) / 2)


def test_output_spread_is_the_class_mean_of_across_image_sds():
    p = np.array([[0.1, 0.5], [0.3, 0.5], [0.5, 0.5]])
    assert pies.output_spread(p) == pytest.approx((np.std([0.1, 0.3, 0.5]) + 0) / 2)


def test_damage_rule_takes_the_lowest_level_with_the_stated_loss_above_chance():
    rng = np.random.default_rng(0)
    dense = rng.uniform(size=(200, 4))
    probs = np.stack([dense, dense * 0.5, dense * 0.2, dense * 0.001 + 0.3])
    # dense mAP 0.65, chance 0.25: losses 0, 0.1, 0.25, 0.9 of the 0.4 above chance
    table = pies.damage_table(_maps([0.65, 0.61, 0.55, 0.29]), probs, LEVELS, _labels())
    np.testing.assert_allclose(table["loss"], [0, 0.1, 0.25, 0.9], atol=1e-12)
    np.testing.assert_allclose(table["spread_ratio"], [1, 0.5, 0.2, 0.001])
    assert table["guard"].tolist() == [True, True, True, False]
    rule = pies.damage_level(table, 0.2)
    assert rule["level"] == 0.6 and rule["guard"] and rule["reached"]
    assert pies.damage_level(table, 0.5)["level"] == 0.9
    assert not pies.damage_level(table, 0.5)["guard"]          # refused: outputs constant
    none = pies.damage_level(table, 0.95)
    assert np.isnan(none["level"]) and not none["reached"]      # never that much damage


def test_damage_is_undefined_when_the_dense_models_are_at_chance():
    probs = np.ones((4, 200, 4)) * 0.5
    table = pies.damage_table(_maps([0.25] * 4), probs, LEVELS, _labels())
    assert table["loss"].isna().all() and not pies.damage_level(table)["reached"]


def test_pies_at_levels_match_pie_scores_and_select_pies():
    rng = np.random.default_rng(1)
    probs = rng.uniform(size=(4, 60, 5))
    masks = pies.pies_at_levels(probs, LEVELS, fraction=0.1)
    from prunecxr.stats import rowwise_spearman
    for i, k in enumerate(LEVELS[1:], start=1):
        expect = pies.select_pies(rowwise_spearman(probs[0], probs[i]), fraction=0.1)
        np.testing.assert_array_equal(masks[round(k, 6)], expect)


# --------------------------------------------------------------- exact intervals

def _table_masks(a, b, c, d):
    """PIE mask and property of the 2x2 table: a PIEs with it, b without; c others with, d
    without."""
    pie = np.r_[np.ones(a + b, bool), np.zeros(c + d, bool)]
    has = np.r_[np.ones(a, bool), np.zeros(b, bool), np.ones(c, bool), np.zeros(d, bool)]
    return pie, has


@pytest.mark.parametrize("a, b, c, d", [(3, 3, 40, 85), (0, 6, 24, 101), (20, 80, 25, 1875),
                                        (5, 95, 5, 1895), (2, 4, 0, 125)])
def test_exact_enrichment_against_scipy(a, b, c, d):
    r = pies.exact_enrichment(*_table_masks(a, b, c, d))
    assert (r["pie_with"], r["pie_without"], r["other_with"], r["other_without"]) == (a, b, c, d)
    assert r["p"] == pytest.approx(st.fisher_exact([[a, b], [c, d]])[1])
    assert r["expected_pie"] == pytest.approx((a + b) * (a + c) / (a + b + c + d))
    # the conditional exact interval inverts Fisher's one-sided tests at 2.5% each side
    p_greater = st.fisher_exact([[a, b], [c, d]], alternative="greater")[1]
    p_less = st.fisher_exact([[a, b], [c, d]], alternative="less")[1]
    assert (r["ci_low"] > 1) == (p_greater < 0.025)
    assert (r["ci_high"] < 1) == (p_less < 0.025)
    ratio = (a / (a + b)) / (c / (c + d)) if c else np.inf
    assert r["ratio"] == pytest.approx(ratio)


@pytest.mark.parametrize("a, b, c, d", [(0, 0, 3, 4), (2, 3, 0, 0), (0, 3, 0, 4), (2, 0, 3, 0),
                                        (1, 0, 0, 0)])
def test_exact_enrichment_without_a_row_or_column_has_no_odds_ratio(a, b, c, d):
    """No PIEs, no other images, no image with the property or every image with it: scipy
    would still give P = 1 and the interval (0, inf); here the odds ratio, its interval and P
    are NaN, under the same keys as a defined table. The counts and the expected count of PIEs
    with the property are still given (one image alone: 1 expected)."""
    r = pies.exact_enrichment(*_table_masks(a, b, c, d))
    assert list(r) == list(pies.exact_enrichment(*_table_masks(3, 3, 40, 85)))
    assert (r["pie_with"], r["pie_without"], r["other_with"], r["other_without"]) == (a, b, c, d)
    assert all(np.isnan(r[k]) for k in ("odds_ratio", "ci_low", "ci_high", "p"))
    assert r["expected_pie"] == (a + b) * (a + c) / (a + b + c + d)


@pytest.mark.parametrize("a, b, c, d", [(1, 0, 1, 3), (2, 2, 1, 0), (3, 1, 40, 0),
                                        (3, 3, 40, 3), (3, 5, 10, 10)])
def test_exact_enrichment_small_and_balanced_tables_against_scipy(a, b, c, d):
    """Tables with one PIE, one other image, one image without the property, or equal cells
    are defined: the ratio of prevalences by hand, scipy's conditional odds ratio, interval and
    Fisher's P. A 0/1 float mask is read as the boolean one."""
    from scipy.stats.contingency import odds_ratio

    pie, has = _table_masks(a, b, c, d)
    r = pies.exact_enrichment(pie, has)
    ref = odds_ratio([[a, b], [c, d]], kind="conditional")
    ci = ref.confidence_interval(0.95)
    assert r["ratio"] == pytest.approx((a / (a + b)) / (c / (c + d)))
    assert r["odds_ratio"] == pytest.approx(ref.statistic)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert r["p"] == pytest.approx(st.fisher_exact([[a, b], [c, d]])[1])
    assert pies.exact_enrichment(pie.astype(float), has) == r


@pytest.mark.slow
def test_exact_interval_coverage_at_the_sizes_used():
    """Simulated coverage of the conditional exact 95% interval of the odds ratio, at the
    default build's sizes (100 PIEs, 1,900 other images; prevalence of the pooled rarest
    classes about 3%, of 4+ findings about 2%) and the smoke build's (6 and 125), 400 draws
    each (8 s: slow tier; the fast tier checks 100 draws through interval_coverage)."""
    rng = np.random.default_rng(2023)
    for n_pie, n_other, p0, ratio in ((100, 1900, 0.03, 3.0), (100, 1900, 0.02, 1.0),
                                      (6, 125, 0.3, 2.0)):
        p1 = p0 * ratio
        true_or = p1 * (1 - p0) / (p0 * (1 - p1))
        hits = total = 0
        for _ in range(400):
            a, c = rng.binomial(n_pie, p1), rng.binomial(n_other, p0)
            pie = np.r_[np.ones(n_pie, bool), np.zeros(n_other, bool)]
            has = np.r_[np.arange(n_pie) < a, np.arange(n_other) < c]
            r = pies.exact_enrichment(pie, has)
            if np.isnan(r["ci_low"]):
                continue
            total += 1
            hits += r["ci_low"] <= true_or <= r["ci_high"]
        assert hits / total >= 0.93, (n_pie, n_other, p0, ratio, hits / total)


@pytest.mark.parametrize("lo, hi, expect", [(1.3, 9.0, True), (0.4, 1.6, False),
                                            (0.0, 0.8, False), (0.2, 12.0, None),
                                            (np.nan, np.nan, None), (0.5, np.inf, None)])
def test_enrichment_verdict(lo, hi, expect):
    assert pies.enrichment_verdict(lo, hi) is expect


# --------------------------------------------------------------- Cochran-Mantel-Haenszel

def _cmh_by_hand(tables):
    """The CMH statistic (no continuity correction) from its textbook formula."""
    num = var = 0.0
    for t in tables:
        (a, b), (c, d) = t
        n = a + b + c + d
        num += a - (a + b) * (a + c) / n
        var += (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1))
    return num ** 2 / var


def _data(tables):
    """Per-image (pies, binary, strata) from 2x2 tables [[pie&x, pie&~x], [other&x, other&~x]]."""
    pie, x, s = [], [], []
    for k, t in enumerate(tables):
        for (ip, ix), n in zip(((1, 1), (1, 0), (0, 1), (0, 0)), np.ravel(t)):
            pie += [ip] * int(n)
            x += [ix] * int(n)
            s += [k] * int(n)
    return np.array(pie, bool), np.array(x, bool), np.array(s)


def test_cmh_against_statsmodels_and_by_hand():
    tables = [np.array([[4, 6], [10, 40]]), np.array([[3, 2], [12, 20]]),
              np.array([[2, 9], [5, 60]])]
    r = pies.cmh_test(*[_data(tables)[i] for i in (1, 0, 2)])
    ref = StratifiedTable([t.astype(float) for t in tables])
    assert r["statistic"] == pytest.approx(ref.test_null_odds(correction=False).statistic)
    assert r["statistic"] == pytest.approx(_cmh_by_hand(tables))
    assert r["p"] == pytest.approx(st.chi2.sf(_cmh_by_hand(tables), 1))
    assert r["odds_ratio"] == pytest.approx(ref.oddsratio_pooled)
    assert r["n_strata"] == 3


def test_cmh_leaves_out_uninformative_strata():
    tables = [np.array([[4, 6], [10, 40]]), np.array([[0, 5], [0, 30]]),  # no x in stratum 2
              np.array([[0, 0], [3, 9]])]                                 # no PIE in stratum 3
    r = pies.cmh_test(*[_data(tables)[i] for i in (1, 0, 2)])
    assert r["n_strata"] == 1
    assert r["statistic"] == pytest.approx(_cmh_by_hand(tables[:1]))


def _confounded(n=10000, seed=0):
    """PIE status and corruption both driven by the number of findings, independent within."""
    rng = np.random.default_rng(seed)
    n_findings = rng.choice(5, size=n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    pie = rng.random(n) < 0.02 + 0.06 * n_findings
    corrupted = rng.random(n) < np.where(n_findings > 0, 0.04 * n_findings, 0.0)
    difficulty = 0.3 + 0.1 * n_findings + rng.normal(0, 0.05, n)
    quality = rng.uniform(size=n)
    return pd.DataFrame({"n_findings": n_findings, "label_corrupted": corrupted,
                         "difficulty": difficulty, "quality": quality}), pie


def test_confounded_simulation_unadjusted_significant_stratified_not():
    meta, pie = _confounded()
    t = pies.stratified_truth(meta, pie).set_index("variable")
    for var in ("label_corrupted", "difficulty"):
        assert t.loc[var, "p_unadjusted"] < 0.001, var
        assert t.loc[var, "p"] > 0.05, var
    assert t.loc["quality", "p"] > 0.05


def test_planted_effect_within_strata_is_found():
    meta, pie = _confounded(seed=1)
    rng = np.random.default_rng(5)
    meta["quality"] = meta["quality"] - 0.2 * pie
    meta["label_corrupted"] = meta["label_corrupted"] | (pie & (meta["n_findings"] > 0)
                                                          & (rng.random(len(pie)) < 0.3))
    t = pies.stratified_truth(meta, pie).set_index("variable")
    assert t.loc["quality", "p"] < 0.001 and t.loc["quality", "effect"] < 0
    assert t.loc["label_corrupted", "p"] < 0.001 and t.loc["label_corrupted", "effect"] > 1


def test_adjusted_difference_against_a_direct_ols():
    import statsmodels.api as sm
    meta, pie = _confounded(n=500, seed=3)
    r = pies.adjusted_difference(meta["difficulty"], pie, pies.strata_of(meta["n_findings"]))
    X = pd.get_dummies(pies.strata_of(meta["n_findings"]), drop_first=True).astype(float)
    X.insert(0, "is_pie", pie.astype(float))
    fit = sm.OLS(meta["difficulty"].to_numpy(), sm.add_constant(X)).fit(cov_type="HC3")
    assert r["difference"] == pytest.approx(fit.params["is_pie"])
    assert r["p"] == pytest.approx(fit.pvalues["is_pie"])


def test_adjusted_difference_needs_both_groups_and_strata_plus_three_rows():
    """Undefined (NaN, with the number of strata) without both PIEs and other images or with
    fewer rows than strata + 3; from there on the direct OLS fit with HC3 errors, a stratum
    dummy only with two strata or more; boolean values read as 0/1."""
    import statsmodels.api as sm
    values = np.array([1.0, 2.0, 3.0, 5.0, 4.0, 8.0, 6.0, 7.0])
    pie = np.array([1, 1, 0, 0, 1, 0, 1, 0], bool)
    two = np.repeat([0, 1], 4)
    for r, n in ((pies.adjusted_difference(values, np.ones(8, bool), np.zeros(8)), 1),
                 (pies.adjusted_difference(values[:3], pie[:3], np.zeros(3)), 1),
                 (pies.adjusted_difference(values[:4], pie[:4], [0, 0, 1, 1]), 2)):
        assert list(r) == ["difference", "ci_low", "ci_high", "p", "n_strata"]
        assert r["n_strata"] == n and all(np.isnan(r[k]) for k in list(r)[:4])
    for m, strata in ((4, np.zeros(4)), (8, two)):
        x = pie[:m, None].astype(float)
        if len(set(strata)) > 1:
            x = np.c_[x, strata == 1]
        fit = sm.OLS(values[:m], sm.add_constant(x)).fit(cov_type="HC3")
        r = pies.adjusted_difference(values[:m], pie[:m], strata)
        assert (r["difference"], r["p"], r["ci_low"]) == pytest.approx(
            (fit.params[1], fit.pvalues[1], fit.conf_int()[1, 0]))
    high = values > 4.5
    assert pies.adjusted_difference(high, pie, two) == pytest.approx(
        pies.adjusted_difference(high.astype(float), pie, two))


# --------------------------------------------------------------- verdict rules

def _decide(key, **values):
    return _verdict(claims.CLAIMS[key].rule(values, claims.Settings()))


LEVEL_OK = {"k_rule": 0.6, "k_reached": True, "k_guard": True, "k_loss": 0.25,
            "k_spread_ratio": 0.4, "pie_loss": 0.2, "min_spread": 0.1,
            "paper_spread_ratio": 0.02}


@pytest.mark.parametrize("key", ["q4_rare", "q4_many"])
def test_enrichment_rules(key):
    # planted: interval above 1; none: interval tight around 1; too little data: wide
    assert _decide(key, **LEVEL_OK, s_ci_low=1.8, s_ci_high=7.0) == HOLDS
    assert _decide(key, **LEVEL_OK, s_ci_low=0.6, s_ci_high=1.7) == FAILS
    assert _decide(key, **LEVEL_OK, s_ci_low=0.1, s_ci_high=30.0) == UNRESOLVED
    # the guard refuses the level, or no level loses enough: not resolved whatever the interval
    assert _decide(key, **{**LEVEL_OK, "k_guard": False}, s_ci_low=1.8, s_ci_high=7.0) == UNRESOLVED
    assert _decide(key, **{**LEVEL_OK, "k_reached": False}, s_ci_low=1.8,
                   s_ci_high=7.0) == UNRESOLVED


def test_enrichment_rule_end_to_end_on_planted_null_and_small_data():
    rng = np.random.default_rng(7)

    def verdict(n_pie, n_other, p0, ratio):
        pie = np.r_[np.ones(n_pie, bool), np.zeros(n_other, bool)]
        has = np.r_[rng.random(n_pie) < p0 * ratio, rng.random(n_other) < p0]
        r = pies.exact_enrichment(pie, has)
        return pies.enrichment_verdict(r["ci_low"], r["ci_high"])

    assert verdict(100, 1900, 0.05, 5.0) is True
    assert verdict(2000, 38000, 0.05, 1.0) is False
    assert verdict(6, 125, 0.05, 1.0) is None


def _truth(ok=True, **change):
    v = {"has_truth": True, "has_strata": True, **LEVEL_OK,
         "s_label_corrupted_effect": 2.5, "s_label_corrupted_ci_low": 1.4,
         "s_label_corrupted_ci_high": 4.4, "s_label_corrupted_p": 0.001,
         "s_quality_effect": -0.05, "s_quality_ci_low": -0.08, "s_quality_ci_high": -0.02,
         "s_quality_p": 0.01, "s_difficulty_effect": 0.04, "s_difficulty_ci_low": 0.01,
         "s_difficulty_ci_high": 0.07, "s_difficulty_p": 0.02}
    return {**v, **change}


def test_truth_rule():
    assert _decide("q4_truth", **_truth()) == HOLDS
    assert _decide("q4_truth", **_truth(s_quality_effect=0.05)) == FAILS       # wrong direction
    assert _decide("q4_truth", **_truth(s_difficulty_p=0.4)) == FAILS          # no effect
    assert _decide("q4_truth", **_truth(s_label_corrupted_p=np.nan)) == UNRESOLVED  # no data
    assert _decide("q4_truth", **_truth(k_guard=False)) == UNRESOLVED
    assert _decide("q4_truth", **_truth(has_truth=False)) == UNRESOLVED


def test_paper_rules_kept():
    s = claims.Settings()
    assert claims.CLAIMS["q4_rare"].paper_rule({"ratio_min": 1.2}, s) is True
    assert claims.CLAIMS["q4_rare"].paper_rule({"ratio_min": 0.0}, s) is False
    assert claims.CLAIMS["q4_many"].paper_rule({"ratio": np.inf}, s) is True
    assert claims.CLAIMS["q4_many"].paper_rule({"ratio": np.nan}, s) is None
    for key in ("q4_rare", "q4_many", "q4_truth", "q4_readers"):
        assert claims.CLAIMS[key].rule_text
    for key in ("q4_rare", "q4_many", "q4_truth"):
        assert claims.CLAIMS[key].why


# --------------------------------------------------------------- on the frozen smoke results

def test_q4_claims_on_the_frozen_fixture():
    from pathlib import Path
    from prunecxr.store import load
    ev = claims.Evidence(load(Path(__file__).parent / "fixtures" / "smoke_results"))
    found = claims.evaluate(ev, ["q4_rare", "q4_many", "q4_truth"])
    rule = q4.pie_levels(ev)["rule"]
    table = q4.pie_levels(ev)["table"]
    assert rule["level"] == table[(table["level"] > 0) & (table["loss"] >= 0.2)]["level"].min()
    for r in found.values():
        assert r.verdict in claims.VERDICTS and r.sound and r.build
    # the stratified test at the paper's level equals StratifiedTable on the same strata
    strat = q4.stratified_truth_at(ev, 0.9).set_index("variable")
    meta = ev.store.meta.reset_index(drop=True)
    s = pies.strata_of(meta["n_findings"])
    x = meta["label_corrupted"].to_numpy(bool)
    tables = [np.array([[(ev.pies & x & (s == k)).sum(), (ev.pies & ~x & (s == k)).sum()],
                        [(~ev.pies & x & (s == k)).sum(), (~ev.pies & ~x & (s == k)).sum()]])
              for k in np.unique(s)]
    tables = [t for t in tables if (t.sum(0) > 0).all() and (t.sum(1) > 0).all()]
    if tables:
        ref = StratifiedTable([t.astype(float) for t in tables]).test_null_odds(correction=False)
        assert strat.loc["label_corrupted", "p"] == pytest.approx(ref.pvalue)


def test_q4_chapter_tables_on_the_frozen_fixture():
    """The chapter's stratified table stacks stratified_truth_at per level (NaN and repeats
    skipped, levels rounded); adjusted_p reads its P per variable (label agreement from label
    corruption); without a ground truth both are None."""
    from pathlib import Path
    from types import SimpleNamespace
    from prunecxr.store import load
    ev = claims.Evidence(load(Path(__file__).parent / "fixtures" / "smoke_results"))
    levels = sorted(q4.pie_levels(ev)["masks"])[-2:]
    table = q4.stratified_truth_table(ev, [levels[1], np.nan, levels[0] + 4e-7, levels[1]])
    assert list(table.index.get_level_values("k").unique()) == [levels[1], levels[0]]
    for k in levels:
        pd.testing.assert_frame_equal(table.loc[k], q4.stratified_truth_at(ev, k))
    p = q4.adjusted_p(ev, levels[1])
    strat = q4.stratified_truth_at(ev, levels[1]).set_index("variable")["p"]
    assert p == {"agrees_with_label": strat["label_corrupted"], "quality": strat["quality"],
                 "difficulty": strat["difficulty"]}
    assert q4.adjusted_p(ev, np.nan) is None
    no_truth = SimpleNamespace(truth=None, store=ev.store, settings=ev.settings)
    assert q4.stratified_truth_table(no_truth, levels) is None
    assert q4.adjusted_p(no_truth, levels[0]) is None


# --------------------------------------------------------------- the phantom's construction

def test_phantom_statement_matches_the_generator():
    from prunecxr.data import phantom
    text = phantom.label_dependence_statement()
    assert f"adds {phantom.CROWDING:g}" in text and "never corrupted" in text
    true, observed, dropped, *_ = phantom.sample_labels(2000, seed=0, label_noise=0.1)
    nf = phantom.NIH_CXR_LT_CLASSES.index(phantom.NO_FINDING)
    n_findings = np.delete(true, nf, axis=1).sum(axis=1)
    assert (dropped[n_findings == 0] == -1).all()          # corruption only with a finding
    assert (dropped >= 0).sum() == 200
    # difficulty rises with the number of findings at fixed nuisance and severity
    q, d = phantom.quality_and_difficulty(np.ones(5), np.full(5, 0.03), np.zeros(5),
                                          np.full(5, 0.7), np.arange(5))
    assert np.all(np.diff(d[1:]) > 0) and d[0] == d[1]
    assert np.all(q == q[0])                               # quality ignores the findings


def _coverage_by_hand(n_pie, n_other, p0, ratio=1.0, n_sim=200, confidence=0.95, seed=0):
    """interval_coverage re-written from its docstring, through ``pies.exact_enrichment``."""
    rng = np.random.default_rng(seed)
    p1 = min(p0 * ratio, 1.0)
    true_or = (p1 / (1 - p1)) / (p0 / (1 - p0))
    pie = np.r_[[True] * n_pie, [False] * n_other]
    inside = []
    for _ in range(n_sim):
        a, c = rng.binomial(n_pie, p1), rng.binomial(n_other, p0)
        has = np.r_[[True] * a, [False] * (n_pie - a), [True] * c, [False] * (n_other - c)]
        r = pies.exact_enrichment(pie, has, confidence)
        if np.isfinite(r["ci_low"]):
            inside.append(r["ci_low"] <= true_or <= r["ci_high"])
    return float(np.mean(inside)) if inside else float("nan")


def test_interval_coverage_is_the_documented_simulation():
    """interval_coverage draws what its docstring states: a binomial count of positive PIEs at
    ratio x p0 and of positive others at p0 per draw, the share of defined exact intervals
    holding the true odds ratio; NaN for an impossible prevalence or an empty group."""
    assert pies.interval_coverage(6, 30, 0.2, 2.0, n_sim=40, confidence=0.8, seed=3) == \
        _coverage_by_hand(6, 30, 0.2, 2.0, n_sim=40, confidence=0.8, seed=3)
    for args in ((1, 20, 0.3), (5, 1, 0.3)):                 # one image in a group is enough
        assert np.isfinite(pies.interval_coverage(*args, n_sim=20))
    for args in ((0, 20, 0.3), (5, 0, 0.3), (5, 20, 0.0), (5, 20, 1.0), (5, 20, 0.5, 2.0),
                 (5, 20, 0.3, 0.0)):
        assert np.isnan(pies.interval_coverage(*args, n_sim=5)), args
    assert np.isnan(pies.interval_coverage(1, 1, 0.01, n_sim=3))   # no interval defined


def test_interval_coverage_defaults_are_200_draws_from_seed_0_at_95(monkeypatch):
    """By default 200 draws from seed 0 at 95%. exact_enrichment is replaced by a quick
    stand-in (its interval a function of the draw, undefined for some) so that the default
    run costs nothing; the real interval is checked against the hand-written loop above."""
    calls = []

    def stand_in(pie, has, confidence=0.95):
        calls.append((confidence, int(has[pie].sum()), int(has[~pie].sum())))
        a, c = calls[-1][1:]
        return {"ci_low": np.nan if a == 0 else 0.0, "ci_high": a / (c + 1) * 4}

    monkeypatch.setattr(pies, "exact_enrichment", stand_in)
    ours = pies.interval_coverage(5, 20, 0.3)
    draws, calls[:] = calls[:], []
    assert ours == _coverage_by_hand(5, 20, 0.3) and calls == draws
    assert len(draws) == 200 and {conf for conf, *_ in draws} == {0.95}
    assert 0 < ours < 1 and any(a == 0 for _, a, _ in draws)
    calls.clear()
    pies.interval_coverage(5, 20, 0.3, seed=1)
    assert calls != draws


def test_interval_coverage_function_simulates_at_least_nominal_coverage():
    assert pies.interval_coverage(100, 1900, 0.03, 3.0, n_sim=100) >= 0.9
    assert pies.interval_coverage(6, 125, 0.2, 1.0, n_sim=100) >= 0.9
    assert np.isnan(pies.interval_coverage(6, 125, 0.0))


def test_sensitivity_table_is_the_pooled_and_findings_rows_at_each_level():
    """Per level: enrichment_intervals' non-class rows, with that level's loss, spread ratio and
    guard from the damage table; levels default to the masks' own, sorted; given levels are
    rounded to 6 decimals to find their masks; the caller's confidence reaches the intervals."""
    rng = np.random.default_rng(4)
    labels = rng.uniform(size=(300, 5)) < [0.6, 0.6, 0.5, 0.5, 0.05]
    classes, rare = ["A", "B", "C", "D", "E"], ["E"]
    masks = {0.6: rng.uniform(size=300) < 0.1, 0.3: rng.uniform(size=300) < 0.1}
    damage = pd.DataFrame({"level": [0.3, 0.6], "loss": [0.1, 0.4],
                           "spread_ratio": [0.9, 0.5], "guard": [True, False]})
    table = pies.sensitivity_table(masks, labels, classes, rare, damage, confidence=0.9)
    expected = []
    for k, d in ((0.3, damage.iloc[0]), (0.6, damage.iloc[1])):
        e = pies.enrichment_intervals(masks[k], labels, classes, rare, confidence=0.9)
        e = e[e["kind"] != "class"].assign(level=k, loss=d["loss"],
                                           spread_ratio=d["spread_ratio"], guard=d["guard"])
        expected.append(e)
    expected = pd.concat(expected, ignore_index=True)[table.columns]
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert list(table.columns[:4]) == ["level", "loss", "spread_ratio", "guard"]
    assert set(table["kind"]) == {"rarest (pooled)", "findings"}
    one = pies.sensitivity_table(masks, labels, classes, rare, damage, levels=[0.6000004])
    assert one["level"].tolist() == [0.6, 0.6] and not one["guard"].any()
    assert table[["ci_low", "ci_high"]].notna().all().all()   # both rows have data


def test_q4_readers_claim_values_rule_and_text():
    """The readers' answers: their count, each variable's group means and P; the rule asks
    every reported direction (less agreement, lower quality, higher difficulty for PIEs); the
    text gives agreement as a share (not its complement); no responses: not resolved."""
    from types import SimpleNamespace

    readers = pd.DataFrame({"variable": ["quality", "agrees_with_label", "difficulty"],
                            "mean_a": [2.0, 0.6, 3.5], "mean_b": [3.0, 0.8, 2.5],
                            "p_kruskal": [0.01, 0.2, 0.04]})
    v = q4._q4_readers(SimpleNamespace(responses=pd.DataFrame({"x": range(12)}),
                                       readers=readers))
    assert v == {"n_answers": 12, "agrees_with_label_mean_a": 0.6,
                 "agrees_with_label_mean_b": 0.8, "agrees_with_label_p_kruskal": 0.2,
                 "quality_mean_a": 2.0, "quality_mean_b": 3.0, "quality_p_kruskal": 0.01,
                 "difficulty_mean_a": 3.5, "difficulty_mean_b": 2.5,
                 "difficulty_p_kruskal": 0.04}
    s = claims.Settings()
    assert q4._q4_readers_rule(v, s) is True
    assert q4._q4_readers_rule({**v, "difficulty_mean_a": 2.0}, s) is False
    assert q4._q4_readers_rule({**v, "agrees_with_label_mean_a": 0.9}, s) is False
    assert q4._q4_readers_rule({**v, "quality_mean_a": 3.0}, s) is False     # a tie: no direction
    fmt, p = claims.core.fmt, claims.core.format_p
    assert q4._q4_readers_text(v) == (
        f"agreement 60.0% vs 80.0% ({p(0.2)}); quality {fmt(2.0)} vs {fmt(3.0)} ({p(0.01)}); "
        f"difficulty {fmt(3.5)} vs {fmt(2.5)} ({p(0.04)})")
    none = q4._q4_readers(SimpleNamespace(responses=None, readers=None))
    assert none["n_answers"] == 0 and np.isnan(none["quality_mean_a"])
    assert q4._q4_readers_rule(none, s) is None
    assert q4._q4_readers_text(none) == "no human responses included in this build"


def test_stratified_truth_at_needs_the_truth_and_the_findings_count():
    """The paper's level reads the evidence's own PIEs; another level its mask; without a
    ground truth or without the findings count in the metadata: None."""
    from pathlib import Path
    from types import SimpleNamespace
    from prunecxr.store import load
    ev = claims.Evidence(load(Path(__file__).parent / "fixtures" / "smoke_results"))
    at_paper = q4.stratified_truth_at(ev, ev.settings.sparse + 1e-8)
    direct = pies.stratified_truth(ev.store.meta.reset_index(drop=True), ev.pies)
    pd.testing.assert_frame_equal(at_paper, direct)
    own = claims.Evidence(ev.store)
    own.__dict__["pies"] = np.roll(ev.pies, 1)          # whatever PIEs the evidence holds
    pd.testing.assert_frame_equal(q4.stratified_truth_at(own, ev.settings.sparse),
                                  pies.stratified_truth(ev.store.meta, np.roll(ev.pies, 1)))
    other = max(k for k in q4.pie_levels(ev)["masks"] if not np.isclose(k, ev.settings.sparse))
    pd.testing.assert_frame_equal(q4.stratified_truth_at(ev, other), pies.stratified_truth(
        ev.store.meta.reset_index(drop=True), q4.pie_levels(ev)["masks"][other]))
    pd.testing.assert_frame_equal(q4.stratified_truth_at(ev, other + 4e-7),   # 6 decimals
                                  q4.stratified_truth_at(ev, other))
    no_count = SimpleNamespace(truth=ev.truth, settings=ev.settings, store=SimpleNamespace(
        meta=ev.store.meta.drop(columns="n_findings")))
    assert q4.stratified_truth_at(no_count, other) is None


@pytest.mark.parametrize("settings, level_ok", [({}, True), ({"min_spread": 10.0}, False),
                                                ({"pie_loss": 0.999}, False)],
                         ids=["default", "guard-fails", "not-reached"])
def test_q4_truth_and_many_values_from_their_parts(settings, level_ok):
    """Q4's ground-truth claim on the frozen fixture, every value from its parts: the PIE
    counts, the unadjusted group means and how many of the readers' differences they confirm,
    and, where the damage rule's level passes its guard, the stratified table at that level;
    the 4+ findings claim reads the last row of the findings table."""
    from pathlib import Path
    from prunecxr.store import load
    ev = claims.Evidence(load(Path(__file__).parent / "fixtures" / "smoke_results"),
                         claims.Settings(**settings))
    v = q4._q4_truth(ev)
    assert (v["n_pies"], v["n_other"]) == (int(ev.pies.sum()), int((~ev.pies).sum()))
    assert v["has_truth"] is True
    truth = ev.truth.set_index("variable")
    for var in q4.TRUTH_WORDS:
        for stat in ("mean_a", "mean_b", "p_kruskal"):
            assert v[f"{var}_{stat}"] == pytest.approx(truth.loc[var, stat], nan_ok=True)
    assert v["n_truth_holds_paper"] == sum(ok for _, ok, _ in q4.truth_items(v, ev.settings.level))
    assert bool(v["k_reached"] and v["k_guard"]) is level_ok
    assert v["has_strata"] is level_ok
    if level_ok:
        strat = q4.stratified_truth_at(ev, v["k_rule"]).set_index("variable")
        for var in q4.STRATIFIED:
            assert v[f"s_{var}_effect"] == pytest.approx(strat.loc[var, "effect"], nan_ok=True)
            assert v[f"s_{var}_p"] == pytest.approx(strat.loc[var, "p"], nan_ok=True)
        assert v["n_truth_holds"] == sum(bool(o) for _, o, _ in q4.stratified_items(
            v, ev.settings.level))
    else:
        assert all(np.isnan(v[f"s_{var}_p"]) for var in q4.STRATIFIED)
        assert v["n_truth_holds"] == 0
    assert v["unresolved_text"] == ("On the phantom's ground truth the comparison is not "
                                    f"resolved: {q4.level_text(v)}.")
    many = q4._q4_many(ev)
    last = ev.enrichment[1].iloc[-1]
    assert many["label"] == str(last["findings"])
    assert many["ratio"] == pytest.approx(float(last["ratio"]), nan_ok=True)


def test_q4_truth_counts_the_differences_that_hold():
    """How many of the readers' differences hold, by the paper's unadjusted test and within
    strata at the rule's level, each counted from its items (here all three of each)."""
    ev = _fixture_evidence()
    ev.__dict__["truth"] = pd.DataFrame({
        "variable": ["agrees_with_label", "quality", "difficulty"], "mean_a": [0.7, 0.4, 0.8],
        "mean_b": [0.9, 0.6, 0.5], "p_kruskal": [0.01, 0.01, 0.01]})
    k = round(float(q4.pie_levels(ev)["rule"]["level"]), 6)
    ev.memo(f"q4_truth_{k}", pd.DataFrame, {
        "variable": list(q4.STRATIFIED), "effect": [2.5, -0.1, 0.1], "ci_low": [1.5, -0.2, 0.05],
        "ci_high": [4.0, -0.05, 0.2], "p": [0.001] * 3})
    v = q4._q4_truth(ev)
    assert v["has_strata"] and (v["n_truth_holds_paper"], v["n_truth_holds"]) == (3, 3)


class _GridStore:
    """A store with the shared sparsity grid only (no levels()): two seeds' outputs."""

    sparsities = np.array([0.05, 0.1, 0.4, 0.7])

    def __init__(self):
        rng = np.random.default_rng(8)
        dense = rng.random((60, 4))
        self.preds = {seed: np.stack([dense * 0.9, dense, dense * 0.5 + 0.1 * rng.random((60, 4)),
                                      rng.random((60, 4))]) for seed in (0, 1)}
        self.labels = _labels(60, 4)

    def method_seeds(self, method):
        return [0, 1]

    def predictions(self, method, seed):
        return self.preds[seed]


class _LevelStore(_GridStore):
    """A method on levels of its own; the sparsity grid is another one."""

    sparsities = np.array([0.0, 0.3, 0.6, 0.9])

    def levels(self, method):
        return np.array([0.05, 0.1, 0.4, 0.7])


@pytest.mark.parametrize("store_class", [_GridStore, _LevelStore])
def test_pie_levels_on_the_methods_levels_with_a_dense_level_not_first(store_class):
    """Q4's levels are store.levels(method) where the store has that, else its sparsity grid;
    the dense level, loss, guard and PIE share reach the damage table, rule and masks (a level
    below the dense one that loses much is not the rule's)."""
    from types import SimpleNamespace
    store = store_class()
    s = claims.Settings(method="m", dense=0.1, pie_loss=0.2, min_spread=0.05, fraction=0.1)
    levels = np.array([0.05, 0.1, 0.4, 0.7])
    maps = pd.DataFrame({"method": "m", "seed": 0, "sparsity": levels,
                         "map": [0.3, 0.65, 0.5, 0.3]})
    lv = q4._levels(SimpleNamespace(settings=s, store=store, maps=maps))
    probs = pies.mean_probabilities(store, "m", list(levels))
    table = pies.damage_table(maps, probs, levels, store.labels, method="m", dense=0.1,
                              min_spread=0.05)
    pd.testing.assert_frame_equal(lv["table"], table)
    assert lv["rule"] == pies.damage_level(table, 0.2, dense=0.1) and lv["rule"]["level"] == 0.4
    masks = pies.pies_at_levels(probs, levels, dense=0.1, fraction=0.1)
    assert sorted(lv["masks"]) == [0.05, 0.4, 0.7]
    assert all(np.array_equal(lv["masks"][k], masks[k]) for k in masks)


def test_q4_truth_without_a_ground_truth():
    from pathlib import Path
    from prunecxr.store import load
    ev = claims.Evidence(load(Path(__file__).parent / "fixtures" / "smoke_results"))
    ev.__dict__["truth"] = None                       # a dataset without per-image truth
    v = q4._q4_truth(ev)
    assert v["has_truth"] is False and v["has_strata"] is False
    assert v["n_truth_holds_paper"] == 0 and v["n_truth_holds"] == 0
    assert np.isnan(v["quality_mean_a"]) and np.isnan(v["s_quality_p"])
    assert v["unresolved_text"] == ("This dataset has no ground truth to check the "
                                    "radiologists' impressions against.")


def test_cmh_reads_0_1_arrays_as_booleans_and_names_its_keys_when_undefined():
    tables = [np.array([[4, 6], [10, 40]]), np.array([[3, 2], [8, 20]])]
    pie, x, s = _data(tables)
    as_bool = pies.cmh_test(x, pie, s)
    assert pies.cmh_test(x.astype(int), pie.astype(float), s) == as_bool
    assert pies.cmh_test(x.astype(float), pie, s) == as_bool       # a 0/1 float column
    none = pies.cmh_test(x, pie, np.arange(len(x)))        # every stratum a single image
    assert list(none) == ["odds_ratio", "ci_low", "ci_high", "statistic", "p", "n_strata"]
    assert none["n_strata"] == 0 and all(np.isnan(none[k]) for k in list(none)[:5])


def test_stratified_truth_rows_from_their_tests():
    """One row per variable from the test it names, with the unadjusted Kruskal-Wallis P and
    the group means; PIEs as 0/1 read as booleans; all-equal values give an undefined P."""
    rng = np.random.default_rng(6)
    n = 400
    meta = pd.DataFrame({"n_findings": rng.integers(0, 7, n),
                         "label_corrupted": (rng.random(n) < 0.2).astype(float),
                         "quality": rng.normal(0, 1, n), "difficulty": np.full(n, 0.5)})
    pie = rng.random(n) < 0.1
    out = pies.stratified_truth(meta, pie.astype(int))
    assert list(out.columns) == ["variable", "test", "effect", "ci_low", "ci_high", "p",
                                 "p_unadjusted", "mean_pie", "mean_other", "n_strata"]
    strata = pies.strata_of(meta["n_findings"])
    assert set(strata) == {"0", "1", "2", "3", "4+"}
    rows = out.set_index("variable")
    r = pies.cmh_test(meta["label_corrupted"] > 0.5, pie, strata)
    assert rows.loc["label_corrupted", "test"] == "Cochran-Mantel-Haenszel"
    assert rows.loc["label_corrupted", "effect"] == pytest.approx(r["odds_ratio"])
    assert rows.loc["label_corrupted", "n_strata"] == r["n_strata"]
    q = pies.adjusted_difference(meta["quality"].to_numpy(), pie, strata)
    assert rows.loc["quality", "test"] == "OLS + C(stratum), HC3"
    assert (rows.loc["quality", "effect"], rows.loc["quality", "p"]) == pytest.approx(
        (q["difference"], q["p"]))
    assert rows.loc["quality", "p_unadjusted"] == pytest.approx(
        st.kruskal(meta["quality"][pie], meta["quality"][~pie]).pvalue)
    assert rows.loc["quality", "mean_pie"] == pytest.approx(meta["quality"][pie].mean())
    assert rows.loc["quality", "mean_other"] == pytest.approx(meta["quality"][~pie].mean())
    assert np.isnan(rows.loc["difficulty", "p_unadjusted"])       # every value the same
    three = pies.stratified_truth(meta, pie, max_findings=3).set_index("variable")
    assert three.loc["quality", "effect"] == pytest.approx(pies.adjusted_difference(
        meta["quality"].to_numpy(), pie, pies.strata_of(meta["n_findings"], 3))["difference"])


def _truth_values(**change):
    v = {"agrees_with_label_mean_a": 0.7, "agrees_with_label_mean_b": 0.9,
         "agrees_with_label_p_kruskal": 0.01, "quality_mean_a": 0.4, "quality_mean_b": 0.6,
         "quality_p_kruskal": 0.2, "difficulty_mean_a": 0.8, "difficulty_mean_b": 0.5,
         "difficulty_p_kruskal": 0.001,
         "s_label_corrupted_effect": 2.5, "s_label_corrupted_ci_low": 1.2,
         "s_label_corrupted_ci_high": 5.0, "s_label_corrupted_p": 0.02,
         "s_quality_effect": -0.1, "s_quality_ci_low": -0.3, "s_quality_ci_high": 0.1,
         "s_quality_p": 0.04, "s_difficulty_effect": 0.0, "s_difficulty_ci_low": -0.2,
         "s_difficulty_ci_high": 0.2, "s_difficulty_p": 0.01}
    return {**v, **change}


def test_truth_and_stratified_items_whole():
    """Each reported difference: its words, whether it holds (claimed direction with P below
    the level; an effect exactly at the null does not) and its evidence text."""
    from prunecxr.claims.core import fmt, format_p
    v = _truth_values()
    assert q4.truth_items(v, 0.05) == [
        ("more label noise", True, "30.0% of PIEs have a corrupted label against 10.0% of other "
                                   f"images (Kruskal-Wallis {format_p(0.01)})"),
        ("lower image quality", False, f"mean quality 0.40 against 0.60 (Kruskal-Wallis "
                                       f"{format_p(0.2)})"),
        ("higher diagnosis difficulty", True, f"mean difficulty 0.80 against 0.50 "
                                              f"(Kruskal-Wallis {format_p(0.001)})")]
    assert [ok for _, ok, _ in q4.truth_items(v, 0.01)] == [False, False, True]   # P < level
    assert q4.stratified_items(v, 0.05) == [
        ("more label noise", True, f"Mantel-Haenszel OR {fmt(2.5)} ({fmt(1.2)} to {fmt(5.0)}), "
                                   f"CMH {format_p(0.02)}"),
        ("lower image quality", True, f"adjusted difference -0.100 (-0.300 to +0.100), "
                                      f"{format_p(0.04)}"),
        ("higher diagnosis difficulty", False, f"adjusted difference +0.000 (-0.200 to +0.200), "
                                               f"{format_p(0.01)}")]                # at the null
    assert [ok for _, ok, _ in q4.stratified_items(v, 0.02)] == [False, False, False]
    below = _truth_values(s_label_corrupted_effect=0.5, s_label_corrupted_ci_low=np.nan)
    (_, ok, text), *_ = q4.stratified_items(below, 0.05)
    assert ok is False and text == f"Mantel-Haenszel OR {fmt(0.5)}, CMH {format_p(0.02)}"
    undefined = _truth_values(s_quality_p=np.nan)
    items = q4.stratified_items(undefined, 0.05)
    assert items[1] == ("lower image quality", None, "not defined (no stratum holds both PIEs "
                                                     "and other images with both values)")
    assert items[2][1] is False                                  # the loop goes on after it


def test_pie_levels_pass_the_settings_through():
    """The damage table, rule and PIE masks of the evidence's method at its dense level, loss,
    guard and PIE share, as the analysis functions give them; computed once."""
    from pathlib import Path
    from prunecxr.store import load
    store = load(Path(__file__).parent / "fixtures" / "smoke_results")
    s = claims.Settings(method="random", pie_loss=0.1, min_spread=0.05, fraction=0.1, level=0.1)
    ev = claims.Evidence(store, s)
    lv = q4.pie_levels(ev)
    levels = np.asarray(store.levels("random"), dtype=float)
    probs = pies.mean_probabilities(store, "random", list(levels))
    table = pies.damage_table(ev.maps, probs, levels, store.labels, method="random",
                              dense=s.dense, min_spread=0.05)
    pd.testing.assert_frame_equal(lv["table"], table)
    assert lv["rule"] == pies.damage_level(table, 0.1, dense=s.dense)
    masks = pies.pies_at_levels(probs, levels, dense=s.dense, fraction=0.1)
    assert set(lv["masks"]) == set(masks)
    assert all(np.array_equal(lv["masks"][k], masks[k]) for k in masks)
    assert q4.pie_levels(ev) is lv and "q4_levels" in ev.__dict__["_memo"]
    k = sorted(masks)[-1]
    got = q4.intervals_at(ev, k + 4e-7)                         # levels rounded to 6 decimals
    pd.testing.assert_frame_equal(got, pies.enrichment_intervals(
        masks[k], store.labels, store.classes, ev.rare_classes, confidence=1 - s.level))
    assert f"q4_intervals_{k}" in ev.__dict__["_memo"]


def test_q4_truth_texts_and_rule_whole():
    from prunecxr.claims.core import fmt, format_p
    v = _truth_values(has_truth=True, has_strata=True, k_reached=True, k_guard=True,
                      k_rule=0.6, pie_loss=0.2, k_loss=0.25, k_spread_ratio=0.5, min_spread=0.1)
    s = claims.Settings()
    level = q4.level_text(v)
    assert q4._q4_truth_sound(v) == (
        f"PIEs {level}; within strata of the number of findings: "
        + "; ".join(f"{w}: {t}" for w, _, t in q4.stratified_items(v, 0.05)))
    assert q4._q4_truth_rule(v, s) is False                      # difficulty sits at the null
    assert q4._q4_truth_rule(_truth_values(**{**v, "s_difficulty_effect": 0.1}), s) is True
    assert q4._q4_truth_rule({**v, "s_quality_p": np.nan}, s) is None
    for off in ({"has_strata": False}, {"k_guard": False}, {"has_truth": False}):
        assert q4._q4_truth_rule({**v, **off}, s) is None
    assert q4._q4_truth_sound({**v, "has_strata": False}) == level
    assert q4._q4_truth_sound({**v, "has_truth": False}) == (
        "no per-image ground truth in this dataset")
    assert q4._q4_truth_text(v) == (
        f"labels corrupted 30.0% vs 10.0% ({format_p(0.01)}); quality {fmt(0.4)} vs "
        f"{fmt(0.6)} ({format_p(0.2)}); difficulty {fmt(0.8)} vs {fmt(0.5)} ({format_p(0.001)})")
    assert q4._q4_truth_text({**v, "has_truth": False}) == (
        "no per-image ground truth in this dataset")


# ------------------------------------------------ Q4's tables whole, against direct computation

def _q4_data(n=300, seed=9):
    rng = np.random.default_rng(seed)
    classes = ["A", "B", "C", "D", "E", "No Finding"]
    labels = rng.random((n, 6)) < [0.6, 0.55, 0.5, 0.5, 0.04, 0.0]
    labels[:, 5] = ~labels[:, :5].any(axis=1)
    return classes, labels, rng.random(n) < 0.1


def test_enrichment_intervals_against_exact_enrichment_row_by_row():
    """Per class, pooled rarest, and images with at least 4 findings (No Finding not counted),
    each exact_enrichment of the PIEs, with the confidence and the verdict of its interval;
    0/1 labels read as booleans; the defaults are the documented ones."""
    classes, labels, pie = _q4_data()
    got = pies.enrichment_intervals(pie, labels, classes, ["E", "D"], confidence=0.9)
    n_find = labels[:, :5].sum(axis=1)
    groups = [labels[:, j] for j in range(6)] + [labels[:, [4, 3]].any(axis=1), n_find >= 4]
    assert got["group"].tolist() == classes + ["any of the 2 rarest", "4+ findings"]
    assert got["kind"].tolist() == ["class"] * 6 + ["rarest (pooled)", "findings"]
    for (_, row), has in zip(got.iterrows(), groups):
        e = pies.exact_enrichment(pie, has, 0.9)
        assert row["pie_with"] == e["pie_with"] and row["other_with"] == e["other_with"]
        assert row["ci_low"] == pytest.approx(e["ci_low"], nan_ok=True)
        assert row["over"] == pies.enrichment_verdict(e["ci_low"], e["ci_high"])
    assert (got["confidence"] == 0.9).all()
    assert (n_find == 4).any() and (n_find > 4).any()          # the boundary is in the data
    pd.testing.assert_frame_equal(
        pies.enrichment_intervals(pie.astype(int), labels.astype(int), classes, ["E"]),
        pies.enrichment_intervals(pie, labels, classes, ["E"], no_finding="No Finding",
                                  max_findings=4, confidence=0.95))
    assert pies.findings_count(labels, classes).tolist() == n_find.tolist()
    assert pies.findings_count(labels, classes, no_finding="A").tolist() == (
        labels[:, 1:].sum(axis=1).tolist())


def test_enrichment_intervals_count_findings_as_asked_and_give_each_rows_verdict():
    """The findings row counts the positive classes other than ``no_finding`` (default "No
    Finding") against ``max_findings``; ``over`` is each row's verdict, here on a planted
    over-representation (True) and on a tight interval below the margin (False)."""
    classes, labels, pie = _q4_data()
    for kw, count, m in (({}, labels[:, :5].sum(axis=1), 1),
                         ({"no_finding": "A"}, labels[:, 1:].sum(axis=1), 2)):
        row = pies.enrichment_intervals(pie, labels, classes, ["E"], max_findings=m,
                                        **kw).set_index("kind").loc["findings"]
        e = pies.exact_enrichment(pie, count >= m)
        assert (row["group"], row["pie_with"], row["other_with"]) == (
            f"{m}+ findings", e["pie_with"], e["other_with"])
        assert e["pie_with"] != pies.exact_enrichment(pie, labels.sum(axis=1) >= m)["pie_with"]
    rng = np.random.default_rng(11)
    pie = np.arange(1000) < 100
    labels = np.c_[rng.random(1000) < np.where(pie, 0.3, 0.05), rng.random(1000) < 0.5]
    got = pies.enrichment_intervals(pie, labels, ["rare", "common"], ["rare"])
    assert got["over"].tolist() == [True, False, True, None]    # no image has 4+ findings
    assert got["over"].tolist() == [pies.enrichment_verdict(lo, hi)
                                    for lo, hi in zip(got["ci_low"], got["ci_high"])]


def test_interval_text_whole():
    row = {"pie_with": 3, "pie_without": 3, "other_with": 10, "other_without": 115,
           "odds_ratio": 11.2, "ci_low": 1.73, "ci_high": 70.4, "confidence": 0.9}
    assert pies.interval_text(row) == (
        "3 of 6 PIEs vs 10 of 125 others; OR 11 (90% exact CI 1.7 to 70)")
    assert pies.interval_text({**row, "odds_ratio": 2.5, "ci_high": np.inf}) == (
        "3 of 6 PIEs vs 10 of 125 others; OR 2.5 (90% exact CI 1.7 to ∞)")
    assert pies.interval_text({**row, "odds_ratio": 123.4, "ci_high": 2345.6}) == (
        "3 of 6 PIEs vs 10 of 125 others; OR 123 (90% exact CI 1.7 to 2346)")  # no exponent
    no_conf = {k: v for k, v in row.items() if k != "confidence"}
    assert "(95% exact CI" in pies.interval_text(no_conf)
    assert pies.interval_text({**row, "ci_low": np.nan}) == (
        "3 of 6 PIEs vs 10 of 125 others; no interval (no image has it, or no PIE)")


def test_damage_table_whole_and_its_undefined_cases():
    rng = np.random.default_rng(3)
    dense = rng.uniform(size=(200, 4))
    probs = np.stack([dense, dense * 0.5, dense * 0.0 + 0.3]).astype(np.float32)
    levels = [0.0, 0.3, 0.6]
    maps = pd.DataFrame({"method": "l1", "seed": [0, 1, 0, 1, 0, 1],
                         "sparsity": [0.0, 0.0, 0.3, 0.3, 0.6, 0.6],
                         "map": [0.64, 0.66, 0.5, 0.52, 0.3, 0.3]})
    labels = _labels()
    table = pies.damage_table(maps, probs, levels, labels, min_spread=0.5)
    assert list(table.columns) == ["level", "median_map", "chance", "loss", "spread",
                                   "spread_ratio", "guard"]
    np.testing.assert_allclose(table["median_map"], [0.65, 0.51, 0.3])
    assert (table["chance"] == pies.chance_map(labels)).all()
    np.testing.assert_array_equal(table["spread"], [pies.output_spread(p.astype(float))
                                                    for p in probs])
    assert table["guard"].tolist() == [True, True, False]       # a ratio of exactly 0.5 passes
    for dense_map in (0.25, 0.2):       # dense mAP at or below chance (0.25): no loss, not inf
        at_chance = pies.damage_table(
            maps.assign(map=np.where(maps["sparsity"] == 0, dense_map, 0.22)), probs, levels,
            labels)
        assert at_chance["loss"].dtype == float and at_chance["loss"].isna().all()
    # constant dense outputs: no spread to compare the others' with (NaN ratio, guard refused)
    flat = pies.damage_table(maps, probs[[2, 0, 1]], levels, labels, min_spread=0.01)
    assert flat["spread"].iloc[0] == 0 and (flat["spread"].iloc[1:] > 0).all()
    assert flat["spread_ratio"].isna().all() and not flat["guard"].any()
    gap = pies.damage_table(maps[maps["sparsity"] != 0.3], probs, levels, labels)
    np.testing.assert_allclose(gap["median_map"], [0.65, np.nan, 0.3])   # no mAP at 0.3: NaN
    np.testing.assert_allclose(gap["loss"], [0.0, np.nan, 0.35 / 0.4])
    with pytest.raises(ValueError) as caught:
        pies.damage_table(maps, probs[:2], levels, labels)
    assert str(caught.value) == "probs has 2 levels, levels has 3"
    with pytest.raises(ValueError) as caught:
        pies.damage_table(maps, probs, levels, labels, dense=0.1)
    assert str(caught.value) == "dense=0.1 is not among the method's levels [0.0, 0.3, 0.6]"


def test_damage_level_edges_and_defaults():
    table = pd.DataFrame({"level": [0.0, 0.3, 0.6], "loss": [0.3, 0.2, 0.5],
                          "spread_ratio": [1.0, 0.4, 0.05], "guard": [True, True, False]})
    assert pies.damage_level(table)["level"] == 0.3            # 0.2 by default, inclusive
    assert pies.damage_level(table, 0.21)["level"] == 0.6
    assert pies.damage_level(table, 0.2, dense=0.3)["level"] == 0.6   # the dense level itself never
    near = table.assign(level=[0.0, 1e-9, 0.6])                 # 1e-9 above dense: still dense
    assert pies.damage_level(near, 0.2)["level"] == 0.6
    none = pies.damage_level(table, 0.9)
    assert none["reached"] is False and none["guard"] is False
    assert set(none) == {"level", "loss", "spread_ratio", "guard", "reached"}
    assert all(np.isnan(none[k]) for k in ("level", "loss", "spread_ratio"))


def test_chance_map_counts_classes_with_one_positive_and_none_gives_nan():
    y = np.zeros((10, 2), dtype=int)
    y[3, 0] = 1
    assert pies.chance_map(y) == pytest.approx(0.1)
    assert np.isnan(pies.chance_map(np.zeros((10, 2))))


def test_pies_at_levels_default_share_and_output_spread_in_float64():
    rng = np.random.default_rng(1)
    probs = rng.random((3, 100, 4)).astype(np.float32)
    masks = pies.pies_at_levels(probs, [0.0, 0.5, 0.9])
    assert sorted(masks) == [0.5, 0.9] and all(m.sum() == 5 for m in masks.values())
    assert pies.output_spread(probs[0]) == pies.output_spread(probs[0].astype(np.float64))


def _fixture_evidence(**settings):
    from pathlib import Path
    from prunecxr.store import load
    return claims.Evidence(load(Path(__file__).parent / "fixtures" / "smoke_results"),
                           claims.Settings(**settings))


def test_q4_rare_values_and_ratio_text():
    """The rarest classes' prevalence ratios: the range over finite ones, how many are only
    among PIEs (inf) or absent (NaN); the sound statistic's row at the rule's level."""
    ev = _fixture_evidence()
    rare = list(ev.rare_classes)
    assert len(rare) == 5
    by_class = pd.DataFrame({"class": rare + ["x"], "ratio": [2.0, np.inf, np.nan, 1.5, 4.0, 9]})
    ev.__dict__["enrichment"] = (by_class, None)
    v = q4._q4_rare(ev)
    assert v["ratios"][:2] == [2.0, np.inf] and np.isnan(v["ratios"][2])
    assert (v["rare_classes"], v["n_rare"], v["n_defined"], v["n_only_pies"]) == (
        ", ".join(rare), 5, 4, 1)
    assert (v["ratio_min"], v["ratio_max"], v["finite_min"]) == (1.5, 4.0, 1.5)
    assert q4.rare_ratio_text(v) == (
        "1.5 to 4.0 times (1 of them only among PIEs; 1 absent from the test set)")
    assert q4.rare_ratio_text({**v, "finite_min": 4.0, "n_only_pies": 0, "n_defined": 5}) == (
        "4.0 times")
    row = q4.intervals_at(ev, v["k_rule"]).set_index("kind").loc["rarest (pooled)"]
    assert v["s_pie_with"] == row["pie_with"] and v["s_group"] == str(row["group"])
    assert v["s_odds_ratio"] == pytest.approx(float(row["odds_ratio"]), nan_ok=True)
    assert v["s_text"] == pies.interval_text(row)
    ev.__dict__["enrichment"] = (by_class.assign(ratio=[np.inf, np.inf, np.nan, np.nan,
                                                         np.nan, 1.0]), None)
    none = q4._q4_rare(ev)
    assert np.isinf(none["ratio_min"]) and np.isnan(none["ratio_max"])
    assert np.isnan(none["finite_min"])
    assert q4.rare_ratio_text(none) == (
        "an undefined number of times (2 of them only among PIEs; 3 absent from the test set)")
    ev.__dict__["enrichment"] = (by_class.assign(ratio=np.nan), None)
    assert np.isnan(q4._q4_rare(ev)["ratio_min"])


def test_q4_rule_values_level_text_and_sound_in_each_case():
    ev = _fixture_evidence()
    v = q4._rule_values(ev)
    table = q4.pie_levels(ev)["table"]
    assert (v["pie_loss"], v["min_spread"]) == (ev.settings.pie_loss, ev.settings.min_spread)
    assert v["paper_spread_ratio"] == pytest.approx(
        float(table.loc[np.isclose(table["level"], ev.settings.sparse), "spread_ratio"].iloc[0]))
    assert np.isnan(q4._spread_at(ev, 0.123))
    assert q4.level_text(v) == (
        f"at k = {v['k_rule']:.2f}, the lowest level losing 20% of the dense mAP above chance "
        f"({v['k_loss']:.0%} lost); spread {v['k_spread_ratio']:.2f} of the dense (guard passed)")
    guard = {**v, "k_guard": False}
    assert q4.level_text(guard) == (
        f"at k = {v['k_rule']:.2f}, the lowest level losing 20% of the dense mAP above chance "
        f"({v['k_loss']:.0%} lost), the pruned outputs barely vary between images (spread "
        f"{v['k_spread_ratio']:.3f} of the dense, below 0.1), so its PIEs are not analysed "
        "(guard)")
    assert q4.level_text({**v, "k_reached": False}) == (
        "no level of the grid loses 20% of the dense mAP above chance (damage rule)")
    row = {**v, "s_group": "any of the 5 rarest", "s_text": "3 of 6 PIEs"}
    assert q4._enrichment_sound(row) == f"{q4.level_text(v)}: any of the 5 rarest: 3 of 6 PIEs"
    assert q4._enrichment_sound({**row, "k_guard": False}) == q4.level_text(guard)
    far = q4._row_values(_fixture_evidence(pie_loss=0.999), "findings")
    assert far["k_reached"] is False and (far["s_text"], far["s_group"]) == ("", "")
    assert np.isnan(far["s_odds_ratio"])
