"""Q3 (co-occurrence): class pairs' forgetting against frequency difference and IoU.

The paper's statistics (Spearman's P over class pairs, the OLS t-test of beta3) treat the
C (C - 1) / 2 pairs as independent, but each class is in C - 1 pairs, so those P values are too
small. The verdicts use permutation P values that respect the pair structure: class labels of
the FCD matrix permuted relative to the predictor matrices (Mantel / QAP),
:func:`prunecxr.analysis.cooccurrence.mantel_tests`.
"""

from __future__ import annotations

import numpy as np

from ..analysis import cooccurrence
from ..stats import format_p
from .core import (Claim, as_float, corr_text, correlation_values, finite_rule, fmt,
                   signed_rule)
from .evidence import Evidence
from .q2 import MIN_CLASSES, signed_sound_rule

PERM_SEED = 0  # the permutations' generator: numpy.random.default_rng(PERM_SEED)


def mantel(ev: Evidence):
    """The Mantel / QAP table of :func:`prunecxr.analysis.cooccurrence.mantel_tests` on the
    evidence's class pairs, computed once per evidence."""
    s = ev.settings
    return ev.memo(f"q3_mantel_{s.method}_{s.metric}_{s.n_perm}", cooccurrence.mantel_tests,
                   ev.pairs, n_perm=s.n_perm, seed=PERM_SEED).set_index("statistic")


def _with_perm(ev: Evidence, values: dict, statistic: str) -> dict:
    row = mantel(ev).loc[statistic]
    return {**values, "perm_value": as_float(row["value"]), "p_perm": as_float(row["p_perm"]),
            "n_classes": as_float(row["n_classes"]), "n_perm": int(row["n_perm"])}


def perm_text(v: dict, name: str = "ρ") -> str:
    """"Permuting the labels of 20 classes 2,000 times: ρ = 0.61, P = 0.030."."""
    if not (np.isfinite(v["perm_value"]) and np.isfinite(v["p_perm"])):
        return f"{name} is not defined here (fewer than 4 classes with every pair defined)."
    return (f"Permuting the labels of {int(v['n_classes'])} classes {v['n_perm']:,} times: "
            f"{name} = {fmt(v['perm_value'])}, {format_p(v['p_perm'])}.")


PERM_WHY = ("the paper's P values treat the class pairs as independent observations, but each "
            "class is in every one of its pairs, so they are too small; permuting class labels "
            "keeps that dependence")


def _perm_rule_text(what: str, sign: str) -> str:
    return (f"Mantel/QAP permutation test of {what}: the class labels of the FCD matrix are "
            f"permuted relative to the predictor matrices (n_perm random permutations, seeded "
            f"generator), the statistic recomputed each time, P two-sided, "
            f"(1 + #|stat*| ≥ |stat|)/(1 + n_perm). Holds: {sign} with P < level. Does not "
            f"hold: the other sign with P < level, or P ≥ level with at least {MIN_CLASSES} "
            f"classes. Not resolved: undefined, or P ≥ level with fewer than {MIN_CLASSES} "
            f"classes.")


def _q3_ols(ev: Evidence) -> dict:
    if ev.ols is None:
        return {k: np.nan for k in ("intercept", "b_dlogfreq", "b_iou4", "b3", "p3", "r2")}
    t = ev.ols.set_index("term")
    return {"intercept": as_float(t.loc["Intercept", "coef"]),
            "b_dlogfreq": as_float(t.loc["dlogfreq", "coef"]), "b_iou4": as_float(t.loc["iou4", "coef"]),
            "b3": as_float(t.loc["dlogfreq:iou4", "coef"]), "p3": as_float(t.loc["dlogfreq:iou4", "p"]),
            "r2": as_float(ev.ols["r2"].iloc[0])}


def ols_equation(v: dict) -> str:
    """The fitted Eq. 2 as text, signs written out."""
    if not np.isfinite(v["b3"]):
        return "not fitted (too few class pairs)"

    def term(b, name):
        return f"{'-' if b < 0 else '+'} {abs(b):.2f} {name}"

    return (f"FCD = {v['intercept']:.2f} {term(v['b_dlogfreq'], '|ΔlogF|')} "
            f"{term(v['b_iou4'], 'IoU^¼')} {term(v['b3'], '|ΔlogF|·IoU^¼')}")


def interaction_text(v: dict) -> str:
    """"β3 = -0.31 (P = 0.005)", the interaction of the fitted Eq. 2."""
    return f"β3 = {v['b3']:.2f} ({format_p(v['p3'])})" if np.isfinite(v["b3"]) else "undefined"


CLAIMS = [
    Claim(
        "q3_dlogfreq", "Q3", lambda s: "pairs further apart in frequency forget differently "
                                       "(FCD, ρ > 0)",
        ("q3_dlogfreq_r_nih", "q3_dlogfreq_rho_nih"),
        ("q3_dlogfreq_r_mimic", "q3_dlogfreq_rho_mimic"),
        lambda ev: _with_perm(ev, correlation_values(ev.fcd_correlations, "dlogfreq"),
                              "rho_dlogfreq"),
        signed_sound_rule(1, "perm_value", "p_perm", "n_classes"),
        lambda v: corr_text(v, "pairs"), sound=perm_text, paper_rule=signed_rule(1),
        why=PERM_WHY,
        rule_text=_perm_rule_text("Spearman ρ between FCD and |ΔlogF| over class pairs",
                                  "ρ > 0")),
    Claim(
        "q3_iou", "Q3", lambda s: "pairs that co-occur more forget alike (FCD vs IoU^¼, ρ < 0)",
        ("q3_iou_r_nih", "q3_iou_rho_nih"), ("q3_iou_r_mimic", "q3_iou_rho_mimic"),
        lambda ev: _with_perm(ev, correlation_values(ev.fcd_correlations, "iou4"), "rho_iou4"),
        signed_sound_rule(-1, "perm_value", "p_perm", "n_classes"),
        lambda v: corr_text(v, "pairs"), sound=perm_text, paper_rule=signed_rule(-1),
        why=PERM_WHY,
        rule_text=_perm_rule_text("Spearman ρ between FCD and IoU^¼ over class pairs",
                                  "ρ < 0")),
    Claim(
        "q3_ols", "Q3", lambda s: "negative interaction of |ΔlogF| and IoU^¼ in the OLS of FCD "
                                  "(β3 < 0)",
        ("q3_ols", "q3_ols_p"), (), lambda ev: _with_perm(ev, _q3_ols(ev), "beta3"),
        signed_sound_rule(-1, "perm_value", "p_perm", "n_classes"),
        lambda v: (f"{ols_equation(v)}; β3 {format_p(v['p3'])}" if np.isfinite(v["b3"])
                   else ols_equation(v)),
        sound=lambda v: perm_text(v, "β3"),
        paper_rule=finite_rule("b3", "p3")(lambda v, s: bool(v["b3"] < 0 and v["p3"] < s.level)),
        why=PERM_WHY,
        rule_text=_perm_rule_text("β3, the interaction in the OLS fcd ~ |ΔlogF| * IoU^¼ "
                                  "(refitted for each permutation; permuting FCD as a whole "
                                  "also removes real main effects, which makes the test "
                                  "conservative for β3)", "β3 < 0")),
]
