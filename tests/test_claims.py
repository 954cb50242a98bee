"""The claims registry: each rule on values whose answer is known, each claim's values equal to
the analysis it summarises (on the frozen smoke results), one P-value formatter, and the
verdict table's shape, sources and HTML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prunecxr import claims, paper
from prunecxr.analysis import cooccurrence, forgetting, overall
from prunecxr.claims import FAILS, HOLDS, UNRESOLVED
from prunecxr.store import load

FROZEN = Path(__file__).parent / "fixtures" / "smoke_results"


@pytest.fixture(scope="module")
def evidence():
    return claims.Evidence(load(FROZEN), claims.Settings())


def decide(key: str, **values) -> str:
    """The verdict of the paper's own rule on ``values`` (the sound rules are tested with
    their statistics, in test_claims_q1, test_sound_q2_q3 and test_q4_sound)."""
    claim = claims.CLAIMS[key]
    return claims.core._verdict((claim.paper_rule or claim.rule)(values, claims.Settings()))


def paper_decide(key: str, **values) -> str:
    """The verdict of the paper's own rule (``paper_rule``) on the paper's statistic."""
    claim = claims.CLAIMS[key]
    return claims.core._verdict((claim.paper_rule or claim.rule)(values, claims.Settings()))


# --------------------------------------------------------------------- rules, known answers

@pytest.mark.parametrize("first_drop, verdict", [(0.65, HOLDS), (0.6, HOLDS), (0.3, FAILS),
                                                 (np.nan, HOLDS)])
def test_q1_first_drop_paper_rule(first_drop, verdict):
    # the paper's rule on the paper's statistic; the sound rule: tests/test_claims_q1.py
    paper_rule = claims.CLAIMS["q1_first_drop"].paper_rule
    ok = paper_rule({"first_drop": first_drop, "welch_ok": True}, claims.Settings())
    assert claims.core._verdict(ok) == verdict


@pytest.mark.parametrize("rho, p, verdict", [(0.6, 0.004, HOLDS), (0.6, 0.2, FAILS),
                                             (-0.6, 0.001, FAILS), (np.nan, np.nan, UNRESOLVED)])
def test_positive_correlation_claims(rho, p, verdict):
    for key in ("q2_first_drop", "q2_final_change", "q3_dlogfreq"):
        assert decide(key, n=20, r=rho, p_r=p, rho=rho, p_rho=p) == verdict


def test_negative_correlation_claim_needs_the_negative_sign():
    assert decide("q3_iou", n=190, r=-0.4, p_r=0.001, rho=-0.4, p_rho=0.001) == HOLDS
    assert decide("q3_iou", n=190, r=0.4, p_r=0.001, rho=0.4, p_rho=0.001) == FAILS


def test_q3_interaction_and_q4_rules():
    assert decide("q3_ols", b3=-0.31, p3=0.005) == HOLDS
    assert decide("q3_ols", b3=-0.31, p3=0.3) == FAILS
    assert decide("q3_ols", b3=np.nan, p3=np.nan) == UNRESOLVED


def test_q4_paper_rules():
    """Q4: the paper's rules here; the sound rules in tests/test_q4_sound.py."""
    assert paper_decide("q4_rare", ratio_min=1.2) == HOLDS
    assert paper_decide("q4_rare", ratio_min=0.0) == FAILS
    assert paper_decide("q4_rare", ratio_min=np.nan) == UNRESOLVED
    assert paper_decide("q4_many", ratio=np.inf) == HOLDS
    assert paper_decide("q4_many", ratio=np.nan) == UNRESOLVED
    none = {f"{v}_{s}": np.nan for v in claims.q4.TRUTH_WORDS
            for s in ("mean_a", "mean_b", "p_kruskal")}
    assert decide("q4_readers", n_answers=0, **none) == UNRESOLVED
    assert decide("q4_truth", has_truth=False, **none) == UNRESOLVED


def test_q4_truth_needs_every_difference_in_its_direction_and_significant():
    v = {"has_truth": True, "agrees_with_label_mean_a": 0.8, "agrees_with_label_mean_b": 0.95,
         "agrees_with_label_p_kruskal": 0.001, "quality_mean_a": 0.4, "quality_mean_b": 0.5,
         "quality_p_kruskal": 0.01, "difficulty_mean_a": 0.7, "difficulty_mean_b": 0.5,
         "difficulty_p_kruskal": 0.02}
    assert paper_decide("q4_truth", **v) == HOLDS
    assert paper_decide("q4_truth", **{**v, "quality_mean_a": 0.6}) == FAILS      # wrong direction
    assert paper_decide("q4_truth", **{**v, "difficulty_p_kruskal": 0.3}) == FAILS  # not significant


# ------------------------------------------------------- values equal the analysis they summarise

def test_claims_compute_what_the_analysis_computes(evidence):
    store = evidence.store
    found = claims.evaluate(evidence)
    assert list(found) == list(claims.PAPER_CLAIMS)
    maps = overall.map_per_model(store.ap_table(store.grid_methods))
    expected = overall.first_significant_drop(overall.welch_by_sparsity(maps, alpha=0.001))
    got = found["q1_first_drop"].values["first_drop"]
    assert (np.isnan(got) and np.isnan(expected)) or got == expected
    weights = store.prunable_weights(store.seeds[0])
    assert found["q1_weights"].values["fraction_below"] == overall.fraction_below(weights, 0.01)
    curves = forgetting.forgettability_curves(store.ap_table(["l1"]))
    _, corr = forgetting.forgetting_summary(curves, store.train_counts)
    row = corr.set_index("outcome").loc["first_drop"]
    assert found["q2_first_drop"].values["rho"] == pytest.approx(row["rho"], nan_ok=True)
    pairs = cooccurrence.class_pair_table(curves, store.labels, store.classes)
    iou = cooccurrence.fcd_correlations(pairs).set_index("x").loc["iou4"]
    assert found["q3_iou"].values["rho"] == pytest.approx(iou["rho"], nan_ok=True)
    for result in found.values():
        assert result.verdict in claims.VERDICTS and result.build and result.sentence


def test_verdict_table_rows_sources_and_html(evidence):
    found = claims.evaluate(evidence)
    table = claims.verdict_table(found)
    assert list(table.columns) == list(claims.TABLE_COLUMNS)
    assert list(table["key"]) == list(claims.PAPER_CLAIMS)
    for key, row in table.set_index("key").iterrows():
        for pkey in claims.CLAIMS[key].paper_keys:  # the paper's text and source, from paper.py
            assert paper.paper(pkey)["text"] in row[claims.NIH_COL] + row[claims.MIMIC_COL]
            assert paper.paper(pkey)["source"] in row["source"]
    counts = claims.verdict_counts(found)
    assert counts["n_holds"] + counts["n_fails"] == counts["n_checked"]
    assert counts["n_checked"] + counts["n_unresolved"] == len(table)
    html = claims.verdict_html(table)
    for verdict, css in ((HOLDS, "verdict-holds"), (FAILS, "verdict-fails"),
                         (UNRESOLVED, "verdict-na")):
        assert (f'class="{css}"' in html) == (verdict in set(table["verdict"]))
    for result in found.values():   # the paper's texts and sources, joined in order
        row = result.row()
        c = result.claim
        assert row[claims.NIH_COL] == "; ".join(
            [paper.paper(k)["text"] for k in c.paper_nih] or ["not in the paper"])
        assert row[claims.MIMIC_COL] == "; ".join(paper.paper(k)["text"] for k in c.paper_mimic)
        assert row["source"] == "; ".join(dict.fromkeys(paper.paper(k)["source"]
                                                        for k in c.paper_keys))
    assert list(claims.verdict_table({}).columns) == list(claims.TABLE_COLUMNS)


def test_verdict_html_is_compact_escaped_and_classed():
    table = pd.DataFrame({"question": ["Q1", "Q2"], "claim": ["a < b", "c"],
                          "verdict": [HOLDS, UNRESOLVED], "extra": ["x", "y"]})
    html = claims.verdict_html(table)
    assert html.startswith('<table class="dataframe verdict-table">')   # border 0: none drawn
    assert "<td>a &lt; b</td>" in html and "extra" not in html
    assert f'<td class="verdict-holds">{HOLDS}</td>' in html
    assert f'<td class="verdict-na">{UNRESOLVED}</td>' in html
    assert html.count("<th>") == 3 and "<th></th>" not in html       # no index column


def test_summary_sentence_lists_each_verdict_once(evidence):
    found = claims.evaluate(evidence, ["q2_first_drop", "q2_final_change"])
    text = claims.summary_sentence(list(found.values()))
    for result in found.values():
        assert result.claim.statement(result.settings) in text
    assert text.count("Holds here") <= 1 and text.count("Does not hold here") <= 1


def test_q5_claims_are_decided_only_at_resolved_points(evidence):
    found = claims.evaluate(claims.Evidence(evidence.store, claims.Settings(n_boot=200)),
                            ["q5_rare", "q5_rho", "q5_pies"])
    damage = found["q5_rare"].values
    assert damage["n_resolved"] == len(damage["more"]) + len(damage["less"]) + len(damage["alike"])
    for frame in (damage["more"], damage["less"], damage["alike"]):
        assert frame.empty or frame["resolved"].all()
    assert not claims.CLAIMS["q5_rare"].in_paper and claims.CLAIMS["q1_first_drop"].in_paper


def test_summary_sentence_groups_claims_by_verdict_in_order():
    """Holds, then does not hold, then not resolved, each claim once with its statement under
    its own settings (a fraction of 0.1 reads '10%'); the intro first; nothing for an empty
    group."""
    from types import SimpleNamespace

    class Stated:
        def __init__(self, text):
            self.text = text

        def statement(self, settings):
            return f"{self.text} at {settings.fraction:.0%}"

    def result(text, verdict, fraction=0.05):
        return SimpleNamespace(claim=Stated(text), verdict=verdict,
                               settings=claims.Settings(fraction=fraction))

    results = [result("c", UNRESOLVED), result("a", HOLDS, 0.1), result("b", FAILS),
               result("d", HOLDS)]
    assert claims.summary_sentence(results, intro="On this build:") == (
        "On this build: Holds here: a at 10%; d at 5%. Does not hold here: b at 5%. Not "
        "resolved here: c at 5%.")
    assert claims.summary_sentence(results[1:2]) == "Holds here: a at 10%."


def test_judge_reports_the_sound_statistic_or_the_papers_where_none():
    """judge: the sound statistic's text goes to the result (its table row and its sentence);
    a claim without one reports the paper's statistic in both columns."""
    from types import SimpleNamespace

    def claim(sound):
        return claims.Claim(
            key="k", question="Q0", statement=lambda s: "x is big", paper_nih=(),
            paper_mimic=(), compute=lambda ev: {"x": 2.0}, rule=lambda v, s: v["x"] > 1,
            describe=lambda v: f"mean x = {v['x']}", sound=sound,
            paper_rule=None if sound is None else lambda v, s: False)

    evidence = SimpleNamespace(settings=claims.Settings())
    with_sound = claims.judge(claim(lambda v: f"paired x = {v['x'] + 1}"), evidence)
    assert (with_sound.build, with_sound.sound) == ("mean x = 2.0", "paired x = 3.0")
    assert (with_sound.verdict, with_sound.paper_verdict) == (HOLDS, FAILS)
    row = with_sound.row()
    assert (row[claims.PAPER_STAT_COL], row[claims.SOUND_STAT_COL]) == (
        "mean x = 2.0", "paired x = 3.0")
    assert with_sound.sentence == f"X is big: {HOLDS} here (paired x = 3.0)."
    plain = claims.judge(claim(None), evidence)
    assert plain.sound == plain.build == "mean x = 2.0"
    assert plain.paper_verdict == plain.verdict == HOLDS


def test_evidence_keeps_the_readers_responses_for_q4():
    """The responses given to Evidence reach the readers' claim: its count of answers and the
    PIE and non-PIE means of each question; without responses it is not resolved."""
    from prunecxr.analysis.readers import reader_study_stats

    responses = pd.DataFrame({"reader": "r1", "image": range(6), "is_pie": [1, 1, 1, 0, 0, 0],
                              "agrees_with_label": [0, 1, 0, 1, 1, 1],
                              "quality": [2, 3, 1, 4, 5, 4], "difficulty": [4, 4, 5, 2, 1, 2]})
    ev = claims.Evidence(None, responses=responses)
    pd.testing.assert_frame_equal(ev.readers, reader_study_stats(responses))
    result = claims.evaluate(ev, ["q4_readers"])["q4_readers"]
    assert result.values["n_answers"] == 6 and result.verdict == HOLDS
    assert (result.values["quality_mean_a"], result.values["quality_mean_b"]) == pytest.approx(
        (2.0, 13 / 3))
    none = claims.evaluate(claims.Evidence(None), ["q4_readers"])["q4_readers"]
    assert none.values["n_answers"] == 0 and none.verdict == UNRESOLVED


def test_unknown_claim_is_named():
    with pytest.raises(KeyError, match="q9"):
        claims.evaluate(None, ["q9"])


# ------------------------------------------------------------------------ one P formatter

def test_one_p_value_formatter_everywhere():
    """Every P in claims and figures goes through prunecxr.stats.format_p (no second copy)."""
    import prunecxr
    from prunecxr.stats import format_p

    assert format_p(0.0004) == "P < 0.001" and format_p(np.nan) == "P = n/a"
    root = Path(prunecxr.__file__).parent
    copies = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
              if "def format_p" in p.read_text() or "def _p(" in p.read_text()]
    assert copies == ["stats.py"]
    text = claims.corr_text({"n": 20.0, "r": 0.5, "rho": 0.61, "p_rho": 0.005})
    assert format_p(0.005) in text and "n = 20 classes" in text


def test_claims_table_round_trips_as_csv(evidence, tmp_path):
    table = claims.verdict_table(claims.evaluate(evidence))
    table.to_csv(tmp_path / "claims.csv", index=False)
    back = pd.read_csv(tmp_path / "claims.csv", keep_default_na=False)
    assert back.astype(str).equals(table.astype(str))


# ----------------------------------------------------------------- Q5's rules, known answers

def _damage(rows) -> pd.DataFrame:
    """Matched points: (method, loss, resolved, gap, gap_lo, gap_hi, rho, rho_lo, rho_hi)."""
    cols = ["method", "loss", "resolved", "rare_minus_other", "rare_minus_other_lo",
            "rare_minus_other_hi", "rho", "rho_lo", "rho_hi"]
    return pd.DataFrame(rows, columns=cols)


def test_q5_gap_judgement_at_its_edges():
    from prunecxr.claims.q5 import gap_judgement

    def judge(lo, hi):
        return gap_judgement({"rare_minus_other_lo": lo, "rare_minus_other_hi": hi})

    assert judge(-0.3, -0.01) == "more" and judge(-0.3, 0.0) == "alike"
    assert judge(0.01, 0.3) == "less" and judge(0.0, 0.3) == "alike"
    assert judge(0.5, 0.9) == "less" and judge(-0.9, 0.5) == "alike"


def test_q5_rare_and_rho_read_resolved_points_only():
    from types import SimpleNamespace

    from prunecxr.claims import q5

    s = claims.Settings()
    damage = _damage([
        ("random", 0.05, True, -0.2, -0.3, -0.1, 0.4, 0.1, 0.7),
        ("quant", 0.1, True, 0.1, -0.05, 0.2, 0.2, 0.0, 0.4),
        ("channel_l1", 0.2, False, 0.9, 0.8, 1.0, -0.5, -0.9, -0.1),  # not resolved: not read
    ])
    ev = SimpleNamespace(matched_damage=damage)
    rare = q5._q5_rare(ev)
    assert rare["n_resolved"] == 2 and list(rare["more"]["method"]) == ["random"]
    assert list(rare["alike"]["method"]) == ["quant"] and rare["less"].empty
    assert q5._q5_rare_rule(rare, s) is None                       # one alike: not resolved
    assert q5._q5_rare_text(rare) == (
        "The rarest classes lose clearly more than the others (interval of the gap below 0) at "
        "1 of 2 resolved points: random at 5% (-0.20). Clearly less at 0: none. No clear "
        "difference at 1.")
    rho = q5._q5_rho(ev)
    assert list(rho["above"]["method"]) == ["random"] and rho["below"].empty  # rho_lo 0: not above
    assert q5._q5_rho_rule(rho, s) is None
    assert q5._q5_rho_text(rho) == ("Per-class change rises with log training count (ρ interval "
                                    "above 0) at 1 of 2 resolved points: random at 5% (ρ = 0.40).")
    only_more = q5._q5_rare(SimpleNamespace(matched_damage=damage.iloc[[0]]))
    assert q5._q5_rare_rule(only_more, s) is True
    assert q5._q5_rho_rule(q5._q5_rho(SimpleNamespace(matched_damage=damage.iloc[[0]])), s) is True
    flipped = damage.assign(rare_minus_other_lo=0.1, rare_minus_other_hi=0.3, rho_lo=-0.3,
                            rho_hi=-0.01)
    assert q5._q5_rare_rule(q5._q5_rare(SimpleNamespace(matched_damage=flipped)), s) is False
    assert q5._q5_rho_rule(q5._q5_rho(SimpleNamespace(matched_damage=flipped)), s) is False
    edge = damage.assign(rho_lo=-0.3, rho_hi=0.0)                   # rho_hi 0: not below
    assert q5._q5_rho(SimpleNamespace(matched_damage=edge))["below"].empty
    for empty in (pd.DataFrame(), damage[~damage["resolved"]]):
        ev = SimpleNamespace(matched_damage=empty)
        rare, rho = q5._q5_rare(ev), q5._q5_rho(ev)
        assert rare["n_resolved"] == rho["n_resolved"] == 0
        assert q5._q5_rare_rule(rare, s) is None and q5._q5_rho_rule(rho, s) is None
        assert q5._q5_rare_text(rare) == q5._q5_rho_text(rho) == q5.NOTHING_RESOLVED


def test_q5_pies_chance_is_the_jaccard_of_two_random_sets():
    """Two independent random sets, each a share f of n images, overlap with a Jaccard index
    of about f / (2 - f): the chance level the rule compares with (checked by simulation)."""
    from types import SimpleNamespace

    from prunecxr.claims import q5

    rng = np.random.default_rng(0)
    n, f = 4000, 0.3   # large enough that f / (2 + f) would lie far outside the simulation's
    k = int(f * n)
    sims = []
    for _ in range(300):
        a, b = set(rng.choice(n, k, replace=False)), set(rng.choice(n, k, replace=False))
        sims.append(len(a & b) / len(a | b))
    overlap = pd.DataFrame({"loss": [0.1, 0.1, 0.2], "method_a": ["l1", "quant", "random"],
                            "method_b": ["random", "l1", "quant"],
                            "jaccard": [0.3, np.nan, 0.2]})
    ev = SimpleNamespace(settings=claims.Settings(fraction=f), pie_overlap=overlap)
    v = q5._q5_pies(ev)
    assert v["chance"] == pytest.approx(np.mean(sims), abs=0.002)
    assert v["reference"] == "l1" and list(v["jaccard"]["method"]) == ["random"]  # NaN dropped
    assert q5._q5_pies_rule(v, claims.Settings()) is True
    assert q5._q5_pies_rule({**v, "chance": 0.3}, claims.Settings()) is False  # not above
    none = q5._q5_pies(SimpleNamespace(settings=claims.Settings(reference="quant"),
                                       pie_overlap=overlap.iloc[[2]].assign(jaccard=np.nan)))
    assert q5._q5_pies_rule(none, claims.Settings()) is None
    assert q5._q5_pies_text(none) == ("No method other than quant reached a matched loss, so "
                                      "there is nothing to compare.")
    two = q5._q5_pies(SimpleNamespace(settings=claims.Settings(fraction=0.05), pie_overlap=(
        overlap.assign(jaccard=[0.3, 0.4, 0.1], loss=[0.95, 0.55, 0.2]))))
    assert q5._q5_pies_text(two) == (
        "The PIEs of the other methods overlap those of l1 with a Jaccard index from 0.30 (random "
        "at 95%) to 0.40 (quant at 55%), median 0.35, against about 0.026 for two random sets of "
        "the same size.")


def test_q5_points_and_the_less_branch_of_the_rare_text():
    from types import SimpleNamespace

    from prunecxr.claims import q5

    frame = pd.DataFrame({"method": ["a", "b"], "loss": [0.95, 0.25], "x": [0.1, -0.2]})
    assert q5._points(frame, "x") == "a at 95% (+0.10); b at 25% (-0.20)"
    assert q5._points(frame, "x", ".1f") == "a at 95% (0.1); b at 25% (-0.2)"
    assert q5._points(frame.iloc[:0], "x") == "none"
    less = _damage([("quant", 0.1, True, 0.3, 0.1, 0.5, 0.2, 0.0, 0.4)])
    rare = q5._q5_rare(SimpleNamespace(matched_damage=less))
    assert q5._q5_rare_text(rare) == (
        "The rarest classes lose clearly more than the others (interval of the gap below 0) at "
        "0 of 1 resolved points: none. Clearly less at 1: quant at 10% (+0.30). No clear "
        "difference at 0.")


def test_ratio_and_correlation_texts_whole():
    from prunecxr.claims.core import format_p, ratio_text
    assert [ratio_text(r) for r in (2.34, np.inf, np.nan)] == ["2.3x", "only among PIEs", "n/a"]
    assert claims.corr_text({"n": 20.0, "r": 0.5, "rho": 0.61, "p_rho": 0.005}, "pairs") == (
        f"r = 0.50, ρ = 0.61 ({format_p(0.005)}, n = 20 pairs)")
    assert claims.corr_text({"n": np.nan, "r": np.nan, "rho": np.nan, "p_rho": np.nan}) == (
        "not defined here (only 0 classes with a value)")
    assert claims.corr_text({"n": 3.0, "r": 0.2, "rho": np.nan, "p_rho": np.nan}) == (
        "not defined here (only 3 classes with a value)")


def test_as_float_and_fmt_read_what_is_missing_as_nan_and_n_a():
    """``as_float``: a value's float, NaN for None or text; ``fmt``: ``format(x, spec)``
    (".2f" unless asked), "n/a" for None, NaN and either infinity."""
    from prunecxr.claims.core import as_float, fmt

    assert as_float("2.5") == 2.5 and as_float(3) == 3.0
    assert np.isnan(as_float(None)) and np.isnan(as_float("n/a"))
    assert fmt(0.123456) == "0.12" and fmt(np.float64(1)) == "1.00" and fmt(2.0, ".1%") == "200.0%"
    assert fmt(None) == fmt(np.nan) == fmt(np.inf) == fmt(-np.inf) == "n/a"
