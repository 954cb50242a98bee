"""Q5's claims (beyond the paper): compression methods read at matched overall damage.

Each is decided only at matched points the grids resolve (:func:`prunecxr.analysis.compression.
matched_levels`); with none, the claim is "not resolved".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.compression import overlap_with
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


CLAIMS = [
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


def q5_summary(ev: Evidence) -> str:
    """The Q5 chapter's verdict: which methods make rarer classes lose more, which hurt the
    rarest as a group more or less, and which grids cannot resolve a matched point."""
    methods, reference = ev.store.methods, ev.settings.reference
    if len(methods) < 2:
        return (f"This build ran only {methods[0]}; add methods "
                "(methods=l1,local_l1,channel_l1,channel_l1_bn,quant,l1_ft) to compare.")
    ok = _resolved(ev)
    parts = []
    if ok.empty:
        parts.append("No matched point is resolved by the grids of this build, so no method is "
                     "compared.")
    else:
        rho_by = ok.groupby("method")["rho"].median().sort_values()
        steady = [m for m, g in ok.groupby("method") if (g["rho_lo"] > 0).all()]
        parts.append(
            f"Rarer classes lose more (ρ interval above 0 at every resolved point) under "
            f"{len(steady)} of {len(rho_by)} methods ({names(steady) or 'none'}); the median ρ "
            f"runs from {rho_by.iloc[0]:.2f} ({rho_by.index[0]}) to {rho_by.iloc[-1]:.2f} "
            f"({rho_by.index[-1]})" + (f", {rho_by[reference]:.2f} for {reference}"
                                       if reference in rho_by.index else "") + ".")
        judged = ok.apply(gap_judgement, axis=1)
        less = sorted(set(ok.loc[judged == "less", "method"]))
        more = sorted(set(ok.loc[judged == "more", "method"]))
        parts.append("Taken as a group, the rarest classes lose clearly less than the rest under "
                     f"{names(less) or 'no method'} and clearly more under "
                     f"{names(more) or 'no method'}; elsewhere their intervals include no "
                     "difference.")
    unresolved = [m for m in methods if m not in set(ok["method"])]
    if unresolved:
        curve = ev.damage_curve
        first = {m: float(g.sort_values("level")["loss"].iloc[1])
                 for m, g in curve.groupby("method") if len(g) > 1}
        parts.append("Not resolved by its grid: " + "; ".join(
            f"{m} (its first step already costs {100 * first.get(m, np.nan):.0f}% of mAP)"
            for m in unresolved) + ".")
    return " ".join(parts)
