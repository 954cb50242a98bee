"""Q3 (co-occurrence): class pairs' forgetting against frequency difference and IoU."""

from __future__ import annotations

import numpy as np

from ..stats import format_p
from .core import Claim, as_float, corr_text, correlation_values, finite_rule, signed_rule
from .evidence import Evidence


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
        lambda ev: correlation_values(ev.fcd_correlations, "dlogfreq"), signed_rule(1),
        lambda v: corr_text(v, "pairs")),
    Claim(
        "q3_iou", "Q3", lambda s: "pairs that co-occur more forget alike (FCD vs IoU^¼, ρ < 0)",
        ("q3_iou_r_nih", "q3_iou_rho_nih"), ("q3_iou_r_mimic", "q3_iou_rho_mimic"),
        lambda ev: correlation_values(ev.fcd_correlations, "iou4"), signed_rule(-1),
        lambda v: corr_text(v, "pairs")),
    Claim(
        "q3_ols", "Q3", lambda s: "negative interaction of |ΔlogF| and IoU^¼ in the OLS of FCD "
                                  "(β3 < 0)",
        ("q3_ols", "q3_ols_p"), (), _q3_ols,
        finite_rule("b3", "p3")(lambda v, s: bool(v["b3"] < 0 and v["p3"] < s.level)),
        lambda v: (f"{ols_equation(v)}; β3 {format_p(v['p3'])}" if np.isfinite(v["b3"])
                   else ols_equation(v))),
]
