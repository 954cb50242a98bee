"""Q6, beyond the paper: do the answers depend on model size? The capacity ladder, read.

The ladder (:func:`prunecxr.config.ladder`) is the same data and recipe at several widths,
each rung a population of its own. Every rung is read on equal terms: its first ``n`` seeds,
``n`` the smallest population of any rung (:func:`common_population`), so a verdict that
changes between rungs is not a change in the number of seeds. The rules, fixed before any
pruning result is looked at:

- each rung must meet the default's preconditions (:mod:`.convergence`), with at least
  :data:`MIN_RUNG_POPULATION` seeds instead of 8 (:func:`rung_preconditions`);
- the capacity precondition (:func:`capacity_width`): the smallest rung whose median dense
  validation mAP is within :data:`CAPACITY_MARGIN` of the next wider rung's is the narrowest
  network that is not capacity-limited; the default must be at least that wide.

- :func:`rung_table`: one row per rung (size, weights per training image, validation mAP,
  training against validation loss, preconditions);
- :func:`claims_by_rung`: every claim of the registry judged on every rung;
- :func:`verdict_changes`: the claims whose verdict differs between the rungs that meet the
  preconditions;
- :func:`ladder_figure`: the key curves overlaid by rung.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .convergence import preconditions, training_summary, val_ap

# The paper's network and data, for its prunable weights per training image: ResNet-50 on
# NIH-CXR-LT, whose 112,120 images are split 70/10/20 by patient (REFERENCE.md).
PAPER_ARCH, PAPER_CLASSES, NIH_IMAGES, NIH_TRAIN_SHARE = "resnet50", 20, 112_120, 0.7
MIN_RUNG_POPULATION = 3  # seeds of a rung (the default itself needs 8: convergence.MIN_POPULATION)
CAPACITY_MARGIN = 0.01  # median dense validation mAP: "within this of the next wider rung"

RUNG_COLUMNS = ["width", "prunable weights", "weights per training image", "seeds",
                "median val mAP", "train / val loss", "preconditions met", "failing"]


def common_population(stores: dict) -> int:
    """The seeds every rung is read on: the smallest population of the ladder's rungs."""
    return min(len(s.seeds) for s in stores.values())


def equal_footing(stores: dict, methods=("l1", "random")) -> dict:
    """Each rung's store read on its first :func:`common_population` seeds and ``methods``."""
    n = common_population(stores)
    return {w: s.subset(n, [m for m in methods if m in s.methods]) for w, s in stores.items()}


def median_val_map(store) -> float:
    """Median over the store's seeds of the kept dense checkpoint's validation mAP (the mean
    validation AP over classes, from each seed's ``done.json``; NaN without any): test data
    steer no choice."""
    return float(val_ap(store).groupby("seed")["ap"].mean().median())


def loss_ratio(store) -> float:
    """Median over seeds of training over validation loss at the kept epoch: near 1 (or above)
    says the network fits its training images no better than unseen ones (capacity-limited)."""
    h = store.history()
    if not len(h):
        return float("nan")
    kept = h.loc[h.groupby("seed")["val_loss"].idxmin()]
    return float((kept["train_loss"] / kept["val_loss"]).median())


def rung_preconditions(store) -> pd.DataFrame:
    """The default's preconditions of one rung, with :data:`MIN_RUNG_POPULATION` seeds."""
    summary = training_summary(store.history(), store.training_summary())
    return preconditions(summary, val_ap(store), store.test_counts, store.image_size,
                         len(store.method_seeds(store.methods[0])),
                         min_population=MIN_RUNG_POPULATION)


def paper_weights_per_image() -> float:
    """The paper's ResNet-50 (20 classes): its prunable weights per NIH-CXR-LT training image
    (about 70% of 112,120 images; the split is by patient, so the share is approximate)."""
    from ..models import build_model
    from ..prune import prunable_parameters

    model = build_model(PAPER_ARCH, PAPER_CLASSES, "none")
    weights = sum(getattr(m, n).numel() for m, n in prunable_parameters(model))
    return weights / (NIH_TRAIN_SHARE * NIH_IMAGES)


def preconditions_by_rung(stores: dict) -> pd.DataFrame:
    """:func:`rung_preconditions` of every rung, stacked with a ``width`` column first."""
    return pd.concat({w: rung_preconditions(s) for w, s in sorted(stores.items())},
                     names=["width", None]).reset_index(0).reset_index(drop=True)


def rung_table(stores: dict) -> pd.DataFrame:
    """One row per rung (``stores``: width -> store, read as given): :data:`RUNG_COLUMNS`."""
    rows = []
    for width, store in sorted(stores.items()):
        weights = store.prunable_weights(store.seeds[0]).size
        checks = rung_preconditions(store)
        rows.append({"width": int(width), "prunable weights": int(weights),
                     "weights per training image": weights / store._dataset["n_images"]["train"],
                     "seeds": len(store.seeds), "median val mAP": median_val_map(store),
                     "train / val loss": loss_ratio(store),
                     "preconditions met": bool(checks["passed"].all()),
                     "failing": "; ".join(checks.loc[~checks["passed"], "condition"])})
    return pd.DataFrame(rows, columns=RUNG_COLUMNS)


def capacity_width(table: pd.DataFrame, margin: float = CAPACITY_MARGIN) -> int | None:
    """The capacity rule: the smallest rung whose median dense validation mAP is within
    ``margin`` of the next wider rung's (the wider network gains at most ``margin``), among
    rungs that meet the preconditions; None where no rung of this ladder qualifies (the
    widest rung has no wider one to be compared with)."""
    t = table[table["preconditions met"]].sort_values("width")
    widths, maps = t["width"].to_numpy(), t["median val mAP"].to_numpy(dtype=float)
    for i in range(len(t) - 1):
        if maps[i + 1] - maps[i] <= margin + 1e-12:  # a gain of exactly the margin is within
            return int(widths[i])
    return None


def capacity_check(table: pd.DataFrame, width: int, margin: float = CAPACITY_MARGIN) -> dict:
    """The capacity precondition of a population of ``width``: the rule's width, whether
    ``width`` is at least that, and the gains between neighbouring rungs (as text); not
    checked (``rungs`` < 2) without a ladder."""
    chosen = capacity_width(table, margin)
    t = table.sort_values("width")
    gains = [f"{a} → {b}: {m2 - m1:+.3f}" for a, b, m1, m2 in zip(
        t["width"], t["width"][1:], t["median val mAP"], t["median val mAP"][1:])]
    return {"width": chosen, "passed": chosen is not None and width >= chosen,
            "gains": "; ".join(gains), "margin": margin, "rungs": len(table)}


def claims_by_rung(stores: dict, keys=None, settings=None) -> pd.DataFrame:
    """Every claim (default: the paper's) judged on every rung by the claims registry: one row
    per (claim, rung) with both statistics and both verdicts (``stores`` read as given)."""
    from ..claims import Evidence, evaluate

    rows = []
    for width, store in sorted(stores.items()):
        for key, r in evaluate(Evidence(store, settings), keys).items():
            rows.append({"key": key, "question": r.claim.question,
                         "claim": r.claim.statement(r.settings), "width": int(width),
                         "paper's statistic": r.build, "paper's verdict": r.paper_verdict,
                         "sound statistic": r.sound, "verdict": r.verdict, "result": r})
    return pd.DataFrame(rows)


def verdict_grid(by_rung: pd.DataFrame, column: str = "verdict") -> pd.DataFrame:
    """Claims by rungs: one row per claim, one column per width, the verdict in each cell."""
    grid = by_rung.pivot(index="key", columns="width", values=column)
    grid.columns = [f"width {w}" for w in grid.columns]
    claims = by_rung.drop_duplicates("key").set_index("key")[["question", "claim"]]
    return claims.join(grid).reset_index()


def verdict_changes(by_rung: pd.DataFrame, valid_widths, column: str = "verdict") -> list[str]:
    """The claims whose verdict differs between the rungs in ``valid_widths`` (those that
    meet the preconditions), in registry order."""
    rows = by_rung[by_rung["width"].isin(list(valid_widths))]
    n = rows.groupby("key", sort=False)[column].nunique()
    return [k for k in dict.fromkeys(rows["key"]) if n[k] > 1]


def _values(by_rung: pd.DataFrame, key: str, names) -> pd.DataFrame:
    rows = by_rung[by_rung["key"] == key]
    return pd.DataFrame([{"width": w, **{n: r.values.get(n, np.nan) for n in names}}
                         for w, r in zip(rows["width"], rows["result"])])


def ladder_figure(stores: dict, by_rung: pd.DataFrame, method: str = "l1") -> Figure:
    """(a) median mAP against sparsity, one line per rung; (b) Q2's chance-corrected
    correlations with class frequency by width; (c) Q4's odds ratio (95% CI) of PIEs among
    images with a rare class, at the damage rule's level, by width."""
    from ..plots import OKABE_ITO, _figure
    from .overall import map_per_model

    fig, axes = _figure(3, width=4.2, height=3.6)
    ax = axes[0]
    for i, (width, store) in enumerate(sorted(stores.items())):
        maps = map_per_model(store.ap_table([method]))
        med = maps.groupby("sparsity")["map"].median()
        ax.plot(med.index, med.to_numpy(), "o-", ms=3, color=OKABE_ITO[i % len(OKABE_ITO)],
                label=f"width {width}")
    ax.set(xlabel="sparsity k", ylabel=f"median mAP ({method})", title="(a) mAP by rung")
    ax.legend(frameon=False, fontsize=8)
    ax = axes[1]
    for j, (key, label) in enumerate((("q2_first_drop", "first drop"),
                                      ("q2_final_change", "final change"))):
        v = _values(by_rung, key, ["cc_rho"])
        if len(v):
            ax.plot(v["width"], v["cc_rho"], "o-", color=OKABE_ITO[j + 4], label=label)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="width", ylabel="Spearman ρ with ln(train count)",
           title="(b) Q2, chance-corrected")
    ax.legend(frameon=False, fontsize=8)
    ax = axes[2]
    v = _values(by_rung, "q4_rare", ["s_odds_ratio", "s_ci_low", "s_ci_high", "k_rule"])
    if len(v):
        ok = np.isfinite(v["s_odds_ratio"].astype(float))
        shown = v[ok]
        ax.errorbar(shown["width"], shown["s_odds_ratio"].clip(lower=1e-2),
                    yerr=[(shown["s_odds_ratio"] - shown["s_ci_low"]).clip(lower=0),
                          (shown["s_ci_high"] - shown["s_odds_ratio"]).clip(lower=0)],
                    fmt="o", color=OKABE_ITO[5], capsize=3)
        for _, r in shown.iterrows():
            ax.annotate(f"k = {r['k_rule']:.2f}", (r["width"], max(r["s_odds_ratio"], 1e-2)),
                        textcoords="offset points", xytext=(5, 5), fontsize=7)
    ax.axhline(1, color="0.6", lw=0.8)
    ax.set_yscale("log")
    ax.set(xlabel="width", ylabel="odds ratio, PIE | rare class",
           title="(c) Q4, at the damage rule's k")
    for ax in axes[1:]:
        ax.set_xticks(sorted(stores))
    return fig


def by_rung_csv(by_rung: pd.DataFrame) -> pd.DataFrame:
    """The claim-by-rung table as written to CSV (the result objects dropped)."""
    return by_rung.drop(columns=["result"])


def capacity_text(check: dict, width: int) -> str:
    """The capacity precondition in a sentence: the rule's width against ``width``."""
    gains = f" (median validation mAP gained per step: {check['gains']})" if check["gains"] else ""
    if check["rungs"] < 2:
        return ("Not checked: this build has no capacity ladder (give its widths, e.g. "
                "widths=8,16,24).")
    if check["width"] is None:
        return (f"Not met on this ladder: no rung comes within {check['margin']:g} of the next "
                f"wider rung's median validation mAP{gains}, so even the widest rung here may be "
                f"capacity-limited; the default (width {width}) is read with that caveat.")
    verb = "met" if check["passed"] else "not met"
    return (f"{verb.capitalize()}: the narrowest rung within {check['margin']:g} of the next "
            f"wider rung's median validation mAP is width {check['width']}{gains}; the default "
            f"is width {width}.")


def capacity_answer(table: pd.DataFrame, by_rung: pd.DataFrame) -> str:
    """Q6's answer, computed: the ladder's span and the verdicts that change with size among
    the rungs that meet their preconditions (the capacity precondition has its own text,
    :func:`capacity_text`)."""
    from ..claims import FAILS, HOLDS  # the registry's verdicts (it reads analysis, not this)

    valid = table.loc[table["preconditions met"], "width"].tolist()
    failing = table.loc[~table["preconditions met"], "width"].tolist()
    t = table.set_index("width")
    span = t["prunable weights"].max() / t["prunable weights"].min()
    head = (f"{len(table)} rungs, widths {', '.join(map(str, t.index))} "
            f"({span:.0f} times the prunable weights from the narrowest to the widest), each "
            f"read on its first {int(t['seeds'].min())} seeds.")
    if failing:
        head += (f" Width {', '.join(map(str, failing))} fails its preconditions and is left "
                 "out of the comparison.")
    if len(valid) < 2:
        return head + " Fewer than two rungs meet their preconditions: not resolved."
    changed = verdict_changes(by_rung, valid)
    n = by_rung["key"].nunique()
    if changed:
        grid = verdict_grid(by_rung[by_rung["width"].isin(valid)]).set_index("key")
        cols = [c for c in grid.columns if c.startswith("width ")]
        parts = [f"{k} ({' → '.join(grid.loc[k, c] for c in cols)})" for k in changed]
        flips = sum({HOLDS, FAILS} <= set(grid.loc[k, cols]) for k in changed)
        body = (f" {len(changed)} of the {n} claims change verdict with size: "
                + "; ".join(parts) + f". The other {n - len(changed)} keep theirs. "
                f"{flips} of the changes go between holds and does not hold; the others to or "
                "from not resolved. With this few seeds a verdict decided near its threshold can "
                "change without any effect of size: the statistics below say how near each is.")
    else:
        body = f" None of the {n} claims changes verdict with size."
    return head + body


def landing_line(by_rung: pd.DataFrame, table: pd.DataFrame) -> str:
    """One line for the landing page: which verdicts change with model size."""
    valid = table.loc[table["preconditions met"], "width"].tolist()
    if len(valid) < 2:
        return "not resolved (fewer than two rungs meet their preconditions)"
    changed = verdict_changes(by_rung, valid)
    widths = f"widths {min(valid)} to {max(valid)}"
    if not changed:
        return f"no verdict changes across {widths}"
    return f"{len(changed)} of {by_rung['key'].nunique()} verdicts change across {widths}: " \
           + ", ".join(changed)
