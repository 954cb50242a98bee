"""Analysis of a results store, one module per research question.

- :mod:`.overall` (Q1): mAP per model and per sparsity, Welch's t-tests, weight magnitudes.
- :mod:`.forgetting` (Q2): relative change in AP, forgettability curves, frequency correlations.
- :mod:`.cooccurrence` (Q3): class-pair FCD, log-frequency difference, IoU, OLS of Eq. 2.
- :mod:`.pies` (Q4): pruning-identified exemplars and their enrichment.
- :mod:`.readers`: the reader-study (and phantom ground-truth) comparison of PIEs and non-PIEs.
- :mod:`.compression` (Q5, beyond the paper): methods compared at matched overall damage.
- :mod:`.convergence`: the preconditions a build must meet before its findings are read.

Functions take tables (or, where named ``store``, a results store) and return tidy tables; the
figures of the questions live in :mod:`prunecxr.plots`, the claims built on these tables in
:mod:`prunecxr.claims`.
"""

from .compression import (class_change_at, damage_curve, jaccard, matched_damage, matched_levels,
                          matched_pies, pie_overlap)
from .cooccurrence import class_pair_table, fcd, fcd_correlations, fcd_ols
from .forgetting import (curve_matrix, forgettability_curves, forgetting_summary,
                         relative_change)
from .overall import (first_significant_drop, fraction_below, map_per_model, overall_map,
                      weight_magnitudes, welch_by_sparsity)
from .pies import (class_enrichment, findings_enrichment, mean_probabilities, pie_enrichment,
                   pie_scores, select_pies)
from .readers import phantom_truth_stats, reader_study_stats, validate_responses

__all__ = [
    "map_per_model", "overall_map", "welch_by_sparsity", "first_significant_drop",
    "weight_magnitudes", "fraction_below",
    "relative_change", "forgettability_curves", "curve_matrix", "forgetting_summary",
    "class_pair_table", "fcd", "fcd_ols", "fcd_correlations",
    "mean_probabilities", "pie_scores", "select_pies", "class_enrichment", "findings_enrichment",
    "pie_enrichment",
    "reader_study_stats", "phantom_truth_stats", "validate_responses",
    "damage_curve", "matched_levels", "class_change_at", "matched_damage", "matched_pies",
    "pie_overlap", "jaccard",
]
