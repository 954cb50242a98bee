"""Q2 (which classes are forgotten): forgetting against class frequency.

The paper's statistics (the raw relative change in AP; the first 20% drop, classes that never
drop left out) are kept for comparison. The verdicts come from sound ones: the chance-corrected
change (AP - pi) / (AP_0 - pi) - 1, with pi the class's test prevalence, because at high
sparsity a class's AP falls to pi and the raw change then equals (pi - AP_0) / AP_0, a floor
fixed by prevalence that correlates with frequency whatever pruning does; and the first drop
with classes that never drop ranked last (censored), not left out.
"""

from __future__ import annotations

import numpy as np

from ..analysis import forgetting
from ..stats import format_p
from .core import (Claim, Settings, as_float, corr_text, correlation_values, finite_rule, fmt,
                   signed_rule)
from .evidence import Evidence

# Fewer classes (or class pairs' classes) than this: a non-significant correlation is "not
# resolved" rather than "does not hold" (too little data to tell no effect from low power).
MIN_CLASSES = 10


def signed_sound_rule(sign: int, rho: str = "cc_rho", p: str = "cc_p", n: str = "cc_n",
                      min_n: int = MIN_CLASSES):
    """The sound statistics' three-way rule for a signed association: holds when the statistic
    has the claimed sign with P below the level; does not hold when it has the other sign with
    P below the level, or when P is not below the level with at least ``min_n`` classes; not
    resolved otherwise (undefined, or not significant on fewer than ``min_n`` classes)."""
    def rule(v: dict, s: Settings) -> bool | None:
        r, pv, count = as_float(v[rho]), as_float(v[p]), as_float(v[n])
        if not (np.isfinite(r) and np.isfinite(pv)):
            return None
        if pv < s.level:
            return bool(sign * r > 0)
        return False if np.isfinite(count) and count >= min_n else None
    return rule


def comparison(ev: Evidence):
    """(per_class, correlations) of :func:`prunecxr.analysis.forgetting.forgetting_comparison`
    for the evidence's method, computed once per evidence."""
    s, store = ev.settings, ev.store
    return ev.memo(f"q2_comparison_{s.method}_{s.drop}", forgetting.forgetting_comparison,
                   store.ap_table([s.method]), store.labels, store.classes, store.train_counts,
                   threshold=s.drop, method=s.method)


def _corr(ev: Evidence, paper_row: str, sound_row: str) -> dict:
    per_class, corr = comparison(ev)
    c = corr.set_index("outcome")
    out = correlation_values(ev.forgetting[1].set_index("outcome"), paper_row)
    sound = c.loc[sound_row]
    out.update(cc_n=as_float(sound["n"]), cc_rho=as_float(sound["rho"]),
               cc_p=as_float(sound["p_rho"]),
               floor_rho=as_float(c.loc["chance_floor", "rho"]),
               floor_p=as_float(c.loc["chance_floor", "p_rho"]),
               final_sparsity=float(per_class.attrs.get("final_sparsity", np.nan)),
               n_censored=int(per_class["cc_censored"].sum()),
               n_censored_raw=int(per_class["censored"].sum()),
               raw_censored_rho=as_float(c.loc["first_drop_censored", "rho"]),
               raw_censored_p=as_float(c.loc["first_drop_censored", "p_rho"]))
    return out


def _rho_text(rho: float, p: float, n: float) -> str:
    if not (np.isfinite(rho) and np.isfinite(p)):
        return "ρ not defined here"
    return f"ρ = {fmt(rho)} ({format_p(p)}, n = {int(n)} classes)"


def first_drop_sound(v: dict) -> str:
    """The chance-corrected first drop, classes that never drop ranked last, as text."""
    return (f"First drop of the chance-corrected curve, classes that never drop ranked last "
            f"({v['n_censored']} here): {_rho_text(v['cc_rho'], v['cc_p'], v['cc_n'])}; of the "
            f"raw curve with the same censoring, ρ = {fmt(v['raw_censored_rho'])}, "
            f"{format_p(v['raw_censored_p'])}.")


def final_change_sound(v: dict) -> str:
    """The chance-corrected change at the highest sparsity, and the chance floor, as text."""
    return (f"Chance-corrected change (AP − π)/(AP₀ − π) − 1 at k = "
            f"{fmt(v['final_sparsity'])}: {_rho_text(v['cc_rho'], v['cc_p'], v['cc_n'])}; the "
            f"chance floor (π − AP₀)/AP₀ alone gives ρ = {fmt(v['floor_rho'])}, "
            f"{format_p(v['floor_p'])}.")


def _q2_examples(ev: Evidence) -> dict:
    per_class, _ = ev.forgetting
    ranked = per_class.sort_values("train_count", ascending=False, kind="stable")
    out = {"final_sparsity": float(per_class.attrs.get("final_sparsity", np.nan))}
    for tag, row in (("frequent", ranked.iloc[0]), ("rare", ranked.iloc[-1])):
        out.update({f"{tag}_class": str(row["class"]), f"{tag}_count": int(row["train_count"]),
                    f"{tag}_final": as_float(row["final_change"]),
                    f"{tag}_first": as_float(row["first_drop"])})
    return out


CLAIMS = [
    Claim(
        "q2_first_drop", "Q2", lambda s: "rarer classes are forgotten earlier (ρ > 0 with ln "
                                         "train count)",
        ("q2_first_drop_r_nih", "q2_first_drop_rho_nih"),
        ("q2_first_drop_r_mimic", "q2_first_drop_rho_mimic"),
        lambda ev: _corr(ev, "first_drop", "cc_first_drop_censored"),
        signed_sound_rule(1), corr_text,
        sound=first_drop_sound, paper_rule=signed_rule(1),
        why=("the paper's first drop is measured on the raw change, which also counts a class "
             "falling towards its chance AP (sooner for a class with a higher floor), and it "
             "leaves out the classes that never drop instead of ranking them last"),
        rule_text=("Spearman ρ between ln(train count) and the first sparsity at which the "
                   "chance-corrected curve, median over seeds of (AP − π)/(AP₀ − π) − 1, falls "
                   "to the drop threshold or below; classes that never drop within the grid "
                   "(curve defined everywhere) are given a value above the largest sparsity, "
                   "so they rank last, tied. Holds: ρ > 0 with P < level. Does not hold: ρ < 0 "
                   f"with P < level, or P ≥ level with at least {MIN_CLASSES} classes. Not "
                   f"resolved: ρ undefined, or P ≥ level with fewer than {MIN_CLASSES} classes.")),
    Claim(
        "q2_final_change", "Q2", lambda s: "rarer classes lose more AP at the highest sparsity "
                                           "(ρ > 0)",
        ("q2_final_r_nih", "q2_final_rho_nih"), ("q2_final_r_mimic", "q2_final_rho_mimic"),
        lambda ev: _corr(ev, "final_change", "cc_final_change"),
        signed_sound_rule(1), corr_text,
        sound=final_change_sound, paper_rule=signed_rule(1),
        why=("where a class's AP falls to its prevalence π the raw relative change equals "
             "(π − AP₀)/AP₀, a floor fixed by prevalence that follows frequency whatever "
             "pruning does; the chance-corrected change removes that floor"),
        rule_text=("Spearman ρ between ln(train count) and the chance-corrected change at the "
                   "highest sparsity, median over seeds of (AP − π)/(AP₀ − π) − 1 with π the "
                   "class's test prevalence (seeds whose dense AP does not beat π left out). "
                   "Holds: ρ > 0 with P < level. Does not hold: ρ < 0 with P < level, or "
                   f"P ≥ level with at least {MIN_CLASSES} classes. Not resolved: ρ undefined, "
                   f"or P ≥ level with fewer than {MIN_CLASSES} classes.")),
    Claim(
        "q2_examples", "Q2", lambda s: "the most frequent class loses less than the rarest",
        ("q2_frequent_nih", "q2_rare_nih"), ("q2_frequent_mimic", "q2_rare_mimic"),
        _q2_examples,
        finite_rule("frequent_final", "rare_final")(
            lambda v, s: bool(v["rare_final"] < v["frequent_final"])),
        lambda v: (f"{v['frequent_class']} ({v['frequent_count']:,}): {fmt(v['frequent_final'])} "
                   f"at k = {fmt(v['final_sparsity'])}, first 20% drop "
                   f"{fmt(v['frequent_first'])}; {v['rare_class']} ({v['rare_count']:,}): "
                   f"{fmt(v['rare_final'])}, {fmt(v['rare_first'])}")),
]
