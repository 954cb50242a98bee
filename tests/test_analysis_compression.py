"""Q5 matched damage (prunecxr.analysis.compression) against direct numpy / scipy computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from prunecxr.analysis import compression as cp

KS = [0.0, 0.1, 0.2, 0.4, 0.6, 0.8]
CLASSES = ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]
COUNTS = pd.Series({"c0": 5000, "c1": 900, "c2": 400, "c3": 120, "c4": 60, "c5": 20, "c6": 8})


def table(seeds=(0, 1, 2, 3), noise=0.02, rng_seed=0) -> pd.DataFrame:
    """'lin' loses AP linearly in k, the same for every class; 'rare' hits rare classes harder
    (their AP falls like k, frequent ones like k^2), with seed-to-seed noise."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for s in seeds:
        for i, c in enumerate(CLASSES):
            base = 0.9 - 0.05 * i + rng.normal(0, noise)
            for k in KS:
                rows.append(("lin", s, k, c, base * (1 - k)))
                frac = i / (len(CLASSES) - 1)  # 0 for the most frequent, 1 for the rarest
                rows.append(("rare", s, k, c, base * (1 - (frac * k + (1 - frac) * k * k))
                             + (rng.normal(0, noise) if k > 0 else 0.0)))
    return pd.DataFrame(rows, columns=["method", "seed", "sparsity", "class", "ap"])


def test_matched_levels_interpolate_the_median_loss_curve():
    ap = table()
    got = cp.matched_levels(ap, losses=(0.05, 0.1, 0.2, 0.95))
    maps = ap.groupby(["method", "seed", "sparsity"])["ap"].mean().groupby(["method", "sparsity"]).median()
    for method in ("lin", "rare"):
        m = maps.loc[method]
        loss = 1 - m.to_numpy() / m.loc[0.0]
        assert np.all(np.diff(loss) > 0)  # monotone here, so np.interp inverts it
        for target in (0.05, 0.1, 0.2):
            row = got[(got.method == method) & (got.loss == target)].iloc[0]
            assert row.reached and row.level == pytest.approx(np.interp(target, loss, m.index))
        assert not got[(got.method == method) & (got.loss == 0.95)].iloc[0].reached
    lin = got[(got.method == "lin") & (got.loss == 0.1)].iloc[0]
    assert lin.level == pytest.approx(0.1)  # mAP = base (1 - k): a 10% loss at k = 0.1 exactly
    with pytest.raises(ValueError, match="losses must be fractions"):
        cp.matched_levels(ap, losses=(0.0,))
    with pytest.raises(ValueError, match="no level-0"):
        cp.matched_levels(ap[ap.sparsity > 0])


def test_class_change_at_is_the_interpolated_relative_change():
    ap = table(seeds=(0, 1))
    matched = pd.DataFrame({"method": ["rare"], "loss": [0.1], "level": [0.3]})
    got = cp.class_change_at(ap, matched).set_index(["seed", "class"])["rel_change"]
    for (seed, cls), value in got.items():
        g = ap[(ap.method == "rare") & (ap.seed == seed) & (ap["class"] == cls)].sort_values("sparsity")
        ap0 = g.ap.iloc[0]
        assert value == pytest.approx(np.interp(0.3, g.sparsity, (g.ap - ap0) / ap0))
    assert len(got) == 2 * len(CLASSES)
    shuffled = ap.sample(frac=1.0, random_state=0)             # rows in any order
    both = pd.DataFrame({"method": ["rare", "lin", "lin"], "loss": [0.1, 0.1, 0.2],
                         "level": [0.3, 0.25, np.nan]})
    whole = cp.class_change_at(shuffled, both)
    assert list(whole.columns) == ["method", "loss", "level", "seed", "class", "rel_change"]
    keys = list(zip(whole["method"], whole["seed"], whole["class"]))
    assert keys == sorted(keys)                                # grouped in sorted order
    assert set(whole["level"]) == {0.3, 0.25} and set(whole["loss"]) == {0.1}
    empty = cp.class_change_at(ap, both.iloc[:0])
    assert empty.empty and list(empty.columns) == list(whole.columns)


def test_matched_damage_point_estimates_and_bootstrap():
    ap = table()
    out = cp.matched_damage(ap, COUNTS, losses=(0.1,), n_rare=2, n_boot=300, seed=1)
    changes = cp.class_change_at(ap, cp.matched_levels(ap, losses=(0.1,)))
    for r in out.itertuples():
        per_class = changes[changes.method == r.method].groupby("class")["rel_change"].median()
        assert r.rare_change == pytest.approx(per_class[["c5", "c6"]].median())
        assert r.other_change == pytest.approx(per_class.drop(["c5", "c6"]).median())
        rho = st.spearmanr(np.log(COUNTS[per_class.index]), per_class).statistic
        assert r.rho == pytest.approx(rho) and r.n_seeds == 4
        for name in ("rare_change", "other_change", "rare_minus_other", "rho"):
            assert getattr(r, f"{name}_lo") <= getattr(r, name) + 1e-12 <= getattr(r, f"{name}_hi") + 2e-12
    rare = out.set_index("method").loc["rare"]
    lin = out.set_index("method").loc["lin"]
    assert rare.rare_minus_other < 0 and rare.rho > 0.8  # rarer classes lose more
    assert lin.rare_minus_other == pytest.approx(0, abs=0.02)  # every class loses alike
    again = cp.matched_damage(ap, COUNTS, losses=(0.1,), n_rare=2, n_boot=300, seed=1)
    pd.testing.assert_frame_equal(out, again)  # the bootstrap is seeded


def test_identical_seeds_give_a_zero_width_interval():
    ap = table(noise=0.0)
    ap = pd.concat([ap[ap.seed == 0].assign(seed=s) for s in range(3)])
    out = cp.matched_damage(ap, COUNTS, losses=(0.2,), n_rare=3, n_boot=50)
    for name in ("rare_change", "other_change", "rho"):
        np.testing.assert_allclose(out[f"{name}_lo"], out[name])
        np.testing.assert_allclose(out[f"{name}_hi"], out[name])


def test_damage_curve_and_a_level_column_of_another_name():
    """The curve's columns and values; a method whose grid is named otherwise (e.g. ``bits``)
    gives the same answers as when it is called ``sparsity``; a target of 1 or more is refused."""
    ap = table(seeds=(0, 1, 2))
    curve = cp.damage_curve(ap)
    assert list(curve.columns) == ["method", "level", "median_map", "loss"]
    lin = curve[curve.method == "lin"]
    per_model = ap[ap.method == "lin"].groupby(["seed", "sparsity"])["ap"].mean()
    median = per_model.groupby("sparsity").median()
    np.testing.assert_allclose(lin["median_map"], median.to_numpy())
    np.testing.assert_allclose(lin["loss"], 1 - median.to_numpy() / median.loc[0.0])
    assert lin["level"].tolist() == KS and list(curve.index) == list(range(len(curve)))
    renamed = ap.rename(columns={"sparsity": "bits"})
    pd.testing.assert_frame_equal(cp.damage_curve(renamed, level="bits"), curve)
    pd.testing.assert_frame_equal(cp.matched_levels(renamed, level="bits"), cp.matched_levels(ap))
    pd.testing.assert_frame_equal(cp.matched_damage(renamed, COUNTS, n_boot=20, level="bits"),
                                  cp.matched_damage(ap, COUNTS, n_boot=20))
    with pytest.raises(ValueError, match=r"losses must be fractions in \(0, 1\), got \[1.0\]"):
        cp.matched_levels(ap, losses=(1.0,))


def test_damage_curve_sorts_levels_when_a_seed_lacks_one():
    """A seed without a level (a run cut short) still gives each method's curve in increasing
    level, the missing level's median taken over the other seeds, methods in name order."""
    ap = table(seeds=(0, 1, 2))
    ap = ap[~((ap.seed == 0) & (ap.sparsity == 0.2))].replace({"lin": "z_lin"})
    curve = cp.damage_curve(ap)
    assert curve.method.tolist() == ["rare"] * len(KS) + ["z_lin"] * len(KS)
    assert curve.level.tolist() == KS * 2 and list(curve.index) == list(range(2 * len(KS)))
    lin = curve[curve.method == "z_lin"].set_index("level")["median_map"]
    per_model = ap[ap.method == "z_lin"].groupby(["seed", "sparsity"])["ap"].mean()
    np.testing.assert_allclose(lin, per_model.groupby("sparsity").median().loc[KS])


@pytest.mark.filterwarnings("ignore:mAP excludes")
def test_vectorised_bootstrap_equals_a_loop_over_resamples():
    """The same resampled seeds (the generator's first draw) summarised one resample at a time
    with pandas and scipy; one class has a value for one seed only, so about a third of the
    resamples lack it and are correlated over the other classes."""
    ap = table(seeds=(0, 1, 2, 3, 4))
    ap.loc[(ap.seed > 0) & (ap["class"] == "c3"), "ap"] = np.nan
    n_boot, seed = 200, 7
    out = cp.matched_damage(ap, COUNTS, losses=(0.2,), n_rare=2, n_boot=n_boot, seed=seed)
    changes = cp.class_change_at(ap, cp.matched_levels(ap, losses=(0.2,)))
    rng = np.random.default_rng(seed)
    for method in ("lin", "rare"):  # matched_damage's group order: the methods as they come
        x = changes[changes.method == method].pivot(index="seed", columns="class", values="rel_change")
        picks = rng.integers(0, len(x), size=(n_boot, len(x)))
        assert 0 < (picks != 0).all(axis=1).sum() < n_boot  # both kinds of resample occur
        stats = []
        for pick in picks:
            per_class = x.iloc[pick].median()  # NaN skipped, as pandas does
            ok = per_class.notna()
            rho = st.spearmanr(np.log(COUNTS[per_class.index[ok]]), per_class[ok]).statistic
            stats.append((per_class[["c5", "c6"]].median(), per_class.drop(["c5", "c6"]).median(), rho))
        stats = np.array(stats)
        row = out.set_index("method").loc[method]
        for i, name in enumerate(("rare_change", "other_change", "rho")):
            lo, hi = np.percentile(stats[:, i], [2.5, 97.5])
            assert row[f"{name}_lo"] == pytest.approx(lo) and row[f"{name}_hi"] == pytest.approx(hi)
        lo, hi = np.percentile(stats[:, 0] - stats[:, 1], [2.5, 97.5])
        assert row["rare_minus_other_lo"] == pytest.approx(lo)
        assert row["rare_minus_other_hi"] == pytest.approx(hi)


def test_matched_levels_report_the_grid_level_above_and_whether_it_resolves():
    # loss 0, 0.05, 0.5 at levels 0, 0.1, 0.2: a 10% target lies in a jump to 50% (unresolved),
    # a 30% target is within twice its size at the grid level above (resolved)
    rows = [("m", s, k, c, a) for s in (0, 1) for c in CLASSES
            for k, a in ((0.0, 0.8), (0.1, 0.76), (0.2, 0.4))]
    ap = pd.DataFrame(rows, columns=["method", "seed", "sparsity", "class", "ap"])
    got = cp.matched_levels(ap, losses=(0.05, 0.1, 0.3, 0.9)).set_index("loss")
    assert got.loc[0.05, "grid_level"] == 0.1 and got.loc[0.05, "resolved"]
    assert got.loc[0.1, "grid_level"] == 0.2 and got.loc[0.1, "grid_loss"] == pytest.approx(0.5)
    assert not got.loc[0.1, "resolved"]  # 0.5 > 2 x 0.1
    assert got.loc[0.3, "resolved"] and got.loc[0.3, "level"] == pytest.approx(0.1 + 0.1 * 0.25 / 0.45)
    assert not got.loc[0.9, "reached"] and not got.loc[0.9, "resolved"]
    assert np.isnan(got.loc[0.9, "grid_level"])


class PieStore:
    """What matched_pies reads from a store: two methods, their levels and predictions."""

    classes = CLASSES
    train_counts = COUNTS

    def __init__(self, n=200, seed=0):
        rng = np.random.default_rng(seed)
        self.labels = (rng.random((n, len(CLASSES))) < np.linspace(0.5, 0.05, len(CLASSES))).astype(np.uint8)
        self.meta = pd.DataFrame(index=range(n))
        self._levels = {"a": np.array([0.0, 0.5, 0.9]), "b": np.array([0.0, 0.75])}
        self.preds = {(m, s): rng.random((len(lv), n, len(CLASSES))).astype(np.float32)
                      for m, lv in self._levels.items() for s in (0, 1)}

    def levels(self, method):
        return self._levels[method]

    def method_seeds(self, method):
        return [0, 1]

    def predictions(self, method, seed):
        return self.preds[(method, seed)]


def test_matched_pies_are_q4_pies_at_the_matched_level_and_overlap_is_jaccard():
    """At a grid level: Q4's PIEs there; between grid levels: the mean outputs interpolated
    linearly between the two around it; the same seeds for every method."""
    from prunecxr.analysis import pies
    from prunecxr.stats import rowwise_spearman

    store = PieStore()
    matched = pd.DataFrame({"method": ["a", "a", "b", "b"], "loss": [0.1, 0.2, 0.1, 0.2],
                            "reached": [True, True, True, False],
                            "level": [0.5, 0.7, 0.75, np.nan]})
    table, masks = cp.matched_pies(store, matched, fraction=0.1, n_rare=2)
    assert list(table.columns) == ["method", "loss", "level", "n_seeds", "n_pies", "rare_ratio",
                                   "multi_ratio"]
    assert table[["method", "loss", "level"]].values.tolist() == [["a", 0.1, 0.5], ["a", 0.2, 0.7],
                                                                  ["b", 0.1, 0.75]]
    assert (table.n_seeds == 2).all() and set(masks) == {("a", 0.1), ("a", 0.2), ("b", 0.1)}
    for r in table.itertuples():
        if r.level in (0.5, 0.75):  # grid levels: Q4's own PIEs
            expect = pies.select_pies(pies.pie_scores(store, r.method, dense=0.0, sparse=r.level), 0.1)
        else:  # 0.7 = 0.5 + 0.5 x (0.9 - 0.5): halfway between the means at 0.5 and 0.9
            mean = sum(store.predictions("a", s).astype(np.float64) for s in (0, 1)) / 2
            expect = pies.select_pies(rowwise_spearman(mean[0], 0.5 * mean[1] + 0.5 * mean[2]), 0.1)
        assert np.array_equal(masks[(r.method, r.loss)], expect) and r.n_pies == 20
        has_rare = store.labels[:, -2:].any(axis=1)  # c5, c6: the two rarest by COUNTS
        assert r.rare_ratio == pytest.approx(has_rare[expect].mean() / has_rare[~expect].mean())
        findings = store.labels.sum(axis=1)  # no "No Finding" column here: every class counts
        many = findings >= 4
        ratio = many[expect].mean() / many[~expect].mean() if many[~expect].any() else np.inf
        assert r.multi_ratio == pytest.approx(ratio)
    one_seed, _ = cp.matched_pies(store, matched, fraction=0.1, n_rare=2, seeds=[1])
    assert (one_seed.n_seeds == 1).all()
    from sklearn.metrics import jaccard_score

    overlap = cp.pie_overlap(masks)
    assert overlap[["loss", "method_a", "method_b"]].values.tolist() == [[0.1, "a", "b"]]
    assert overlap["jaccard"].iloc[0] == pytest.approx(
        jaccard_score(masks[("a", 0.1)], masks[("b", 0.1)]))
    assert np.isnan(cp.jaccard(np.zeros(5, bool), np.zeros(5, bool)))


# ------------------------------------------------- chapter helpers, against direct computation

def test_first_step_losses_is_each_methods_loss_at_its_first_level_above_zero():
    curve = pd.DataFrame({"method": ["b", "b", "b", "a", "a", "solo"],
                          "level": [0.5, 0.0, 0.25, 0.0, 0.1, 0.0],
                          "loss": [0.4, 0.0, 0.1, 0.0, 0.05, 0.0]})
    got = cp.first_step_losses(curve)
    pd.testing.assert_series_equal(got, pd.Series({"b": 0.1, "a": 0.05},
                                                  name="first_step_loss", dtype=float))
    assert cp.first_step_losses(curve[curve.method == "solo"]).empty


def test_overlap_matrix_is_symmetric_with_ones_on_the_diagonal():
    masks = {("l1", 0.1): None, ("quant", 0.1): None, ("random", 0.1): None, ("l1", 0.2): None}
    overlap = pd.DataFrame({"loss": [0.1, 0.1, 0.2], "method_a": ["l1", "quant", "l1"],
                            "method_b": ["quant", "random", "random"], "jaccard": [0.3, 0.6, 0.9]})
    m = cp.overlap_matrix(overlap, masks, 0.1)
    expected = pd.DataFrame([[1.0, 0.3, 1.0], [0.3, 1.0, 0.6], [1.0, 0.6, 1.0]],
                            index=["l1", "quant", "random"], columns=["l1", "quant", "random"])
    expected.loc["l1", "random"] = expected.loc["random", "l1"] = 0.0   # no pair at this loss
    pd.testing.assert_frame_equal(m, expected)


class _Facts:
    """A store's level_facts for two methods: l1 by sparsity with storage, quant by bits."""

    methods = ["l1", "channel_l1", "quant"]

    def level_facts(self, method):
        if method == "quant":
            return pd.DataFrame({"seed": 0, "nominal": [32, 8, 4], "level": [0.0, 0.5, 0.9],
                                 "unit": "bits"})
        rows = [(s, k, k * f, 0.8 * k * f, 1 - k * f, 1 - 0.9 * k, 64 - int(40 * k))
                for s, f in ((1, 1.0), (2, 1.2)) for k in (0.0, 0.5, 0.75)]
        return pd.DataFrame(rows, columns=["seed", "nominal", "level", "storage_removed",
                                           "params_share", "macs_share", "channels"]).assign(
            unit="share of channels" if method.startswith("channel_") else "sparsity")


def test_matched_in_units_interpolates_each_methods_own_unit_and_storage():
    matched = pd.DataFrame({"method": ["l1", "quant", "l1"], "loss": [0.1, 0.1, 0.5],
                            "level": [0.25, 0.7, np.nan], "reached": [True, True, False],
                            "grid_level": [0.5, 0.9, np.nan], "grid_loss": [0.2, 0.3, np.nan],
                            "resolved": [False, False, False]})
    got = cp.matched_in_units(_Facts(), matched)
    assert list(got.columns) == ["method", "loss", "level", "storage_removed", "nominal", "unit",
                                 "grid_level", "grid_loss", "resolved"]
    assert got["unit"].tolist() == ["sparsity", "bits", "sparsity"]
    # l1: the first seed's row per nominal (level = nominal), the median over seeds for storage
    assert got["nominal"].iloc[0] == pytest.approx(0.25)
    level_med = np.median([[0, 0], [0.5, 0.6], [0.75, 0.9]], axis=1)
    storage_med = np.median([[0, 0], [0.4, 0.48], [0.6, 0.72]], axis=1)
    assert got["storage_removed"].iloc[0] == pytest.approx(np.interp(0.25, level_med, storage_med))
    assert got["nominal"].iloc[1] == pytest.approx(np.interp(0.7, [0, 0.5, 0.9], [32, 8, 4]))
    assert np.isnan(got["storage_removed"].iloc[1])             # no storage column recorded
    assert got[["nominal", "storage_removed"]].iloc[2].isna().all()   # not reached


def test_channel_savings_is_the_first_seed_of_the_first_channel_method():
    got = cp.channel_savings(_Facts())
    assert list(got.columns) == ["share of channels removed", "weights removed",
                                 "parameters left", "MACs left", "channels"]
    assert got["share of channels removed"].tolist() == [0.0, 0.5, 0.75]
    assert got["weights removed"].tolist() == [0.0, 0.5, 0.75]        # seed 1's, not seed 2's
    assert got["MACs left"].tolist() == pytest.approx([1.0, 0.55, 0.325])
    assert got["channels"].tolist() == [64, 44, 34]
    no_channels = _Facts()
    no_channels.methods = ["l1", "quant"]
    assert cp.channel_savings(no_channels).empty


def test_matched_pies_and_damage_defaults():
    """The documented defaults: 5% PIEs, the 5 rarest classes, 4+ findings; 2000 resamples
    from seed 0 (on 8 seeds, where another count or seed moves the intervals)."""
    store = PieStore()
    matched = pd.DataFrame({"method": ["a", "b"], "loss": [0.1, 0.1], "reached": [True, True],
                            "level": [0.7, 0.75]})
    got, _ = cp.matched_pies(store, matched)
    explicit, _ = cp.matched_pies(store, matched, fraction=0.05, n_rare=5, max_findings=4)
    pd.testing.assert_frame_equal(got, explicit)
    assert got["n_pies"].tolist() == [10, 10] and got["rare_ratio"].notna().all()
    eight = table(seeds=range(8))
    eight = eight[(eight.method == "rare") & eight.sparsity.isin([0.0, 0.1, 0.2])]
    pd.testing.assert_frame_equal(cp.matched_damage(eight, COUNTS, losses=(0.1,)),
                                  cp.matched_damage(eight, COUNTS, losses=(0.1,), n_rare=5,
                                                    n_boot=2000, seed=0))
    ap = table()
    # each row's resolution is its own (method, loss) row of matched_levels, in its order
    damage = cp.matched_damage(ap, COUNTS, losses=(0.05, 0.3), n_boot=20)
    levels = cp.matched_levels(ap, (0.05, 0.3))
    levels = levels[levels["reached"]]
    assert damage[["method", "loss", "resolved"]].values.tolist() == (
        levels[["method", "loss", "resolved"]].values.tolist())
    assert damage["resolved"].nunique() == 2
    with pytest.raises(ValueError, match="matched"):
        cp.matched_pies(store, matched.drop(columns="reached"))


def test_shared_seeds_keep_the_first_methods_order():
    from types import SimpleNamespace

    seeds = {"a": [3, 1, 2, 5], "b": [5, 2, 3], "c": [2, 3, 9]}
    store = SimpleNamespace(method_seeds=lambda m: seeds[m])
    assert cp.shared_seeds(store, ["a", "b", "c"]) == [3, 2]
    assert cp.shared_seeds(store, ["b"]) == [5, 2, 3]
    assert cp.shared_seeds(store, []) == []


def test_interpolated_outputs_between_at_and_beyond_grid_levels():
    """Linear between the two grid levels around the level; a grid level's own mean there;
    below the first or past the last grid level, the end's mean (no extrapolation)."""
    from prunecxr.analysis.pies import mean_probabilities

    store = PieStore()
    mean = {k: mean_probabilities(store, "a", k, seeds=[0, 1]) for k in (0.0, 0.5, 0.9)}
    got = cp.interpolated_outputs(store, "a", 0.6, [0, 1])
    np.testing.assert_allclose(got, 0.75 * mean[0.5] + 0.25 * mean[0.9], rtol=1e-12)
    for k in (0.0, 0.5, 0.9):
        np.testing.assert_allclose(cp.interpolated_outputs(store, "a", k, [0, 1]), mean[k],
                                   rtol=1e-12)
    np.testing.assert_allclose(cp.interpolated_outputs(store, "a", 0.95, [0, 1]), mean[0.9])
    np.testing.assert_allclose(cp.interpolated_outputs(store, "a", -0.1, [0, 1]), mean[0.0])
    one = cp.interpolated_outputs(store, "a", 0.5, [1])
    np.testing.assert_allclose(one, mean_probabilities(store, "a", 0.5, seeds=[1]))


def test_jaccard_pie_overlap_and_overlap_with():
    from sklearn.metrics import jaccard_score

    rng = np.random.default_rng(2)
    a, b = rng.random(50) < 0.3, rng.random(50) < 0.3
    assert cp.jaccard(a, b) == pytest.approx(jaccard_score(a, b))
    assert cp.jaccard(a.astype(int), b.astype(float)) == cp.jaccard(a, b)
    assert cp.jaccard([1, 0, 0], [1, 1, 0]) == 0.5
    masks = {("l1", 0.2): a, ("q", 0.2): b, ("r", 0.2): a, ("l1", 0.1): b, ("q", 0.1): b}
    overlap = cp.pie_overlap(masks)
    assert overlap.values.tolist() == [[0.1, "l1", "q", 1.0], [0.2, "l1", "q", cp.jaccard(a, b)],
                                       [0.2, "l1", "r", 1.0], [0.2, "q", "r", cp.jaccard(b, a)]]
    assert list(cp.pie_overlap({}).columns) == ["loss", "method_a", "method_b", "jaccard"]
    mine = cp.overlap_with(overlap, "q")
    assert mine.values.tolist() == [[0.1, "l1", 1.0], [0.2, "l1", cp.jaccard(a, b)],
                                    [0.2, "r", cp.jaccard(b, a)]]
    assert list(mine.index) == [0, 1, 2]


def test_matched_levels_without_their_columns_are_named():
    for call in (lambda m: cp.class_change_at(table(), m), lambda m: cp.matched_pies(PieStore(), m)):
        with pytest.raises(ValueError) as caught:
            call(pd.DataFrame({"other": [1]}))
        assert str(caught.value).startswith("matched is missing column(s) [")


# ------------------------------------------- rows, names and edges the tests above leave open

def test_matched_damage_rows_follow_the_losses_given_with_counts_matched_by_name():
    """One row per method and loss, the losses in the order asked (not sorted), each with its
    matched level; train counts are matched to classes by name (a reversed Series with a
    class the table lacks gives the same table)."""
    ap = table(seeds=(0, 1, 2))
    out = cp.matched_damage(ap, COUNTS, losses=(0.2, 0.05), n_rare=2, n_boot=50)
    assert out[["method", "loss"]].values.tolist() == [["lin", 0.2], ["lin", 0.05],
                                                       ["rare", 0.2], ["rare", 0.05]]
    levels = cp.matched_levels(ap, (0.2, 0.05)).set_index(["method", "loss"])["level"]
    np.testing.assert_allclose(out["level"], levels.loc[list(zip(out.method, out.loss))])
    extra = pd.concat([pd.Series({"absent": 99999}), COUNTS.iloc[::-1]])
    pd.testing.assert_frame_equal(
        cp.matched_damage(ap, extra, losses=(0.2, 0.05), n_rare=2, n_boot=50), out)


def test_matched_damage_of_one_seed_and_one_class_is_nan_where_undefined_without_a_warning():
    """The smallest table: the class (not among the rarest) changes as it does at its level;
    no rare class and no rank correlation, so those statistics and their bounds are NaN,
    without a warning."""
    import warnings

    ap = table(seeds=(0,))
    ap = ap[(ap.method == "lin") & (ap["class"] == "c0")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cp.matched_damage(ap, COUNTS, losses=(0.1,), n_boot=20).iloc[0]
    level = cp.matched_levels(ap, (0.1,))["level"].iloc[0]
    change = cp.class_change_at(ap, cp.matched_levels(ap, (0.1,)))["rel_change"].iloc[0]
    assert out["level"] == pytest.approx(level) and out["n_seeds"] == 1
    assert out["other_change"] == out["other_change_lo"] == out["other_change_hi"] == change
    for name in ("rare_change", "rare_minus_other", "rho"):
        assert out[[name, f"{name}_lo", f"{name}_hi"]].isna().all()


def test_the_rarest_classes_break_ties_in_train_count_order():
    """Three classes share the smallest count: the two rarest are the first two of them in the
    counts' order (a stable sort), in matched_damage, matched_pies and paired_comparisons."""
    tied = COUNTS.copy()
    tied[["c4", "c5", "c6"]] = 8
    ap = table()
    out = cp.matched_damage(ap, tied, losses=(0.2,), n_rare=2, n_boot=20).set_index("method")
    changes = cp.class_change_at(ap, cp.matched_levels(ap, (0.2,)))
    per_class = changes[changes.method == "rare"].groupby("class")["rel_change"].median()
    assert out.loc["rare", "rare_change"] == pytest.approx(per_class[["c4", "c5"]].median())
    assert out.loc["rare", "other_change"] == pytest.approx(per_class.drop(["c4", "c5"]).median())
    paired = cp.paired_comparisons(ap, tied, reference="lin", losses=(0.2,), n_rare=2,
                                   n_boot=20).iloc[0]
    assert paired["gap"] == pytest.approx(out.loc["rare", "rare_minus_other"])
    assert paired["ref_gap"] == pytest.approx(out.loc["lin", "rare_minus_other"])
    store = PieStore()
    store.train_counts = tied
    matched = pd.DataFrame({"method": ["a"], "loss": [0.1], "reached": [True], "level": [0.5]})
    got, masks = cp.matched_pies(store, matched, fraction=0.1, n_rare=2)
    has_rare = store.labels[:, [4, 5]].any(axis=1)
    mask = masks[("a", 0.1)]
    ratio = has_rare[mask].mean() / has_rare[~mask].mean()
    assert got["rare_ratio"].iloc[0] == pytest.approx(ratio)


def test_matched_pies_on_chosen_seeds_with_other_findings_and_edge_ratios():
    """``seeds`` chooses the population at both levels (here one seed: its own outputs);
    ``max_findings`` sets the many-findings group; a rare class found only among the PIEs
    gives a NaN ratio (nothing to compare with), not inf; no reached row gives an empty table
    with the columns."""
    from prunecxr.analysis import pies
    from prunecxr.stats import rowwise_spearman

    store = PieStore()
    matched = pd.DataFrame({"method": ["a", "b"], "loss": [0.1, 0.2], "reached": [True, False],
                            "level": [0.5, np.nan]})
    got, masks = cp.matched_pies(store, matched, fraction=0.1, n_rare=2, max_findings=2,
                                 seeds=[1])
    p = store.predictions("a", 1)
    expect = pies.select_pies(rowwise_spearman(p[0], p[1]), 0.1)
    assert np.array_equal(masks[("a", 0.1)], expect) and list(masks) == [("a", 0.1)]
    many = store.labels.sum(axis=1) >= 2
    assert got["multi_ratio"].iloc[0] == pytest.approx(many[expect].mean() / many[~expect].mean())
    assert got["n_seeds"].tolist() == [1]
    store.labels[:, -2:] = 0
    store.labels[expect, -1] = 1                       # the rarest class: PIEs only
    only, _ = cp.matched_pies(store, matched, fraction=0.1, n_rare=2, seeds=[1])
    assert np.isnan(only["rare_ratio"].iloc[0])
    empty, none = cp.matched_pies(store, matched.assign(reached=False), seeds=[1])
    assert empty.empty and none == {} and list(empty.columns) == list(got.columns)


def test_jaccard_reads_any_zero_one_masks_and_two_empty_ones_quietly():
    """0/1 floats in either argument are read as the boolean masks; two empty masks give NaN
    without numpy's 0/0 warning."""
    import warnings

    a, b = np.array([True, False, True, False]), np.array([True, True, False, False])
    assert cp.jaccard(a.astype(float), b) == cp.jaccard(a, b.astype(float)) == 1 / 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(cp.jaccard(np.zeros(3, bool), np.zeros(3, bool)))


def test_matched_in_units_edges():
    """Nothing reached: the unit still named, nominal and storage float NaN; a row not reached
    before reached ones leaves them in place; nominal is read off the first seed's grid; a
    storage grid whose unit falls as the level rises (bits) is read in the grid's order;
    without storage recorded, a float NaN; a method with only its dense level has a unit."""
    from types import SimpleNamespace

    bits = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1], "nominal": [32, 8, 4] * 2,
                         "level": [0.0, 0.5, 0.9, 0.0, 0.55, 0.95],
                         "storage_removed": [0.0, 0.6, 0.8, 0.0, 0.62, 0.85], "unit": "bits"})
    facts = _Facts()
    store = SimpleNamespace(level_facts=lambda m: (
        bits if m == "bits" else facts.level_facts("l1").iloc[:1] if m == "dense"
        else facts.level_facts(m)))

    def matched(methods, levels):
        return pd.DataFrame({"method": methods, "loss": 0.1, "level": levels,
                             "reached": np.isfinite(levels), "grid_level": np.nan,
                             "grid_loss": np.nan, "resolved": False})

    none = cp.matched_in_units(store, matched(["l1", "dense"], [np.nan, np.nan]))
    assert none["unit"].tolist() == ["sparsity", "sparsity"]
    assert none["nominal"].dtype == float and none["storage_removed"].dtype == float
    assert none[["nominal", "storage_removed"]].isna().all(axis=None)
    got = cp.matched_in_units(store, matched(["l1", "l1", "bits"], [np.nan, 0.75, 0.7]))
    assert np.isnan(got["nominal"].iloc[0])
    assert got["nominal"].iloc[1] == pytest.approx(0.75)          # seed 1's level 0.75
    level_med, storage_med = [0.0, 0.525, 0.925], [0.0, 0.61, 0.825]
    assert got["storage_removed"].iloc[2] == pytest.approx(np.interp(0.7, level_med, storage_med))
    assert got["nominal"].iloc[2] == pytest.approx(np.interp(0.7, [0, 0.5, 0.9], [32, 8, 4]))
    plain = cp.matched_in_units(store, matched(["quant"], [0.7]))
    assert plain["storage_removed"].dtype == float and plain["storage_removed"].isna().all()


def test_first_step_losses_without_a_second_level_is_an_empty_float_series():
    curve = pd.DataFrame({"method": ["solo"], "level": [0.0], "loss": [0.0]})
    got = cp.first_step_losses(curve)
    assert got.empty and got.dtype == float and got.name == "first_step_loss"


def test_matched_levels_at_exact_grid_losses_and_edges():
    """Losses exact in binary (AP 1, 0.875, 0.5 for one class): a target met exactly at a grid
    level is matched there (grid level at or above it); a grid loss of exactly RESOLUTION x
    the target resolves; a grid whose first level (below the dense one) already lost the
    target is matched at that level; no loss asked gives the empty table with its columns."""
    def one_class(levels, aps):
        return pd.DataFrame({"method": "m", "seed": 0, "sparsity": levels, "class": "c0",
                             "ap": aps})

    got = cp.matched_levels(one_class([0.0, 0.25, 0.5], [1.0, 0.875, 0.5]),
                            losses=(0.125, 0.25)).set_index("loss")
    assert got.loc[0.125, ["level", "grid_level", "grid_loss"]].tolist() == [0.25, 0.25, 0.125]
    assert got.loc[0.125, "resolved"] and got.loc[0.25, "grid_loss"] == 2 * 0.25
    assert got.loc[0.25, "resolved"] and got.loc[0.25, "level"] == pytest.approx(0.25 + 0.25 / 3)
    below = cp.matched_levels(one_class([-0.5, 0.0, 0.5], [0.5, 1.0, 0.5]), losses=(0.25,))
    assert below[["level", "grid_level", "grid_loss"]].iloc[0].tolist() == [-0.5, -0.5, 0.5]
    empty = cp.matched_levels(one_class([0.0, 0.5], [1.0, 0.5]), losses=())
    assert empty.empty and list(empty.columns) == ["method", "loss", "level", "reached",
                                                   "grid_level", "grid_loss", "resolved"]


def test_a_level_column_beside_the_stores_sparsity_column_replaces_it():
    """The store's ap_table has both ``level`` and ``sparsity`` (NaN off the sparsity grid);
    read by ``level``, the sparsity column is set aside, whatever it holds."""
    ap = table(seeds=(0, 1, 2))
    both = ap.rename(columns={"sparsity": "level"}).assign(sparsity=np.nan)
    pd.testing.assert_frame_equal(cp.damage_curve(both, level="level"), cp.damage_curve(ap))
    pd.testing.assert_frame_equal(cp.matched_levels(both, level="level"), cp.matched_levels(ap))
