"""Q5's method-against-method comparisons (prunecxr.analysis.compression.paired_comparisons):
the vectorised paired bootstrap against pandas/scipy loops, the coverage of its intervals at the
seed count the default profile uses (a simulation), the claims' verdict rules on synthetic
populations, and what fine-tuning alone does (the storage a compressed model keeps is tested
with prunecxr.compress, in test_compress.py)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from prunecxr.analysis import compression as cp

KS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8]
CLASSES = [f"c{i}" for i in range(8)]
COUNTS = pd.Series(np.geomspace(5000, 8, len(CLASSES)).round(), index=CLASSES)
RARE = ["c6", "c7"]  # n_rare=2


def population(seeds, rare_extra: dict, noise=0.03, rng_seed=0) -> pd.DataFrame:
    """AP of each method per seed, level and class: AP falls like k (every class alike) plus
    ``rare_extra[method]`` x k for the rarest two classes; a seed-level sensitivity shared by
    every method (so seeds pair) and independent noise per model and class."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for s in seeds:
        z = rng.normal(0, 0.2)
        for i, c in enumerate(CLASSES):
            base = 0.9 - 0.04 * i
            for method, extra in rare_extra.items():
                for k in KS:
                    drop = k * (1 + z) + (extra * k if c in RARE else 0.0)
                    e = rng.normal(0, noise) if k > 0 else 0.0
                    rows.append((method, s, k, c, max(1e-3, base * (1 - min(drop, 0.99)) + e)))
    return pd.DataFrame(rows, columns=["method", "seed", "sparsity", "class", "ap"])


def _gap_rho_pandas(ap: pd.DataFrame, method: str, target: float) -> tuple[float, float]:
    """The pandas path: matched_levels, class_change_at, median over seeds per class."""
    one = ap[ap.method == method]
    changes = cp.class_change_at(one, cp.matched_levels(one, losses=(target,)))
    per_class = changes.groupby("class")["rel_change"].median()
    gap = per_class[RARE].median() - per_class.drop(RARE).median()
    rho = st.spearmanr(np.log(COUNTS[per_class.index]), per_class).statistic
    return gap, rho


def test_point_estimates_equal_the_pandas_path_and_matched_damage():
    ap = population(range(5), {"ref": 0.0, "m": 0.5})
    out = cp.paired_comparisons(ap, COUNTS, reference="ref", losses=(0.1, 0.2), n_rare=2,
                                n_boot=50)
    damage = cp.matched_damage(ap, COUNTS, losses=(0.1, 0.2), n_rare=2, n_boot=10)
    for r in out.itertuples():
        for method, gap, rho in (("m", r.gap, r.rho), ("ref", r.ref_gap, r.ref_rho)):
            g, h = _gap_rho_pandas(ap, method, r.loss)
            assert gap == pytest.approx(g) and rho == pytest.approx(h)
            d = damage[(damage.method == method) & (damage.loss == r.loss)].iloc[0]
            assert gap == pytest.approx(d.rare_minus_other) and rho == pytest.approx(d.rho)
        assert r.gap_diff == pytest.approx(r.gap - r.ref_gap)
        assert r.level == pytest.approx(cp.matched_levels(ap, (r.loss,)).set_index("method")
                                        .loc["m", "level"])
    assert (out.gap_diff < 0).all()  # the planted extra loss of the rarest classes


def test_paired_bootstrap_equals_a_loop_that_rematches_every_resample():
    """Each resample of seeds, relabelled as new seeds, through matched_levels and
    class_change_at for both methods (the matched level found again), then the difference:
    percentiles and P as the vectorised bootstrap gives them."""
    ap = population(range(5), {"ref": 0.0, "m": 0.3}, noise=0.05)
    n_boot, seed, target = 25, 3, 0.2
    out = cp.paired_comparisons(ap, COUNTS, reference="ref", losses=(target,), n_rare=2,
                                n_boot=n_boot, seed=seed).iloc[0]
    picks = np.random.default_rng(seed).integers(0, 5, size=(n_boot, 5))
    diffs = []
    for pick in picks:
        resampled = pd.concat([ap[ap.seed == s].assign(seed=j) for j, s in enumerate(pick)])
        (gm, rm), (gr, rr) = (_gap_rho_pandas(resampled, m, target) for m in ("m", "ref"))
        diffs.append((gm - gr, rm - rr))
    diffs = np.array(diffs)
    assert out.reached == 1.0
    for j, name in enumerate(("gap", "rho")):
        lo, hi = np.percentile(diffs[:, j], [2.5, 97.5])
        assert out[f"{name}_diff_lo"] == pytest.approx(lo) and out[f"{name}_diff_hi"] == pytest.approx(hi)
        below = (np.sum(diffs[:, j] <= 0) + 1) / (n_boot + 1)
        above = (np.sum(diffs[:, j] >= 0) + 1) / (n_boot + 1)
        assert out[f"{name}_p"] == pytest.approx(min(1, 2 * min(below, above)))


def test_bootstrap_p_and_holm():
    """P counts a resample of exactly 0 on both sides; Holm over the decided comparisons."""
    assert cp.bootstrap_p(np.array([1.0, 2.0, 3.0])) == pytest.approx(2 * 1 / 4)
    assert cp.bootstrap_p(np.array([0.0, 0.0, 1.0])) == 1.0  # below: (2 + 1) / 4
    assert cp.bootstrap_p(np.array([0.0, 0.0, -1.0])) == 1.0  # above: (2 + 1) / 4
    assert cp.bootstrap_p(np.array([-1.0, 1.0])) == 1.0
    assert np.isnan(cp.bootstrap_p(np.array([np.nan])))
    ap = population(range(8), {"ref": 0.0, "m": 2.0, "n": 2.0})
    out = cp.paired_comparisons(ap, COUNTS, reference="ref", losses=(0.05, 0.1), n_rare=2,
                                n_boot=200)
    from statsmodels.stats.multitest import multipletests

    decided = out[out.decided]
    assert len(decided) >= 2 and out[~out.decided].gap_p_holm.isna().all()
    np.testing.assert_allclose(decided.gap_p_holm, multipletests(decided.gap_p, method="holm")[1])
    assert (decided.gap_differs == (decided.gap_p_holm < 0.05)).all()


def _matched_level(ap: np.ndarray, ks: np.ndarray, target: float) -> float:
    """The population's matched level by a direct loop over the median mAP loss curve."""
    med = np.median(ap.mean(axis=2), axis=0)
    loss = 1 - med / med[0]
    i = next(j for j in range(len(ks)) if loss[j] >= target)
    return ks[i - 1] + (target - loss[i - 1]) / (loss[i] - loss[i - 1]) * (ks[i] - ks[i - 1])


def test_paired_difference_defaults_levels_and_unshared_seeds():
    """The defaults are 2,000 resamples from seed 0 (the same numbers as passed explicitly,
    not as another seed's); level and ref_level are each method's matched level on all seeds;
    methods on different seed counts are refused, naming both counts."""
    am, ar = simulated_population(np.random.default_rng(5), 8, 0.5)
    args = (am, SIM_KS_M, ar, SIM_KS_R, 0.2, SIM_LOGC, SIM_RARE)
    out = cp.paired_difference(*args)
    np.testing.assert_equal(out, cp.paired_difference(*args, n_boot=2000, seed=0))
    assert out["gap_diff_lo"] != cp.paired_difference(*args, n_boot=2000, seed=1)["gap_diff_lo"]
    assert out["level"] == pytest.approx(_matched_level(am, SIM_KS_M, 0.2))
    assert out["ref_level"] == pytest.approx(_matched_level(ar, SIM_KS_R, 0.2))
    with pytest.raises(ValueError, match=r"share their seeds \(got 8 and 4\)"):
        cp.paired_difference(am, SIM_KS_M, ar[:4], SIM_KS_R, 0.2, SIM_LOGC, SIM_RARE)


def test_reached_counts_resamples_where_both_reach_and_none_gives_nan_quietly():
    """Three seeds on the grid (0, 1): the method's all lose 60% of mAP, the reference's first
    two 60% and its third none, so at a 50% target the reference reaches it only in resamples
    that pick its third seed at most once. ``reached`` is that share (not the method's, 1);
    with no resamples it, the intervals and P are NaN without a warning, the point estimates
    the same."""
    hit = [0.2, 0.3, 0.5, 0.6]
    ap_m = np.array([[[1.0] * 4, hit], [[1.0] * 4, [0.25, 0.3, 0.45, 0.6]], [[1.0] * 4, hit]])
    ap_r = np.array([[[1.0] * 4, hit], [[1.0] * 4, hit], [[1.0] * 4, [0.9, 1.0, 1.05, 1.05]]])
    ks, logc, rare = np.array([0.0, 1.0]), np.log([800.0, 400.0, 60.0, 9.0]), np.arange(4) > 2
    args = (ap_m, ks, ap_r, ks, 0.5, logc, rare)
    out = cp.paired_difference(*args, n_boot=400, seed=2)
    picks = np.random.default_rng(2).integers(0, 3, size=(400, 3))
    assert out["reached"] == pytest.approx(((picks == 2).sum(axis=1) <= 1).mean())
    assert 0.6 < out["reached"] < 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        none = cp.paired_difference(*args, n_boot=0)
    assert np.isnan([none[k] for k in ("reached", "gap_diff_lo", "gap_diff_hi", "rho_diff_lo",
                                        "rho_diff_hi", "gap_p", "rho_p")]).all()
    for k in ("level", "ref_level", "gap", "ref_gap", "rho", "gap_diff", "rho_diff"):
        assert none[k] == out[k], k


# ---------------------------------------------------------------- coverage at the default's seeds

SIM_C, SIM_KS_M, SIM_KS_R = 14, np.array([0, .2, .4, .6, .8, .9]), np.array([0, .1, .3, .5, .7, .9])
SIM_LOGC, SIM_RARE = np.log(np.geomspace(20, 3000, SIM_C)), np.arange(SIM_C) < 5


def simulated_population(rng, n: int, shift: float):
    """(AP of a method, AP of the reference) for ``n`` seeds on different grids: AP falls like
    exp(-beta k^2), the reference's beta rising slowly with class frequency, the method's the
    same times (1 + shift) for the 5 rarest classes; a seed sensitivity shared by both methods
    (the pairing) and independent noise per model and class."""
    a0 = np.linspace(.35, .85, SIM_C)
    z = rng.normal(size=(n, 1, 1))
    beta_r = 0.6 + 0.02 * np.arange(SIM_C)
    beta_m = beta_r * (1 + shift * SIM_RARE)

    def one(ks, beta):
        d = ks[None, :, None] ** 2 * beta[None, None, :] * (1 + 0.25 * z)
        return np.clip(a0 * np.exp(-d) + 0.02 * rng.normal(size=(n, len(ks), SIM_C)), 1e-3, 1)
    return one(SIM_KS_M, beta_m), one(SIM_KS_R, beta_r)


def simulated_truth(shift: float, target: float, n: int = 20000) -> np.ndarray:
    """The (gap, rho) difference of the population itself: the statistic on 20,000 seeds."""
    am, ar = simulated_population(np.random.default_rng(123), n, shift)
    everyone = np.arange(n)[None]
    _, cm, _ = cp.matched_changes(am, SIM_KS_M, target, everyone)
    _, cr, _ = cp.matched_changes(ar, SIM_KS_R, target, everyone)
    return (cp.gap_and_rho(cm, SIM_LOGC, SIM_RARE) - cp.gap_and_rho(cr, SIM_LOGC, SIM_RARE))[0]


def coverage(shift: float, target: float, n: int, reps: int, n_boot: int) -> np.ndarray:
    """Share of ``reps`` simulated builds of ``n`` seeds whose paired 95% interval covers the
    population's difference, per statistic (gap, rho)."""
    truth, rng, hit = simulated_truth(shift, target), np.random.default_rng(7), np.zeros(2)
    for r in range(reps):
        am, ar = simulated_population(rng, n, shift)
        o = cp.paired_difference(am, SIM_KS_M, ar, SIM_KS_R, target, SIM_LOGC, SIM_RARE,
                                 n_boot=n_boot, seed=r)
        hit += [o["gap_diff_lo"] <= truth[0] <= o["gap_diff_hi"],
                o["rho_diff_lo"] <= truth[1] <= o["rho_diff_hi"]]
    return hit / reps


def test_stated_coverage_holds_at_the_seed_count_the_default_uses():
    """With no true difference, at MIN_SEEDS seeds (the default profile's population, every
    method on every seed), the paired percentile 95% interval covers 0 about as often as
    COVERAGE states (measured with 400 builds x 1,000 resamples; here 120 x 300 to stay fast,
    so the tolerance is 0.05, about 3 Monte Carlo SEs). The intervals are conservative for
    "no difference", so a "differs" verdict errs at most at the nominal rate."""
    from prunecxr.config import load_config

    cfg = load_config("default")
    assert cp.MIN_SEEDS == 8 and len(cfg.method_seeds(cfg.methods[-1])) >= cp.MIN_SEEDS
    got = coverage(0.0, 0.1, cp.MIN_SEEDS, reps=120, n_boot=300)
    for j, name in enumerate(cp.COMPARISON_STATS):
        assert abs(got[j] - cp.COVERAGE[name]) <= 0.05, (name, got[j], cp.COVERAGE[name])
        assert got[j] >= 0.9


# --------------------------------------------------------------------------- the verdict rules

def _verdict(ap: pd.DataFrame, kind: str = "gap"):
    from prunecxr.claims import Settings
    from prunecxr.claims.q5 import _versus, versus_rule

    comp = cp.paired_comparisons(ap, COUNTS, reference="ref", losses=(0.05, 0.1), n_rare=2,
                                 n_boot=500)
    ev = SimpleNamespace(comparisons=comp, settings=Settings(reference="ref"))
    values = _versus(kind)(ev)
    return versus_rule(values, ev.settings), values


def test_planted_difference_holds_none_does_not_too_few_seeds_not_resolved():
    planted, values = _verdict(population(range(8), {"ref": 0.0, "m": 2.0}))
    assert planted is True and values["methods"] == ["m"]
    none, values = _verdict(population(range(8), {"ref": 0.0, "m": 0.0}, rng_seed=4))
    assert none is False and values["n_decided"] == 2 and values["methods"] == []
    few, values = _verdict(population(range(3), {"ref": 0.0, "m": 2.0}))
    assert few is None and values["n_decided"] == 0 and values["n_made"] == 2


def test_the_comparison_claims_values():
    """What the verdict and the chapter read: the statistic, the reference, the comparisons
    decided and differing, the shared seeds and the interval's simulated coverage; with no
    comparison at all, zeros."""
    from prunecxr.claims import Settings
    from prunecxr.claims.q5 import _versus

    _, gap = _verdict(population(range(8), {"ref": 0.0, "m": 2.0}))
    assert (gap["kind"], gap["reference"], gap["n_seeds"]) == ("gap", "ref", 8)
    assert gap["coverage"] == cp.COVERAGE["gap"] and len(gap["decided"]) == gap["n_decided"] == 2
    assert gap["decided"]["decided"].all() and list(gap["differ"]["method"]) == ["m", "m"]
    _, rho = _verdict(population(range(3), {"ref": 0.0, "m": 2.0}), kind="rho")
    assert (rho["kind"], rho["n_seeds"], rho["coverage"]) == ("rho", 3, cp.COVERAGE["rho"])
    empty = _versus("rho")(SimpleNamespace(comparisons=pd.DataFrame(), settings=Settings()))
    assert {k: v for k, v in empty.items() if k not in ("decided", "differ")} == {
        "kind": "rho", "reference": "l1", "n_made": 0, "n_decided": 0, "methods": [],
        "n_seeds": 0, "coverage": cp.COVERAGE["rho"]}


def test_an_unresolved_grid_is_not_decided():
    ap = population(range(8), {"ref": 0.0, "m": 2.0})
    coarse = ap[(ap.method == "ref") | ap.sparsity.isin([0.0, 0.8])]  # one step to > 2x 0.1
    out = cp.paired_comparisons(coarse, COUNTS, reference="ref", losses=(0.1,), n_rare=2,
                                n_boot=100)
    assert not out.decided.any() and out.gap_p_holm.isna().all()


# ------------------------------------------------------------------------ fine-tuning alone

def test_finetune_effect_is_the_paired_difference_of_the_dense_models():
    ap = population(range(4), {"l1": 0.0, "l1_ft": 0.0}, rng_seed=2)
    tuned = ap.method.eq("l1_ft") & ap.sparsity.eq(0.0)
    ap.loc[tuned, "ap"] += 0.01 * (1 + ap.loc[tuned, "seed"])  # fine-tuning alone helps
    out = cp.finetune_effect(ap)
    maps = ap[ap.sparsity == 0].groupby(["method", "seed"])["ap"].mean().unstack(0)
    diff = (maps["l1_ft"] - maps["l1"]).to_numpy()
    np.testing.assert_allclose(out["difference"].iloc[:4], diff)
    assert out["difference"].iloc[-1] == pytest.approx(diff.mean())
    lo, hi = st.t.interval(0.95, len(diff) - 1, diff.mean(), st.sem(diff))
    assert out["95% t-interval"].iloc[-1] == f"[{lo:+.4f}, {hi:+.4f}]"
    assert list(out.columns) == ["seed", "l1 (trained)", "l1_ft level 0 (fine-tuned)",
                                 "difference", "95% t-interval"]
    assert out["seed"].tolist() == ["0", "1", "2", "3", "all"] and list(out.index) == list(range(5))
    assert out["l1 (trained)"].iloc[-1] == pytest.approx(np.median(maps["l1"]))
    assert cp.finetune_effect(ap[ap.method == "l1"]).empty
    # Two seeds give an interval; one seed, or the same difference on every seed, does not.
    two = cp.finetune_effect(ap[ap.seed < 2])
    lo, hi = st.t.interval(0.95, 1, diff[:2].mean(), st.sem(diff[:2]))
    assert two["95% t-interval"].iloc[-1] == f"[{lo:+.4f}, {hi:+.4f}]"
    assert cp.finetune_effect(ap[ap.seed < 1])["95% t-interval"].iloc[-1] == "[+nan, +nan]"
    flat = ap.copy()
    flat.loc[tuned, "ap"] = flat.loc[tuned, "ap"] - 0.01 * flat.loc[tuned, "seed"]
    assert cp.finetune_effect(flat)["95% t-interval"].iloc[-1] == "[+nan, +nan]"


def test_the_answer_figure_marks_decided_differing_and_undecided_comparisons():
    ap = population(range(8), {"ref": 0.0, "m": 2.0, "n": 0.0})
    comp = cp.paired_comparisons(ap, COUNTS, reference="ref", losses=(0.05, 0.1), n_rare=2,
                                 n_boot=300)
    comp.loc[0, "decided"] = False  # one not decided: drawn as a grey x
    from prunecxr import plots

    fig = plots.method_differences_figure(comp, "ref")
    left = fig.axes[0]
    assert [t.get_text() for t in left.get_xticklabels()] == ["m", "n"]
    ys = np.concatenate([np.asarray(line.get_ydata(), float) for line in left.get_lines()
                         if line.get_marker() not in (None, "None", "")])
    for r in comp.itertuples():  # every comparison's difference is drawn
        assert np.isclose(ys, r.gap_diff).any()
    assert any(line.get_marker() == "x" for line in left.get_lines())
    empty = plots.method_differences_figure(comp.iloc[:0], "ref")
    assert [t.get_text() for t in empty.axes[0].texts] == ["no method to compare"]


def test_paired_comparisons_defaults_shared_seeds_and_class_order():
    """Defaults as documented (l1, the 5 rarest, 2000 resamples from seed 0); only the seeds
    both methods have are paired; train counts are matched to classes by name, not order; a
    level column of another name is read when named."""
    ap = population(range(6), {"l1": 0.0, "quant": 0.3})
    got = cp.paired_comparisons(ap, COUNTS, losses=(0.1,))
    explicit = cp.paired_comparisons(ap, COUNTS, reference="l1", losses=(0.1,), n_rare=5,
                                     n_boot=2000, seed=0)
    pd.testing.assert_frame_equal(got, explicit)
    assert got["method"].tolist() == ["quant"]
    extra = pd.concat([pd.Series({"absent": 99999.0}), COUNTS.iloc[::-1]])  # not in the table
    shuffled = cp.paired_comparisons(ap, extra, losses=(0.1,), n_rare=2, n_boot=50)
    pd.testing.assert_frame_equal(
        shuffled, cp.paired_comparisons(ap, COUNTS, losses=(0.1,), n_rare=2, n_boot=50),
        check_exact=False)
    fewer = ap[~((ap.method == "quant") & (ap.seed >= 4))]          # quant on seeds 0-3 only
    row = cp.paired_comparisons(fewer, COUNTS, losses=(0.1,), n_rare=2, n_boot=50).iloc[0]
    assert row["n_seeds"] == 4
    bits = ap.rename(columns={"sparsity": "bits"})
    pd.testing.assert_frame_equal(
        cp.paired_comparisons(bits, COUNTS, losses=(0.1,), n_rare=2, n_boot=50, level="bits"),
        cp.paired_comparisons(ap, COUNTS, losses=(0.1,), n_rare=2, n_boot=50))


def test_method_array_is_the_cube_in_the_order_asked_with_gaps_as_nan():
    ap = population(range(3), {"l1": 0.0})
    ap = ap[~((ap.seed == 1) & (ap["class"] == CLASSES[0]) & (ap.sparsity == KS[2]))]  # a gap
    seeds, classes = [2, 0, 1], CLASSES[::-1]
    ks, cube = cp.method_array(ap, "l1", seeds, classes)
    assert ks.tolist() == sorted(KS) and cube.shape == (3, len(KS), len(CLASSES))
    for i, s in enumerate(seeds):
        for j, k in enumerate(ks):
            for c_i, c in enumerate(classes):
                hit = ap[(ap.seed == s) & (ap.sparsity == k) & (ap["class"] == c)]["ap"]
                want = float(hit.iloc[0]) if len(hit) else np.nan
                assert cube[i, j, c_i] == pytest.approx(want, nan_ok=True)
    assert np.isnan(cube).sum() == 1
    bits_ks, bits = cp.method_array(ap.rename(columns={"sparsity": "bits"}), "l1", seeds,
                                    classes, level="bits")
    np.testing.assert_array_equal(bits, cube)


def test_which_comparisons_are_made_and_their_resolution():
    """The reference's seeds bound the pairing (even where the method has more); two shared
    seeds make a comparison (not decided), one does not, and a method skipped so does not end
    the loop; a loss only the reference reaches gives no row, and the losses after it still
    do; ``resolved`` is both grids resolving their point."""
    ap = population(range(6), {"ref": 0.0, "one": 0.3, "two": 0.3, "m": 0.3})
    ap = ap[~(((ap.method == "ref") & (ap.seed >= 4)) | ((ap.method == "one") & (ap.seed > 0))
              | ((ap.method == "two") & (ap.seed > 1)))]
    out = cp.paired_comparisons(ap, COUNTS, reference="ref", losses=(0.1,), n_rare=2, n_boot=20)
    assert out[["method", "n_seeds", "decided"]].values.tolist() == [["two", 2, False],
                                                                     ["m", 4, False]]
    short = ap[(ap.method == "ref") | ((ap.method == "m") & (ap.sparsity <= 0.15))]
    out = cp.paired_comparisons(short, COUNTS, reference="ref", losses=(0.3, 0.05, 0.1),
                                n_rare=2, n_boot=20)
    levels = cp.matched_levels(short, (0.3, 0.05, 0.1)).set_index(["method", "loss"])
    assert levels.loc[("ref", 0.3), "reached"] and not levels.loc[("m", 0.3), "reached"]
    assert out["loss"].tolist() == [0.05, 0.1]
    both = [bool(levels.loc[("m", x), "resolved"] and levels.loc[("ref", x), "resolved"])
            for x in (0.05, 0.1)]
    assert out["resolved"].tolist() == both and out["resolved"].any()


def test_decided_at_the_thresholds_and_differs_strictly_below_alpha(monkeypatch):
    """A comparison whose resamples reach the loss exactly as often as RESAMPLES_REACHED asks
    is decided; one whose Holm P equals alpha does not differ. The planted difference puts
    every one of 100 resamples below 0, so P is 2 x 1/101 exactly (one comparison: Holm
    leaves it as it is)."""
    monkeypatch.setattr(cp, "RESAMPLES_REACHED", 1.0)
    alpha = 2 * (1 / 101)
    out = cp.paired_comparisons(population(range(8), {"ref": 0.0, "m": 2.0}), COUNTS,
                                reference="ref", losses=(0.05,), n_rare=2, n_boot=100,
                                alpha=alpha).iloc[0]
    assert out["reached"] == 1.0 and out["decided"]
    assert out["gap_p_holm"] == out["gap_p"] == alpha and out["gap_differs"] == False  # noqa: E712


def test_matched_changes_on_a_known_grid():
    """One seed losing AP linearly (a class with dense AP 1, one with 0.8, one with AP 0 whose
    change is undefined) and one losing nothing: targets crossed within the first step, exactly
    at a grid level and within the last step give np.interp's level, the loss at the grid level
    at or above, and each class's interpolated change; the seed that never loses is NaN."""
    ks = np.array([0.0, 0.1, 0.2, 0.3])
    lose = np.array([[1.0, 0.75, 0.5, 0.25], [0.8, 0.6, 0.4, 0.2], [0.0, 0.0, 0.0, 0.0]]).T
    ap = np.stack([lose, np.repeat(lose[:1], 4, axis=0)])   # seed 1 keeps its dense AP
    picks = np.array([[0, 0], [1, 1]])
    maps = lose.mean(axis=1)
    loss = 1.0 - maps / maps[0]
    for target in (0.1, float(loss[1]), 0.6):
        level, change, grid_loss = cp.matched_changes(ap, ks, target, picks)
        at = np.interp(target, loss, ks)
        assert level[0] == pytest.approx(at) and np.isnan(level[1])
        assert grid_loss[0] == loss[np.argmax(loss >= target)] and np.isnan(grid_loss[1])
        want = [np.interp(at, ks, (lose[:, 0] - 1.0) / 1.0),
                np.interp(at, ks, (lose[:, 1] - 0.8) / 0.8), np.nan]
        np.testing.assert_allclose(change[0], want)
        assert np.isnan(change[1]).all()


def test_gap_and_rho_need_three_valued_classes_and_say_nothing_on_a_constant_row():
    """Rho against scipy row by row: rows valued on the same 3 classes (vectorised), rows each
    with its own 3 valued classes (one at a time), NaN with only 2 valued classes and for a row
    whose classes all changed alike (quietly, as rowwise_spearman does); the gap is NaN where
    no class is rare, or every class is."""
    logc = np.log([5000.0, 900.0, 120.0, 20.0, 8.0])
    nan = np.nan
    rows = {"same 3": [[0.1, 0.3, 0.2, nan, nan], [-0.2, -0.2, -0.2, nan, nan],
                       [0.3, 0.1, 0.2, nan, nan]],
            "own 3": [[0.1, 0.3, 0.2, nan, nan], [nan, nan, 0.2, -0.1, 0.4]],
            "2": [[0.1, 0.3, nan, nan, nan], [0.3, 0.1, nan, nan, nan]]}
    rare = np.array([False, False, False, True, True])
    for kind, change in rows.items():
        change = np.array(change)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = cp.gap_and_rho(change, logc, rare)
            none_rare = cp.gap_and_rho(change, logc, np.zeros(5, bool))
            all_rare = cp.gap_and_rho(change, logc, np.ones(5, bool))
        for r, row in enumerate(change):
            ok = np.isfinite(row)
            want = (st.spearmanr(logc[ok], row[ok]).statistic
                    if ok.sum() >= 3 and np.ptp(row[ok]) > 0 else nan)
            np.testing.assert_allclose(got[r, 1], want, err_msg=kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the "same 3" rows have no rare value
            gap = np.nanmedian(change[:, rare], axis=1) - np.nanmedian(change[:, ~rare], axis=1)
        np.testing.assert_allclose(got[:, 0], gap)
        np.testing.assert_array_equal(np.isnan(none_rare[:, 0]), True)
        np.testing.assert_array_equal(np.isnan(all_rare[:, 0]), True)
        np.testing.assert_allclose(all_rare[:, 1], got[:, 1])
