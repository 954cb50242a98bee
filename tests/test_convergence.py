"""Preconditions of a finding: training summary, the condition table, the per-class AP table
and the training-curve figure with kept epochs and stops marked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prunecxr.analysis import convergence as cv


def history() -> pd.DataFrame:
    """Seed 0 stops early (best epoch 2), seed 1 runs to the cap with a noisy early minimum."""
    rows = []
    for epoch, (loss, m) in enumerate([(0.5, 0.2), (0.3, 0.5), (0.2, 0.8), (0.25, 0.81), (0.26, 0.8)]):
        rows.append({"seed": 0, "epoch": epoch, "train_loss": loss, "val_loss": loss,
                     "val_map": m, "seconds": 1.0})
    for epoch, (loss, m) in enumerate([(0.5, 0.3), (0.1, 0.4), (0.2, 0.7), (0.15, 0.9)]):
        rows.append({"seed": 1, "epoch": epoch, "train_loss": loss, "val_loss": loss,
                     "val_map": m, "seconds": 2.0})
    return pd.DataFrame(rows)


DONE = pd.DataFrame({"seed": [0, 1], "stopped_early": [True, False]})


def test_training_summary():
    s = cv.training_summary(history(), DONE).set_index("seed")
    assert s.loc[0, "epochs"] == 5 and s.loc[0, "best_epoch"] == 2 and s.loc[0, "stopped_early"]
    assert s.loc[0, "kept_map_ratio"] == pytest.approx(0.8 / 0.81)
    assert s.loc[1, "best_epoch"] == 1 and not s.loc[1, "stopped_early"]
    assert s.loc[1, "kept_map_ratio"] == pytest.approx(0.4 / 0.9)
    assert s.loc[1, "seconds"] == 8.0
    assert cv.training_summary(pd.DataFrame()).empty


def dense(aps: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"seed": i, "class": c, "ap": a} for c, v in aps.items()
                         for i, a in enumerate(v)])


def test_preconditions_pass_and_fail_with_the_culprits_named():
    summary = cv.training_summary(history(), DONE)
    counts = pd.Series({"A": 40, "B": 9})
    table = cv.preconditions(summary, dense({"A": [0.9, 0.8, 0.1], "B": [0.1, 0.3, 0.15]}),
                             counts, image_size=32, population=2).set_index("condition")
    assert not table["passed"].any()  # every condition fails here
    early = table.loc["seeds stopped early, not at the epoch cap"]
    assert early["measured"] == "50%" and "seeds [1]" in early["detail"]
    assert "seeds [1]" in table.iloc[1]["detail"]
    assert table.iloc[2]["detail"] == "B 0.150" and table.iloc[2]["measured"].endswith("(B)")
    assert table.iloc[3]["detail"] == "B 9"
    good_summary = summary.assign(stopped_early=True, kept_map_ratio=[0.99, 0.96])
    ok = cv.preconditions(good_summary, dense({"A": [0.9, 0.8], "B": [0.25, 0.2]}),
                          pd.Series({"A": 40, "B": 10}), image_size=64, population=8)
    assert ok["passed"].all()


def test_class_ap_table_orders_by_median_and_flags_unlearned():
    t = cv.class_ap_table(dense({"A": [0.9, 0.8, 0.7], "B": [0.1, 0.3, 0.15]}),
                          pd.Series({"A": 400, "B": 30}), pd.Series({"A": 50, "B": 10}))
    assert t["class"].tolist() == ["B", "A"]
    assert t.loc[0, "median AP"] == pytest.approx(0.15) and t.loc[0, "max AP"] == 0.3
    assert t["learned"].tolist() == [False, True] and t["train positives"].tolist() == [30, 400]


def test_training_curves_mark_kept_epochs_and_stops():
    fig = cv.training_curves_figure(history(), cv.training_summary(history(), DONE))
    ax_loss, ax_map = fig.axes
    for ax, col in ((ax_loss, "val_loss"), (ax_map, "val_map")):
        kept = [l for l in ax.lines if l.get_marker() == "o"]
        assert sorted(float(l.get_ydata()[0]) for l in kept) == sorted(
            [history().query("seed == 0 and epoch == 2")[col].item(),
             history().query("seed == 1 and epoch == 1")[col].item()])
        assert len([l for l in ax.lines if l.get_marker() == "x"]) == 1  # seed 0 stopped early
        assert len([l for l in ax.lines if l.get_marker() == "s"]) == 1  # seed 1 hit the cap
    assert ax_map.get_ylabel() == "validation mAP"
    median = [l for l in ax_loss.lines if l.get_linestyle() == "--"][0]
    assert np.allclose(median.get_ydata(), history().groupby("epoch")["train_loss"].median())


@pytest.mark.slow
def test_store_preconditions_on_the_smoke_run(smoke_store):
    table = cv.store_preconditions(smoke_store)
    assert len(table) == 6
    size = table.set_index("condition").loc["image size (pixels)"]
    assert size["measured"] == str(smoke_store.image_size) and not size["passed"]  # 32 px
    seeds = table.set_index("condition").loc["seeds of the main method"]
    assert seeds["measured"] == str(len(smoke_store.seeds))
