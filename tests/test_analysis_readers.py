"""Reader-study statistics (prunecxr.analysis.readers) against scipy and numpy."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from prunecxr.analysis import readers


def make_responses(seed=0):
    """6 readers x 40 images (20 PIE, 20 non-PIE), as in the paper's study design."""
    rng = np.random.default_rng(seed)
    rows = []
    for reader in range(6):
        for j in range(40):
            pie = j < 20
            rows.append({"reader": f"r{reader}", "image": f"img{reader}_{j}", "is_pie": pie,
                         "agrees_with_label": bool(rng.uniform() < (0.55 if pie else 0.6)),
                         "quality": int(rng.integers(2, 6) if not pie else rng.integers(1, 6)),
                         "difficulty": int(rng.integers(1, 5) if not pie else rng.integers(2, 6))})
    return pd.DataFrame(rows)


def test_reader_study_stats_matches_scipy():
    resp = make_responses()
    out = readers.reader_study_stats(resp).set_index("variable")
    assert list(out.index) == ["agrees_with_label", "quality", "difficulty"]
    for q in out.index:
        a = resp.loc[resp.is_pie, q].astype(float).to_numpy()
        b = resp.loc[~resp.is_pie, q].astype(float).to_numpy()
        row = out.loc[q]
        assert (row.n_a, row.n_b) == (120, 120)
        assert row.mean_a == pytest.approx(a.mean()) and row.mean_b == pytest.approx(b.mean())
        assert row.sd_a == pytest.approx(a.std(ddof=1)) and row.sd_b == pytest.approx(b.std(ddof=1))
        assert row.p_kruskal == pytest.approx(st.kruskal(a, b).pvalue)
        assert row.p_welch == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue)
        assert row.p_mannwhitney == pytest.approx(
            st.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    assert out.loc["agrees_with_label", "group_a"] == 1  # PIE first


def test_agreement_mean_is_the_fraction_agreeing():
    resp = make_responses()
    resp["agrees_with_label"] = np.r_[[1] * 11 + [0] * 9, [1] * 12 + [0] * 8].tolist() * 6
    out = readers.reader_study_stats(resp).set_index("variable")
    assert out.loc["agrees_with_label", "mean_a"] == pytest.approx(0.55)
    assert out.loc["agrees_with_label", "mean_b"] == pytest.approx(0.60)


@pytest.mark.parametrize("change,match", [
    (lambda r: r.drop(columns="quality"), "missing column"),
    (lambda r: r.assign(quality=r.quality.where(r.index != 3, 6)), "integers 1-5"),
    (lambda r: r.assign(difficulty=r.difficulty.astype(float).where(r.index != 3, 2.5)), "1-5"),
    (lambda r: r.assign(agrees_with_label=r.agrees_with_label.astype(int).where(r.index != 0, 2)),
     r"column 'agrees_with_label' must be boolean or 0/1, got values \[0, 1, 2\]"),
    (lambda r: r.assign(is_pie=r.is_pie.astype(int).where(r.index != 0, 3)),
     r"column 'is_pie' must be boolean or 0/1"),
    (lambda r: r.assign(is_pie=r.is_pie.where(r.index != 0, None)), "column 'is_pie' has missing"),
    (lambda r: pd.concat([r, r.head(1)]), "1 duplicated"),
    (lambda r: pd.concat([r, r.head(2).assign(quality=[1, 1], difficulty=[5, 5])]),  # same
     r"2 duplicated \(reader, image\) rows"),                                     # pair, new answer
    (lambda r: r.assign(is_pie=True), "both PIE and non-PIE"),
])
def test_validation_errors_name_the_column(change, match):
    with pytest.raises(ValueError, match=match):
        readers.reader_study_stats(change(make_responses()))


def test_phantom_truth_stats_same_table_shape():
    rng = np.random.default_rng(1)
    meta = pd.DataFrame({"label_corrupted": rng.uniform(size=100) < 0.2,
                         "quality": rng.normal(size=100), "difficulty": rng.normal(size=100)})
    mask = np.zeros(100, bool)
    mask[:10] = True
    out = readers.phantom_truth_stats(meta, mask)
    assert list(out.variable) == ["label_corrupted", "quality", "difficulty"]
    row = out.set_index("variable").loc["quality"]
    assert (row.n_a, row.n_b) == (10, 90)
    assert row.p_kruskal == pytest.approx(st.kruskal(meta.quality[:10], meta.quality[10:]).pvalue)
    assert out.set_index("variable").loc["label_corrupted", "mean_a"] == pytest.approx(
        meta.label_corrupted[:10].mean())
    with pytest.raises(ValueError, match="boolean mask"):
        readers.phantom_truth_stats(meta, mask[:50])


def test_validated_responses_are_integers_and_messages_whole():
    """is_pie, agrees_with_label (booleans or 0/1) and the 1-5 answers come back as ints; a
    missing column names the table; bad values are listed (the first 10)."""
    resp = make_responses()
    out = readers.validate_responses(resp.assign(quality=resp.quality.astype(float)))
    for col in ("is_pie", "agrees_with_label", "quality", "difficulty"):
        assert out[col].dtype == int, col
    as_ints = readers.validate_responses(resp.assign(is_pie=resp.is_pie.astype(int)))
    assert as_ints["is_pie"].dtype == int and list(as_ints.columns) == list(resp.columns)
    with pytest.raises(ValueError) as caught:
        readers.validate_responses(resp.drop(columns="quality"))
    assert str(caught.value) == (f"responses is missing column(s) ['quality']; it has "
                                 f"{[c for c in resp.columns if c != 'quality']}")
    bad = resp.assign(quality=resp.quality.astype(object))
    bad.loc[:11, "quality"] = ["x"] + list(range(6, 17))
    with pytest.raises(ValueError) as caught:
        readers.validate_responses(bad)
    assert str(caught.value) == ("responses column 'quality' must be integers 1-5; bad values "
                                 "['x', 6, 7, 8, 9, 10, 11, 12, 13, 14]")
    many = resp.assign(agrees_with_label=list(range(2, 14)) + [1] * (len(resp) - 12))
    with pytest.raises(ValueError) as caught:
        readers.validate_responses(many)
    assert str(caught.value) == ("responses column 'agrees_with_label' must be boolean or 0/1, "
                                 "got values [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")
    with pytest.raises(ValueError) as caught:
        readers.validate_responses(resp.assign(is_pie=False))
    assert str(caught.value) == ("responses must contain both PIE and non-PIE images (is_pie 1 "
                                 "and 0)")
    with pytest.raises(ValueError) as caught:
        readers.phantom_truth_stats(pd.DataFrame({"quality": [1.0, 2.0]}), np.array([True, False]))
    assert str(caught.value) == ("meta is missing column(s) ['label_corrupted', 'difficulty']; "
                                 "it has ['quality']")
