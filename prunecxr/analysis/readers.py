"""Reader study: do radiologists perceive PIEs differently from non-PIEs?

Each response is one reader's answers about one image: full agreement with the shown labels
(yes/no), image quality (1-5) and diagnosis difficulty (1-5). Per question, PIEs and non-PIEs are
compared by Kruskal-Wallis (the paper's test), with Welch and Mann-Whitney alongside. The same
comparison (:func:`prunecxr.stats.compare_groups`) runs on the phantom's per-image ground truth,
which a real study cannot observe.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..stats import compare_groups, require_columns

QUESTIONS = ("agrees_with_label", "quality", "difficulty")
RESPONSE_COLUMNS = ("reader", "image", "is_pie", *QUESTIONS)
TRUTH_COLUMNS = ("label_corrupted", "quality", "difficulty")


def _binary(series: pd.Series, name: str) -> pd.Series:
    values = series.dropna()
    if len(values) != len(series):
        raise ValueError(f"responses column {name!r} has missing values")
    if values.dtype == bool:
        return series.astype(int)
    if not values.isin([0, 1]).all():
        raise ValueError(f"responses column {name!r} must be boolean or 0/1, got values "
                         f"{sorted(pd.unique(values).tolist())[:10]}")
    return series.astype(int)


def validate_responses(responses: pd.DataFrame) -> pd.DataFrame:
    """Check a reader-study response table and return it with is_pie and agrees_with_label as
    0/1 ints. Raises ValueError naming the column at fault."""
    require_columns(responses, RESPONSE_COLUMNS, "responses")
    out = responses.copy()
    out["is_pie"] = _binary(out["is_pie"], "is_pie")
    out["agrees_with_label"] = _binary(out["agrees_with_label"], "agrees_with_label")
    for col in ("quality", "difficulty"):
        v = pd.to_numeric(out[col], errors="coerce")
        bad = v.isna() | (v != np.round(v)) | (v < 1) | (v > 5)
        if bad.any():
            raise ValueError(f"responses column {col!r} must be integers 1-5; bad values "
                             f"{out.loc[bad, col].tolist()[:10]}")
        out[col] = v.astype(int)
    dup = out.duplicated(["reader", "image"])
    if dup.any():
        raise ValueError(f"responses has {int(dup.sum())} duplicated (reader, image) rows")
    if out["is_pie"].nunique() != 2:
        raise ValueError("responses must contain both PIE and non-PIE images (is_pie 1 and 0)")
    return out


def reader_study_stats(responses: pd.DataFrame) -> pd.DataFrame:
    """PIE vs non-PIE per question: one row per question (agrees_with_label, quality, difficulty).

    Columns as :func:`prunecxr.stats.compare_groups` with group_a = PIE (is_pie 1), group_b =
    non-PIE: variable, n_a, mean_a, sd_a, n_b, mean_b, sd_b, p_kruskal, p_welch, p_mannwhitney.
    A mean of agrees_with_label is the fraction of responses that fully agreed.
    """
    return compare_groups(validate_responses(responses), "is_pie", list(QUESTIONS), groups=(1, 0))


def phantom_truth_stats(meta: pd.DataFrame, pies, columns: Sequence[str] = TRUTH_COLUMNS
                        ) -> pd.DataFrame:
    """PIE vs non-PIE on the phantom's per-image ground truth (e.g. label_corrupted, quality,
    difficulty in the test metadata), same table as :func:`reader_study_stats`."""
    pies = np.asarray(pies)
    if pies.dtype != bool or len(pies) != len(meta):
        raise ValueError(f"pies must be a boolean mask of length len(meta)={len(meta)}")
    require_columns(meta, columns, "meta")
    frame = meta[list(columns)].copy().reset_index(drop=True)
    frame["is_pie"] = pies.astype(int)
    return compare_groups(frame, "is_pie", list(columns), groups=(1, 0))
