"""The paper's numbers, in one place, each with its source.

Holste et al., MICCAI 2023. ``source`` names the paper's section, equation or figure, or the
authors' code (VITA-Group/PruneCXR) where a value appears only there: every Pearson r is a
hard-coded text label of its figures, the MIMIC-CXR-LT values of Q3 and the per-class examples
of Q2 come from its output, not from the paper's text. Chapters glue these values
(:func:`prunecxr.book.glue_paper`, keys ``paper_<key>``) and the claims registry
(:mod:`prunecxr.claims`) reads them; no chapter types a paper number.
"""

from __future__ import annotations

import pandas as pd

NIH, MIMIC = "NIH-CXR-LT", "MIMIC-CXR-LT"
CODE = "authors' code (src/main_analysis.py), figure label"
CODE_OUT = "authors' code, its output (not in the paper's text)"

# key, dataset, value (a number, or None for text-only claims), text as shown, source
_ROWS = [
    ("recipe", NIH, 30, "30 ImageNet-pretrained ResNet50s per dataset at 256 pixels, Adam "
     "(learning rate 1e-4, batch 256), up to 60 epochs with early stopping (patience 15)",
     "Sec. 2.1; authors' code (src/main.py)"),
    ("q1_first_drop_nih", NIH, 0.65, "0.65 (P < 0.001)", "Sec. 3.1; Fig. 1"),
    ("q1_first_drop_mimic", MIMIC, 0.60, "0.60 (P < 0.001)", "Sec. 3.1; Fig. 1"),
    ("q1_weights", NIH, 0.5, "over half of the weights have |w| < 0.01", "Sec. 3.1; Fig. 1"),
    ("q2_drop", NIH, -0.2, "20%", "Sec. 3.2"),
    ("q2_first_drop_rho_nih", NIH, 0.61, "ρ = 0.61 (P = 0.005)", "Sec. 3.2; Fig. 3"),
    ("q2_first_drop_rho_mimic", MIMIC, 0.93, "ρ = 0.93 (P ≪ 0.001)", "Sec. 3.2; Fig. 3"),
    ("q2_first_drop_r_nih", NIH, 0.64, "r = 0.64", CODE),
    ("q2_first_drop_r_mimic", MIMIC, 0.82, "r = 0.82", CODE),
    ("q2_final_rho_nih", NIH, 0.75, "ρ = 0.75 (P < 0.001)", "Sec. 3.2; Fig. 3"),
    ("q2_final_rho_mimic", MIMIC, 0.75, "ρ = 0.75 (P < 0.001)", "Sec. 3.2; Fig. 3"),
    ("q2_final_r_nih", NIH, 0.80, "r = 0.80", CODE),
    ("q2_final_r_mimic", MIMIC, 0.76, "r = 0.76", CODE),
    ("q2_frequent_nih", NIH, -0.41, "No Finding (44,625 training images): -0.41 at k = 0.95, "
     "first 20% drop at 0.90", CODE_OUT),
    ("q2_rare_nih", NIH, -0.98, "Hernia (130 training images): -0.98, first 20% drop at 0.70",
     CODE_OUT),
    ("q2_frequent_mimic", MIMIC, -0.37, "Support Devices (73,641): -0.37, first 20% drop at "
     "0.95", CODE_OUT),
    ("q2_rare_mimic", MIMIC, -0.94, "Pneumoperitoneum (448): -0.94, first 20% drop at 0.60",
     CODE_OUT),
    ("q3_dlogfreq_rho_nih", NIH, 0.64, "ρ = 0.64 (P ≪ 0.001)", "Sec. 3.3; Fig. 4"),
    ("q3_dlogfreq_r_nih", NIH, 0.71, "r = 0.71", CODE),
    ("q3_dlogfreq_rho_mimic", MIMIC, 0.60, "ρ = 0.60", CODE),
    ("q3_dlogfreq_r_mimic", MIMIC, 0.59, "r = 0.59", CODE),
    ("q3_iou_rho_nih", NIH, -0.47, "ρ = -0.47 (P ≪ 0.001)", "Sec. 3.3; Fig. 4"),
    ("q3_iou_r_nih", NIH, -0.43, "r = -0.43 (against IoU^¼)", CODE),
    ("q3_iou_rho_mimic", MIMIC, -0.30, "ρ = -0.30", CODE),
    ("q3_iou_r_mimic", MIMIC, -0.28, "r = -0.28 (against IoU^¼)", CODE),
    ("q3_close_pair", NIH, 0.18, "Emphysema / Pneumomediastinum: |ΔlogF| = 2.04, IoU^¼ = 0.37, "
     "FCD = 0.18", "Sec. 3.3; Fig. 4"),
    ("q3_far_pair", NIH, 4.58, "Infiltration / Hernia: |ΔlogF| = 4.58, IoU^¼ = 0.15",
     "Sec. 3.3"),
    ("q3_fcd_values", NIH, 0.177, "FCD 0.177 (Emphysema / Pneumomediastinum) and 1.473 "
     "(Infiltration / Hernia): Euclidean distances, although the text says MSE", CODE_OUT),
    ("q3_ols", NIH, -0.31, "FCD = 0.27 + 0.21 |ΔlogF| - 0.05 IoU^¼ - 0.31 |ΔlogF|·IoU^¼",
     "Eq. 2, Sec. 3.3"),
    ("q3_ols_p", NIH, 0.005, "β3 = -0.31, P = 0.005", "Sec. 3.3"),
    ("q4_design", NIH, 6, "six radiologists, each shown 40 test images (20 PIEs and 20 other "
     "images) with their labels; yes/no label agreement, 1-5 quality and difficulty",
     "Sec. 2.3; Sec. 3.4"),
    ("q4_rare", NIH, None, "3-15x", "Sec. 3.4; Fig. 5"),
    ("q4_many", NIH, 3.2, "3.2x (4+ findings)", "Sec. 3.4; Fig. 5"),
    ("q4_readers", NIH, None, "agreement 55% vs 57.5% (P = 0.35); quality 3.6 vs 3.8 "
     "(P = 0.09); difficulty 2.5 vs 2.05 (P = 0.25)", "Sec. 3.4; Fig. 6"),
    ("q4_readers_direction", NIH, None, "radiologists perceived more label noise, lower "
     "quality, higher difficulty (none significant)", "Sec. 3.4; Fig. 6"),
]

def paper_table() -> pd.DataFrame:
    """Every external number: key, dataset, value, text, source."""
    return pd.DataFrame(_ROWS, columns=["key", "dataset", "value", "text", "source"])


def paper(key: str) -> dict:
    """One row of :func:`paper_table` as a dict; ``KeyError`` names the known keys."""
    for row in _ROWS:
        if row[0] == key:
            return dict(zip(["key", "dataset", "value", "text", "source"], row))
    raise KeyError(f"no paper value {key!r}; known: {[r[0] for r in _ROWS]}")
