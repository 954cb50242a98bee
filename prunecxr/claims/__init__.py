"""The registry of claims: every finding the book checks, defined once.

A :class:`Claim` is data: its question, a one-line statement, the keys of the paper's values
in :mod:`prunecxr.paper` (the one table of the paper's numbers, with sources), a function that
computes this build's values from the shared :class:`Evidence` of a results store, the rule
that decides "holds", "does not hold" or "not resolved", and the sentences that state the
result. The chapters' answer boxes, the landing table, the "paper beside this build" chapter,
``claims.csv`` and Q5's verdicts all read :func:`evaluate`; nothing decides a claim twice.

- :mod:`.core` what a claim, a result and a verdict are; tables and sentences of many;
- :mod:`.evidence` the tables claims are computed from, each computed once per store;
- :mod:`.paper_claims` the paper's claims (Q1-Q4); :mod:`.compression` Q5's (beyond it).

A new claim is one entry in a question's ``CLAIMS`` list (and, if the paper states a value
for it, a row of :mod:`prunecxr.paper`); a chapter shows it with
:func:`prunecxr.book.glue_claims`.
"""

from __future__ import annotations

from typing import Sequence

from ..stats import format_p
from . import compression, paper_claims
from .compression import q5_summary
from .core import (FAILS, HOLDS, MIMIC_COL, NIH_COL, TABLE_COLUMNS, UNRESOLVED, VERDICTS, Claim,
                   Result, Settings, as_float, corr_text, drop_text, fmt, judge, ratio_text,
                   summary_sentence, verdict_counts, verdict_html, verdict_table)
from .evidence import Evidence
from .paper_claims import (interaction_text, ols_equation, rare_ratio_text, truth_items,
                           truth_status)

CLAIMS: dict[str, Claim] = {c.key: c for c in paper_claims.CLAIMS + compression.CLAIMS}
PAPER_CLAIMS: tuple[str, ...] = tuple(k for k, c in CLAIMS.items() if c.in_paper)


def evaluate(evidence: Evidence, keys: Sequence[str] | None = None) -> dict[str, Result]:
    """The claims in ``keys`` (default: the paper's, :data:`PAPER_CLAIMS`) evaluated on
    ``evidence``, in registry order."""
    keys = PAPER_CLAIMS if keys is None else tuple(keys)
    unknown = [k for k in keys if k not in CLAIMS]
    if unknown:
        raise KeyError(f"unknown claims {unknown}; known: {list(CLAIMS)}")
    return {k: judge(c, evidence) for k, c in CLAIMS.items() if k in keys}


__all__ = [
    "CLAIMS", "PAPER_CLAIMS", "Claim", "Evidence", "Result", "Settings", "evaluate", "judge",
    "HOLDS", "FAILS", "UNRESOLVED", "VERDICTS", "NIH_COL", "MIMIC_COL", "TABLE_COLUMNS",
    "verdict_table", "verdict_counts", "verdict_html", "summary_sentence", "q5_summary",
    "as_float", "fmt", "format_p", "drop_text", "ratio_text", "corr_text", "rare_ratio_text",
    "ols_equation", "interaction_text", "truth_items", "truth_status",
]
