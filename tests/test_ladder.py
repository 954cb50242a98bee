"""The capacity ladder (Q6): its rungs, their keys and executor, the store read on equal terms,
the capacity rule, the claims judged rung by rung and the figure's drawn data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from prunecxr import cli, pipeline
from prunecxr.analysis import capacity
from prunecxr.analysis.overall import map_per_model
from prunecxr.claims import VERDICTS, Evidence, evaluate
from prunecxr.config import LADDER_METHODS, ladder, load_config
from prunecxr.store import load

TORCH_THREADS = 1


# ------------------------------------------------------------------------------ the rungs

def test_the_default_ladder_starts_at_the_default_and_keys_each_rung():
    config = load_config("default")
    rungs = ladder(config)
    assert [r.width for r in rungs] == [8, 16, 24] and rungs[0] is config
    for rung in rungs[1:]:
        assert rung.methods == LADDER_METHODS and rung.population == config.ladder_population
        assert rung.control_population == 0
        changed = {f.name for f in dataclasses.fields(config)
                   if getattr(rung, f.name) != getattr(config, f.name)}
        assert changed == {"width", "methods", "population"}  # same data and recipe
    assert len({r.key for r in rungs}) == 3
    # the ladder's own fields name other populations: the default's key ignores them
    assert config.key == dataclasses.replace(config, widths=(), ladder_population=8).key


def test_a_ladder_always_holds_the_population_itself_and_nothing_without_widths():
    assert ladder(load_config("paper")) == []
    config = load_config("default", overrides=["width=32"])
    assert [r.width for r in ladder(config)] == [8, 16, 24, 32]
    assert ladder(config)[-1] is config
    small = load_config("smoke", overrides=["population=2", "ladder_population=5"])
    assert all(r.population == 2 for r in ladder(small))


@pytest.mark.parametrize("overrides, message", [
    (["widths=8,8,16"], "widths must not repeat"),
    (["widths=8,12"], "widths must be positive multiples of 8"),
    (["ladder_population=0"], "ladder_population must be >= 1"),
])
def test_bad_ladders_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config("default", overrides=overrides)


def test_a_ladder_needs_weights_trained_from_scratch():
    """Pretrained weights exist for width 64 alone: such a population has no ladder (and
    setting them on a profile with one is no error)."""
    assert ladder(load_config("paper", overrides=["widths=32,64"])) == []
    assert ladder(load_config("smoke", overrides=["width=64", "weights=imagenet"])) == []


# ------------------------------------------------------------------------ the capacity rule

def _table(maps, met=None, widths=(8, 16, 24)):
    return pd.DataFrame({"width": list(widths), "median val mAP": maps,
                         "preconditions met": met or [True] * len(widths)})


@pytest.mark.parametrize("maps, met, expected", [
    ([0.74, 0.91, 0.915], None, 16),         # 8 -> 16 gains 0.17, 16 -> 24 only 0.005
    ([0.90, 0.905, 0.95], None, 8),          # the narrowest already within the margin
    ([0.90, 0.91, 0.95], None, 8),           # a gain of exactly the margin is within it
    ([0.70, 0.80, 0.90], None, None),        # every step gains: not resolved on this ladder
    ([0.90, 0.88, 0.70], None, 8),           # a wider rung that is worse is within the margin
    ([0.90, 0.905, 0.906], [False, True, True], 16),  # a failing rung is not a candidate
])
def test_capacity_rule(maps, met, expected):
    assert capacity.capacity_width(_table(maps, met)) == expected


def test_capacity_check_passes_only_from_the_rules_width():
    table = _table([0.74, 0.91, 0.915])
    assert capacity.capacity_check(table, 16)["passed"]
    assert capacity.capacity_check(table, 24)["passed"]
    check = capacity.capacity_check(table, 8)
    assert not check["passed"] and check["width"] == 16
    assert check["gains"] == "8 → 16: +0.170; 16 → 24: +0.005"
    assert "Not met" in capacity.capacity_text(check, 8)
    assert not capacity.capacity_check(_table([0.7, 0.8, 0.9]), 24)["passed"]


def test_capacity_text_in_each_case():
    """The sentence for each outcome, whole: met, not met, no rung qualifies, no ladder."""
    table = _table([0.74, 0.91, 0.915])
    gains = " (median validation mAP gained per step: 8 → 16: +0.170; 16 → 24: +0.005)"
    assert capacity.capacity_text(capacity.capacity_check(table, 16), 16) == (
        f"Met: the narrowest rung within 0.01 of the next wider rung's median validation mAP "
        f"is width 16{gains}; the default is width 16.")
    assert capacity.capacity_text(capacity.capacity_check(table, 8), 8) == (
        f"Not met: the narrowest rung within 0.01 of the next wider rung's median validation "
        f"mAP is width 16{gains}; the default is width 8.")
    assert capacity.capacity_text(capacity.capacity_check(_table([0.7, 0.8, 0.9]), 8), 8) == (
        "Not met on this ladder: no rung comes within 0.01 of the next wider rung's median "
        "validation mAP (median validation mAP gained per step: 8 → 16: +0.100; 16 → 24: "
        "+0.100), so even the widest rung here may be capacity-limited; the default (width 8) "
        "is read with that caveat.")
    two = capacity.capacity_check(_table([0.9, 0.9], widths=(8, 16)), 8)
    assert two["rungs"] == 2 and capacity.capacity_text(two, 8).startswith("Met: ")
    assert capacity.capacity_text(capacity.capacity_check(_table([0.9], widths=(8,)), 8), 8) == (
        "Not checked: this build has no capacity ladder (give its widths, e.g. widths=8,16,24).")
    wide = capacity.capacity_check(table, 8, margin=0.2)   # the margin is the caller's
    assert (wide["width"], wide["margin"], wide["passed"]) == (8, 0.2, True)


# -------------------------------------------------------------------- claims rung by rung

def _by_rung(verdicts: dict[str, list[str]], widths=(8, 16, 24)) -> pd.DataFrame:
    return pd.DataFrame([{"key": k, "question": "Q", "claim": k, "width": w, "verdict": v}
                         for k, vs in verdicts.items() for w, v in zip(widths, vs)])


def test_verdict_changes_read_only_the_rungs_that_meet_their_preconditions():
    by_rung = _by_rung({"a": ["holds", "holds", "does not hold"],
                        "b": ["holds", "holds", "holds"],
                        "c": ["not resolved", "holds", "holds"]})
    assert capacity.verdict_changes(by_rung, [8, 16, 24]) == ["a", "c"]
    assert capacity.verdict_changes(by_rung, [16, 24]) == ["a"]
    grid = capacity.verdict_grid(by_rung)
    assert list(grid.columns) == ["key", "question", "claim", "width 8", "width 16", "width 24"]
    assert grid.set_index("key").loc["a", "width 24"] == "does not hold"
    table = _table([0.9, 0.91, 0.915], [True, True, False])
    assert capacity.landing_line(by_rung, table) == "1 of 3 verdicts change across widths 8 to 16: c"
    # registry order, not alphabetical, in both
    later = _by_rung({"z": ["holds", "does not hold", "holds"], "a": ["holds", "holds", "fails"]})
    assert capacity.verdict_changes(later, [8, 16, 24]) == ["z", "a"]
    assert list(capacity.verdict_grid(later)["key"]) == ["z", "a"]


def test_values_by_rung_are_nan_where_a_rung_lacks_one():
    from types import SimpleNamespace

    by_rung = pd.DataFrame({"key": ["k", "k", "j"], "width": [8, 16, 8], "result": [
        SimpleNamespace(values={"cc_rho": 0.5}), SimpleNamespace(values={}),
        SimpleNamespace(values={"cc_rho": 9.0})]})
    v = capacity._values(by_rung, "k", ["cc_rho"])
    assert list(v["width"]) == [8, 16] and v["cc_rho"].dtype == float
    assert v["cc_rho"].iloc[0] == 0.5 and np.isnan(v["cc_rho"].iloc[1])
    none = capacity._values(by_rung, "k", ["missing"])   # lacking on every rung: NaN, not None
    assert none["missing"].dtype == float and none["missing"].isna().all()


@pytest.fixture(scope="module")
def fixture_stores(tmp_path_factory):
    """The frozen smoke ladder (tests/fixtures), installed: width -> store."""
    from prunecxr.book.refs import install_fixture

    home = tmp_path_factory.mktemp("ladder_home")
    install_fixture(home)
    config = load_config("smoke")
    roots = {w: pipeline.results_dir_for(r, _dataset(home, r), home / "results")
             for w, r in ((r.width, r) for r in ladder(config))}
    return {w: load(f) for w, f in roots.items()}


def _dataset(home, config):
    from prunecxr.data import get_dataset

    c = dataclasses.replace(config, cache_dir=str(home / "data"))
    return get_dataset(c.dataset, **c.dataset_options())


def test_a_store_subset_reads_only_the_first_seeds(fixture_stores):
    full = fixture_stores[16]
    view = full.subset(2, ["l1"])
    assert view.seeds == full.seeds[:2] and view.methods == ["l1"] == view.grid_methods
    ap = view.ap_table()
    assert set(ap["seed"]) == set(full.seeds[:2]) and set(ap["method"]) == {"l1"}
    pd.testing.assert_frame_equal(ap, full.ap_table(["l1"]).query("seed in [0, 1]")
                                  .reset_index(drop=True))
    assert full.seeds == [0, 1, 2] and "quant" in full.methods  # the store itself is untouched
    with pytest.raises(ValueError, match="population must be in 1..3"):
        full.subset(4)
    with pytest.raises(KeyError, match="not in this store"):
        full.subset(2, ["nope"])


def test_claims_by_rung_are_the_registrys_verdicts_on_equal_footing(fixture_stores):
    stores = capacity.equal_footing(fixture_stores)
    assert {len(s.seeds) for s in stores.values()} == {3}
    assert all(s.methods == ["l1", "random"] for s in stores.values())
    by_rung = capacity.claims_by_rung(stores)
    assert len(by_rung) == len(stores) * by_rung["key"].nunique()
    assert set(by_rung["verdict"]) <= set(VERDICTS)
    direct = evaluate(Evidence(stores[8]))
    rows = by_rung[by_rung["width"] == 8].set_index("key")
    assert {k: r.verdict for k, r in direct.items()} == rows["verdict"].to_dict()
    assert {k: r.build for k, r in direct.items()} == rows["paper's statistic"].to_dict()
    assert "result" not in capacity.by_rung_csv(by_rung)
    table = capacity.rung_table(stores)
    assert list(table["width"]) == [8, 16] and list(table["seeds"]) == [3, 3]
    assert table["prunable weights"].iloc[1] > 3.5 * table["prunable weights"].iloc[0]
    # the smoke rungs stop at the epoch cap at 32 px: shown as failing, never silently used
    assert not table["preconditions met"].any() and table["failing"].str.len().min() > 0
    assert "fails its preconditions" in capacity.capacity_answer(table, by_rung)
    # the rule's reading of validation mAP: each seed's mean validation AP, median over seeds
    store = stores[16]
    done = store.training_summary()
    expected = np.median([np.mean(v) for v in done["val_ap"]])
    assert capacity.median_val_map(store) == pytest.approx(expected)


def test_the_ladder_figure_draws_each_rungs_median_map(fixture_stores):
    stores = capacity.equal_footing(fixture_stores)
    by_rung = capacity.claims_by_rung(stores, keys=["q2_first_drop", "q2_final_change",
                                                    "q4_rare"])
    fig = capacity.ladder_figure(stores, by_rung)
    lines = [l for l in fig.axes[0].get_lines() if l.get_label().startswith("width")]
    assert [l.get_label() for l in lines] == ["width 8", "width 16"]
    for line, (width, store) in zip(lines, sorted(stores.items())):
        ap = store.ap_table(["l1"])
        per_model = ap.groupby(["seed", "sparsity"])["ap"].mean()
        median = per_model.groupby("sparsity").median()
        np.testing.assert_allclose(line.get_xdata(), median.index)
        np.testing.assert_allclose(line.get_ydata(), median.to_numpy())
        assert line.get_marker() == "o"
    for ax in fig.axes[1:]:
        assert list(ax.get_xticks()) == sorted(stores)
    rho = by_rung[by_rung["key"] == "q2_first_drop"]["result"]
    drawn = fig.axes[1].get_lines()[0].get_ydata()
    np.testing.assert_allclose(drawn, [r.values["cc_rho"] for r in rho])


def test_the_ladder_figure_draws_q2_rho_and_q4s_odds_ratio_by_width():
    """(b) each Q2 claim's chance-corrected rho against width, with the line at 0; (c) Q4's odds
    ratio at width with its interval as error bars (an odds ratio below 0.01 drawn at 0.01 on
    the log scale), its k as a note, the line at 1, a rung without an odds ratio left out; the
    rungs' widths as ticks."""
    from types import SimpleNamespace

    rungs = {8: (0.1, -0.2, 2.0, 1.2, 3.5, 0.5), 16: (0.3, 0.05, 0.005, 0.001, 0.5, 0.7),
             24: (0.2, 0.1, np.nan, np.nan, np.nan, 0.9),
             32: (0.0, 0.0, 5.0, 1.0, 4.0, 0.3)}   # the sample odds ratio above the exact interval
    rows = []
    for w, (rho1, rho2, odds, lo, hi, k) in rungs.items():
        for key, values in (("q2_first_drop", {"cc_rho": rho1}),
                            ("q2_final_change", {"cc_rho": rho2}),
                            ("q4_rare", {"s_odds_ratio": odds, "s_ci_low": lo, "s_ci_high": hi,
                                         "k_rule": k})):
            rows.append({"key": key, "width": w, "result": SimpleNamespace(values=values)})
    fig = capacity.ladder_figure({}, pd.DataFrame(rows))
    b, c = fig.axes[1], fig.axes[2]
    lines = {l.get_label(): l for l in b.get_lines()}
    for label, j in (("first drop", 0), ("final change", 1)):
        np.testing.assert_array_equal(lines[label].get_xdata(), [8, 16, 24, 32])
        np.testing.assert_array_equal(lines[label].get_ydata(), [r[j] for r in rungs.values()])
        assert lines[label].get_marker() == "o"
    assert any(list(l.get_ydata()) == [0, 0] for l in b.get_lines())
    assert any(list(l.get_ydata()) == [1, 1] for l in c.get_lines())
    bars = c.containers[0]
    np.testing.assert_array_equal(np.asarray(bars.lines[0].get_xdata(), float), [8, 16, 32])
    np.testing.assert_allclose(np.asarray(bars.lines[0].get_ydata(), float), [2.0, 0.01, 5.0])
    assert bars.lines[0].get_marker() == "o"
    ends = [(float(seg[0][1]), float(seg[1][1])) for seg in bars.lines[2][0].get_segments()]
    np.testing.assert_allclose(ends, [(1.2, 3.5), (0.01 - 0.004, 0.01 + 0.495), (1.0, 5.0)])
    assert [(t.get_text(), t.xy) for t in c.texts] == [("k = 0.50", (8, 2.0)),
                                                      ("k = 0.70", (16, 0.01)),
                                                      ("k = 0.30", (32, 5.0))]


# ------------------------------------------------------------------ executor and command

@pytest.mark.slow
def test_the_pooled_ladder_gives_each_rung_what_it_gives_alone(tmp_path, monkeypatch):
    """Rungs trained side by side in one pool (2 workers) hold the same bits as each rung run
    alone in this process; afterwards neither the ladder nor a rung computes anything."""
    config = load_config("smoke", overrides=[
        "population=2", "methods=l1,random", "sparsities=0,0.5,0.9", "workers=2",
        "threads=1", "max_epochs=1"])
    folders = pipeline.ensure_ladder(config, tmp_path / "pooled", progress=False)
    assert sorted(folders) == [8, 16]
    for rung in ladder(config):
        alone = pipeline.ensure_results(dataclasses.replace(rung, workers=1),
                                        tmp_path / "alone", progress=False)
        pooled = folders[rung.width]
        assert alone.name == pooled.name
        a, b = load(alone), load(pooled)
        for seed in a.seeds:
            sa, sb = a.state_dict(seed), b.state_dict(seed)
            assert all(torch.equal(sa[k], sb[k]) for k in sa), (rung.width, seed)
            for method in a.methods:
                np.testing.assert_array_equal(a.predictions(method, seed),
                                              b.predictions(method, seed))
        stages = b.manifest["stages"]
        assert stages["train"] > 0 and stages["sweep"] > 0

    def nothing(stage, tasks, *args):
        raise AssertionError(f"computed {stage} {tasks}")

    monkeypatch.setattr(pipeline, "_run_stage", nothing)
    assert pipeline.ensure_ladder(config, tmp_path / "pooled", progress=False) == folders


def test_run_ladder_dry_run_describes_every_rung(capsys, tmp_path):
    assert cli.main(["run", "--profile", "smoke", "--ladder", "--dry-run",
                     "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    keys = [r.key for r in ladder(load_config("smoke"))]
    assert all(k in out for k in keys)
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_run_ladder_without_other_rungs_is_a_usage_error(capsys, tmp_path):
    code = cli.main(["run", "--profile", "smoke", "--ladder", "--set", "widths=",
                     "--results-dir", str(tmp_path)])
    assert code == 2
    assert "--ladder: this configuration has no other rung" in capsys.readouterr().err


def test_without_a_ladder_the_capacity_precondition_is_not_checked():
    check = capacity.capacity_check(_table([0.9], widths=(64,)), 64)
    assert check["rungs"] == 1 and not check["passed"]
    assert capacity.capacity_text(check, 64).startswith("Not checked")


def test_loss_ratio_is_training_over_validation_loss_at_the_kept_epoch(fixture_stores):
    store = fixture_stores[8]
    h = store.history()
    ratios = [g.loc[g["val_loss"].idxmin(), "train_loss"] / g["val_loss"].min()
              for _, g in h.groupby("seed")]
    assert capacity.loss_ratio(store) == pytest.approx(float(np.median(ratios)))
    empty = store.subset(1)
    empty.history = lambda: h.iloc[:0]
    empty.training_summary = lambda: pd.DataFrame()
    assert np.isnan(capacity.loss_ratio(empty)) and np.isnan(capacity.median_val_map(empty))


def test_paper_weights_per_image_is_torchvisions_resnet50_over_the_nih_training_share():
    """Independent count: torchvision's ResNet-50 with 20 outputs, every Conv2d and Linear
    weight (no biases, no BatchNorm), over 70% of NIH's 112,120 images."""
    import torchvision

    model = torchvision.models.resnet50(num_classes=20)
    weights = sum(m.weight.numel() for m in model.modules()
                  if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert capacity.paper_weights_per_image() == pytest.approx(weights / (0.7 * 112_120))
    assert round(capacity.paper_weights_per_image()) == 299


def test_preconditions_by_rung_stacks_each_rungs_own_checks(fixture_stores):
    table = capacity.preconditions_by_rung(fixture_stores)
    assert list(table.columns)[0] == "width"
    widths = sorted(fixture_stores)
    for w in widths:
        own = capacity.rung_preconditions(fixture_stores[w]).reset_index(drop=True)
        got = table[table.width == w].drop(columns="width").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, own)
    assert list(dict.fromkeys(table.width)) == widths


def test_rung_table_columns_against_each_rungs_own_readings(fixture_stores):
    """Every column of a rung's row from an independent reading of its store: weights per
    training image, the median validation mAP and loss ratio of the rule, the preconditions and
    the failing ones in their order."""
    table = capacity.rung_table(fixture_stores)
    assert list(table.columns) == capacity.RUNG_COLUMNS
    assert list(capacity.rung_table({}).columns) == capacity.RUNG_COLUMNS
    for (width, store), row in zip(sorted(fixture_stores.items()), table.itertuples(index=False)):
        r = dict(zip(capacity.RUNG_COLUMNS, row))
        weights = store.prunable_weights(store.seeds[0]).size
        checks = capacity.rung_preconditions(store)
        assert (r["width"], r["prunable weights"], r["seeds"]) == (width, weights,
                                                                  len(store.seeds))
        assert r["weights per training image"] == pytest.approx(
            weights / store._dataset["n_images"]["train"])
        assert r["median val mAP"] == capacity.median_val_map(store)
        assert r["train / val loss"] == capacity.loss_ratio(store)
        assert r["preconditions met"] is bool(checks["passed"].all())
        assert r["failing"] == "; ".join(checks.loc[~checks["passed"], "condition"])


def test_a_rung_that_meets_every_precondition(fixture_stores, monkeypatch):
    """The smoke rungs fail theirs; with every check passing the row says so, failing none."""
    monkeypatch.setattr(capacity, "rung_preconditions",
                        lambda store: pd.DataFrame({"condition": ["a", "b"],
                                                    "passed": [True, True]}))
    table = capacity.rung_table(fixture_stores)
    assert table["preconditions met"].all() and (table["failing"] == "").all()


def test_rung_preconditions_read_how_each_seed_stopped(fixture_stores):
    """done.json's stopping reasons reach the early-stopping condition (the smoke rungs hit the
    epoch cap; here the first seed is made to have stopped early)."""
    store = fixture_stores[8].subset(3)
    done = store.training_summary()
    store.training_summary = lambda: done.assign(stopped_early=[True, False, False])
    row = capacity.rung_preconditions(store).set_index("condition").loc[
        "seeds stopped early, not at the epoch cap"]
    assert row["measured"] == "33%" and row["detail"] == "at the cap: seeds [1, 2]"
    checks = capacity.rung_preconditions(store).set_index("condition")
    seeds = checks.loc["seeds of the main method"]
    assert seeds["threshold"] == f">= {capacity.MIN_RUNG_POPULATION}"   # a rung's, not 8


def test_capacity_answer_in_each_case():
    """The answer whole: span and seeds; a failing rung left out; fewer than two valid rungs;
    the changed verdicts with their paths and how many flip between holds and does not hold."""
    table = pd.DataFrame({"width": [8, 16, 24], "prunable weights": [1000, 4000, 9000],
                          "seeds": [4, 3, 5], "preconditions met": [True, True, False]})
    by_rung = _by_rung({"a": ["holds", "does not hold", "holds"],
                        "b": ["holds", "holds", "holds"],
                        "c": ["not resolved", "holds", "holds"]})
    head = ("3 rungs, widths 8, 16, 24 (9 times the prunable weights from the narrowest to the "
            "widest), each read on its first 3 seeds. Width 24 fails its preconditions and is "
            "left out of the comparison.")
    assert capacity.capacity_answer(table, by_rung) == head + (
        " 2 of the 3 claims change verdict with size: a (holds → does not hold); c (not "
        "resolved → holds). The other 1 keep theirs. 1 of the changes go between holds and does "
        "not hold; the others to or from not resolved. With this few seeds a verdict decided "
        "near its threshold can change without any effect of size: the statistics below say "
        "how near each is.")
    same = _by_rung({"b": ["holds", "holds", "does not hold"]})
    assert capacity.capacity_answer(table, same) == head + (
        " None of the 1 claims changes verdict with size.")
    one = table.assign(**{"preconditions met": [True, False, False]})
    assert capacity.capacity_answer(one, by_rung) == (
        "3 rungs, widths 8, 16, 24 (9 times the prunable weights from the narrowest to the "
        "widest), each read on its first 3 seeds. Width 16, 24 fails its preconditions and is "
        "left out of the comparison. Fewer than two rungs meet their preconditions: not "
        "resolved.")
    every = table.assign(**{"preconditions met": [True] * 3})
    assert capacity.capacity_answer(every, same).startswith(
        "3 rungs, widths 8, 16, 24 (9 times the prunable weights from the narrowest to the "
        "widest), each read on its first 3 seeds. 1 of the 1 claims change verdict")


def test_claims_by_rung_reads_the_keys_and_settings_asked_for(fixture_stores):
    from prunecxr.claims import Settings

    by_rung = capacity.claims_by_rung(fixture_stores, keys=["q1_first_drop", "q2_first_drop"],
                                      settings=Settings(level=0.01))
    assert list(by_rung.columns) == ["key", "question", "claim", "width", "paper's statistic",
                                     "paper's verdict", "sound statistic", "verdict", "result"]
    assert list(by_rung["key"]) == ["q1_first_drop", "q2_first_drop"] * len(fixture_stores)
    assert {r.settings.level for r in by_rung["result"]} == {0.01}
    row = by_rung.iloc[0]
    r = row["result"]
    assert (row["question"], row["claim"], row["paper's verdict"], row["sound statistic"]) == (
        r.claim.question, r.claim.statement(r.settings), r.paper_verdict, r.sound)
