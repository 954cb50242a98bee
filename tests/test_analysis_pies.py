"""Q4 (prunecxr.analysis.pies) on a small fake store, against scipy and loops."""

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from prunecxr.analysis import pies

SPARSITIES = np.array([0.0, 0.3, 0.6, 0.9])


@dataclass
class FakeStore:
    """The parts of prunecxr.store.Results that pie_scores reads, from random data."""

    n: int = 40
    n_classes: int = 5
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    sparsities: np.ndarray = field(default_factory=lambda: SPARSITIES.copy())

    def __post_init__(self):
        rng = np.random.default_rng(0)
        self.meta = pd.DataFrame({"image_id": [f"img{i}" for i in range(self.n)]},
                                 index=np.arange(100, 100 + self.n))
        self.preds = {s: rng.uniform(size=(len(self.sparsities), self.n, self.n_classes))
                      .astype(np.float32) for s in self.seeds}
        # image 0: every seed's pruned output is constant -> undefined rank correlation
        for s in self.seeds:
            self.preds[s][3, 0, :] = 0.5

    def method_seeds(self, method):
        return list(self.seeds)

    def predictions(self, method, seed):
        assert method == "l1"
        return self.preds[seed]


def test_mean_probabilities_and_pie_scores_match_scipy():
    store = FakeStore()
    dense = np.mean([store.preds[s][0] for s in store.seeds], axis=0, dtype=np.float64)
    sparse = np.mean([store.preds[s][3] for s in store.seeds], axis=0, dtype=np.float64)
    np.testing.assert_allclose(pies.mean_probabilities(store, "l1", 0.0), dense)
    both = pies.mean_probabilities(store, "l1", [0.0, 0.9])
    assert both.shape == (2, 40, 5)
    scores = pies.pie_scores(store)
    assert scores.name == "spearman" and list(scores.index) == list(store.meta.index)
    assert np.isnan(scores.iloc[0])
    for i in range(1, 40):
        assert scores.iloc[i] == pytest.approx(st.spearmanr(dense[i], sparse[i]).statistic)


def test_pie_scores_use_the_dense_and_sparse_levels_asked_for():
    """A non-default ``dense`` (and ``sparse``) level is the one compared, not 0.0 / 0.9."""
    store = FakeStore()

    def mean_at(level):
        i = list(SPARSITIES).index(level)
        return np.mean([store.preds[s][i] for s in store.seeds], axis=0, dtype=np.float64)

    for dense, sparse in [(0.3, 0.9), (0.3, 0.6), (0.0, 0.6)]:
        scores = pies.pie_scores(store, dense=dense, sparse=sparse)
        a, b = mean_at(dense), mean_at(sparse)
        expected = [st.spearmanr(a[i], b[i]).statistic for i in range(store.n)]
        np.testing.assert_allclose(scores.to_numpy(), expected, equal_nan=True)
    default = pies.pie_scores(store).to_numpy()
    moved = pies.pie_scores(store, dense=0.3).to_numpy()
    assert not np.allclose(default[1:], moved[1:])  # image 0 is NaN in both
    with pytest.raises(ValueError, match="dense=0.5 is not among"):
        pies.pie_scores(store, dense=0.5)


def test_pie_scores_unknown_sparsity_is_a_clear_error():
    with pytest.raises(ValueError, match="sparse=0.95 is not among"):
        pies.pie_scores(FakeStore(), sparse=0.95)
    with pytest.raises(ValueError, match="not among"):
        pies.mean_probabilities(FakeStore(), "l1", 0.5)


def test_select_pies_lowest_fraction_with_stable_ties():
    s = np.array([0.5, 0.1, 0.1, 0.1, 0.9, 0.2, 0.3, 0.4, 0.6, 0.7])
    mask = pies.select_pies(s, fraction=0.2)  # int(0.2 * 10) = 2
    assert mask.dtype == bool and np.flatnonzero(mask).tolist() == [1, 2]
    assert pies.select_pies(s, fraction=0.05).sum() == 0  # int(0.5) = 0
    rng = np.random.default_rng(2)
    r = rng.normal(size=1000)
    m = pies.select_pies(r)
    assert m.sum() == 50 and r[m].max() < r[~m].min()


def test_select_pies_nan_policies():
    s = np.array([0.5, np.nan, 0.2, 0.3, 0.9, 0.8, 0.7, 0.6, 0.4, 0.1])
    with pytest.warns(UserWarning, match="1 image"):
        mask = pies.select_pies(s, fraction=0.2)
    assert np.flatnonzero(mask).tolist() == [2, 9]
    mask = pies.select_pies(s, fraction=0.2, nan_policy="lowest")
    assert np.flatnonzero(mask).tolist() == [1, 9]
    with pytest.raises(ValueError, match="nan_policy"):
        pies.select_pies(s, nan_policy="drop")
    with pytest.warns(UserWarning):
        assert pies.select_pies([np.nan, np.nan], fraction=1.0).sum() == 0


def test_enrichment_matches_loop():
    rng = np.random.default_rng(3)
    classes = ["No Finding", "a", "b", "c", "d", "e"]
    labels = (rng.uniform(size=(200, 6)) < [0.4, 0.5, 0.4, 0.3, 0.3, 0.2]).astype(np.uint8)
    mask = rng.uniform(size=200) < 0.2
    ce, fe = pies.pie_enrichment(mask, labels, classes)
    for j, c in enumerate(classes):
        pp = sum(labels[i][j] for i in range(200) if mask[i]) / mask.sum()
        pn = sum(labels[i][j] for i in range(200) if not mask[i]) / (~mask).sum()
        row = ce.set_index("class").loc[c]
        assert row.prevalence_pie == pytest.approx(pp) and row.ratio == pytest.approx(pp / pn)
    d = [min(sum(labels[i][1:]), 4) for i in range(200)]  # No Finding not counted
    for k, name in enumerate(["0", "1", "2", "3", "4+"]):
        row = fe.set_index("findings").loc[name]
        assert row.n_pie == sum(1 for i in range(200) if mask[i] and d[i] == k)
        assert row.n_nonpie == sum(1 for i in range(200) if not mask[i] and d[i] == k)
    assert fe.n_pie.sum() == mask.sum()


def test_enrichment_inf_and_nan_ratios():
    classes = ["No Finding", "rare", "absent"]
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0, 0]])
    mask = np.array([False, True, False, False])
    ce = pies.class_enrichment(mask, labels, classes).set_index("class")
    assert np.isinf(ce.loc["rare", "ratio"])
    assert np.isnan(ce.loc["absent", "ratio"])
    assert ce.loc["No Finding", "ratio"] == 0.0
    with pytest.raises(ValueError, match="^pies must contain at least one PIE and one non-PIE$"):
        pies.class_enrichment(np.zeros(4, bool), labels, classes)
    with pytest.raises(TypeError, match="boolean"):
        pies.class_enrichment(mask.astype(int), labels, classes)
    for bad in (labels[:3], labels[:, :2], labels[0]):             # rows, classes, not 2-D
        with pytest.raises(ValueError) as caught:
            pies.findings_enrichment(mask, bad, classes)
        assert str(caught.value) == (f"labels must have shape (4, 3) to match pies and classes, "
                                     f"got {bad.shape}")


def test_defaults_fraction_bounds_and_warning_site():
    """Defaults (method l1, dense level 0.0), the fraction's closed range [0, 1], no warning
    without NaN scores, and the NaN warning attributed to the caller."""
    store = FakeStore()
    np.testing.assert_array_equal(pies.mean_probabilities(store),
                                  pies.mean_probabilities(store, "l1", 0.0))
    s = np.linspace(0, 1, 20)
    assert pies.select_pies(s, fraction=0.0).sum() == 0          # 0 and 1 are allowed
    assert pies.select_pies(s, fraction=1.0).all()
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"fraction must be in \[0, 1\], got {bad}"):
            pies.select_pies(s, fraction=bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # finite scores: no warning
        assert pies.select_pies(s, fraction=0.1).sum() == 2
    with pytest.warns(UserWarning, match=r"^2 image\(s\) have an undefined agreement score "
                      r"\(NaN\) and are never selected as PIEs$") as record:
        pies.select_pies(np.r_[s, np.nan, np.nan], fraction=0.1)
    assert record[0].filename != pies.__file__      # attributed to the caller, not the library


def test_findings_prevalences_columns_and_options():
    """Shares per number of findings, every column by name, and the options passed through."""
    classes = ["No Finding", "a", "b", "c", "d", "e", "f"]
    rng = np.random.default_rng(7)
    labels = (rng.uniform(size=(300, 7)) < 0.35).astype(np.uint8)
    mask = rng.uniform(size=300) < 0.25
    ce, fe = pies.pie_enrichment(mask, labels, classes, max_findings=5)
    assert list(ce.columns) == ["class", "n_pie", "n_nonpie", "prevalence_pie",
                                "prevalence_nonpie", "ratio"]
    assert list(fe.columns) == ["findings", "n_pie", "n_nonpie", "prevalence_pie",
                                "prevalence_nonpie", "ratio"]
    assert list(fe["findings"]) == ["0", "1", "2", "3", "4", "5+"]     # max_findings=5 used
    d = np.minimum(labels[:, 1:].sum(axis=1), 5)
    for k, row in enumerate(fe.itertuples()):
        share_pie = np.mean(d[mask] == k)
        share_non = np.mean(d[~mask] == k)
        assert row.prevalence_pie == pytest.approx(share_pie)
        assert row.prevalence_nonpie == pytest.approx(share_non)
        assert row.ratio == pytest.approx(share_pie / share_non)
    assert fe["prevalence_pie"].sum() == pytest.approx(1.0)
    c = ce.set_index("class")
    assert c.loc["a", "n_nonpie"] == labels[~mask, 1].sum()
    assert c.loc["a", "prevalence_nonpie"] == pytest.approx(labels[~mask, 1].mean())
    # defaults: "No Finding" is not a finding, 4+ is the last bin
    default = pies.findings_enrichment(mask, labels, classes)
    assert list(default["findings"]) == ["0", "1", "2", "3", "4+"]
    assert default["n_pie"].tolist() == [int(np.sum(np.minimum(d[mask], 4) == k))
                                         for k in range(5)]


class LevelStore:
    """A method on its own levels (bits, say): levels() and predictions, no sparsity grid."""

    def __init__(self):
        rng = np.random.default_rng(4)
        self.preds = {s: rng.random((3, 30, 2)).astype(np.float32) for s in (5, 7)}

    def levels(self, method):
        assert method == "quant"
        return [32.0, 8.0, 4.0]

    def method_seeds(self, method):
        assert method == "quant"
        return [5, 7]

    def predictions(self, method, seed):
        return self.preds[seed]


def test_mean_probabilities_on_a_methods_own_levels_in_float64():
    store = LevelStore()
    got = pies.mean_probabilities(store, "quant", 8.0)
    expected = (store.preds[5][1].astype(np.float64) + store.preds[7][1].astype(np.float64)) / 2
    np.testing.assert_array_equal(got, expected)
    both = pies.mean_probabilities(store, "quant", [32.0, 4.0], seeds=[7])
    np.testing.assert_array_equal(both, store.preds[7][[0, 2]].astype(np.float64))
    with pytest.raises(ValueError) as caught:
        pies.mean_probabilities(store, "quant", 5.0)
    assert str(caught.value) == "sparsity=5.0 is not among the method's levels [32.0, 8.0, 4.0]"
    with pytest.raises(ValueError) as caught:
        pies.mean_probabilities(store, "quant", 8.0, seeds=[])
    assert str(caught.value) == "seeds is empty"


def test_pies_at_levels_keys_names_and_strata_labels():
    rng = np.random.default_rng(2)
    probs = rng.random((3, 60, 3))
    masks = pies.pies_at_levels(probs, [0.0, 0.3000004, 0.9])
    assert sorted(masks) == [0.3, 0.9]                          # keys rounded to 6 decimals
    with pytest.raises(ValueError) as caught:
        pies.pies_at_levels(probs, [0.0, 0.3, 0.9], dense=0.1)
    assert str(caught.value) == "dense=0.1 is not among the method's levels [0.0, 0.3, 0.9]"
    assert pies.strata_of([0, 1.0, 3, 4, 7]).tolist() == ["0", "1", "3", "4+", "4+"]
    assert pies.strata_of([2, 3], max_findings=3).tolist() == ["2", "3+"]


def test_enrichment_verdict_edges():
    m = pies.ENRICHMENT_MARGIN
    assert pies.enrichment_verdict(1.0001, 3.0) is True
    assert pies.enrichment_verdict(1.0, 3.0) is None                  # touching 1: not above
    assert pies.enrichment_verdict(0.1, m - 1e-9) is False
    assert pies.enrichment_verdict(0.1, m) is None                    # touching the margin
    assert pies.enrichment_verdict(np.nan, 0.5) is None
    assert pies.enrichment_verdict(2.0, np.nan) is None


def test_pie_scores_index_is_the_metas_only_when_it_fits():
    """The scores carry the store's metadata index when it has one row per test image, a
    default range index for a store without metadata or with metadata of another length."""
    store = LevelStore()
    expected = pies.pie_scores(store, "quant", dense=32.0, sparse=4.0)
    assert expected.index.equals(pd.RangeIndex(30)) and expected.name == "spearman"
    store.meta = pd.DataFrame({"image_id": range(12)}, index=range(100, 112))
    pd.testing.assert_series_equal(pies.pie_scores(store, "quant", dense=32.0, sparse=4.0),
                                   expected)
    store.meta = pd.DataFrame({"image_id": range(30)}, index=range(100, 130))
    assert list(pies.pie_scores(store, "quant", 32.0, 4.0).index) == list(range(100, 130))


def test_findings_count_is_an_integer_count_whatever_the_label_dtype():
    """0/1 labels stored as uint8 (the store's dtype) or floats count like booleans, as signed
    integers: an unsigned count would wrap around on subtraction, a float one is no count."""
    rng = np.random.default_rng(5)
    classes = ["a", "No Finding", "b", "c"]
    labels = rng.random((50, 4)) < 0.4
    expected = labels[:, [0, 2, 3]].sum(axis=1)
    for y in (labels, labels.astype(np.uint8), labels.astype(float)):
        np.testing.assert_array_equal(pies.findings_count(y, classes), expected, strict=True)


def test_ratios_with_an_empty_group_warn_nothing():
    """A class only PIEs have (ratio inf), one nobody has (NaN) and a property no other image
    has: the ratios are set without dividing by zero, so no RuntimeWarning reaches a chapter."""
    classes = ["No Finding", "rare", "absent"]
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0, 0]])
    mask = np.array([False, True, False, False])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ce, fe = pies.pie_enrichment(mask, labels, classes)
        r = pies.exact_enrichment(mask, labels[:, 1].astype(bool))
    assert list(ce["ratio"][1:].isna()) == [False, True] and np.isinf(ce["ratio"][1])
    assert np.isinf(r["ratio"]) and fe["ratio"].isna().sum() == 3
