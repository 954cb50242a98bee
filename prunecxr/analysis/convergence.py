"""Is the experiment fit to be read? Training convergence and the preconditions of a finding.

A number from a model that has not converged, or a class it never learned, is not a finding.
The conditions below are fixed before any research question is looked at; they are checked on
every build, and the book states each measured value beside its threshold.

- :func:`training_summary`: one row per seed (epochs, kept epoch, stopped early or at the cap,
  validation mAP at the kept epoch and at its best).
- :func:`preconditions`: the table of conditions, measured value, threshold, pass or fail;
  :func:`store_preconditions` computes it from a results store.
- :func:`class_ap_table`: dense validation AP of every class over the seeds (what the
  precondition reads: test data steer no choice), with the test AP and counts beside it.
- :func:`training_curves_figure`: training curves with each seed's kept epoch and stop marked.
"""

from __future__ import annotations

import matplotlib.lines
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..plots import OKABE_ITO

# The preconditions (stated before looking at any outcome; see the Data and methods chapter).
MIN_EARLY_STOPPED = 0.8  # share of seeds that stop by early stopping, not by the epoch cap
MIN_KEPT_MAP_RATIO = 0.95  # kept checkpoint's val mAP / the best val mAP of that seed's run
MIN_CLASS_AP = 0.2  # median dense validation AP of every class (kept checkpoints)
MIN_TEST_POSITIVES = 10  # positives per class in the test split
MIN_IMAGE_SIZE = 64  # pixels
MIN_POPULATION = 8  # seeds of the main pruning method

SUMMARY_COLUMNS = ["seed", "epochs", "best_epoch", "stopped_early", "best_val_loss",
                   "val_map_at_best", "max_val_map", "kept_map_ratio", "seconds"]


def training_summary(history: pd.DataFrame, done: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per seed from its history (and ``done.json`` rows for ``stopped_early``).

    ``best_epoch`` is the epoch of lowest validation loss (the kept checkpoint);
    ``kept_map_ratio`` its validation mAP over the highest the run reached.
    """
    if history is None or len(history) == 0:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    stopped = {} if done is None or len(done) == 0 else \
        dict(zip(done["seed"].astype(int), done["stopped_early"].astype(bool)))
    rows = []
    for seed, h in history.sort_values(["seed", "epoch"]).groupby("seed", sort=True):
        best = h.loc[h["val_loss"].idxmin()]
        top = float(h["val_map"].max())
        rows.append({
            "seed": int(seed), "epochs": int(h["epoch"].max()) + 1, "best_epoch": int(best["epoch"]),
            "stopped_early": stopped.get(int(seed), np.nan),
            "best_val_loss": float(best["val_loss"]), "val_map_at_best": float(best["val_map"]),
            "max_val_map": top, "kept_map_ratio": float(best["val_map"]) / top if top > 0 else np.nan,
            "seconds": float(h["seconds"].sum()) if "seconds" in h else np.nan,
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def preconditions(summary: pd.DataFrame, dense_ap: pd.DataFrame, test_counts: pd.Series,
                  image_size: int, population: int,
                  min_population: int = MIN_POPULATION) -> pd.DataFrame:
    """The conditions an experiment must meet before its outcomes are read.

    ``summary`` from :func:`training_summary`; ``dense_ap`` the tidy validation AP of the kept
    dense checkpoints (columns seed, class, ap; :func:`val_ap`); ``min_population`` the seeds
    required (a rung of the capacity ladder needs fewer: :mod:`.capacity`). Returns columns condition, measured,
    threshold, passed (bool) and detail (the seeds or classes that fail).
    """
    rows = []

    def add(condition, measured, threshold, passed, detail=""):
        rows.append({"condition": condition, "measured": measured, "threshold": threshold,
                     "passed": bool(passed), "detail": detail})

    early = summary["stopped_early"].astype(float)
    share = float(early.mean())   # NaN without seeds, as the ratio below
    capped = summary.loc[early != 1, "seed"].tolist()
    add("seeds stopped early, not at the epoch cap", f"{share:.0%}",
        f">= {MIN_EARLY_STOPPED:.0%}", share >= MIN_EARLY_STOPPED,
        f"at the cap: seeds {capped}" if capped else "")
    ratio = float(summary["kept_map_ratio"].min())
    low = summary.loc[summary["kept_map_ratio"] < MIN_KEPT_MAP_RATIO, "seed"].tolist()
    add("kept / best val mAP of a run (worst seed)", f"{ratio:.3f}",
        f">= {MIN_KEPT_MAP_RATIO}", ratio >= MIN_KEPT_MAP_RATIO,
        f"below: seeds {low}" if low else "")
    med = dense_ap.groupby("class")["ap"].median()
    weak = med[med < MIN_CLASS_AP].sort_values()
    add("median dense validation AP, weakest class",
        f"{med.min():.3f} ({med.idxmin()})" if len(med) else "n/a", f">= {MIN_CLASS_AP}",
        len(med) > 0 and not len(weak),
        ", ".join(f"{c} {v:.3f}" for c, v in weak.items()))
    few = test_counts[test_counts < MIN_TEST_POSITIVES]
    add("test positives, rarest class",
        f"{int(test_counts.min())} ({test_counts.idxmin()})", f">= {MIN_TEST_POSITIVES}",
        not len(few), ", ".join(f"{c} {int(v)}" for c, v in few.items()))
    add("image size (pixels)", f"{int(image_size)}", f">= {MIN_IMAGE_SIZE}",
        image_size >= MIN_IMAGE_SIZE)
    add("seeds of the main method", f"{int(population)}", f">= {min_population}",
        population >= min_population)
    return pd.DataFrame(rows, columns=["condition", "measured", "threshold", "passed", "detail"])


def class_ap_table(dense_ap: pd.DataFrame, train_counts: pd.Series, test_counts: pd.Series,
                   test_ap: pd.DataFrame | None = None) -> pd.DataFrame:
    """Dense validation AP per class over seeds (median, min, max; what decides "learned")
    beside its train and test counts and, when given, the median test AP; weakest class
    first. ``dense_ap`` and ``test_ap``: tidy rows (seed, class, ap)."""
    g = dense_ap.groupby("class")["ap"]
    table = pd.DataFrame({"median AP": g.median(), "min AP": g.min(), "max AP": g.max()})
    if test_ap is not None:
        table["median test AP"] = test_ap.groupby("class")["ap"].median().reindex(table.index)
    table["train positives"] = train_counts.reindex(table.index).astype(int)
    table["test positives"] = test_counts.reindex(table.index).astype(int)
    table["learned"] = table["median AP"] >= MIN_CLASS_AP
    return table.sort_values("median AP").rename_axis("class").reset_index()


def val_ap(store) -> pd.DataFrame:
    """Tidy validation AP (seed, class, ap) of each seed's kept checkpoint, from its
    ``done.json`` (empty for results written before it was recorded)."""
    done = store.training_summary()
    rows = [{"seed": int(r["seed"]), "class": c, "ap": float(a)}
            for _, r in done.iterrows() if isinstance(r.get("val_ap"), list)
            for c, a in zip(store.classes, r["val_ap"])]
    return pd.DataFrame(rows, columns=["seed", "class", "ap"])


def dense_ap(store) -> pd.DataFrame:
    """Tidy test AP of the store's first (main) method at sparsity 0."""
    ap = store.ap_table()
    return ap[(ap["method"] == store.methods[0]) & np.isclose(ap["level"], 0.0)]


def store_preconditions(store) -> pd.DataFrame:
    """:func:`preconditions` of a results store, for its first (main) method."""
    summary = training_summary(store.history(), store.training_summary())
    return preconditions(summary, val_ap(store), store.test_counts, store.image_size,
                         len(store.method_seeds(store.methods[0])))


def training_curves_figure(history: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """Validation loss (left) and validation mAP (right) per epoch, one line per seed.

    On every seed's line a filled circle marks the kept epoch (lowest validation loss), and the
    line ends in a cross where the run stopped early or in a square where it hit the epoch cap.
    The dashed line is the median training loss.
    """
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    ax_loss, ax_map = fig.subplots(1, 2)
    if history is None or len(history) == 0:
        for ax in (ax_loss, ax_map):
            ax.text(0.5, 0.5, "no training history", ha="center", va="center",
                    transform=ax.transAxes)
        return fig
    h = history.sort_values(["seed", "epoch"])
    summary = training_summary(h) if summary is None else summary
    info = summary.set_index("seed")
    colors = dict(loss=OKABE_ITO[1], map=OKABE_ITO[2], train=OKABE_ITO[0])
    for seed, g in h.groupby("seed"):
        for ax, col, c in ((ax_loss, "val_loss", colors["loss"]), (ax_map, "val_map", colors["map"])):
            ax.plot(g["epoch"], g[col], color=c, alpha=0.45, lw=0.9)
            if seed in info.index:
                kept = g[g["epoch"] == info.loc[seed, "best_epoch"]]
                ax.plot(kept["epoch"], kept[col], "o", color=c, ms=4)
                last = g.iloc[-1]
                early = info.loc[seed, "stopped_early"] == 1
                ax.plot(last["epoch"], last[col], "x" if early else "s", color="black", ms=4,
                        mfc="none")
    med = h.groupby("epoch")["train_loss"].median()
    ax_loss.plot(med.index, med.values, "--", color=colors["train"], lw=1.5,
                 label="training loss (median)")
    handles = [
        matplotlib.lines.Line2D([], [], color="gray", marker="o", ls="", label="kept epoch"),
        matplotlib.lines.Line2D([], [], color="black", marker="x", ls="", label="stopped early"),
        matplotlib.lines.Line2D([], [], color="black", marker="s", mfc="none", ls="",
                                label="hit the epoch cap"),
    ]
    ax_loss.legend(handles=[*ax_loss.get_legend_handles_labels()[0], *handles], frameon=False,
                   fontsize=8)
    ax_loss.set_ylabel("binary cross-entropy")
    ax_map.set_ylabel("validation mAP")
    for ax in (ax_loss, ax_map):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    return fig


def preconditions_verdict(checks: pd.DataFrame) -> str:
    """One sentence on :func:`preconditions`: all hold, or which fail (answers provisional)."""
    failed = checks.loc[~checks["passed"], "condition"].tolist()
    if not failed:
        return f"All {len(checks)} conditions hold in this build."
    return (f"{len(failed)} of {len(checks)} conditions fail in this build ({'; '.join(failed)}): "
            "read its answers as provisional.")
