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
