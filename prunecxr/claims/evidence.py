"""The evidence claims are computed from: one results store under one set of settings.

Each intermediate table is computed once, on first use, and shared by every claim and by the
chapter that shows it, so a chapter never recomputes what a claim already did.
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import pandas as pd

from ..analysis import compression, cooccurrence, forgetting, overall
from ..analysis import pies as pie_analysis
from ..analysis import readers as reader_analysis
from ..study import ground_truth_comparison
from .core import Settings


class Evidence:
    """What the claims are computed from: one results store under one :class:`Settings`.

    Each intermediate table (mAP per model, forgettability curves, class pairs, PIEs...) is
    computed once, on first use, and shared by every claim and by the chapter showing it.
    """

    def __init__(self, store, settings: Settings | None = None, responses=None) -> None:
        self.store = store
        self.settings = settings or Settings()
        self.responses = responses

    def memo(self, name: str, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` computed once per evidence under ``name`` (warnings muted):
        how a claim module caches a table of its own without editing this class."""
        cache = self.__dict__.setdefault("_memo", {})
        if name not in cache:
            cache[name] = self._quiet(fn, *args, **kwargs)
        return cache[name]

    def _quiet(self, fn, *args, **kwargs):
        with warnings.catch_warnings():  # classes without test positives: reported as NaN
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)

    # Q1 ----------------------------------------------------------------------------------
    @cached_property
    def maps(self) -> pd.DataFrame:
        return self._quiet(overall.map_per_model, self.store.ap_table(self.store.grid_methods))

    @cached_property
    def welch(self) -> pd.DataFrame:
        return self._quiet(overall.welch_by_sparsity, self.maps, alpha=self.settings.alpha,
                           method=self.settings.method)

    @cached_property
    def weights(self) -> np.ndarray:
        return self.store.prunable_weights(self.store.seeds[0])

    # Q2 ----------------------------------------------------------------------------------
    @cached_property
    def curves(self) -> pd.DataFrame:
        curves = self._quiet(forgetting.forgettability_curves,
                             self.store.ap_table([self.settings.method]))
        return curves[curves["method"] == self.settings.method]

    @cached_property
    def forgetting(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(per-class summary, correlations with ln train count) of :func:`forgetting_summary`."""
        return self._quiet(forgetting.forgetting_summary, self.curves, self.store.train_counts,
                           threshold=self.settings.drop, method=self.settings.method)

    # Q3 ----------------------------------------------------------------------------------
    @cached_property
    def pairs(self) -> pd.DataFrame:
        return self._quiet(cooccurrence.class_pair_table, self.curves, self.store.labels,
                           self.store.classes, metric=self.settings.metric,
                           method=self.settings.method)

    @cached_property
    def fcd_correlations(self) -> pd.DataFrame:
        return self._quiet(cooccurrence.fcd_correlations, self.pairs).set_index("x")

    @cached_property
    def ols(self) -> pd.DataFrame | None:
        """The OLS fit of Eq. 2 (``None`` where too few pairs for a fit)."""

        try:
            return self._quiet(cooccurrence.fcd_ols, self.pairs)
        except ValueError:
            return None

    # Q4 ----------------------------------------------------------------------------------
    @cached_property
    def pie_scores(self) -> pd.Series:
        s = self.settings
        return pie_analysis.pie_scores(self.store, method=s.method, dense=s.dense, sparse=s.sparse)

    @cached_property
    def pies(self) -> np.ndarray:
        return self._quiet(pie_analysis.select_pies, self.pie_scores, fraction=self.settings.fraction)

    @cached_property
    def enrichment(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(by class, by number of findings) of :func:`prunecxr.analysis.pie_enrichment`."""
        return self._quiet(pie_analysis.pie_enrichment, self.pies, self.store.labels, self.store.classes)

    @cached_property
    def rare_classes(self) -> list[str]:
        return list(self.store.train_counts.sort_values(kind="stable")
                    .index[: self.settings.n_rare])

    @cached_property
    def truth(self) -> pd.DataFrame | None:
        """PIEs against other images on the phantom's ground truth (``None`` without one)."""

        if not all(c in self.store.meta.columns for c in reader_analysis.TRUTH_COLUMNS):
            return None
        return ground_truth_comparison(self.store, self.pies)

    @cached_property
    def readers(self) -> pd.DataFrame | None:
        return None if self.responses is None else reader_analysis.reader_study_stats(self.responses)

    # Q5 ----------------------------------------------------------------------------------
    @cached_property
    def ap_all(self) -> pd.DataFrame:
        """The AP table of every method, on each method's own levels."""
        return self.store.ap_table()

    @cached_property
    def damage_curve(self) -> pd.DataFrame:
        return self._quiet(compression.damage_curve, self.ap_all, level="level")

    @cached_property
    def matched(self) -> pd.DataFrame:
        return self._quiet(compression.matched_levels, self.ap_all, self.settings.losses,
                           level="level")

    @cached_property
    def matched_damage(self) -> pd.DataFrame:
        s = self.settings
        return self._quiet(compression.matched_damage, self.ap_all, self.store.train_counts,
                           s.losses, n_rare=s.n_rare, n_boot=s.n_boot, level="level")

    @cached_property
    def matched_pies(self) -> tuple[pd.DataFrame, dict]:
        """(table, masks) of :func:`prunecxr.analysis.compression.matched_pies` (at the
        interpolated matched levels, on the seeds every method shares)."""
        return self._quiet(compression.matched_pies, self.store, self.matched,
                           fraction=self.settings.fraction, n_rare=self.settings.n_rare)

    @cached_property
    def pie_overlap(self) -> pd.DataFrame:
        return compression.pie_overlap(self.matched_pies[1])

    @cached_property
    def comparisons(self) -> pd.DataFrame:
        """Every method against the reference at matched damage, paired over shared seeds
        (:func:`prunecxr.analysis.compression.paired_comparisons`)."""
        s = self.settings
        return self._quiet(compression.paired_comparisons, self.ap_all, self.store.train_counts,
                           reference=s.reference, losses=s.losses, n_rare=s.n_rare,
                           n_boot=s.n_boot, level="level", alpha=s.level)
