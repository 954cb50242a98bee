"""Q2 (which classes are forgotten): forgetting against class frequency."""

from __future__ import annotations

import numpy as np

from .core import (Claim, as_float, corr_text, correlation_values, finite_rule, fmt,
                   signed_rule)
from .evidence import Evidence


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
        lambda ev: correlation_values(ev.forgetting[1].set_index("outcome"), "first_drop"),
        signed_rule(1), corr_text),
    Claim(
        "q2_final_change", "Q2", lambda s: "rarer classes lose more AP at the highest sparsity "
                                           "(ρ > 0)",
        ("q2_final_r_nih", "q2_final_rho_nih"), ("q2_final_r_mimic", "q2_final_rho_mimic"),
        lambda ev: correlation_values(ev.forgetting[1].set_index("outcome"), "final_change"),
        signed_rule(1), corr_text),
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
