"""Q1 (overall performance): how far mAP holds up under pruning, and the small weights.

Each claim keeps the paper's statistic and decides on one that fits the design:

- ``q1_first_drop``: the paper's statistic is the first sparsity with a significant Welch drop
  (dense and pruned models as independent samples). The pruned models are the dense models'
  own seeds, so the sound statistic is paired: the relative mAP change of each pruned model
  against its own dense model, with a t-interval over seeds, at the level the claim is about
  (``Settings.first_drop_at_least``); "holds" needs the whole interval above
  ``-Settings.equivalence_margin`` (a small effect, not merely a non-significant test).
- ``q1_weights``: the paper's statistic is the share of weights with |w| below an absolute
  threshold, which depends on the weights' scale; the sound one is the share below a fixed
  fraction of each layer's own SD (:data:`prunecxr.analysis.overall.SD_FRACTION`), over every
  seed whose weights the store holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis import overall
from ..stats import format_p
from .core import FAILS, HOLDS, UNRESOLVED, Claim, fmt
from .evidence import Evidence

CONFIDENCE = 0.95  # the paired interval's level (t-interval over seeds)


def _pct(x: float, digits: int = 1) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


# --------------------------------------------------------------------- q1_first_drop

def paired(ev: Evidence) -> pd.DataFrame | None:
    """The paired table (:func:`prunecxr.analysis.overall.paired_by_sparsity`) of the
    evidence's method at ``Settings.level``, computed once (``None`` where it cannot be)."""
    def make():
        try:
            return overall.paired_by_sparsity(ev.maps, level=ev.settings.level,
                                              method=ev.settings.method, confidence=CONFIDENCE)
        except ValueError:
            return None
    return ev.memo("q1_paired", make)


WELCH_COLUMNS = ["sparsity", "mean_dense", "mean_sparse", "diff", "t", "df", "p", "p_holm",
                 "significant"]


def welch_table(ev: Evidence) -> pd.DataFrame:
    """The paper's Welch table (:attr:`Evidence.welch`), or an empty one with its columns
    where Welch's test cannot run (fewer than two seeds)."""
    try:
        return ev.welch
    except ValueError:
        return pd.DataFrame(columns=WELCH_COLUMNS)


def _welch_first_drop(ev: Evidence) -> float | None:
    try:
        return overall.first_significant_drop(ev.welch)
    except ValueError:  # fewer than two seeds: Welch's test cannot run
        return None


def _q1_first_drop(ev: Evidence) -> dict:
    s = ev.settings
    first = _welch_first_drop(ev)
    table = paired(ev)
    target = s.first_drop_at_least
    at = overall.level_at_least(table["sparsity"], target) if table is not None else np.nan
    v = {"first_drop": np.nan if first is None else first, "welch_ok": first is not None,
         "target": target, "at": at, "margin": s.equivalence_margin, "level": s.level,
         "n_seeds": 0, "rel": np.nan, "rel_lo": np.nan, "rel_hi": np.nan, "p_paired": np.nan,
         "p_holm": np.nan, "first_paired_drop": np.nan, "paired_ok": table is not None,
         "paired_tested": False}
    if table is not None:
        v["first_paired_drop"] = overall.first_paired_drop(table)
        v["paired_tested"] = bool(table["p"].notna().any())
    if np.isfinite(at):
        row = table.loc[np.isclose(table["sparsity"], at)].iloc[0]
        v.update(n_seeds=int(row["n"]), rel=float(row["rel"]), rel_lo=float(row["rel_lo"]),
                 rel_hi=float(row["rel_hi"]), p_paired=float(row["p"]),
                 p_holm=float(row["p_holm"]))
    v.update(_first_drop_texts(v))
    return v


def _first_drop_texts(v: dict) -> dict:
    """The sentences' pieces, from the values alone (the verdict picks the sentence)."""
    margin = f"−{100 * v['margin']:g}%"
    if not np.isfinite(v["at"]):
        where = (f"the grid does not reach k = {v['target']:.2f}" if v["paired_ok"]
                 else "no paired test could run (no dense models or no pruned levels)")
        return {"k_text": f"k = {v['target']:.2f}", "margin_text": margin,
                "change_text": "n/a", "first_paired_text": "n/a",
                "unresolved_text": (f"This build cannot decide whether mAP holds up to high "
                                    f"sparsity: {where}.")}
    k_text = f"k = {v['at']:.2f}"
    if not np.isclose(v["at"], v["target"]):
        k_text += f" (the grid has no k = {v['target']:.2f}; the nearest level above it)"
    change = overall.interval_text(v["rel"], v["rel_lo"], v["rel_hi"], CONFIDENCE)
    test = (f"paired t-test {format_p(v['p_paired'])}, Holm-adjusted {format_p(v['p_holm'])}"
            if np.isfinite(v["p_paired"]) else "no paired test: fewer than two seeds")
    first = (drop_word(v["first_paired_drop"]) if v["paired_tested"]
             else "not tested (fewer than two seeds)")
    change_text = (f"at {k_text}, mAP changes by {change} against each seed's own dense model "
                   f"({_seeds(v['n_seeds'])}; {test})")
    if v["n_seeds"] < 2:
        reason = f"{_seeds(v['n_seeds'])} {'gives' if v['n_seeds'] == 1 else 'give'} no interval"
    elif v["rel_lo"] < -v["margin"] < v["rel_hi"]:
        reason = (f"the interval reaches both sides of the {margin} margin: this build cannot "
                  "tell a small loss from a large one")
    else:
        reason = "the interval lies on one side of the margin but the rule needs more"
    return {"k_text": k_text, "margin_text": margin, "change_text": change_text,
            "first_paired_text": first,
            "unresolved_text": (f"Not resolved: {change_text}; {reason}, so it does not decide "
                                "whether the models can be pruned heavily before their overall "
                                "performance suffers.")}


def drop_word(k: float) -> str:
    return f"k = {k:.2f}" if np.isfinite(k) else "not reached within the grid"


def first_drop_rule(v: dict, s) -> bool | None:
    """Holds when the interval of the relative change at k* lies above -margin; does not hold
    when it lies below -margin, or when the paired drop there is significant (Holm) and its
    estimate is below -margin; otherwise (too few seeds, too wide) not resolved."""
    if not (np.isfinite(v["at"]) and v["n_seeds"] >= 2 and np.isfinite(v["rel_lo"])):
        return None
    margin = v["margin"]
    if v["rel_lo"] > -margin:
        return True
    if v["rel_hi"] < -margin:
        return False
    if np.isfinite(v["p_holm"]) and v["p_holm"] < v["level"] and v["rel"] < -margin:
        return False
    return None


def paper_first_drop_rule(v: dict, s) -> bool | None:
    """The paper's: no significant Welch drop (P < alpha) before ``first_drop_at_least``."""
    if not v["welch_ok"]:
        return None
    return bool(not np.isfinite(v["first_drop"])
                or v["first_drop"] >= s.first_drop_at_least - 1e-9)


def _sound_first_drop(v: dict) -> str:
    if not np.isfinite(v["at"]):
        return v["unresolved_text"]
    return (f"{v['change_text'][0].upper()}{v['change_text'][1:]}; first paired drop "
            f"(Holm, P < {v['level']:g}): {v['first_paired_text']}")


# --------------------------------------------------------------------- q1_weights

def layer_weights(store, seed: int) -> list[np.ndarray] | None:
    """The dense model's Conv2d and Linear weights of one seed, one array per layer (what
    pruning acts on), or ``None`` where the store does not hold that seed's weights."""
    from ..models import build_model
    from ..prune import _prunable_names

    model = build_model(store.config["arch"], len(store.classes), "none",
                        width=store.config["width"])
    state = store.state_dict(seed)
    names = _prunable_names(model)
    if not all(n in state for n in names):
        return None
    return [state[n].detach().float().numpy().ravel() for n in names]


def weight_shares(store, threshold: float, fraction: float = overall.SD_FRACTION) -> pd.DataFrame:
    """Per seed whose weights the store holds: n_weights, below_abs (share with |w| <
    ``threshold``, the paper's statistic) and below_sd (share below ``fraction`` x their own
    layer's SD, the scale-free one)."""
    rows = []
    for seed in store.seeds:
        try:
            layers = layer_weights(store, seed)
        except Exception:  # a seed without weights (e.g. the nbval fixture keeps the first)
            layers = None
        if layers is None:
            continue
        flat = np.concatenate(layers)
        rows.append({"seed": seed, "n_weights": int(flat.size),
                     "below_abs": overall.fraction_below(flat, threshold),
                     "below_sd": overall.fraction_below_sd(layers, fraction)})
    return pd.DataFrame(rows, columns=["seed", "n_weights", "below_abs", "below_sd"])


def _q1_weights(ev: Evidence) -> dict:
    table = ev.memo(f"q1_weight_shares_{ev.settings.weight_threshold!r}", weight_shares,
                    ev.store, ev.settings.weight_threshold)
    has = not table.empty
    v = {"fraction_below": float(table["below_abs"].median()),   # NaN without seeds
            "fraction_below_sd": float(table["below_sd"].median()),
            "sd_min": float(table["below_sd"].min()), "sd_max": float(table["below_sd"].max()),
            "n_seeds": int(len(table)), "n_weights": int(table["n_weights"].iloc[0]) if has else 0,
            "sd_fraction": overall.SD_FRACTION,
            "gaussian": overall.gaussian_share_below(overall.SD_FRACTION),
            "threshold": ev.settings.weight_threshold}
    v["sd_text"] = _sound_weights(v)
    return v


def weights_rule(v: dict, s) -> bool | None:
    """Holds when every seed has over half its weights below 0.674 SD of their layer; does not
    hold when none has; seeds on both sides (or no weights): not resolved."""
    if v["n_seeds"] == 0 or not np.isfinite(v["sd_min"]):
        return None
    if v["sd_min"] > 0.5:
        return True
    if v["sd_max"] <= 0.5:
        return False
    return None


def _sound_weights(v: dict) -> str:
    if v["n_seeds"] == 0:
        return "no seed's weights in this store"
    spread = ("" if v["n_seeds"] == 1
              else f", seeds {_pct(v['sd_min'], 2)} to {_pct(v['sd_max'], 2)}")
    return (f"{_pct(v['fraction_below_sd'], 2)} of the weights lie below "
            f"{v['sd_fraction']:.3f} × their layer's SD (median over {_seeds(v['n_seeds'])}"
            f"{spread}; a Gaussian layer: {_pct(v['gaussian'], 0)})")


WEIGHTS_WHY = ("an absolute threshold depends on the weights' scale, and the initialisation "
               "scale grows as fan-in shrinks (SD √(2/fan-in)), so a narrow network's weights "
               "are larger in absolute terms and fall below 0.01 less often for that reason "
               "alone; measured against each layer's own SD the share does not depend on scale")

CLAIMS = [
    Claim(
        "q1_first_drop", "Q1",
        lambda s: (f"mAP holds up to high sparsity (first significant drop at "
                   f"k ≥ {s.first_drop_at_least:.2f})"),
        ("q1_first_drop_nih",), ("q1_first_drop_mimic",), _q1_first_drop,
        first_drop_rule,
        lambda v: ("Welch's test cannot run (fewer than two seeds)" if not v["welch_ok"]
                   else "first significant Welch drop: " + (
                       fmt(v["first_drop"]) if np.isfinite(v["first_drop"])
                       else "none in the grid")),
        {HOLDS: ("As in the paper, the models can be pruned heavily before their overall "
                 "performance suffers: {change_text}, and the whole interval lies above the "
                 "{margin_text} margin."),
         FAILS: ("Unlike in the paper, overall performance suffers before high sparsity here: "
                 "{change_text}, a loss beyond the {margin_text} margin; the paired test first "
                 "finds a drop at {first_paired_text}."),
         UNRESOLVED: "{unresolved_text}"},
        sound=_sound_first_drop,
        paper_rule=paper_first_drop_rule,
        why=("Welch's test treats each seed's dense and pruned models as independent samples, "
             "so the seed-to-seed spread of mAP hides a loss, and a test that finds no "
             "significant drop is not evidence that the loss is small; the paired interval "
             "must show it"),
        rule_text=("At k* = the smallest level of the grid ≥ first_drop_at_least (0.60), the "
                   "relative mAP change of each pruned model against its own dense model "
                   "(same seed), with a 95% t-interval over seeds: holds when the whole "
                   "interval lies above −equivalence_margin (−5%); does not hold when it lies "
                   "below −5%, or when the paired t-test (two-sided, Holm over the levels "
                   "tested) is significant at P < level (0.05) with the estimate below −5%; "
                   "otherwise (fewer than two seeds, an interval across −5%, no level ≥ "
                   "0.60) not resolved. The paper's statistic, the first significant Welch "
                   "drop (P < alpha, 0.001), is shown beside it.")),
    Claim(
        "q1_weights", "Q1",
        lambda s: f"over half of the trained weights have |w| < {s.weight_threshold:g}",
        ("q1_weights",), (), _q1_weights,
        weights_rule,
        lambda v: (f"{_pct(v['fraction_below'])} below {v['threshold']:g} "
                   f"(median over {_seeds(v['n_seeds'])})" if v["n_seeds"] else
                   "no seed's weights in this store"),
        {HOLDS: ("Over half of the weights are small for their layer: {sd_text}, so the "
                 "weights are more concentrated near zero than a bell curve of the same "
                 "spread."),
         FAILS: ("Not over half of the weights are small for their layer: {sd_text}, so the "
                 "weights are no more concentrated near zero than a bell curve of the same "
                 "spread."),
         UNRESOLVED: ("The seeds disagree on whether over half of the weights are small for "
                      "their layer ({sd_text}), so this build does not decide it.")},
        sound=_sound_weights,
        paper_rule=lambda v, s: (None if not np.isfinite(v["fraction_below"])
                                 else bool(v["fraction_below"] > 0.5)),
        why=WEIGHTS_WHY,
        rule_text=("Scale-free: the share of each seed's Conv2d/Linear weights with |w| below "
                   "0.674 × their own layer's SD (0.674 = Φ⁻¹(3/4), the median of |w|/SD for "
                   "a Gaussian layer, which therefore gives exactly 50%: 'over half' means "
                   "more concentrated near zero than a bell curve of the same spread; a "
                   "uniform layer gives 39%). Holds when every seed with weights is over 50%; "
                   "does not hold when none is; seeds on both sides: not resolved. The "
                   "paper's statistic, the share with |w| < weight_threshold (0.01), median "
                   "over seeds, is shown beside it.")),
]
