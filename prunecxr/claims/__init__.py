"""The registry of claims: every finding the book checks, defined once.

A :class:`Claim` is data: its question, a one-line statement, the keys of the paper's values
in :mod:`prunecxr.paper` (the one table of the paper's numbers, with sources), a function that
computes this build's values from the shared :class:`Evidence` of a results store, the rule
that decides "holds", "does not hold" or "not resolved", and the sentences that state the
result. The chapters' answer boxes, the landing table, the "paper beside this build" chapter,
``claims.csv`` and Q5's verdicts all read :func:`evaluate`; nothing decides a claim twice.

- :mod:`.core` what a claim, a result and a verdict are; tables and sentences of many;
- :mod:`.evidence` the tables claims are computed from, each computed once per store;
- :mod:`.q1` ... :mod:`.q4` the paper's claims, one module per question; :mod:`.q5` Q5's
  (beyond the paper).

A new claim is one entry in its question's ``CLAIMS`` list (and, if the paper states a value
for it, a row of :mod:`prunecxr.paper`); a chapter shows it with
:func:`prunecxr.book.glue_claims`.
"""

from __future__ import annotations

from typing import Sequence

from ..stats import format_p
from . import q1, q2, q3, q4, q5
from .core import (FAILS, HOLDS, MIMIC_COL, NIH_COL, PAPER_STAT_COL, SOUND_STAT_COL, TABLE_COLUMNS,
                   UNRESOLVED, VERDICTS, Claim, Result, Settings, as_float, corr_text, drop_text,
                   fmt, judge, ratio_text, summary_sentence, verdict_counts, verdict_html,
                   verdict_table)
from .evidence import Evidence
from .q3 import interaction_text, ols_equation
from .q4 import rare_ratio_text, truth_items, truth_status
from .q5 import q5_summary

CLAIMS: dict[str, Claim] = {c.key: c for q in (q1, q2, q3, q4, q5) for c in q.CLAIMS}
PAPER_CLAIMS: tuple[str, ...] = tuple(k for k, c in CLAIMS.items() if c.in_paper)


def evaluate(evidence: Evidence, keys: Sequence[str] | None = None) -> dict[str, Result]:
    """The claims in ``keys`` (default: the paper's, :data:`PAPER_CLAIMS`) evaluated on
    ``evidence``, in registry order."""
    keys = PAPER_CLAIMS if keys is None else tuple(keys)
    unknown = [k for k in keys if k not in CLAIMS]
    if unknown:
        raise KeyError(f"unknown claims {unknown}; known: {list(CLAIMS)}")
    return {k: judge(c, evidence) for k, c in CLAIMS.items() if k in keys}


def rules_table(settings: Settings | None = None):
    """Every claim's rule, as fixed before any outcome was looked at: columns question, claim,
    rule (for the data-and-methods chapter)."""
    import pandas as pd

    s = settings or Settings()
    return pd.DataFrame([{"question": c.question, "claim": c.statement(s), "rule": c.rule_text}
                         for c in CLAIMS.values()])


__all__ = [
    "CLAIMS", "PAPER_CLAIMS", "PAPER_STAT_COL", "SOUND_STAT_COL", "Claim", "Evidence", "Result", "Settings", "evaluate", "judge", "rules_table",
    "HOLDS", "FAILS", "UNRESOLVED", "VERDICTS", "NIH_COL", "MIMIC_COL", "TABLE_COLUMNS",
    "verdict_table", "verdict_counts", "verdict_html", "summary_sentence", "q5_summary",
    "as_float", "fmt", "format_p", "drop_text", "ratio_text", "corr_text", "rare_ratio_text",
    "ols_equation", "interaction_text", "truth_items", "truth_status",
]
