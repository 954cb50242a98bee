"""Q4: which images are most vulnerable to pruning? Pruning-identified exemplars (PIEs).

Average the population's sigmoid outputs at k = 0 and at k = 0.9; per test image, the Spearman
rank correlation between the two C-dimensional vectors measures how much the dense and the
pruned models agree; the int(0.05 * N) images with the lowest correlation are the PIEs. Then
compare how often each class, and each number of findings, appears in PIEs vs non-PIEs.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from ..stats import rowwise_spearman

NAN_POLICIES = ("exclude", "lowest")


def _sparsity_index(sparsities, value: float, name: str) -> int:
    sparsities = np.asarray(sparsities, dtype=float)
    hit = np.flatnonzero(np.isclose(sparsities, value))
    if len(hit) == 0:
        raise ValueError(f"{name}={value} is not among the method's levels "
                         f"{sparsities.tolist()}")
    return int(hit[0])


def _levels(store, method: str) -> np.ndarray:
    """The method's levels (its sparsities, for a pruning method on the shared grid)."""
    return store.levels(method) if hasattr(store, "levels") else store.sparsities


def mean_probabilities(store, method: str = "l1", sparsity: float | Sequence[float] = 0.0,
                       seeds: Sequence[int] | None = None) -> np.ndarray:
    """Population-mean sigmoid outputs at one level (n_test, C), or at several (m, n_test, C).

    ``sparsity`` is a level of ``method`` (``store.levels(method)``: the sparsity for pruning).

    Reads one seed's predictions at a time (``store.predictions(method, seed)``), so memory
    stays at one seed's array plus the running sum (float64).
    """
    many = np.ndim(sparsity) > 0
    ks = list(np.atleast_1d(np.asarray(sparsity, dtype=float)))
    idx = [_sparsity_index(_levels(store, method), k, "sparsity") for k in ks]
    seeds = list(store.method_seeds(method) if seeds is None else seeds)
    if not seeds:
        raise ValueError("seeds is empty")
    total = None
    for seed in seeds:
        p = np.asarray(store.predictions(method, seed))[idx].astype(np.float64)
        total = p if total is None else total + p
    mean = total / len(seeds)
    return mean if many else mean[0]


def pie_scores(store, method: str = "l1", dense: float = 0.0, sparse: float = 0.9) -> pd.Series:
    """Per test image, Spearman correlation of the mean dense and mean k-sparse predictions.

    Returns a float Series named ``spearman``, index aligned with ``store.meta``. An image whose
    mean prediction vector is constant at either sparsity (every class tied) has no rank
    correlation: NaN. :func:`select_pies` by default never selects those (see its ``nan_policy``).
    """
    _sparsity_index(_levels(store, method), dense, "dense")
    _sparsity_index(_levels(store, method), sparse, "sparse")
    both = mean_probabilities(store, method, [dense, sparse])
    rho = rowwise_spearman(both[0], both[1])
    index = store.meta.index if hasattr(store, "meta") and len(store.meta) == len(rho) else None
    return pd.Series(rho, index=index, name="spearman")


def select_pies(scores, fraction: float = 0.05, nan_policy: str = "exclude") -> np.ndarray:
    """Boolean mask of the PIEs: the ``int(fraction * N)`` lowest scores (N = all images).

    Ties are broken deterministically: a stable sort by score, so among equal scores the image
    that comes first in the test order is selected first. NaN scores (undefined correlation,
    see :func:`pie_scores`): ``nan_policy="exclude"`` (default) never selects them, since
    agreement cannot be measured, and warns with their count; ``"lowest"`` ranks them below every
    finite score (treats an unrankable output as maximal disagreement). Positionally aligned
    with the test metadata.
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    s = np.asarray(scores, dtype=float).ravel()
    n_pie = int(fraction * len(s))
    nan = np.isnan(s)
    if nan.any() and nan_policy == "exclude":
        warnings.warn(f"{int(nan.sum())} image(s) have an undefined agreement score (NaN) "
                      "and are never selected as PIEs", stacklevel=2)
        n_pie = min(n_pie, int((~nan).sum()))
    # Stable sort by (NaN group, score, position): NaN images last ("exclude") or first ("lowest").
    nan_key = nan if nan_policy == "exclude" else ~nan
    order = np.lexsort((np.where(nan, 0.0, s), nan_key))
    mask = np.zeros(len(s), dtype=bool)
    mask[order[:n_pie]] = True
    return mask


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = np.full(a.shape, np.nan)
    pos = b > 0
    out[pos] = a[pos] / b[pos]
    out[~pos & (a > 0)] = np.inf
    return out


def _check(pies, labels, classes):
    pies = np.asarray(pies)
    if pies.dtype != bool:
        raise TypeError(f"pies must be a boolean mask, got dtype {pies.dtype}")
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape != (len(pies), len(classes)):
        raise ValueError(f"labels must have shape ({len(pies)}, {len(classes)}) to match pies "
                         f"and classes, got {labels.shape}")
    if pies.all() or not pies.any():
        raise ValueError("pies must contain at least one PIE and one non-PIE")
    return pies, labels.astype(bool)


def class_enrichment(pies, labels, classes) -> pd.DataFrame:
    """Per class: prevalence among PIEs / prevalence among non-PIEs.

    Columns class, n_pie, n_nonpie (positives), prevalence_pie, prevalence_nonpie, ratio.
    ratio is inf when the class occurs only in PIEs, NaN when it occurs in neither.
    """
    pies, y = _check(pies, labels, classes)
    n_pie, n_non = y[pies].sum(axis=0), y[~pies].sum(axis=0)
    prev_pie, prev_non = n_pie / pies.sum(), n_non / (~pies).sum()
    return pd.DataFrame({"class": list(classes), "n_pie": n_pie, "n_nonpie": n_non,
                         "prevalence_pie": prev_pie, "prevalence_nonpie": prev_non,
                         "ratio": _ratio(prev_pie, prev_non)})


def findings_enrichment(pies, labels, classes, no_finding: str = "No Finding",
                        max_findings: int = 4) -> pd.DataFrame:
    """Per number of findings d = 0, 1, ..., max_findings-1, max_findings+: the share of PIEs
    with d findings / the share of non-PIEs with d findings.

    d counts the class columns that are positive, "No Finding" excluded (the reference code also
    counted an id column by accident). Columns findings ("0", ..., "4+"), n_pie, n_nonpie,
    prevalence_pie, prevalence_nonpie, ratio (inf/NaN as in :func:`class_enrichment`).
    """
    pies, y = _check(pies, labels, classes)
    keep = [i for i, c in enumerate(classes) if c != no_finding]
    d = np.minimum(y[:, keep].sum(axis=1), max_findings)
    names = [str(i) for i in range(max_findings)] + [f"{max_findings}+"]
    n_pie = np.bincount(d[pies], minlength=max_findings + 1)
    n_non = np.bincount(d[~pies], minlength=max_findings + 1)
    prev_pie, prev_non = n_pie / pies.sum(), n_non / (~pies).sum()
    return pd.DataFrame({"findings": names, "n_pie": n_pie, "n_nonpie": n_non,
                         "prevalence_pie": prev_pie, "prevalence_nonpie": prev_non,
                         "ratio": _ratio(prev_pie, prev_non)})


def pie_enrichment(pies, labels, classes, no_finding: str = "No Finding",
                   max_findings: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(class_enrichment(...), findings_enrichment(...))`` for the paper's Fig. 5."""
    return (class_enrichment(pies, labels, classes),
            findings_enrichment(pies, labels, classes, no_finding, max_findings))
