"""Q1 (overall performance): the first significant drop in mAP, and the small weights."""

from __future__ import annotations

import numpy as np

from ..analysis import overall
from .core import FAILS, HOLDS, Claim, finite_rule, fmt
from .evidence import Evidence


def _q1_first_drop(ev: Evidence) -> dict:
    return {"first_drop": overall.first_significant_drop(ev.welch)}


def _q1_weights(ev: Evidence) -> dict:
    return {"fraction_below": overall.fraction_below(ev.weights, ev.settings.weight_threshold),
            "n_weights": int(ev.weights.size)}


CLAIMS = [
    Claim(
        "q1_first_drop", "Q1",
        lambda s: (f"mAP holds up to high sparsity (first significant drop at "
                   f"k ≥ {s.first_drop_at_least:.2f})"),
        ("q1_first_drop_nih",), ("q1_first_drop_mimic",), _q1_first_drop,
        lambda v, s: bool(not np.isfinite(v["first_drop"])
                          or v["first_drop"] >= s.first_drop_at_least - 1e-9),
        lambda v: (fmt(v["first_drop"]) if np.isfinite(v["first_drop"])
                   else "no significant drop in the grid"),
        {HOLDS: "As in the paper, the models can be pruned heavily before their overall "
                "performance suffers.",
         FAILS: "Unlike in the paper, overall performance suffers already at moderate sparsity "
                "here."}),
    Claim(
        "q1_weights", "Q1",
        lambda s: f"over half of the trained weights have |w| < {s.weight_threshold:g}",
        ("q1_weights",), (), _q1_weights,
        finite_rule("fraction_below")(lambda v, s: bool(v["fraction_below"] > 0.5)),
        lambda v: f"{fmt(100 * v['fraction_below'], '.1f')}%"),
]
