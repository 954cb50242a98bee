"""Q5's claims (beyond the paper): compression methods read at matched overall damage.

Each is decided only at matched points the grids resolve (:func:`prunecxr.analysis.compression.
matched_levels`); with none, the claim is "not resolved".

``q5_gap_vs_ref`` and ``q5_rho_vs_ref`` answer the chapter's question, method against method:
every other method against the reference (l1) at each matched loss, the difference in the
rare-vs-rest gap and in rho, by a paired bootstrap over the seeds both share with the matched
levels found again in every resample, Holm over the comparisons decided
(:func:`prunecxr.analysis.compression.paired_comparisons`). ``q5_rare`` and ``q5_rho`` read
each method against itself (the rarest against the rest; rho above 0).
"""

from __future__ import annotations

import pandas as pd

from ..analysis.compression import (COVERAGE, MIN_SEEDS, RESAMPLES_REACHED, first_step_losses,
                                    overlap_with)
from .core import Claim, Settings
from .evidence import Evidence


def _resolved(ev: Evidence) -> pd.DataFrame:
    damage = ev.matched_damage
    return damage[damage["resolved"]] if len(damage) else damage


def gap_judgement(row) -> str:
    """How the rarest classes fare against the others at one point: "more" (they lose more:
    the interval of the gap is below 0), "less" (above 0) or "alike"."""
    if row["rare_minus_other_hi"] < 0:
        return "more"
    return "less" if row["rare_minus_other_lo"] > 0 else "alike"


def names(items) -> str:
    """"a, b and c"."""
    items = list(items)
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def _points(frame: pd.DataFrame, value: str, spec: str = "+.2f") -> str:
    return "; ".join(f"{r['method']} at {100 * r['loss']:.0f}% ({r[value]:{spec}})"
                     for _, r in frame.iterrows()) or "none"


NOTHING_RESOLVED = "No matched point is resolved by the grids of this build, so nothing is read."


def _q5_rare(ev: Evidence) -> dict:
    ok = _resolved(ev)
    judged = ok.apply(gap_judgement, axis=1) if len(ok) else pd.Series(dtype=str)
    return {"n_resolved": len(ok), **{f"{k}": ok[judged == k] for k in ("more", "less", "alike")}}


def _q5_rare_text(v: dict) -> str:
    if not v["n_resolved"]:
        return NOTHING_RESOLVED
    more, less, alike = v["more"], v["less"], v["alike"]
    return (f"The rarest classes lose clearly more than the others (interval of the gap below 0) "
            f"at {len(more)} of {v['n_resolved']} resolved points: "
            f"{_points(more, 'rare_minus_other')}. Clearly less at {len(less)}: "
            f"{_points(less, 'rare_minus_other')}. No clear difference at {len(alike)}.")


def _q5_rare_rule(v: dict, s: Settings) -> bool | None:
    if not v["n_resolved"]:
        return None
    if len(v["less"]):
        return False
    return True if len(v["more"]) == v["n_resolved"] else None


def _q5_rho(ev: Evidence) -> dict:
    ok = _resolved(ev)
    return {"n_resolved": len(ok), "above": ok[ok["rho_lo"] > 0] if len(ok) else ok,
            "below": ok[ok["rho_hi"] < 0] if len(ok) else ok}


def _q5_rho_text(v: dict) -> str:
    if not v["n_resolved"]:
        return NOTHING_RESOLVED
    return (f"Per-class change rises with log training count (ρ interval above 0) at "
            f"{len(v['above'])} of {v['n_resolved']} resolved points: "
            f"{_points(v['above'], 'rho', '.2f').replace('(', '(ρ = ')}.")


def _q5_rho_rule(v: dict, s: Settings) -> bool | None:
    if not v["n_resolved"]:
        return None
    if len(v["below"]):
        return False
    return True if len(v["above"]) == v["n_resolved"] else None


def _q5_pies(ev: Evidence) -> dict:
    s = ev.settings
    jac = overlap_with(ev.pie_overlap, s.reference).dropna(subset=["jaccard"])
    return {"reference": s.reference, "jaccard": jac, "chance": s.fraction / (2 - s.fraction)}


def _q5_pies_text(v: dict) -> str:
    jac = v["jaccard"]
    if jac.empty:
        return (f"No method other than {v['reference']} reached a matched loss, so there is "
                "nothing to compare.")
    lo, hi = jac.loc[jac["jaccard"].idxmin()], jac.loc[jac["jaccard"].idxmax()]
    return (f"The PIEs of the other methods overlap those of {v['reference']} with a Jaccard "
            f"index from {lo['jaccard']:.2f} ({lo['method']} at {100 * lo['loss']:.0f}%) to "
            f"{hi['jaccard']:.2f} ({hi['method']} at {100 * hi['loss']:.0f}%), median "
            f"{jac['jaccard'].median():.2f}, against about {v['chance']:.3f} for two random "
            "sets of the same size.")


def _q5_pies_rule(v: dict, s: Settings) -> bool | None:
    if v["jaccard"].empty:
        return None
    return bool((v["jaccard"]["jaccard"] > v["chance"]).all())


STAT_NAMES = {"gap": "rare-vs-rest gap", "rho": "ρ"}


def _versus(kind: str):
    """compute() of the comparison claim on statistic ``kind`` ("gap" or "rho")."""
    def compute(ev: Evidence) -> dict:
        comp = ev.comparisons
        decided = comp[comp["decided"]] if len(comp) else comp
        differ = decided[decided[f"{kind}_differs"] == True] if len(decided) else decided  # noqa: E712
        return {"kind": kind, "reference": ev.settings.reference, "n_made": len(comp),
                "n_decided": len(decided), "decided": decided, "differ": differ,
                "methods": sorted(set(differ["method"])) if len(differ) else [],
                "n_seeds": int(comp["n_seeds"].max()) if len(comp) else 0,
                "coverage": COVERAGE[kind]}
    return compute


def _interval(r, kind: str) -> str:
    return (f"{r[f'{kind}_diff']:+.2f} [{r[f'{kind}_diff_lo']:+.2f}, {r[f'{kind}_diff_hi']:+.2f}]"
            f" at {100 * r['loss']:.0f}%, Holm P = {r[f'{kind}_p_holm']:.3f}")


def _versus_text(v: dict) -> str:
    kind, ref = v["kind"], v["reference"]
    if not v["n_decided"]:
        return (f"No comparison with {ref} is decided ({v['n_made']} made; a comparison needs "
                f"{MIN_SEEDS} or more shared seeds, both matched points resolved by their grids "
                f"and the matched level reached in {RESAMPLES_REACHED:.1%} of resamples; "
                f"this build has {v['n_seeds']} shared seeds): not resolved.")
    if not len(v["differ"]):
        return (f"No method differs from {ref} in the {STAT_NAMES[kind]} at matched damage "
                f"after Holm over the {v['n_decided']} decided comparisons.")
    parts = [f"{r['method']} {_interval(r, kind)}" for _, r in v["differ"].iterrows()]
    return (f"{len(v['methods'])} method(s) differ from {ref} in the {STAT_NAMES[kind]} "
            f"(method minus {ref}, paired 95% interval over {v['n_seeds']} seeds): "
            + "; ".join(parts) + f" ({v['n_decided']} comparisons decided).")


def versus_rule(v: dict, s: Settings) -> bool | None:
    """Holds: some decided comparison differs from the reference (Holm P < level); does not
    hold: comparisons were decided and none differs; not resolved: none was decided."""
    if not v["n_decided"]:
        return None
    return bool(len(v["differ"]))


VERSUS_RULE = ("Each method other than {ref} against {ref} at each matched loss: the "
               "difference (method minus {ref}) in the {what} at matched damage, by a paired "
               "bootstrap over the seeds both share (2,000 resamples; in each resample both "
               "methods' damage curves and matched levels are found again), two-sided P = "
               "twice the smaller share of resamples on either side of 0, Holm over the "
               "decided comparisons. A comparison is decided only with at least 8 shared "
               "seeds (the count whose coverage a simulation checks), both matched points "
               "resolved by their grids and the matched level reached in 97.5% of resamples. "
               "Holds when some decided comparison has Holm P < level (0.05): a method "
               "differs from {ref}; does not hold when comparisons were decided and none "
               "does; not resolved when none was decided.")

CLAIMS = [
    Claim("q5_gap_vs_ref", "Q5",
          lambda s: (f"at matched damage, some method differs from {s.reference} in how much "
                     "more the rarest classes lose than the rest (paired gap difference)"),
          (), (), _versus("gap"), versus_rule, _versus_text,
          rule_text=VERSUS_RULE.format(ref="l1", what="rare-vs-rest gap (median relative AP "
                                       "change of the 5 rarest classes minus that of the rest)")),
    Claim("q5_rho_vs_ref", "Q5",
          lambda s: (f"at matched damage, some method differs from {s.reference} in how "
                     "strongly rarer classes lose more (paired ρ difference)"),
          (), (), _versus("rho"), versus_rule, _versus_text,
          rule_text=VERSUS_RULE.format(ref="l1", what="Spearman ρ of per-class relative AP "
                                       "change against ln training count")),
    Claim("q5_rare", "Q5", lambda s: ("at matched damage, the rarest classes lose more than the "
                                      "rest under every method (gap interval below 0)"),
          (), (), _q5_rare, _q5_rare_rule, _q5_rare_text),
    Claim("q5_rho", "Q5", lambda s: ("at matched damage, rarer classes lose more under every "
                                     "method (ρ interval above 0)"),
          (), (), _q5_rho, _q5_rho_rule, _q5_rho_text),
    Claim("q5_pies", "Q5", lambda s: (f"the methods' PIEs overlap those of {s.reference} more "
                                      "than chance"),
          (), (), _q5_pies, _q5_pies_rule, _q5_pies_text),
]


def q5_answer(ev: Evidence) -> str:
    """The Q5 chapter's answer in two or three computed sentences: which methods differ from
    the reference in harm to the rarest classes at matched damage (each with its paired
    interval), or that none is resolved; and which grids cannot resolve a matched point."""
    methods, reference = ev.store.methods, ev.settings.reference
    if len(methods) < 2:
        return (f"This build ran only {methods[0]}; add methods "
                "(methods=l1,local_l1,channel_l1,channel_l1_bn,quant,l1_ft) to compare.")
    gap = _versus("gap")(ev)
    parts = []
    if not gap["n_decided"]:
        parts.append(f"No method's harm to the rarest classes at matched damage is resolved "
                     f"against {reference}: of {gap['n_made']} comparisons none is decided "
                     f"(each needs {MIN_SEEDS} or more shared seeds and both matched points "
                     f"resolved; this build has {gap['n_seeds']} seeds).")
    elif not len(gap["differ"]):
        parts.append(f"At matched damage no method differs from {reference} in how much more "
                     f"the rarest classes lose than the rest ({gap['n_decided']} paired "
                     f"comparisons over {gap['n_seeds']} seeds, Holm).")
    else:
        parts.append(f"At matched damage, {names(gap['methods'])} differ(s) from {reference} "
                     "in how much more the rarest classes lose than the rest (method minus "
                     f"{reference}, paired 95% interval over {gap['n_seeds']} seeds): "
                     + "; ".join(f"{r['method']} {_interval(r, 'gap')}"
                                 for _, r in gap["differ"].iterrows()) + ".")
    rho = _versus("rho")(ev)
    if rho["n_decided"]:
        parts.append(("In ρ (per-class change against log frequency) "
                      + (f"{names(rho['methods'])} differ(s) from {reference}."
                         if rho["methods"] else f"no method differs from {reference}.")))
    first = first_step_losses(ev.damage_curve)
    top = max(ev.settings.losses)
    coarse = first[first > top]
    if len(coarse):
        parts.append("The grid cannot resolve " + "; ".join(
            f"{m} (its first step already costs {100 * x:.0f}% of mAP, more than the largest "
            f"matched loss, {100 * top:.0f}%)" for m, x in coarse.items())
            + "; whether that is the method or the model's size is not asked here.")
    return " ".join(parts)


def q5_summary(ev: Evidence) -> str:
    """The Q5 chapter's closing summary: :func:`q5_answer`, then each method against itself
    (rarer classes lose more; the rarest as a group)."""
    parts = [q5_answer(ev)]
    if len(ev.store.methods) < 2:
        return parts[0]
    ok = _resolved(ev)
    if not ok.empty:
        rho_by = ok.groupby("method")["rho"].median().sort_values()
        steady = [m for m, g in ok.groupby("method") if (g["rho_lo"] > 0).all()]
        parts.append(
            f"Each method against itself: rarer classes lose more (ρ interval above 0 at every "
            f"resolved point) under {len(steady)} of {len(rho_by)} methods "
            f"({names(steady) or 'none'}); the median ρ runs from {rho_by.iloc[0]:.2f} "
            f"({rho_by.index[0]}) to {rho_by.iloc[-1]:.2f} ({rho_by.index[-1]}).")
    return " ".join(parts)
