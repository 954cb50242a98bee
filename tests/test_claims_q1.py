"""Q1's sound statistics: the paired test against scipy computed independently, Holm against
statsmodels and a hand loop, the t-interval's coverage by simulation at the seed counts used
(3 for smoke and controls, 8 for the default), the scale-free small-weights share, and each
verdict rule on synthetic mAP tables whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from prunecxr import claims
from prunecxr.analysis import overall
from prunecxr.claims import FAILS, HOLDS, UNRESOLVED

GRID = [0.0, 0.2, 0.4, 0.6, 0.8]


def maps_table(n_seeds: int, rel_at: dict, noise: float, rng_seed: int = 0,
               methods=("l1",), grid=GRID) -> pd.DataFrame:
    """A map_per_model table: dense mAP per seed 0.2 exp(0.25 Z); at each k, each seed's mAP
    is its dense mAP x (1 + rel_at[k] + noise x N(0, 1))."""
    rng = np.random.default_rng(rng_seed)
    dense = 0.2 * np.exp(0.25 * rng.standard_normal(n_seeds))
    rows = []
    for method in methods:
        for k in grid:
            eff = 0.0 if k == 0 else rel_at.get(k, 0.0)
            e = np.zeros(n_seeds) if k == 0 else rng.standard_normal(n_seeds)
            for seed in range(n_seeds):
                rows.append((method, seed, k, dense[seed] * (1 + eff + noise * e[seed]), 20))
    return pd.DataFrame(rows, columns=["method", "seed", "sparsity", "map", "n_classes"])


def verdicts(maps: pd.DataFrame, **settings) -> tuple[str, str, claims.Result]:
    ev = claims.Evidence(None, claims.Settings(**settings))
    ev.maps = maps  # the evidence's cached table, set directly (no store needed)
    r = claims.evaluate(ev, ["q1_first_drop"])["q1_first_drop"]
    return r.verdict, r.paper_verdict, r


# ------------------------------------------------------------------ against scipy and statsmodels

def test_paired_test_matches_scipy_and_holm_matches_statsmodels_and_a_loop():
    maps = maps_table(8, {0.2: -0.01, 0.4: -0.05, 0.6: -0.1, 0.8: -0.3}, 0.05)
    out = overall.paired_by_sparsity(maps, level=0.05)
    wide = maps.pivot(index="seed", columns="sparsity", values="map")
    for _, row in out.iterrows():
        d, s = wide[0.0].to_numpy(), wide[row.sparsity].to_numpy()
        diff = s - d  # independently: t = mean / (sd / sqrt n), two-sided
        t = diff.mean() / (diff.std(ddof=1) / np.sqrt(len(diff)))
        assert row.t == pytest.approx(-t)
        assert row.p == pytest.approx(2 * st.t.sf(abs(t), len(diff) - 1))
        assert row.p == pytest.approx(st.ttest_rel(s, d).pvalue)
        rel = s / d - 1
        half = st.t.ppf(0.975, len(rel) - 1) * rel.std(ddof=1) / np.sqrt(len(rel))
        assert (row.rel, row.rel_lo, row.rel_hi) == pytest.approx(
            (rel.mean(), rel.mean() - half, rel.mean() + half))
    assert np.allclose(out["p_holm"], multipletests(out["p"], method="holm")[1])
    p = out["p"].to_numpy()  # Holm by hand: step-down, running maximum, capped at 1
    order = np.argsort(p)
    adj = np.maximum.accumulate([(len(p) - i) * p[j] for i, j in enumerate(order)])
    hand = np.empty_like(p)
    hand[order] = np.minimum(adj, 1)
    assert np.allclose(out["p_holm"], hand)
    assert list(out["drop"]) == list((out["diff"] < 0) & (out["p_holm"] < 0.05))


def test_paired_pairs_by_seed_not_by_row_order():
    maps = maps_table(5, {0.4: -0.2}, 0.05)
    shuffled = maps.sample(frac=1, random_state=1)
    pd.testing.assert_frame_equal(overall.paired_by_sparsity(maps),
                                  overall.paired_by_sparsity(shuffled))
    missing = maps[~((maps.seed == 0) & (maps.sparsity == 0.4))]
    row = overall.paired_by_sparsity(missing).set_index("sparsity").loc[0.4]
    assert row["n"] == 4


def test_t_interval_edges():
    m, lo, hi = overall.t_interval([0.1])
    assert m == 0.1 and np.isnan(lo) and np.isnan(hi)
    assert np.isnan(overall.t_interval([])[0])
    assert overall.t_interval([1.0, 1.0, np.nan]) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("n", [3, 8])
def test_t_interval_covers_95_percent_at_the_seed_counts_used(n):
    # 4000 populations: the coverage's standard error is 0.0035, so +-0.02 is about 6 SE
    assert overall.t_interval_coverage(n, n_sim=4000) == pytest.approx(0.95, abs=0.02)
    assert overall.t_interval_coverage(n, n_sim=4000, skewed=True) == pytest.approx(0.95, abs=0.02)


def test_coverage_simulation_is_the_documented_model():
    """t_interval_coverage draws exactly the model its docstring states (re-written here from
    the text, with scipy's t-interval), by default from seed 0 with 4000 populations."""
    def by_hand(n, n_sim, skewed, seed=0, effect=-0.1, confidence=0.95):
        rng = np.random.default_rng(seed)
        dense = 0.2 * np.exp(0.25 * rng.standard_normal((n_sim, n)))
        e = ((rng.gamma(2.0, size=(n_sim, n)) - 2.0) / np.sqrt(2.0) if skewed
             else rng.standard_normal((n_sim, n)))
        rel = (dense * (1 + effect + 0.05 * e) + rng.normal(0, 0.005, (n_sim, n))) / dense - 1
        lo, hi = st.t.interval(confidence, n - 1, loc=rel.mean(axis=1),
                               scale=st.sem(rel, axis=1))
        return float(np.mean((lo <= effect) & (effect <= hi)))

    for skewed in (False, True):
        assert overall.t_interval_coverage(5, n_sim=300, skewed=skewed) == pytest.approx(
            by_hand(5, 300, skewed), abs=1e-12)
    assert overall.t_interval_coverage(3) == by_hand(3, 4000, False)
    assert overall.t_interval_coverage(3, seed=1) != overall.t_interval_coverage(3)


def test_method_difference_against_scipy():
    """Each method's relative change at k against its own dense model where it has one (else
    the shared one), their paired difference a - b, each with scipy's t-interval."""
    rng = np.random.default_rng(5)
    seeds = range(6)
    dense = 0.3 + 0.05 * rng.standard_normal(6)
    own = 0.25 + 0.05 * rng.standard_normal(6)        # quant's own dense models
    sparse = {"l1": dense * 0.9 + 0.01 * rng.standard_normal(6),
              "quant": own * 0.7 + 0.01 * rng.standard_normal(6)}
    rows = [("l1", s, 0.0, dense[s]) for s in seeds] + [("quant", s, 0.0, own[s]) for s in seeds]
    rows += [(m, s, 0.5, sparse[m][s]) for m in sparse for s in seeds]
    rows = [r + (20,) for r in rows]
    # a seed's second row (another class count) is not read
    rows += [("l1", 0, 0.5, sparse["l1"][0], 19), ("l1", 1, 0.0, dense[1], 19)]
    maps = pd.DataFrame(rows, columns=["method", "seed", "sparsity", "map", "n_classes"])
    d = overall.method_difference(maps, "quant", "l1", 0.5, confidence=0.9)
    rel_a, rel_b = sparse["quant"] / own - 1, sparse["l1"] / dense - 1
    assert d["n"] == 6
    for name, x in (("a", rel_a), ("b", rel_b), ("diff", rel_a - rel_b)):
        lo, hi = st.t.interval(0.9, 5, loc=x.mean(), scale=st.sem(x))
        assert (d[name], d[f"{name}_lo"], d[f"{name}_hi"]) == pytest.approx((x.mean(), lo, hi))
    # no own dense models: the first dense model of each seed (l1's, before random's)
    shared = pd.concat([maps[~((maps.method == "quant") & (maps.sparsity == 0))],
                        maps[(maps.method == "quant") & (maps.sparsity == 0)].assign(method="random")])
    d = overall.method_difference(shared, "quant", "l1", 0.5)
    x = sparse["quant"] / dense - 1
    lo, hi = st.t.interval(0.95, 5, loc=x.mean(), scale=st.sem(x))   # the default confidence
    assert (d["a"], d["a_lo"], d["a_hi"]) == pytest.approx((x.mean(), lo, hi))


def test_level_at_least_uses_the_nearest_level_above():
    assert overall.level_at_least([0.05, 0.5, 0.65, 0.8], 0.6) == 0.65
    assert overall.level_at_least([0.1, 0.6000000001], 0.6) == pytest.approx(0.6)
    assert np.isnan(overall.level_at_least([0.1, 0.5], 0.6))


# ------------------------------------------------------------------ the verdict, known answers

def test_small_planted_effect_with_many_seeds_holds():
    verdict, _, r = verdicts(maps_table(30, {0.6: -0.01}, 0.02))
    assert verdict == HOLDS and r.values["rel_lo"] > -0.05
    assert "As in the paper" in r.sentence and "k = 0.60" in r.sentence


def test_large_planted_drop_does_not_hold():
    verdict, paper_verdict, r = verdicts(maps_table(8, {0.6: -0.4, 0.8: -0.5}, 0.05))
    assert verdict == FAILS and r.values["rel_hi"] < -0.05
    # the paper's rule counts a first Welch drop AT k = 0.60 as "pruned heavily": it holds
    assert paper_verdict == HOLDS and r.values["first_drop"] == pytest.approx(0.6)
    assert "Unlike in the paper" in r.sentence


def test_noisy_30_percent_drop_with_three_seeds_is_not_resolved_not_the_papers_conclusion():
    verdict, paper_verdict, r = verdicts(maps_table(3, {0.4: -0.3, 0.6: -0.3, 0.8: -0.3}, 0.3))
    assert verdict == UNRESOLVED
    assert paper_verdict == HOLDS  # Welch finds no significant drop: the paper's rule says holds
    assert "Not resolved" in r.sentence and "As in the paper" not in r.sentence
    assert r.why.startswith("By the paper's own statistic the claim holds")


def test_significant_drop_beyond_the_margin_does_not_hold_even_if_the_interval_crosses_it():
    v = {"at": 0.6, "n_seeds": 8, "rel": -0.08, "rel_lo": -0.12, "rel_hi": -0.04,
         "p_holm": 0.001, "margin": 0.05, "level": 0.05}
    rule = claims.CLAIMS["q1_first_drop"].rule
    assert rule(v, claims.Settings()) is False
    assert rule({**v, "p_holm": 0.2}, claims.Settings()) is None
    assert rule({**v, "rel": -0.03, "rel_lo": -0.04, "rel_hi": -0.02}, claims.Settings()) is True


def test_one_seed_and_a_grid_below_the_level_are_not_resolved():
    verdict, paper_verdict, r = verdicts(maps_table(1, {0.6: -0.3}, 0.0))
    assert verdict == UNRESOLVED and paper_verdict == UNRESOLVED  # Welch cannot run either
    verdict, _, r = verdicts(maps_table(8, {0.4: -0.01}, 0.01, grid=[0.0, 0.2, 0.4]))
    assert verdict == UNRESOLVED and "does not reach k = 0.60" in r.sentence


def test_grid_without_the_level_uses_the_nearest_above_and_says_so():
    verdict, _, r = verdicts(maps_table(30, {0.65: -0.01}, 0.02, grid=[0.0, 0.5, 0.65]))
    assert r.values["at"] == 0.65 and verdict == HOLDS
    assert "the grid has no k = 0.60; the nearest level above it" in r.sentence


def test_random_control_is_decided_on_the_paired_difference():
    grid = [0.0, 0.6]
    l1 = maps_table(8, {0.6: -0.02}, 0.02, rng_seed=3, grid=grid)
    rnd = maps_table(8, {0.6: -0.5}, 0.02, rng_seed=3, grid=grid).assign(method="random")
    both = pd.concat([l1, rnd[rnd.sparsity > 0]])
    text = overall.random_control_sentence(both, ["l1", "random"], 0.6)
    assert "random pruning loses more: magnitude matters" in text
    same = pd.concat([l1, l1[l1.sparsity > 0].assign(method="random")])
    text = overall.random_control_sentence(same.iloc[:len(l1) + 3], ["l1", "random"], 0.6)
    assert "cannot tell them apart" in text or "too few seeds" in text
    assert "no comparison" in overall.random_control_sentence(l1, ["l1"], 0.6)


# ------------------------------------------------------------------ small weights, scale-free

def test_scale_free_share_ignores_scale_and_matches_a_gaussian():
    rng = np.random.default_rng(0)
    layers = [rng.normal(0, s, 40_000) for s in (0.01, 0.1, 1.0)]
    share = overall.fraction_below_sd(layers)
    assert share == pytest.approx(0.5, abs=0.01)
    assert overall.gaussian_share_below() == pytest.approx(0.5)
    assert overall.fraction_below_sd([10 * w for w in layers]) == share
    assert overall.fraction_below(np.concatenate(layers), 0.01) < 0.3  # scale-dependent
    laplace = [rng.laplace(0, 1, 40_000)]
    assert overall.fraction_below_sd(laplace) == pytest.approx(1 - np.exp(-0.6745 * 2**0.5),
                                                               abs=0.01)
    with pytest.raises(ValueError):
        overall.fraction_below_sd([])


@pytest.mark.parametrize("sd_min, sd_max, verdict", [(0.55, 0.6, HOLDS), (0.4, 0.5, FAILS),
                                                     (0.45, 0.55, UNRESOLVED)])
def test_weights_rule(sd_min, sd_max, verdict):
    v = {"n_seeds": 3, "sd_min": sd_min, "sd_max": sd_max}
    ok = claims.CLAIMS["q1_weights"].rule(v, claims.Settings())
    assert claims.core._verdict(ok) == verdict
    assert claims.CLAIMS["q1_weights"].rule({"n_seeds": 0, "sd_min": np.nan, "sd_max": np.nan},
                                            claims.Settings()) is None


# ------------------------------------------------------------------ the frozen smoke results

def test_smoke_build_with_three_seeds_is_not_resolved_where_the_papers_rule_says_holds():
    from pathlib import Path

    from prunecxr.store import load

    store = load(Path(__file__).parent / "fixtures" / "smoke_results")
    found = claims.evaluate(claims.Evidence(store), ["q1_first_drop", "q1_weights"])
    drop, weights = found["q1_first_drop"], found["q1_weights"]
    assert drop.verdict == UNRESOLVED and drop.paper_verdict == HOLDS
    assert "As in the paper" not in drop.sentence and drop.why
    assert drop.values["n_seeds"] == len(store.seeds) and drop.values["at"] == pytest.approx(0.6)
    # the fixture keeps the first seed's weights only: the median over seeds is that seed's
    assert weights.values["n_seeds"] == 1
    assert weights.values["fraction_below"] == overall.fraction_below(
        store.prunable_weights(store.seeds[0]), 0.01)


def test_random_control_sentence_tests_each_method_at_the_callers_level(monkeypatch):
    calls = []
    real = overall.paired_by_sparsity

    def spy(maps, **kw):
        calls.append(kw)
        return real(maps, **kw)

    monkeypatch.setattr(overall, "paired_by_sparsity", spy)
    l1 = maps_table(4, {0.6: -0.02}, 0.02, rng_seed=3, grid=[0.0, 0.6])
    both = pd.concat([l1, l1[l1.sparsity > 0].assign(method="random")])
    overall.random_control_sentence(both, ["l1", "random"], float("nan"), level=0.01)
    assert calls == [{"level": 0.01, "method": "l1"}, {"level": 0.01, "method": "random"}]


def test_random_control_sentence_whole_in_each_case():
    """The sentence assembled from its parts with the caller's level and confidence; each
    verdict's branch; no finite level; a method the table lacks; one seed."""
    def expected(maps, at, level, confidence, firsts, verdict):
        d = overall.method_difference(maps, "random", "l1", at, confidence)
        it = overall.interval_text
        seeds = "seed" if d["n"] == 1 else "seeds"
        return (f"the first drop by the paired test (Holm, P < {level:g}) is {firsts[0]} under "
                f"random pruning and {firsts[1]} under L1 pruning; at k = {at:.2f} mAP changes by "
                f"{it(d['a'], d['a_lo'], d['a_hi'], confidence)} under random pruning and by "
                f"{it(d['b'], d['b_lo'], d['b_hi'], confidence)} under L1 pruning; the "
                f"difference, paired by seed over {d['n']} {seeds}, is "
                f"{it(d['diff'], d['diff_lo'], d['diff_hi'], confidence)}: {verdict}")

    grid = [0.0, 0.3, 0.6]
    l1 = maps_table(8, {0.6: -0.02}, 0.02, rng_seed=3, grid=grid)
    rnd = maps_table(8, {0.3: -0.3, 0.6: -0.5}, 0.02, rng_seed=3, grid=grid).assign(method="random")
    both = pd.concat([l1, rnd[rnd.sparsity > 0]])
    text = overall.random_control_sentence(both, ["l1", "random"], 0.6, level=0.01,
                                           confidence=0.9)
    assert text == expected(both, 0.6, 0.01, 0.9, ("k = 0.30", "not reached within the grid"),
                            "random pruning loses more: magnitude matters.")
    swapped = pd.concat([rnd.assign(method="l1"), l1[l1.sparsity > 0].assign(method="random")])
    assert overall.random_control_sentence(swapped, ["l1", "random"], 0.6) == expected(
        swapped, 0.6, 0.05, 0.95, ("not reached within the grid", "k = 0.30"),
        "L1 pruning loses more, against expectation.")
    assert overall.random_control_sentence(both, ["l1", "random"], float("nan"), level=0.01) == (
        "the first drop by the paired test (Holm, P < 0.01) is k = 0.30 under random pruning and "
        "not reached within the grid under L1 pruning.")
    one = both[both.seed == 0]
    assert overall.random_control_sentence(one, ["l1", "random"], 0.6) == expected(
        one, 0.6, 0.05, 0.95, ("not tested (fewer than two seeds)",) * 2,
        "too few seeds to compare the two.")
    assert overall.random_control_sentence(l1, ["l1", "random"], float("nan")) == (
        "the first drop by the paired test (Holm, P < 0.05) is not tested under random pruning "
        "and not reached within the grid under L1 pruning.")
    assert overall.random_control_sentence(rnd, ["l1", "random"], float("nan")) == (
        "the first drop by the paired test (Holm, P < 0.05) is k = 0.30 under random pruning "
        "and not tested under L1 pruning.")
    assert overall.random_control_sentence(l1, ["l1", "quant"], 0.6) == (
        "this build ran only l1, quant pruning, so there is no comparison (add methods=l1,random "
        "to the overrides).")


class _WeightStore:
    """A store whose second seed alone has weights (a ResNet-18 of width 8, 3 classes)."""

    def __init__(self):
        from prunecxr.models import build_model
        self.config = {"arch": "resnet18", "width": 8}
        self.classes = ["a", "b", "c"]
        self.seeds = [0, 1, 2]
        self._state = build_model("resnet18", 3, "none", seed=4, width=8).state_dict()

    def state_dict(self, seed):
        if seed == 0:
            raise FileNotFoundError("no weights kept for seed 0")
        return self._state if seed == 1 else {}


def test_weight_shares_per_seed_with_weights_and_the_sound_text():
    from types import SimpleNamespace

    from prunecxr.claims import q1
    from prunecxr.models import build_model
    from prunecxr.prune import _prunable_names

    store = _WeightStore()
    layers = q1.layer_weights(store, 1)
    names = _prunable_names(build_model("resnet18", 3, "none", width=8))
    assert len(layers) == len(names) and layers[0].size == store._state[names[0]].numel()
    assert q1.layer_weights(store, 2) is None
    table = q1.weight_shares(store, 0.05, fraction=0.5)
    flat = np.concatenate(layers)
    assert table.values.tolist() == [[1, flat.size, overall.fraction_below(flat, 0.05),
                                      overall.fraction_below_sd(layers, 0.5)]]
    assert list(table.columns) == ["seed", "n_weights", "below_abs", "below_sd"]
    empty = q1.weight_shares(SimpleNamespace(seeds=[], config=store.config), 0.01)
    assert empty.empty and list(empty.columns) == list(table.columns)
    v = {"n_seeds": 2, "fraction_below_sd": 0.5512, "sd_min": 0.5, "sd_max": 0.61234,
         "sd_fraction": 0.6745, "gaussian": 0.5}
    assert q1._sound_weights(v) == ("55.12% of the weights lie below 0.674 × their layer's SD "
                                    "(median over 2 seeds, seeds 50.00% to 61.23%; a Gaussian "
                                    "layer: 50%)")
    assert q1._sound_weights({**v, "n_seeds": 1, "fraction_below_sd": np.nan}) == (
        "n/a of the weights lie below 0.674 × their layer's SD (median over 1 seed; a Gaussian "
        "layer: 50%)")
    assert q1._sound_weights({**v, "n_seeds": 0}) == "no seed's weights in this store"
    assert q1._pct(0.123) == "12.3%"


def test_fraction_below_sd_edges_and_messages():
    """Empty layers are skipped (not the ones after them), a one-weight layer counts, |w| equal
    to the bound is not below it, float32 layers are measured in float64; bad layers named."""
    layer = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])                  # SD sqrt(2)
    bound = 1 / np.sqrt(2)                                        # fraction x SD = 1
    assert overall.fraction_below_sd([layer], bound) == pytest.approx(1 / 5)   # |1| is not < 1
    assert overall.fraction_below_sd([np.array([]), layer, np.array([3.0])], bound) == (
        pytest.approx(1 / 6))                                     # 0 < 1; 3 vs SD 0: not below
    w32 = np.random.default_rng(0).normal(size=1001).astype(np.float32)
    assert overall.fraction_below_sd([w32]) == overall.fraction_below_sd([w32.astype(np.float64)])
    for bad, message in (([np.array([1.0, np.nan])], "a layer contains NaN or inf"),
                         ([np.array([])], "layers hold no weights")):
        with pytest.raises(ValueError) as caught:
            overall.fraction_below_sd(bad)
        assert str(caught.value) == message


def test_weights_rule_edges():
    rule = claims.CLAIMS["q1_weights"].rule
    s = claims.Settings()
    assert rule({"n_seeds": 1, "sd_min": 0.6, "sd_max": 0.6}, s) is True      # one seed decides
    assert rule({"n_seeds": 2, "sd_min": 0.5, "sd_max": 0.7}, s) is None       # 0.5 is not over half
    assert rule({"n_seeds": 0, "sd_min": 0.6, "sd_max": 0.6}, s) is None


def test_the_weights_claims_values_with_and_without_weights():
    """q1_weights reads weight_shares at the settings' threshold: the seeds with weights, the
    first one's weight count, the shares' medians and range, the sound text from them; a
    store without weights gives no seeds, no weights and NaN shares, said so."""
    from types import SimpleNamespace

    from prunecxr.claims import q1

    store = _WeightStore()
    settings = claims.Settings(weight_threshold=0.05)
    v = claims.evaluate(claims.Evidence(store, settings), ["q1_weights"])["q1_weights"].values
    table = q1.weight_shares(store, 0.05)
    assert (v["n_seeds"], v["n_weights"], v["threshold"]) == (1, table["n_weights"].iloc[0], 0.05)
    assert v["n_weights"] == sum(w.size for w in q1.layer_weights(store, 1))
    assert v["fraction_below"] == table["below_abs"].iloc[0]
    assert v["fraction_below_sd"] == v["sd_min"] == v["sd_max"] == table["below_sd"].iloc[0]
    assert v["sd_text"] == q1._sound_weights(v) and v["sd_text"].endswith("layer: 50%)")
    bare = SimpleNamespace(seeds=[], config=store.config)
    none = claims.evaluate(claims.Evidence(bare, settings), ["q1_weights"])["q1_weights"]
    assert (none.values["n_seeds"], none.values["n_weights"]) == (0, 0)
    assert np.isnan(none.values["fraction_below"]) and none.verdict == UNRESOLVED
    assert none.values["sd_text"] == "no seed's weights in this store"


# ------------------------------------------------------------------ q1_first_drop, whole

def _same(got: dict, want: dict) -> bool:
    """Equal dicts, NaN equal to NaN (not to None), a bool not equal to None."""
    def eq(a, b):
        if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
            return True
        return (a is None) == (b is None) and a == b
    return got.keys() == want.keys() and all(eq(got[k], want[k]) for k in got)


def _two_method_maps() -> pd.DataFrame:
    """l1 with its dense models and random pruning without its own: at k = 0.75 random's paired
    drop has Holm P between 0.01 and 0.05, l1's first drop is k = 0.5."""
    grid = [0.0, 0.25, 0.5, 0.75]
    l1 = maps_table(6, {0.25: -0.01, 0.5: -0.03, 0.75: -0.3}, 0.03, rng_seed=1, grid=grid)
    rnd = maps_table(6, {0.25: -0.03, 0.5: -0.06, 0.75: -0.5}, 0.04, rng_seed=101, grid=grid)
    return pd.concat([l1, rnd[rnd.sparsity > 0].assign(method="random")])


def test_first_drop_values_whole_at_the_settings_level_method_and_target():
    """The claim's values are the paired table of Settings.method at Settings.level (95%
    intervals) read at the nearest level above first_drop_at_least, beside the Welch first drop
    at Settings.alpha; the texts are _first_drop_texts of those values."""
    from prunecxr.claims import q1

    maps = _two_method_maps()
    s = claims.Settings(method="random", level=0.01, equivalence_margin=0.1,
                        first_drop_at_least=0.7, alpha=0.05)
    table = overall.paired_by_sparsity(maps, level=0.01, method="random", confidence=0.95)
    # the data tell the settings apart: another level or method finds another first drop
    assert np.isnan(overall.first_paired_drop(table))
    assert overall.first_paired_drop(overall.paired_by_sparsity(maps, method="random")) == 0.75
    assert overall.first_paired_drop(overall.paired_by_sparsity(maps, level=0.01)) == 0.5
    row = table.set_index("sparsity").loc[0.75]
    first = overall.first_significant_drop(overall.welch_by_sparsity(maps, alpha=0.05,
                                                                     method="random"))
    want = {"first_drop": first, "welch_ok": True, "target": 0.7, "at": 0.75, "margin": 0.1,
            "level": 0.01, "n_seeds": 6, "rel": row["rel"], "rel_lo": row["rel_lo"],
            "rel_hi": row["rel_hi"], "p_paired": row["p"], "p_holm": row["p_holm"],
            "first_paired_drop": float("nan"), "paired_ok": True, "paired_tested": True}
    want.update(q1._first_drop_texts(want))
    ev = claims.Evidence(None, s)
    ev.maps = maps
    r = claims.evaluate(ev, ["q1_first_drop"])["q1_first_drop"]
    assert _same(r.values, want), (r.values, want)
    pd.testing.assert_frame_equal(q1.paired(ev), table)
    assert q1.paired(ev).attrs == table.attrs


def test_first_drop_values_whole_without_a_paired_test():
    """No dense models: neither test runs; one seed: the table has no test at any level."""
    nan = float("nan")
    none = {"first_drop": nan, "welch_ok": False, "target": 0.6, "at": nan, "margin": 0.05,
            "level": 0.05, "n_seeds": 0, "rel": nan, "rel_lo": nan, "rel_hi": nan,
            "p_paired": nan, "p_holm": nan, "first_paired_drop": nan, "paired_ok": False,
            "paired_tested": False, "k_text": "k = 0.60", "margin_text": "−5%",
            "change_text": "n/a", "first_paired_text": "n/a",
            "unresolved_text": ("This build cannot decide whether mAP holds up to high "
                                "sparsity: no paired test could run (no dense models or no "
                                "pruned levels).")}
    maps = maps_table(4, {0.6: -0.3}, 0.02)
    verdict, paper_verdict, r = verdicts(maps[maps.sparsity > 0])
    assert _same(r.values, none), r.values
    assert (verdict, paper_verdict) == (UNRESOLVED, UNRESOLVED)
    assert r.sentence == none["unresolved_text"] and r.sound == none["unresolved_text"]
    _, _, r = verdicts(maps_table(1, {0.6: -0.3}, 0.0))
    v = r.values
    assert (v["paired_ok"], v["paired_tested"], v["n_seeds"]) == (True, False, 1)
    assert v["rel"] == pytest.approx(-0.3) and np.isnan(v["rel_lo"]) and np.isnan(v["p_holm"])
    assert np.isnan(v["first_paired_drop"]) and np.isnan(v["first_drop"])


def test_first_drop_texts_whole_in_each_case():
    """Each sentence piece from hand-made values: grid short of the target or no paired test;
    the nearest level above; 0, 1 or 2+ seeds; an interval across the margin, touching it from
    above or from below; a first paired drop found, or tested and not found."""
    from prunecxr.claims import q1

    it, fp = overall.interval_text, claims.core.format_p
    base = {"margin": 0.05, "target": 0.6, "at": 0.6, "paired_ok": True, "n_seeds": 8,
            "rel": -0.04, "rel_lo": -0.07, "rel_hi": -0.01, "p_paired": 0.004,
            "p_holm": 0.02, "paired_tested": True, "first_paired_drop": 0.8}
    start = "This build cannot decide whether mAP holds up to high sparsity: "
    short = q1._first_drop_texts({**base, "at": float("nan")})
    assert short == {"k_text": "k = 0.60", "margin_text": "−5%", "change_text": "n/a",
                     "first_paired_text": "n/a",
                     "unresolved_text": start + "the grid does not reach k = 0.60."}
    assert q1._first_drop_texts({**base, "at": float("nan"), "paired_ok": False})[
        "unresolved_text"] == start + ("no paired test could run (no dense models or no pruned "
                                       "levels).")

    def whole(v, k_text, seeds, test, first, reason):
        change = (f"at {k_text}, mAP changes by {it(v['rel'], v['rel_lo'], v['rel_hi'], 0.95)} "
                  f"against each seed's own dense model ({seeds}; {test})")
        return {"k_text": k_text, "margin_text": "−5%", "change_text": change,
                "first_paired_text": first,
                "unresolved_text": (f"Not resolved: {change}; {reason}, so it does not decide "
                                    "whether the models can be pruned heavily before their "
                                    "overall performance suffers.")}

    tested = f"paired t-test {fp(0.004)}, Holm-adjusted {fp(0.02)}"
    both = ("the interval reaches both sides of the −5% margin: this build cannot tell a small "
            "loss from a large one")
    one = "the interval lies on one side of the margin but the rule needs more"
    assert q1._first_drop_texts(base) == whole(base, "k = 0.60", "8 seeds", tested, "k = 0.80",
                                               both)
    two = {**base, "n_seeds": 2, "rel_hi": 0.04}              # crosses -5% and +5%
    assert q1._first_drop_texts(two) == whole(two, "k = 0.60", "2 seeds", tested, "k = 0.80",
                                              both)
    for edge in ({"rel_lo": -0.05}, {"rel_hi": -0.05, "rel_lo": -0.1}):   # touching: one side
        v = {**base, **edge, "first_paired_drop": float("nan")}
        assert q1._first_drop_texts(v) == whole(v, "k = 0.60", "8 seeds", tested,
                                                "not reached within the grid", one)
    untested = {**base, "at": 0.65, "rel_lo": float("nan"), "rel_hi": float("nan"),
                "p_paired": float("nan"), "p_holm": float("nan"), "paired_tested": False}
    near = "k = 0.65 (the grid has no k = 0.60; the nearest level above it)"
    for n, seeds, verb in ((1, "1 seed", "gives"), (0, "0 seeds", "give")):
        v = {**untested, "n_seeds": n}
        assert q1._first_drop_texts(v) == whole(
            v, near, seeds, "no paired test: fewer than two seeds",
            "not tested (fewer than two seeds)", f"{seeds} {verb} no interval")
    assert "(95% CI -7.0% to -1.0%)" in q1._first_drop_texts(base)["change_text"]


def test_first_drop_sound_text_whole():
    """The sound statistic: the change sentence capitalised and the first paired drop at the
    settings' level; without a level at the target, the unresolved sentence."""
    from prunecxr.claims import q1

    v = {"at": 0.6, "level": 0.01, "change_text": "at k = 0.60, mAP changes by x",
         "first_paired_text": "k = 0.80", "unresolved_text": "u"}
    assert q1._sound_first_drop(v) == ("At k = 0.60, mAP changes by x; first paired drop "
                                       "(Holm, P < 0.01): k = 0.80")
    assert q1._sound_first_drop({**v, "at": float("nan")}) == "u"


def test_first_drop_rules_at_their_edges():
    """Strict inequalities at the margin and the level; 2 seeds are enough; the values a rule
    needs all present; the paper's rule counts a first Welch drop at the target (to 1e-9)."""
    rule = claims.CLAIMS["q1_first_drop"].rule
    paper = claims.CLAIMS["q1_first_drop"].paper_rule
    s = claims.Settings()
    v = {"at": 0.6, "n_seeds": 2, "rel": -0.04, "rel_lo": -0.04, "rel_hi": -0.02,
         "p_holm": 0.2, "margin": 0.05, "level": 0.05}
    assert rule(v, s) is True                                              # 2 seeds decide
    assert rule({**v, "rel_lo": -0.05}, s) is None                         # touching: not above
    assert rule({**v, "rel_lo": -0.08, "rel_hi": -0.05}, s) is None        # touching: not below
    cross = {**v, "rel": -0.06, "rel_lo": -0.09, "rel_hi": 0.01, "p_holm": 0.01}
    assert rule(cross, s) is False
    assert rule({**cross, "p_holm": 0.05}, s) is None                      # P = level
    assert rule({**cross, "rel": -0.05}, s) is None                        # estimate = -margin
    assert rule({**cross, "rel": -0.03}, s) is None                        # small estimate
    assert rule({**v, "n_seeds": 1}, s) is None
    assert rule({**v, "at": float("nan")}, s) is None
    assert rule({**v, "rel_lo": float("nan")}, s) is None
    welch = {"welch_ok": True, "first_drop": s.first_drop_at_least - 1e-9}
    assert paper(welch, s) is True
    assert paper({**welch, "first_drop": 0.4}, s) is False
    assert paper({**welch, "first_drop": float("nan")}, s) is True
    assert paper({**welch, "welch_ok": False}, s) is None
