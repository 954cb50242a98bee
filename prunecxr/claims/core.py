"""What a claim is: its settings, definition, verdict and result; tables and sentences of many.

The three verdicts: "holds", "does not hold", "not resolved" (the data cannot decide: too
few values, or nothing to check against). Text helpers here format numbers the same way in
every claim and chapter; P values through :func:`prunecxr.stats.format_p`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .. import paper
from ..stats import format_p

HOLDS, FAILS, UNRESOLVED = "holds", "does not hold", "not resolved"
VERDICTS = (HOLDS, FAILS, UNRESOLVED)
NIH_COL, MIMIC_COL = "paper (NIH-CXR-LT)", "paper (MIMIC-CXR-LT)"
PAPER_STAT_COL, SOUND_STAT_COL = "this build (paper's statistic)", "this build (sound statistic)"
TABLE_COLUMNS = ("key", "question", "claim", NIH_COL, MIMIC_COL, "source", PAPER_STAT_COL,
                 "paper's verdict", SOUND_STAT_COL, "verdict", "why they differ", "rule")


@dataclass(frozen=True)
class Settings:
    """The analysis choices every claim is computed under (the chapters' parameters)."""

    method: str = "l1"             # pruning method analysed (the paper's global L1)
    alpha: float = 0.001           # Q1: Welch tests (the paper: P < 0.001)
    level: float = 0.05            # significance level of the verdicts on tests
    drop: float = -0.2             # Q2: relative change that counts as forgotten
    metric: str = "euclidean"      # Q3: FCD distance
    dense: float = 0.0             # Q4: sparsity of the uncompressed models
    sparse: float = 0.9            # Q4: sparsity of the pruned models
    fraction: float = 0.05         # Q4: share of test images that are PIEs
    n_rare: int = 5                # Q4: the rarest classes by training count
    weight_threshold: float = 0.01  # Q1: the small-weights threshold
    first_drop_at_least: float = 0.6  # Q1: "pruned heavily" = first drop at k >= this
    # The sound statistics' rules (issue: claims that survive a statistician); each is stated
    # in the claim's ``rule_text`` and fixed before any outcome is looked at.
    equivalence_margin: float = 0.05  # Q1: relative mAP loss below which mAP "holds"
    n_perm: int = 2000             # Q3: class-label permutations (Mantel/QAP)
    pie_loss: float = 0.2          # Q4: PIEs at the lowest level with this share of the dense
                                   #     mAP above chance lost (the damage rule)
    min_spread: float = 0.1        # Q4: the pruned models must still rank images: across-image
                                   #     SD of their mean outputs >= this share of the dense SD
    n_boot_pairs: int = 2000       # resamples of two-level (seed x image) bootstraps
    reference: str = "l1"          # Q5: the method the others are compared with
    losses: tuple = (0.05, 0.1, 0.2)  # Q5: shares of dense mAP lost at which methods are matched
    n_boot: int = 2000             # Q5: bootstrap resamples of seeds


def as_float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def fmt(x, spec: str = ".2f") -> str:
    """``format(x, spec)``, or "n/a" where ``x`` is missing or not finite."""
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def ratio_text(r: float) -> str:
    """A prevalence ratio as "2.3x", "only among PIEs" (inf) or "n/a" (NaN)."""
    if np.isinf(r):
        return "only among PIEs"
    return "n/a" if np.isnan(r) else f"{r:.1f}x"


def drop_text(k: float) -> str:
    """A sparsity level as "k = 0.65", or "not reached within the grid"."""
    return f"k = {k:.2f}" if np.isfinite(k) else "not reached within the grid"


def corr_text(values: dict, unit: str = "classes") -> str:
    """"r = 0.64, ρ = 0.61 (P = 0.005, n = 20 classes)" from a correlation's values."""
    n = int(values["n"]) if np.isfinite(values["n"]) else 0
    if not np.isfinite(values["rho"]):
        return f"not defined here (only {n} {unit} with a value)"
    return (f"r = {fmt(values['r'])}, ρ = {fmt(values['rho'])} "
            f"({format_p(values['p_rho'])}, n = {n} {unit})")


@dataclass(frozen=True)
class Claim:
    """One claim: where it stands in the paper, how this build computes and decides it.

    ``compute(evidence) -> dict`` gives this build's values. ``describe(values)`` is the
    paper's statistic on this build as text, ``paper_rule(values, settings)`` the paper's own
    decision on it; ``sound(values)`` is the statistic that fits this design (a paired test, a
    chance correction, a permutation over classes...) and ``rule(values, settings)`` the
    verdict, decided on it: True (holds), False (does not hold) or None (not resolved: the data
    cannot decide). Without ``sound``/``paper_rule`` the paper's statistic is used as it is.
    ``why`` says in one sentence why the two statistics can disagree; ``rule_text`` states the
    rule, fixed before any outcome was looked at; ``sentences`` maps a verdict to the sentence
    that states it (``str.format`` fields: the values, ``build`` and ``verdict``).
    """

    key: str
    question: str
    statement: Callable[[Settings], str]
    paper_nih: tuple[str, ...]
    paper_mimic: tuple[str, ...]
    compute: Callable[..., dict]  # (Evidence) -> values
    rule: Callable[[dict, Settings], bool | None]
    describe: Callable[[dict], str]
    sentences: dict = field(default_factory=dict)
    sound: Callable[[dict], str] | None = None
    paper_rule: Callable[[dict, Settings], bool | None] | None = None
    why: str = ""
    rule_text: str = ""

    @property
    def paper_keys(self) -> tuple[str, ...]:
        return self.paper_nih + self.paper_mimic

    @property
    def in_paper(self) -> bool:
        """Whether the paper states this claim (else it is this build's own question)."""
        return bool(self.paper_keys)


@dataclass(frozen=True)
class Result:
    """A claim evaluated on one build: its values, both statistics as text, both verdicts."""

    claim: Claim
    settings: Settings
    values: dict
    verdict: str        # decided on the sound statistic
    build: str          # the paper's statistic on this build
    paper_verdict: str  # the paper's rule on the paper's statistic
    sound: str          # the sound statistic on this build (the paper's where it is sound)

    @property
    def differs(self) -> bool:
        """Whether the paper's statistic and the sound one reach different verdicts."""
        return self.paper_verdict != self.verdict

    @property
    def key(self) -> str:
        return self.claim.key

    @property
    def sentence(self) -> str:
        template = self.claim.sentences.get(self.verdict)
        if template is not None:
            return template.format(**self.values, build=self.build, verdict=self.verdict)
        statement = self.claim.statement(self.settings)
        lead = f"{statement[:1].upper()}{statement[1:]}: {self.verdict} here"
        text = self.sound
        return f"{lead}. {text}" if text.endswith(".") else f"{lead} ({text})."

    @property
    def why(self) -> str:
        """Why the paper's statistic says otherwise here ("" where both agree)."""
        if not self.differs:
            return ""
        return (f"By the paper's own statistic the claim {self.paper_verdict}; "
                + (self.claim.why or "the two statistics measure different things") + ".")

    def row(self) -> dict:
        """One row of the verdict table (:data:`TABLE_COLUMNS`)."""
        texts = [paper.paper(k)["text"] for k in self.claim.paper_nih] or ["not in the paper"]
        mimic = [paper.paper(k)["text"] for k in self.claim.paper_mimic]
        sources = dict.fromkeys(paper.paper(k)["source"] for k in self.claim.paper_keys)
        return {"key": self.key, "question": self.claim.question,
                "claim": self.claim.statement(self.settings), NIH_COL: "; ".join(texts),
                MIMIC_COL: "; ".join(mimic), "source": "; ".join(sources),
                PAPER_STAT_COL: self.build, "paper's verdict": self.paper_verdict,
                SOUND_STAT_COL: self.sound, "verdict": self.verdict, "why they differ": self.why,
                "rule": self.claim.rule_text}


def _verdict(ok: bool | None) -> str:
    return UNRESOLVED if ok is None else (HOLDS if ok else FAILS)


def judge(claim: Claim, evidence) -> Result:
    """``claim`` computed on ``evidence`` (:class:`prunecxr.claims.Evidence`) and decided."""
    values, settings = claim.compute(evidence), evidence.settings
    verdict = _verdict(claim.rule(values, settings))
    paper_verdict = (verdict if claim.paper_rule is None
                     else _verdict(claim.paper_rule(values, settings)))
    build = claim.describe(values)
    return Result(claim, settings, values, verdict, build, paper_verdict,
                  build if claim.sound is None else claim.sound(values))


def verdict_table(results: dict[str, Result]) -> pd.DataFrame:
    """The claims beside the paper's values: one row per claim (:data:`TABLE_COLUMNS`)."""
    return pd.DataFrame([r.row() for r in results.values()], columns=list(TABLE_COLUMNS))


def verdict_counts(results: dict[str, Result]) -> dict:
    """How many claims were decided (n_checked), hold, do not hold, are not resolved."""
    v = [r.verdict for r in results.values()]
    return {"n_checked": sum(x != UNRESOLVED for x in v), "n_holds": v.count(HOLDS),
            "n_fails": v.count(FAILS), "n_unresolved": v.count(UNRESOLVED)}


def summary_sentence(results: Sequence[Result], intro: str = "") -> str:
    """One sentence over several claims: which hold, which do not, which are not resolved."""
    parts = []
    for verdict, lead in ((HOLDS, "Holds here"), (FAILS, "Does not hold here"),
                          (UNRESOLVED, "Not resolved here")):
        chosen = [r for r in results if r.verdict == verdict]
        if chosen:
            parts.append(f"{lead}: " + "; ".join(r.claim.statement(r.settings) for r in chosen)
                         + ".")
    return (intro + " " if intro else "") + " ".join(parts)


def verdict_html(table: pd.DataFrame, columns=("question", "claim", NIH_COL, PAPER_STAT_COL,
                                               SOUND_STAT_COL, "verdict", "source")) -> str:
    """The table as compact HTML for a page (verdict cells classed for colour)."""
    cols = [c for c in columns if c in table]
    html = table[cols].to_html(index=False, escape=True, classes=["verdict-table"], border=0)
    for word, cls in ((FAILS, "verdict-fails"), (HOLDS, "verdict-holds"),
                      (UNRESOLVED, "verdict-na")):
        html = html.replace(f"<td>{word}</td>", f'<td class="{cls}">{word}</td>')
    return html


# ------------------------------------------------------------------ shared by the claims

def correlation_values(frame: pd.DataFrame, row: str) -> dict:
    r = frame.loc[row]
    return {s: as_float(r[s]) for s in ("n", "r", "p_r", "rho", "p_rho")}


def signed_rule(sign: int):
    """Rule of a correlation claim: ρ has the claimed sign with P below the level."""
    def rule(v: dict, s: Settings) -> bool | None:
        if not (np.isfinite(v["rho"]) and np.isfinite(v["p_rho"])):
            return None
        return bool(sign * v["rho"] > 0 and v["p_rho"] < s.level)
    return rule


def finite_rule(*names):
    """Rule wrapper: not resolved unless every named value is finite."""
    def wrap(rule):
        def checked(v: dict, s: Settings) -> bool | None:
            if not all(np.isfinite(v[n]) for n in names):
                return None
            return rule(v, s)
        return checked
    return wrap
