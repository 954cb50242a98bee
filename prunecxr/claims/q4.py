"""Q4 (pruning-identified exemplars): what PIEs have in common, and their ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import format_p
from .core import (FAILS, HOLDS, UNRESOLVED, Claim, Result, Settings, as_float, finite_rule,
                   fmt, ratio_text)
from .evidence import Evidence
from ..analysis import pies as pie_analysis


# ----------------------------------------------------------------- tables of the sound rules

def _levels(ev: Evidence) -> dict:
    """The damage table over the method's levels, the damage rule's level and PIEs per level."""
    s, store = ev.settings, ev.store
    levels = np.asarray(store.levels(s.method) if hasattr(store, "levels") else store.sparsities,
                        dtype=float)
    probs = pie_analysis.mean_probabilities(store, s.method, list(levels))
    table = pie_analysis.damage_table(ev.maps, probs, levels, store.labels, method=s.method,
                                      dense=s.dense, min_spread=s.min_spread)
    rule = pie_analysis.damage_level(table, s.pie_loss, dense=s.dense)
    masks = pie_analysis.pies_at_levels(probs, levels, dense=s.dense, fraction=s.fraction)
    return {"table": table, "rule": rule, "masks": masks}


def pie_levels(ev: Evidence) -> dict:
    """{"table": :func:`~prunecxr.analysis.pies.damage_table`, "rule":
    :func:`~prunecxr.analysis.pies.damage_level`, "masks": {level: PIE mask}} of ``ev``,
    computed once per evidence."""
    return ev.memo("q4_levels", _levels, ev)


def _confidence(ev: Evidence) -> float:
    return 1 - ev.settings.level


def intervals_at(ev: Evidence, level: float) -> pd.DataFrame:
    """:func:`~prunecxr.analysis.pies.enrichment_intervals` of the PIEs at ``level``."""
    k = round(float(level), 6)
    masks = pie_levels(ev)["masks"]
    return ev.memo(f"q4_intervals_{k}", pie_analysis.enrichment_intervals, masks[k],
                   ev.store.labels, ev.store.classes, ev.rare_classes,
                   confidence=_confidence(ev))


def sensitivity(ev: Evidence, min_level: float = 0.5) -> pd.DataFrame:
    """The pooled rarest-class and 4+ findings enrichment at every level >= ``min_level``
    (and at the damage rule's level), with each level's guard."""
    lv = pie_levels(ev)
    levels = sorted(k for k in lv["masks"] if k >= min_level - 1e-9
                    or np.isclose(k, lv["rule"]["level"]))
    return ev.memo(f"q4_sensitivity_{min_level}", pie_analysis.sensitivity_table, lv["masks"],
                   ev.store.labels, ev.store.classes, ev.rare_classes, lv["table"], levels,
                   _confidence(ev))


def stratified_truth_at(ev: Evidence, level: float) -> pd.DataFrame | None:
    """:func:`~prunecxr.analysis.pies.stratified_truth` of the PIEs at ``level`` (None without
    a ground truth)."""
    if ev.truth is None or "n_findings" not in ev.store.meta.columns:
        return None
    k = round(float(level), 6)
    mask = ev.pies if np.isclose(k, ev.settings.sparse) else pie_levels(ev)["masks"][k]
    return ev.memo(f"q4_truth_{k}", pie_analysis.stratified_truth,
                   ev.store.meta.reset_index(drop=True), mask)


def stratified_truth_table(ev: Evidence, levels) -> pd.DataFrame | None:
    """:func:`stratified_truth_at` at each of ``levels`` (NaN and repeats skipped), stacked
    with a ``k`` column (None without a ground truth)."""
    ks = [k for k in dict.fromkeys(round(float(x), 6) for x in levels) if np.isfinite(k)]
    tables = {k: stratified_truth_at(ev, k) for k in ks}
    tables = {k: t for k, t in tables.items() if t is not None}
    return pd.concat(tables, names=["k"]) if tables else None


def _rule_values(ev: Evidence) -> dict:
    r = pie_levels(ev)["rule"]
    return {"k_rule": r["level"], "k_reached": r["reached"], "k_guard": r["guard"],
            "k_loss": r["loss"], "k_spread_ratio": r["spread_ratio"],
            "pie_loss": ev.settings.pie_loss, "min_spread": ev.settings.min_spread,
            "paper_spread_ratio": _spread_at(ev, ev.settings.sparse)}


def _spread_at(ev: Evidence, level: float) -> float:
    t = pie_levels(ev)["table"]
    hit = t[np.isclose(t["level"], level)]
    return float(hit["spread_ratio"].iloc[0]) if len(hit) else float("nan")


def _row_values(ev: Evidence, kind: str) -> dict:
    """The sound statistic's row (kind "rarest (pooled)" or "findings") at the rule's level."""
    v = _rule_values(ev)
    keys = ("pie_with", "pie_without", "other_with", "other_without", "odds_ratio", "ci_low",
            "ci_high", "expected_pie", "p")
    if not v["k_reached"]:
        return {**v, **{f"s_{k}": np.nan for k in keys}, "s_text": "", "s_group": ""}
    row = intervals_at(ev, v["k_rule"]).set_index("kind").loc[kind]
    return {**v, **{f"s_{k}": as_float(row[k]) for k in keys},
            "s_text": pie_analysis.interval_text(row), "s_group": str(row["group"])}


def level_text(v: dict) -> str:
    """Where the damage rule puts the PIEs, and whether the guard lets them be analysed."""
    if not v["k_reached"]:
        return (f"no level of the grid loses {v['pie_loss']:.0%} of the dense mAP above "
                "chance (damage rule)")
    head = (f"at k = {v['k_rule']:.2f}, the lowest level losing {v['pie_loss']:.0%} of the "
            f"dense mAP above chance ({v['k_loss']:.0%} lost)")
    if not v["k_guard"]:
        return (head + f", the pruned outputs barely vary between images (spread "
                f"{v['k_spread_ratio']:.3f} of the dense, below {v['min_spread']:g}), so its "
                "PIEs are not analysed (guard)")
    return head + f"; spread {v['k_spread_ratio']:.2f} of the dense (guard passed)"


def _level_ok(v: dict) -> bool:
    return bool(v["k_reached"] and v["k_guard"])


def _enrichment_rule(v: dict, s: Settings) -> bool | None:
    if not _level_ok(v):
        return None
    return pie_analysis.enrichment_verdict(v["s_ci_low"], v["s_ci_high"])


def _enrichment_sound(v: dict) -> str:
    if not _level_ok(v):
        return level_text(v)
    return f"{level_text(v)}: {v['s_group']}: {v['s_text']}"


def _q4_rare(ev: Evidence) -> dict:
    by_class, _ = ev.enrichment
    ratios = by_class.set_index("class").loc[ev.rare_classes, "ratio"].to_numpy(dtype=float)
    defined = ratios[~np.isnan(ratios)]
    finite = defined[np.isfinite(defined)]
    return {"ratios": [float(r) for r in ratios], "rare_classes": ", ".join(ev.rare_classes),
            "n_rare": len(ev.rare_classes),
            "ratio_min": as_float(defined.min()) if len(defined) else np.nan,
            "ratio_max": as_float(finite.max()) if len(finite) else np.nan,
            "finite_min": as_float(finite.min()) if len(finite) else np.nan,
            "n_defined": int(len(defined)), "n_only_pies": int(np.isinf(defined).sum()),
            **_row_values(ev, "rarest (pooled)")}


def rare_ratio_text(v: dict) -> str:
    """"1.2 to 5.0 times (2 of them only among PIEs; 1 absent from the test set)"."""
    if np.isfinite(v["ratio_max"]):
        text = (f"{v['finite_min']:.1f} to {v['ratio_max']:.1f} times"
                if v["finite_min"] != v["ratio_max"] else f"{v['ratio_max']:.1f} times")
    else:
        text = "an undefined number of times"
    notes = []
    if v["n_only_pies"]:
        notes.append(f"{v['n_only_pies']} of them only among PIEs")
    if v["n_defined"] < v["n_rare"]:
        notes.append(f"{v['n_rare'] - v['n_defined']} absent from the test set")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _q4_many(ev: Evidence) -> dict:
    _, by_count = ev.enrichment
    top = by_count.iloc[-1]
    return {"label": str(top["findings"]), "ratio": as_float(top["ratio"]),
            **_row_values(ev, "findings")}


TRUTH_WORDS = {"agrees_with_label": "more label noise", "quality": "lower image quality",
               "difficulty": "higher diagnosis difficulty"}
# The direction each reported difference has (PIE mean against other images' mean).
TRUTH_DIRECTION = {"agrees_with_label": -1, "quality": -1, "difficulty": 1}


def _group_means(table: pd.DataFrame | None, prefix: str) -> dict:
    out = {}
    rows = table.set_index("variable") if table is not None else None
    for var in TRUTH_WORDS:
        for stat in ("mean_a", "mean_b", "p_kruskal"):
            out[f"{prefix}{var}_{stat}"] = (as_float(rows.loc[var, stat]) if rows is not None
                                            else np.nan)
    return out


# The stratified comparison: variable -> (words, direction of the effect claimed, null value).
STRATIFIED = {"label_corrupted": ("more label noise", 1, 1.0),
              "quality": ("lower image quality", -1, 0.0),
              "difficulty": ("higher diagnosis difficulty", 1, 0.0)}


def _strat_values(table: pd.DataFrame | None) -> dict:
    rows = table.set_index("variable") if table is not None else None
    return {f"s_{var}_{stat}": (as_float(rows.loc[var, stat]) if rows is not None else np.nan)
            for var in STRATIFIED for stat in ("effect", "ci_low", "ci_high", "p")}


def stratified_items(v: dict, level: float) -> list[tuple[str, bool | None, str]]:
    """(what, holds, text) per ground-truth difference within strata of the number of
    findings: holds when the effect has the claimed direction with P < ``level``; None where
    the stratified test is not defined."""
    items = []
    for var, (words, sign, null) in STRATIFIED.items():
        e, lo, hi, p = (v[f"s_{var}_{k}"] for k in ("effect", "ci_low", "ci_high", "p"))
        if not np.isfinite(p):
            items.append((words, None, "not defined (no stratum holds both PIEs and other "
                                       "images with both values)"))
            continue
        if var == "label_corrupted":
            ci = f" ({fmt(lo)} to {fmt(hi)})" if np.isfinite(lo) and np.isfinite(hi) else ""
            text = f"Mantel-Haenszel OR {fmt(e)}{ci}, CMH {format_p(p)}"
        else:
            text = f"adjusted difference {e:+.3f} ({lo:+.3f} to {hi:+.3f}), {format_p(p)}"
        items.append((words, bool(sign * (e - null) > 0 and p < level), text))
    return items


def _q4_truth(ev: Evidence) -> dict:
    values = {"n_pies": int(ev.pies.sum()), "n_other": int((~ev.pies).sum()),
              "has_truth": ev.truth is not None, **_group_means(ev.truth, ""),
              **_rule_values(ev)}
    values["n_truth_holds_paper"] = (
        sum(ok for _, ok, _ in truth_items(values, ev.settings.level)) if values["has_truth"]
        else 0)
    ok = values["has_truth"] and _level_ok(values)
    table = stratified_truth_at(ev, values["k_rule"]) if ok else None
    values.update(_strat_values(table), has_strata=table is not None)
    items = stratified_items(values, ev.settings.level) if table is not None else []
    values["n_truth_holds"] = sum(bool(o) for _, o, _ in items)
    values["unresolved_text"] = (
        "This dataset has no ground truth to check the radiologists' impressions against."
        if not values["has_truth"] else
        f"On the phantom's ground truth the comparison is not resolved: {level_text(values)}.")
    return values


def truth_status(result: Result, dataset: str) -> str:
    """Markdown: the phantom's ground truth of PIEs against other images, one item per
    difference the readers reported, with its test and whether it holds."""
    v = result.values
    if not v["has_truth"]:
        return (f"The {dataset} dataset records no per-image ground truth (label corruption, "
                "quality, difficulty), so this comparison needs the phantom.")
    items = [f"- **{what}**: {text}; the paper's claim **{HOLDS if ok else FAILS}** here "
             "by the unadjusted test."
             for what, ok, text in truth_items(v, result.settings.level)]
    return ("Every phantom image records whether its labels were corrupted when the dataset "
            "was generated, its image quality (higher is better) and how hard its findings are "
            "to see. These are the *ground truth of a synthetic dataset*, not a radiologist's "
            "opinion. The radiologists in the paper perceived PIEs as having more label noise, "
            "lower image quality and higher diagnosis difficulty, without statistical "
            f"significance. Comparing the {v['n_pies']} PIEs with the other {v['n_other']} "
            f"test images here (significance at P < {result.settings.level:g}):\n\n"
            + "\n".join(items) + "\n\n{numref}`fig-q4-truth` shows the same comparison. "
            + phantom_dependence() + " " + stratified_status(result))


def phantom_dependence() -> str:
    """The phantom's statement of which ground truth depends on the labels by construction."""
    from ..data.phantom import label_dependence_statement
    return label_dependence_statement()


def stratified_status(result: Result) -> str:
    """Markdown: the ground truth within strata of the number of findings, at the damage
    rule's level, one item per difference, and the verdict."""
    v, level = result.values, result.settings.level
    if not v["has_truth"]:
        return ""
    if not (_level_ok(v) and v["has_strata"]):
        return ("Within strata of the number of findings the comparison is not resolved: "
                f"{level_text(v)}.")
    verdict = {True: HOLDS, False: FAILS, None: UNRESOLVED}
    items = [f"- **{what}**: {text}; **{verdict[ok]}**" for what, ok, text in
             stratified_items(v, level)]
    return (f"Within strata of the number of findings the generator drew (0, 1, 2, 3, 4+), "
            f"with PIEs taken {level_text(v)} (Cochran-Mantel-Haenszel for label corruption, "
            f"OLS with a stratum term and robust errors for quality and difficulty; "
            f"P < {level:g}):\n\n" + "\n".join(items) + "\n")


def _direction_ok(v: dict, var: str, prefix: str = "") -> bool:
    a, b = v[f"{prefix}{var}_mean_a"], v[f"{prefix}{var}_mean_b"]
    return bool(TRUTH_DIRECTION[var] * (a - b) > 0)


def truth_items(v: dict, level: float) -> list[tuple[str, bool, str]]:
    """(what, holds, evidence text) for each ground-truth difference the readers reported."""
    items = []
    for var, words in TRUTH_WORDS.items():
        a, b, p = (v[f"{var}_mean_a"], v[f"{var}_mean_b"], v[f"{var}_p_kruskal"])
        if var == "agrees_with_label":
            text = (f"{100 * (1 - a):.1f}% of PIEs have a corrupted label against "
                    f"{100 * (1 - b):.1f}% of other images")
        else:
            text = f"mean {var} {a:.2f} against {b:.2f}"
        items.append((words, bool(_direction_ok(v, var) and p < level),
                      f"{text} (Kruskal-Wallis {format_p(p)})"))
    return items


def _q4_truth_paper_rule(v: dict, s: Settings) -> bool | None:
    if not v["has_truth"]:
        return None
    return all(ok for _, ok, _ in truth_items(v, s.level))


def _q4_truth_rule(v: dict, s: Settings) -> bool | None:
    if not (v["has_truth"] and _level_ok(v) and v["has_strata"]):
        return None
    found = [ok for _, ok, _ in stratified_items(v, s.level)]
    if any(ok is None for ok in found):
        return None
    return all(found)


def _q4_truth_sound(v: dict) -> str:
    if not v["has_truth"]:
        return "no per-image ground truth in this dataset"
    if not (_level_ok(v) and v["has_strata"]):
        return level_text(v)
    return (f"PIEs {level_text(v)}; within strata of the number of findings: "
            + "; ".join(f"{w}: {t}" for w, _, t in stratified_items(v, 0.05)))


def _three_groups(v: dict, first: str, corrupted: bool) -> str:
    """PIEs against other images on label agreement (as a share, or its complement, the share
    corrupted), quality and difficulty, each with its unadjusted Kruskal-Wallis P."""
    a, b = v["agrees_with_label_mean_a"], v["agrees_with_label_mean_b"]
    if corrupted:
        a, b = 1 - a, 1 - b
    return (f"{first} {100 * a:.1f}% vs {100 * b:.1f}% "
            f"({format_p(v['agrees_with_label_p_kruskal'])}); quality "
            f"{fmt(v['quality_mean_a'])} vs {fmt(v['quality_mean_b'])} "
            f"({format_p(v['quality_p_kruskal'])}); difficulty "
            f"{fmt(v['difficulty_mean_a'])} vs {fmt(v['difficulty_mean_b'])} "
            f"({format_p(v['difficulty_p_kruskal'])})")


def _q4_truth_text(v: dict) -> str:
    if not v["has_truth"]:
        return "no per-image ground truth in this dataset"
    return _three_groups(v, "labels corrupted", corrupted=True)


def _q4_readers(ev: Evidence) -> dict:
    n = 0 if ev.responses is None else len(ev.responses)
    return {"n_answers": n, **_group_means(ev.readers, "")}


def _q4_readers_rule(v: dict, s: Settings) -> bool | None:
    if not v["n_answers"]:
        return None
    return all(_direction_ok(v, var) for var in TRUTH_WORDS)


def _q4_readers_text(v: dict) -> str:
    if not v["n_answers"]:
        return "no human responses included in this build"
    return _three_groups(v, "agreement", corrupted=False)


ENRICHMENT_RULE = (
    "Sound statistic at the damage rule's level: the lowest grid level at which the "
    "population's median mAP has lost at least Settings.pie_loss (0.2) of its dense mAP above "
    "chance (chance = mean test prevalence over classes with positives). Guard: the across-image "
    "SD of the pruned population's mean outputs (averaged over classes) must be at least "
    "Settings.min_spread (0.1) of the dense models'; a level that fails it, or no level "
    "reaching the loss, gives not resolved. There, {what}: Fisher's conditional exact "
    f"{{ci}}% interval of the odds ratio (PIEs vs other test images); holds if it lies above 1, "
    f"does not hold if it lies below {pie_analysis.ENRICHMENT_MARGIN:g} (even a doubling is "
    "ruled out), not resolved if it holds both 1 and that margin (too few images). "
    "The paper's statistic: the point ratio(s) at k = Settings.sparse (0.9), > 1.")
ENRICHMENT_WHY = (
    "the paper's point ratio at k = 0.9 rests on a handful of images with no interval, and at "
    "that level this miniature's pruned outputs can be nearly constant across images, so PIEs "
    "are then the images whose dense outputs stray most from a prior (rare or many findings by "
    "construction); the sound statistic takes the PIEs where the models have lost a stated "
    "share of mAP and still rank images, and needs an exact interval above 1")


CLAIMS = [
    Claim(
        "q4_rare", "Q4", lambda s: (f"the {s.n_rare} rarest classes are over-represented among "
                                    "PIEs (every ratio > 1)"),
        ("q4_rare",), (), _q4_rare, _enrichment_rule,
        lambda v: rare_ratio_text(v) if np.isfinite(v["ratio_min"]) else "n/a",
        sound=_enrichment_sound,
        paper_rule=finite_rule("ratio_min")(lambda v, s: bool(v["ratio_min"] > 1)),
        why=ENRICHMENT_WHY + " (pooled over the rarest classes, as each alone has too few test "
                             "positives for an interval to decide)",
        rule_text=ENRICHMENT_RULE.format(
            what="images with any of the Settings.n_rare (5) rarest training classes, pooled "
                 "(each class alone has about 10 test positives, too few for any interval to "
                 "decide)", ci=95)),
    Claim(
        "q4_many", "Q4", lambda s: "images with the most findings are over-represented among "
                                   "PIEs",
        ("q4_many",), (), _q4_many, _enrichment_rule,
        lambda v: f"{v['label']} findings: {ratio_text(v['ratio'])}",
        sound=_enrichment_sound,
        paper_rule=lambda v, s: None if np.isnan(v["ratio"]) else bool(v["ratio"] > 1),
        why=ENRICHMENT_WHY,
        rule_text=ENRICHMENT_RULE.format(what="images with 4 or more findings", ci=95)),
    Claim(
        "q4_readers", "Q4", lambda s: "readers see PIEs as noisier, lower quality, harder "
                                      "(direction only)",
        ("q4_readers",), (), _q4_readers, _q4_readers_rule, _q4_readers_text,
        rule_text=("Holds if, in the readers' answers, PIEs have lower label agreement, lower "
                   "quality and higher difficulty than other images (direction only, as the "
                   "paper reports no significance); not resolved without responses. The "
                   "paper's statistic is used as it is: the readers saw the PIEs of the "
                   "paper's level.")),
    Claim(
        "q4_truth", "Q4 (ground truth)",
        lambda s: ("PIEs have more label noise, lower quality and higher difficulty (each "
                   f"P < {s.level:g}; phantom ground truth, not radiologists)"),
        ("q4_readers_direction",), (), _q4_truth, _q4_truth_rule, _q4_truth_text,
        {HOLDS: "On the phantom's ground truth, within strata of the number of findings, PIEs "
                "(k = {k_rule:.2f}, the damage rule's level) differ from other images in all "
                "three respects the radiologists reported.",
         FAILS: "On the phantom's ground truth, within strata of the number of findings, "
                "{n_truth_holds} of the three differences the radiologists reported hold "
                "significantly for the PIEs at k = {k_rule:.2f} (the damage rule's level).",
         UNRESOLVED: "{unresolved_text}"},
        sound=_q4_truth_sound, paper_rule=_q4_truth_paper_rule,
        why=("the phantom corrupts labels only on images with a finding and makes images with "
             "more findings harder, so PIEs rich in findings show more label noise and "
             "difficulty by construction; the sound test compares PIEs with other images "
             "within strata of the number of findings (and at the damage rule's level)"),
        rule_text=("PIEs at the damage rule's level (see q4_rare; not resolved if the guard "
                   "fails) against the other test images within strata of the number of "
                   "findings the generator drew (0, 1, 2, 3, 4+): label corruption by "
                   "Cochran-Mantel-Haenszel (statsmodels StratifiedTable, pooled odds ratio "
                   "> 1), quality and difficulty by OLS value ~ is_pie + C(stratum) with HC3 "
                   "errors (difference < 0 and > 0); holds if all three have the claimed "
                   "direction with P < Settings.level (0.05), does not hold otherwise, not "
                   "resolved without a ground truth or where a stratified test is undefined. "
                   "The paper's statistic: unadjusted Kruskal-Wallis at k = 0.9.")),
]


# ----------------------------------------------------------------- text and tables for the chapter

def level_summary(ev: Evidence) -> str:
    """Markdown: where the paper's level and the damage rule put the PIEs, and the guard."""
    s, v = ev.settings, _rule_values(ev)
    t = pie_levels(ev)["table"]
    paper = t[np.isclose(t["level"], s.sparse)]
    p_loss = float(paper["loss"].iloc[0]) if len(paper) else float("nan")
    p_guard = bool(paper["guard"].iloc[0]) if len(paper) else False
    chance = float(t["chance"].iloc[0])
    return (
        f"The paper takes PIEs at a fixed k = {s.sparse:.2f}. Here the population's median mAP "
        f"there has lost {fmt(100 * p_loss, '.0f')}% of its dense mAP above chance (chance = "
        f"mean test prevalence = {chance:.3f}), and the across-image spread of its mean outputs "
        f"is {fmt(v['paper_spread_ratio'], '.3f')} of the dense models' "
        f"({'passes' if p_guard else 'fails'} the guard of {s.min_spread:g}). "
        f"The damage rule, fixed before any outcome was looked at, takes the lowest level at "
        f"which the population has lost {s.pie_loss:.0%} of its dense mAP above chance and "
        f"refuses it when the spread there is below {s.min_spread:g} of the dense spread (the "
        f"pruned models then no longer rank images, and PIEs would merely be the images whose "
        f"dense outputs stray most from a constant prior). Here: {level_text(v)}.")


def intervals_display(ev: Evidence, level: float) -> pd.DataFrame:
    """The exact enrichment at ``level`` for the chapter: per class, the pooled rarest classes
    and 4+ findings; counts, the paper's ratio, the odds ratio with its exact interval and
    whether the rule calls it over-represented."""
    t = intervals_at(ev, level)
    words = {True: HOLDS, False: FAILS, None: UNRESOLVED}
    return pd.DataFrame({
        "group": t["group"], "PIEs with": t["pie_with"],
        "PIEs": t["pie_with"] + t["pie_without"], "others with": t["other_with"],
        "others": t["other_with"] + t["other_without"], "expected among PIEs":
        t["expected_pie"].round(2), "ratio (paper)": [ratio_text(r) for r in t["ratio"]],
        "odds ratio": t["odds_ratio"].round(2), "CI low": t["ci_low"].round(2),
        "CI high": t["ci_high"].round(2), "over-represented": [words[o] for o in t["over"]]})


def sensitivity_display(ev: Evidence) -> pd.DataFrame:
    """:func:`sensitivity` for the chapter, rounded."""
    t = sensitivity(ev)
    return pd.DataFrame({"level": t["level"], "loss above chance": t["loss"].round(2),
                         "spread ratio": t["spread_ratio"].round(3), "guard": t["guard"],
                         "group": t["group"], "PIEs with": t["pie_with"],
                         "odds ratio": t["odds_ratio"].round(2), "CI low": t["ci_low"].round(2),
                         "CI high": t["ci_high"].round(2)})


def coverage_text(ev: Evidence, n_sim: int = 200) -> str:
    """The simulated coverage of the exact interval at this build's sizes, as a sentence."""
    rule = pie_levels(ev)["rule"]
    k = rule["level"] if rule["reached"] else ev.settings.sparse
    t = intervals_at(ev, k).set_index("kind")
    parts = []
    for kind in ("rarest (pooled)", "findings"):
        r = t.loc[kind]
        n_pie = int(r["pie_with"] + r["pie_without"])
        n_other = int(r["other_with"] + r["other_without"])
        p0 = (r["pie_with"] + r["other_with"]) / max(n_pie + n_other, 1)
        cov = ev.memo(f"q4_coverage_{kind}_{n_sim}", pie_analysis.interval_coverage, n_pie,
                      n_other, float(p0), 1.0, n_sim, _confidence(ev))
        parts.append(f"{r['group']} {fmt(100 * cov, '.0f')}%")
    return (f"The intervals are nominally {_confidence(ev):.0%}; their simulated coverage at this "
            f"build's sizes ({n_pie} PIEs, {n_other} other images, each group's prevalence, no "
            f"enrichment, {n_sim} draws) is " + ", ".join(parts) + " (exact intervals are "
            "conservative: coverage at least nominal).")


def adjusted_p(ev: Evidence, level: float) -> dict | None:
    """{variable of the unadjusted truth table: P within strata} at ``level``, for
    :func:`prunecxr.plots.pie_comparison_figure` (label agreement = not corrupted)."""
    strat = stratified_truth_at(ev, level) if np.isfinite(level) else None
    if strat is None:
        return None
    p = strat.set_index("variable")["p"]
    return {"agrees_with_label": float(p["label_corrupted"]), "quality": float(p["quality"]),
            "difficulty": float(p["difficulty"])}
