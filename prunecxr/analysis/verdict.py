"""The paper beside this build: headline numbers, verdicts, and the source of each paper value.

:func:`headline_numbers` extends :func:`.overview.headline_numbers` with Pearson r of FCD
against IoU^(1/4), the paper's plotted axis (rho is the same for IoU and IoU^(1/4)), so that
Q3 compares like with like. :func:`verdict_table` is the table of the "paper vs this build"
chapter and of the landing page; its paper columns and ``source`` come from
:mod:`prunecxr.paper`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .. import paper
from . import cooccurrence, forgetting, overview

# Row of the verdict table -> paper values (NIH keys, MIMIC keys) of prunecxr.paper.
ROW_VALUES = {
    "q1_first_drop": (["q1_first_drop_nih"], ["q1_first_drop_mimic"]),
    "q1_weights": (["q1_weights"], []),
    "q2_first_drop": (["q2_first_drop_r_nih", "q2_first_drop_rho_nih"],
                      ["q2_first_drop_r_mimic", "q2_first_drop_rho_mimic"]),
    "q2_final_change": (["q2_final_r_nih", "q2_final_rho_nih"],
                        ["q2_final_r_mimic", "q2_final_rho_mimic"]),
    "q2_examples": (["q2_frequent_nih", "q2_rare_nih"], ["q2_frequent_mimic", "q2_rare_mimic"]),
    "q3_dlogfreq": (["q3_dlogfreq_r_nih", "q3_dlogfreq_rho_nih"],
                    ["q3_dlogfreq_r_mimic", "q3_dlogfreq_rho_mimic"]),
    "q3_iou": (["q3_iou_r_nih", "q3_iou_rho_nih"], ["q3_iou_r_mimic", "q3_iou_rho_mimic"]),
    "q3_ols": (["q3_ols", "q3_ols_p"], []),
    "q4_rare": (["q4_rare"], []),
    "q4_many": (["q4_many"], []),
    "q4_readers": (["q4_readers"], []),
    "q4_truth": (["q4_readers_direction"], []),
}
NIH_COL, MIMIC_COL = "paper (NIH-CXR-LT)", "paper (MIMIC-CXR-LT)"


def headline_numbers(store, method: str = "l1", metric: str = "euclidean", **kwargs) -> dict:
    """:func:`.overview.headline_numbers` plus ``fcd_iou4_{n,r,p_r,rho,p_rho}``."""
    n = overview.headline_numbers(store, method=method, metric=metric, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves = forgetting.forgettability_curves(store.ap_table([method]))
        pairs = cooccurrence.class_pair_table(curves, store.labels, store.classes, metric=metric,
                                              method=method)
        row = cooccurrence.fcd_correlations(pairs).set_index("x").loc["iou4"]
    for stat in ("n", "r", "p_r", "rho", "p_rho"):
        n[f"fcd_iou4_{stat}"] = float(row[stat])
    return n


def verdict_table(n: dict, level: float = 0.05, first_drop_at_least: float = 0.6) -> pd.DataFrame:
    """The paper's claims beside this build's numbers, with a verdict and the paper's source.

    Columns: question, claim, paper (NIH-CXR-LT), paper (MIMIC-CXR-LT), source, this build,
    verdict. The verdict criteria are :func:`.overview.comparison_table`'s; the Q3 IoU row
    reports Pearson r against IoU^(1/4) when ``n`` has it (from :func:`headline_numbers`).
    """
    shown = dict(n)
    if np.isfinite(n.get("fcd_iou4_r", np.nan)):
        shown.update({f"fcd_iou_{s}": n[f"fcd_iou4_{s}"] for s in ("n", "r", "p_r", "rho", "p_rho")})
    table = overview.comparison_table(shown, level=level, first_drop_at_least=first_drop_at_least)
    keys = list(ROW_VALUES)
    if len(table) != len(keys):
        raise ValueError(f"comparison_table has {len(table)} rows, expected {len(keys)}")
    nih, mimic, source = [], [], []
    for key in keys:
        a, b = ROW_VALUES[key]
        nih.append("; ".join(paper.paper(k)["text"] for k in a))
        mimic.append("; ".join(paper.paper(k)["text"] for k in b))
        source.append("; ".join(dict.fromkeys(paper.paper(k)["source"] for k in a + b)))
    table[NIH_COL], table[MIMIC_COL] = nih, mimic
    table.insert(table.columns.get_loc("this build"), "source", source)
    table.loc[table["claim"].str.startswith("pairs that co-occur more"), "claim"] = (
        "pairs that co-occur more forget alike (FCD vs IoU^¼, ρ < 0)")
    table.insert(0, "key", keys)
    return table


def verdict_counts(table: pd.DataFrame) -> dict:
    """How many claims were checked, hold, fail, cannot be checked (n/a)."""
    v = table["verdict"]
    return {"n_checked": int((v != "n/a").sum()), "n_holds": int((v == "holds").sum()),
            "n_fails": int((v == "does not hold").sum()), "n_na": int((v == "n/a").sum())}


def verdict_html(table: pd.DataFrame, columns=("question", "claim", NIH_COL, "this build",
                                               "verdict", "source")) -> str:
    """The table as compact HTML for a page (verdict cells classed for colour)."""
    cols = [c for c in columns if c in table]
    body = table[cols].copy()
    html = body.to_html(index=False, escape=True, classes=["verdict-table"], border=0)
    for word, cls in (("does not hold", "verdict-fails"), ("holds", "verdict-holds"),
                      ("n/a", "verdict-na")):
        html = html.replace(f"<td>{word}</td>", f'<td class="{cls}">{word}</td>')
    return html
