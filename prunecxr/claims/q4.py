"""Q4 (pruning-identified exemplars): what PIEs have in common, and their ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import format_p
from .core import (FAILS, HOLDS, UNRESOLVED, Claim, Result, Settings, as_float, finite_rule,
                   fmt, ratio_text)
from .evidence import Evidence


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
            "n_defined": int(len(defined)), "n_only_pies": int(np.isinf(defined).sum())}


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
    return {"label": str(top["findings"]), "ratio": as_float(top["ratio"])}


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


def _q4_truth(ev: Evidence) -> dict:
    values = {"n_pies": int(ev.pies.sum()), "n_other": int((~ev.pies).sum()),
              "has_truth": ev.truth is not None, **_group_means(ev.truth, "")}
    values["n_truth_holds"] = (sum(ok for _, ok, _ in truth_items(values, ev.settings.level))
                               if values["has_truth"] else 0)
    return values


def truth_status(result: Result, dataset: str) -> str:
    """Markdown: the phantom's ground truth of PIEs against other images, one item per
    difference the readers reported, with its test and whether it holds."""
    v = result.values
    if not v["has_truth"]:
        return (f"The {dataset} dataset records no per-image ground truth (label corruption, "
                "quality, difficulty), so this comparison needs the phantom.")
    items = [f"- **{what}**: {text}; the paper's claim **{HOLDS if ok else FAILS}** here."
             for what, ok, text in truth_items(v, result.settings.level)]
    return ("Every phantom image records whether its labels were corrupted when the dataset "
            "was generated, its image quality (higher is better) and how hard its findings are "
            "to see. These are the *ground truth of a synthetic dataset*, not a radiologist's "
            "opinion. The radiologists in the paper perceived PIEs as having more label noise, "
            "lower image quality and higher diagnosis difficulty, without statistical "
            f"significance. Comparing the {v['n_pies']} PIEs with the other {v['n_other']} "
            f"test images here (significance at P < {result.settings.level:g}):\n\n"
            + "\n".join(items) + "\n\n{numref}`fig-q4-truth` shows the same comparison.")


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


def _q4_truth_rule(v: dict, s: Settings) -> bool | None:
    if not v["has_truth"]:
        return None
    return all(ok for _, ok, _ in truth_items(v, s.level))


def _q4_truth_text(v: dict) -> str:
    if not v["has_truth"]:
        return "no per-image ground truth in this dataset"
    return (f"labels corrupted {100 * (1 - v['agrees_with_label_mean_a']):.1f}% vs "
            f"{100 * (1 - v['agrees_with_label_mean_b']):.1f}% "
            f"({format_p(v['agrees_with_label_p_kruskal'])}); quality "
            f"{fmt(v['quality_mean_a'])} vs {fmt(v['quality_mean_b'])} "
            f"({format_p(v['quality_p_kruskal'])}); difficulty "
            f"{fmt(v['difficulty_mean_a'])} vs {fmt(v['difficulty_mean_b'])} "
            f"({format_p(v['difficulty_p_kruskal'])})")


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
    return (f"agreement {100 * v['agrees_with_label_mean_a']:.1f}% vs "
            f"{100 * v['agrees_with_label_mean_b']:.1f}% "
            f"({format_p(v['agrees_with_label_p_kruskal'])}); quality "
            f"{fmt(v['quality_mean_a'])} vs {fmt(v['quality_mean_b'])} "
            f"({format_p(v['quality_p_kruskal'])}); difficulty "
            f"{fmt(v['difficulty_mean_a'])} vs {fmt(v['difficulty_mean_b'])} "
            f"({format_p(v['difficulty_p_kruskal'])})")


CLAIMS = [
    Claim(
        "q4_rare", "Q4", lambda s: (f"the {s.n_rare} rarest classes are over-represented among "
                                    "PIEs (every ratio > 1)"),
        ("q4_rare",), (), _q4_rare,
        finite_rule("ratio_min")(lambda v, s: bool(v["ratio_min"] > 1)),
        lambda v: rare_ratio_text(v) if np.isfinite(v["ratio_min"]) else "n/a"),
    Claim(
        "q4_many", "Q4", lambda s: "images with the most findings are over-represented among "
                                   "PIEs",
        ("q4_many",), (), _q4_many,
        lambda v, s: None if np.isnan(v["ratio"]) else bool(v["ratio"] > 1),
        lambda v: f"{v['label']} findings: {ratio_text(v['ratio'])}"),
    Claim(
        "q4_readers", "Q4", lambda s: "readers see PIEs as noisier, lower quality, harder "
                                      "(direction only)",
        ("q4_readers",), (), _q4_readers, _q4_readers_rule, _q4_readers_text),
    Claim(
        "q4_truth", "Q4 (ground truth)",
        lambda s: ("PIEs have more label noise, lower quality and higher difficulty (each "
                   f"P < {s.level:g}; phantom ground truth, not radiologists)"),
        ("q4_readers_direction",), (), _q4_truth, _q4_truth_rule, _q4_truth_text,
        {HOLDS: "On the phantom's ground truth, PIEs differ from other images in all three "
                "respects the radiologists reported.",
         FAILS: "On the phantom's ground truth, {n_truth_holds} of the three differences the "
                "radiologists reported hold significantly.",
         UNRESOLVED: "This dataset has no ground truth to check the radiologists' impressions "
                     "against."}),
]
