"""Preconditions of a finding: training summary, the condition table, the per-class AP table
and the training-curve figure with kept epochs and stops marked."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.layout_engine
import numpy as np
import pandas as pd
import pytest

from prunecxr.analysis import convergence as cv
from prunecxr.plots import OKABE_ITO


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
    assert list(t.columns) == ["class", "median AP", "min AP", "max AP", "train positives",
                               "test positives", "learned"]
    assert t["min AP"].tolist() == [0.1, 0.7] and t["test positives"].tolist() == [10, 50]
    assert t["train positives"].dtype == int and t["test positives"].dtype == int
    with_test = cv.class_ap_table(dense({"A": [0.9, 0.8], "B": [cv.MIN_CLASS_AP] * 2}),
                                  pd.Series({"A": 400, "B": 30}), pd.Series({"B": 10, "A": 50}),
                                  test_ap=dense({"B": [0.5, 0.7, 0.9], "A": [0.2, 0.4]}))
    assert with_test["median test AP"].tolist() == pytest.approx([0.7, 0.3])
    assert with_test["test positives"].tolist() == [10, 50]
    assert with_test["learned"].tolist() == [True, True]  # the threshold itself counts as learned


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


def _drawn(ax) -> list[tuple[list[float], list[float], str]]:
    return [([float(x) for x in l.get_xdata()], [float(y) for y in l.get_ydata()], l.get_marker())
            for l in ax.lines]


def test_training_curves_draw_each_seed_against_its_epochs():
    """Every seed's curve at its own epochs, its kept epoch as a circle, its last epoch as a
    cross (stopped early) or square (epoch cap), the median training loss per epoch; epochs
    from 1 so that no row position can pass for an epoch. The summary is computed when not
    given; an empty history gets a note on both panels."""
    h = history().assign(epoch=lambda d: d["epoch"] + 1)
    # without done.json rows, how a seed stopped is unknown: drawn as not early
    for fig, ends in ((cv.training_curves_figure(h, cv.training_summary(h, DONE)), ("x", "s")),
                      (cv.training_curves_figure(h), ("s", "s"))):
        ax_loss, ax_map = fig.axes
        assert ax_loss.get_position().x0 < ax_map.get_position().x0  # side by side
        for ax, col in ((ax_loss, "val_loss"), (ax_map, "val_map")):
            drawn = _drawn(ax)
            for seed, best, end in ((0, 3, ends[0]), (1, 2, ends[1])):
                g = h[h.seed == seed]
                assert (g.epoch.tolist(), g[col].tolist(), "None") in drawn
                assert ([best], [g[g.epoch == best][col].item()], "o") in drawn
                assert ([g.epoch.iloc[-1]], [g[col].iloc[-1]], end) in drawn
        med = h.groupby("epoch")["train_loss"].median()
        assert (med.index.tolist(), med.tolist(), "None") in _drawn(ax_loss)
    for empty in (None, h.iloc[:0]):
        fig = cv.training_curves_figure(empty)
        assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["no training history"] * 2


@pytest.mark.slow
def test_store_preconditions_on_the_smoke_run(smoke_store):
    table = cv.store_preconditions(smoke_store)
    assert len(table) == 6
    size = table.set_index("condition").loc["image size (pixels)"]
    assert size["measured"] == str(smoke_store.image_size) and not size["passed"]  # 32 px
    seeds = table.set_index("condition").loc["seeds of the main method"]
    assert seeds["measured"] == str(len(smoke_store.seeds))


def test_preconditions_hold_exactly_at_each_threshold_and_say_so():
    """Every threshold is inclusive (>=); the table's text is what the book prints."""
    summary = pd.DataFrame({"seed": range(5), "stopped_early": [True] * 4 + [False],
                            "kept_map_ratio": [0.95, 1.0, 1.0, 0.99, 0.97]})
    aps = dense({"A": [0.2, 0.1, 0.9], "B": [0.5, 0.6, 0.7]})  # A's median is exactly 0.2
    table = cv.preconditions(summary, aps, pd.Series({"A": 10, "B": 30}), image_size=64,
                             population=8)
    expected = pd.DataFrame({
        "condition": ["seeds stopped early, not at the epoch cap",
                      "kept / best val mAP of a run (worst seed)",
                      "median dense validation AP, weakest class", "test positives, rarest class",
                      "image size (pixels)", "seeds of the main method"],
        "measured": ["80%", "0.950", "0.200 (A)", "10 (A)", "64", "8"],
        "threshold": [">= 80%", ">= 0.95", ">= 0.2", ">= 10", ">= 64", ">= 8"],
        "passed": [True] * 6,
        "detail": ["at the cap: seeds [4]", "", "", "", "", ""]})
    pd.testing.assert_frame_equal(table, expected)
    below = cv.preconditions(summary.assign(kept_map_ratio=[0.9499, 1, 1, 1, 1],
                                            stopped_early=[True] * 3 + [False] * 2),
                             dense({"A": [0.1999, 0.1, 0.9], "B": [0.5, 0.1, 0.7]}),
                             pd.Series({"A": 9, "B": 8}), image_size=63, population=7)
    assert not below["passed"].any()
    assert below["detail"].tolist() == ["at the cap: seeds [3, 4]", "below: seeds [0]",
                                        "A 0.200", "A 9, B 8", "", ""]
    assert below.loc[2, "measured"] == "0.200 (A)"  # 0.1999 rounds for display, still fails
    empty = cv.preconditions(summary, dense({}).reindex(columns=["seed", "class", "ap"]),
                             pd.Series({"A": 10}), 64, 8)
    assert empty.loc[2, "measured"] == "n/a" and not empty.loc[2, "passed"]


def test_training_summary_edges():
    """Columns in their documented order, seeds sorted, a seed without done.json has NaN for
    stopped_early, a run whose mAP never left 0 has no ratio, a history without seconds NaN."""
    h = history().sample(frac=1, random_state=0)  # rows in any order
    s = cv.training_summary(h, DONE.iloc[:1])
    assert list(s.columns) == cv.SUMMARY_COLUMNS and s["seed"].tolist() == [0, 1]
    assert s.loc[0, "stopped_early"] == True and np.isnan(s.loc[1, "stopped_early"])  # noqa: E712
    assert s.loc[0, "best_val_loss"] == 0.2 and s.loc[0, "val_map_at_best"] == 0.8
    assert s.loc[0, "max_val_map"] == 0.81
    assert list(cv.training_summary(pd.DataFrame()).columns) == cv.SUMMARY_COLUMNS
    flat = history().assign(val_map=0.0).drop(columns="seconds")
    s = cv.training_summary(flat, DONE)
    assert s["kept_map_ratio"].isna().all() and s["seconds"].isna().all()
    assert cv.training_summary(history(), DONE.iloc[:0])["stopped_early"].isna().all()


def fake_store():
    """What store_preconditions reads from a store: test AP (a second method and level to
    ignore) that must not decide anything, and each seed's validation AP in done.json."""
    from types import SimpleNamespace

    ap = pd.DataFrame([{"method": m, "seed": s, "sparsity": k, "level": k, "class": c,
                        "ap": {"A": 0.9, "B": 0.3}[c] - k - (0.5 if m == "random" else 0) + 0.01 * s}
                       for m in ("l1", "random") for s in (0, 1) for k in (0.0, 0.5)
                       for c in ("A", "B")])
    done = DONE.assign(val_ap=[[0.8, 0.15], [0.7, 0.25]])  # B's median 0.2: learned
    return SimpleNamespace(methods=["l1", "random"], classes=["A", "B"], ap_table=lambda: ap,
                           history=history, training_summary=lambda: done,
                           test_counts=pd.Series({"A": 30, "B": 12}), image_size=64,
                           method_seeds=lambda m: [0, 1] if m == "l1" else [0])


def test_store_preconditions_read_validation_ap_never_test_ap():
    store = fake_store()
    ap = store.ap_table()
    pd.testing.assert_frame_equal(cv.dense_ap(store),
                                  ap[(ap["method"] == "l1") & (ap["sparsity"] == 0.0)])
    val = cv.val_ap(store)
    assert val.groupby("class")["ap"].median().to_dict() == pytest.approx({"A": 0.75, "B": 0.2})
    expected = cv.preconditions(cv.training_summary(history(), store.training_summary()), val,
                                store.test_counts, 64, 2)
    table = cv.store_preconditions(store)
    pd.testing.assert_frame_equal(table, expected)
    assert table.loc[2, "measured"] == "0.200 (B)" and table.loc[2, "passed"]
    old = SimpleNamespace(**{**vars(store), "training_summary": lambda: DONE})  # no val_ap
    assert cv.val_ap(old).empty and not cv.store_preconditions(old).loc[2, "passed"]


def test_training_curves_layout_colours_legend_and_ticks():
    """What a reader needs from the figure beyond its data: constrained layout, the empty note
    centred in each panel, one colour per series (validation loss, validation mAP, training
    loss) and distinct, a legend with the marker key, whole-number epochs on the x axis."""
    h = history().assign(epoch=lambda d: d["epoch"] + 1)
    fig = cv.training_curves_figure(h, cv.training_summary(h, DONE))
    assert isinstance(fig.get_layout_engine(), matplotlib.layout_engine.ConstrainedLayoutEngine)
    ax_loss, ax_map = fig.axes
    series = {"loss": {l.get_color() for l in ax_loss.lines
                       if l.get_marker() in ("None", "o") and l.get_linestyle() != "--"},
              "map": {l.get_color() for l in ax_map.lines if l.get_marker() in ("None", "o")},
              "train": {l.get_color() for l in ax_loss.lines if l.get_linestyle() == "--"}}
    assert all(len(c) == 1 for c in series.values()), series
    colours = [c.pop() for c in series.values()]
    assert len(set(colours)) == 3 and set(colours) <= set(OKABE_ITO)
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert labels == ["training loss (median)", "kept epoch", "stopped early",
                      "hit the epoch cap"]
    for ax in fig.axes:
        ticks = ax.xaxis.get_major_locator().tick_values(1, 3)
        assert np.allclose(ticks, np.round(ticks)), ticks
    empty = cv.training_curves_figure(None)
    for ax in empty.axes:
        (note,) = ax.texts
        assert note.get_position() == (0.5, 0.5) and note.get_transform() == ax.transAxes


def test_preconditions_details_when_all_stop_one_class_and_several_weak():
    """No capped seed: no detail; a single learned class passes; weak classes are listed
    weakest first, comma-separated; no seeds at all: NaN shares, failing."""
    summary = pd.DataFrame({"seed": range(3), "stopped_early": [True] * 3,
                            "kept_map_ratio": [1.0] * 3})
    one = cv.preconditions(summary, dense({"A": [0.5, 0.6, 0.7]}), pd.Series({"A": 10}), 64, 8)
    assert one["passed"].all() and (one["detail"] == "").all()
    assert one.loc[0, "measured"] == "100%" and one.loc[2, "measured"] == "0.600 (A)"
    weak = cv.preconditions(summary, dense({"A": [0.1] * 3, "B": [0.15] * 3, "C": [0.05] * 3,
                                            "D": [0.9] * 3}), pd.Series({"A": 10}), 64, 8)
    assert weak.loc[2, "detail"] == "C 0.050, A 0.100, B 0.150"
    none = cv.preconditions(summary.iloc[:0], dense({"A": [0.5]}), pd.Series({"A": 10}), 64, 8)
    assert none.loc[0, "measured"] == "nan%" and none.loc[1, "measured"] == "nan"
    assert not none.loc[0, "passed"] and not none.loc[1, "passed"]


def test_val_ap_is_tidy_per_seed_and_class_from_done_json():
    """Each seed's kept validation AP by class, in the store's class order; a seed without a
    list (older results) and a summary without the column give no rows."""
    done = pd.DataFrame({"seed": [3, 5, 7], "val_ap": [[0.5, 0.25], None, [0.75, 1.0]]})
    store = SimpleNamespace(classes=["A", "B"], training_summary=lambda: done)
    expected = pd.DataFrame({"seed": [3, 3, 7, 7], "class": ["A", "B", "A", "B"],
                             "ap": [0.5, 0.25, 0.75, 1.0]})
    pd.testing.assert_frame_equal(cv.val_ap(store), expected)
    for old in (done.drop(columns="val_ap"), pd.DataFrame()):
        store.training_summary = lambda old=old: old
        got = cv.val_ap(store)
        assert got.empty and list(got.columns) == ["seed", "class", "ap"]
