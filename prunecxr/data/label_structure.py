"""The label distribution the phantom samples from: real NIH co-occurrence plus five rare classes.

Three steps, each a pure function of the committed table ``nih_label_structure.json`` (derived
by ``scripts/derive_label_structure.py`` from the public NIH metadata; 801 label sets over 14
findings + No Finding, with their image counts):

1. :func:`extended_combinations` adds the five classes NIH-CXR-LT parsed from reports, which the
   public table lacks, by the rules in :data:`ADDED_CLASSES`. Each rule fixes a plausible overall
   count (per the 112,120 source images; chosen, not measured, so that the class frequency order
   matches the NIH-CXR-LT reference order, which is sorted by training count) and the
   probability of the class given each partner finding. An image gets added class ``c`` with
   probability ``1 - (1 - b_c) * prod(1 - p_cl for partners l present)``; the base rate ``b_c`` is
   solved in closed form so the expected prevalence equals the target. Each label set is split
   into its with/without-``c`` children weighted by that probability (an expectation, no
   sampling), so the result is an exact distribution over label sets of 20 classes. An image
   that gains a finding loses No Finding.
2. :func:`raise_tail` lifts every finding's prevalence by the same amount (for small datasets;
   see ``phantom.py``) by iterative proportional fitting of the label-set weights. That keeps
   the frequency order, and IPF multiplies each label set's weight by one factor per class it
   holds, so every conditional odds ratio (each interaction of the log-linear model) is kept:
   the co-occurrence structure moves only as far as the margins make it.
3. :func:`systematic_sample` draws n label sets by systematic sampling over the label sets sorted
   rarest-class-first, so every class count is within about one of its expectation (the rarest
   class's exactly floor or ceil) rather than Poisson-scattered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import io
from .classes import NIH_CXR_LT_CLASSES, NO_FINDING

TABLE_PATH = Path(__file__).with_name("nih_label_structure.json")


@dataclass(frozen=True)
class AddedClass:
    """A class NIH-CXR-LT adds: its target count per source table and its partner findings."""

    name: str
    count: int
    partners: tuple[tuple[str, float], ...]  # (partner class, P(this class | partner present))


# Targets per 112,120 source images; the order is the reference order's for these classes
# (Fibrosis 1,686 > Subcutaneous Emphysema > Pneumonia 1,431 > Tortuous Aorta > Calcification of
# the Aorta > Pneumoperitoneum > Hernia 227 > Pneumomediastinum). Rules are applied in this
# order, so a partner may itself be an added class listed earlier.
ADDED_CLASSES: tuple[AddedClass, ...] = (
    # Air leaks: pneumothorax (trauma, drains) often brings air into the chest wall.
    AddedClass("Subcutaneous Emphysema", 1550, (("Pneumothorax", 0.15),)),
    # Mediastinal air tracks into the soft tissues and follows emphysema (the paper's
    # Emphysema / Pneumomediastinum pair has IoU^(1/4) = 0.37, i.e. IoU ~ 0.02).
    AddedClass("Pneumomediastinum", 200, (("Subcutaneous Emphysema", 0.06), ("Emphysema", 0.02))),
    # Aortic findings of older, hypertensive patients; the two aortic findings go together.
    AddedClass("Tortuous Aorta", 740, (("Cardiomegaly", 0.05),)),
    AddedClass("Calcification of the Aorta", 450, (("Tortuous Aorta", 0.25),)),
    # Free air under the diaphragm (post-operative, perforation) with other extra-pulmonary air.
    AddedClass("Pneumoperitoneum", 300,
               (("Subcutaneous Emphysema", 0.03), ("Pneumomediastinum", 0.05))),
)


def table_sha256() -> str:
    """sha256 of the committed table file (part of the phantom's cache identity)."""
    return hashlib.sha256(TABLE_PATH.read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def load_table() -> dict:
    """The committed NIH label-structure table (see ``scripts/derive_label_structure.py``)."""
    return io.read_json(TABLE_PATH)


def rules_spec() -> list:
    """The added-class rules as plain data (part of the phantom's cache identity)."""
    return [[r.name, r.count, [list(p) for p in r.partners]] for r in ADDED_CLASSES]


def images_per_patient_pmf(cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Values 1..cap and their probabilities: the real distribution, clipped at ``cap``."""
    hist = load_table()["images_per_patient"]
    values = np.arange(1, cap + 1)
    counts = np.zeros(cap, dtype=np.float64)
    for k, n in hist:
        counts[min(int(k), cap) - 1] += n
    return values, counts / counts.sum()


def real_combinations(classes: tuple[str, ...] = NIH_CXR_LT_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """The source table's label sets as a 0/1 matrix over ``classes`` and their image counts."""
    index = {c: j for j, c in enumerate(classes)}
    rows = load_table()["combinations"]
    labels = np.zeros((len(rows), len(classes)), dtype=np.uint8)
    counts = np.empty(len(rows), dtype=np.float64)
    for i, (combo, n) in enumerate(rows):
        labels[i, [index[c] for c in combo.split("|")]] = 1
        counts[i] = n
    return labels, counts


@lru_cache(maxsize=4)
def _extended(classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    labels, weights = real_combinations(classes)
    total = weights.sum()
    weights = weights / total
    nf = classes.index(NO_FINDING)
    for rule in ADDED_CLASSES:
        c = classes.index(rule.name)
        keep = np.ones(len(weights))  # prod over present partners of (1 - p_partner)
        for partner, p in rule.partners:
            keep = keep * np.where(labels[:, classes.index(partner)] == 1, 1.0 - p, 1.0)
        target = rule.count / total
        base = 1.0 - (1.0 - target) / float(np.sum(weights * keep))
        if base < 0:
            raise ValueError(f"rule for {rule.name!r}: partners alone exceed its target count")
        p_add = 1.0 - (1.0 - base) * keep
        gained = labels.copy()
        gained[:, c] = 1
        gained[:, nf] = 0
        labels = np.concatenate([labels, gained])
        weights = np.concatenate([weights * (1.0 - p_add), weights * p_add])
        keep_rows = weights > 0
        labels, weights = labels[keep_rows], weights[keep_rows]
    order = np.lexsort(labels.T[::-1])  # canonical row order, independent of rule bookkeeping
    return labels[order], weights[order] / weights.sum()


def extended_combinations(
    classes: tuple[str, ...] = NIH_CXR_LT_CLASSES,
) -> tuple[np.ndarray, np.ndarray]:
    """Label sets over all 20 classes (0/1 matrix, read-only) and their probabilities.

    The 14 NIH findings keep their real joint distribution; the five added classes follow
    :data:`ADDED_CLASSES` (see the module docstring).
    """
    labels, weights = _extended(tuple(classes))
    return labels.copy(), weights.copy()


def prevalences(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-class prevalence of a weighted set of label sets (no BLAS: same bits everywhere)."""
    return np.sum(weights[:, None] * labels, axis=0) / np.sum(weights)


def raise_tail(
    labels: np.ndarray, weights: np.ndarray, lift: float, exclude: list[int],
    tol: float = 1e-12, max_iter: int = 10_000,
) -> np.ndarray:
    """Reweight label sets so each class not in ``exclude`` gains ``lift`` prevalence.

    Two-sided iterative proportional fitting on the binary margins: the sets containing class
    ``c`` are scaled by ``target/current``, the others by ``(1-target)/(1-current)``. Every
    conditional odds ratio between classes (the co-occurrence structure) is preserved; excluded
    classes (No Finding) move freely. ``lift = 0`` returns the weights unchanged.
    """
    w = weights / weights.sum()
    if lift <= 0:
        return w
    x = labels.astype(bool)
    fit = [j for j in range(labels.shape[1]) if j not in exclude]
    target = prevalences(labels, w)[fit] + lift
    if np.any(target >= 1):
        raise ValueError(f"cannot lift prevalences by {lift}: a class would reach 1")
    for _ in range(max_iter):
        for j, t in zip(fit, target):
            m = float(np.sum(w[x[:, j]]))
            w = np.where(x[:, j], w * (t / m), w * ((1.0 - t) / (1.0 - m)))
        if np.max(np.abs(prevalences(labels, w)[fit] - target)) < tol:
            return w / w.sum()
    raise RuntimeError("raise_tail: iterative proportional fitting did not converge")


def systematic_sample(
    labels: np.ndarray, weights: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``n`` label sets (row indices into ``labels``) by systematic sampling, shuffled.

    Rows are sorted lexicographically with the rarest class as the most significant key, so the
    sets containing the rarest class form one block (its count is floor or ceil of its
    expectation), the next rarest two blocks, and so on; one uniform offset picks the points
    ``(u + i) / n`` on the cumulative weights.
    """
    prev = prevalences(labels, weights)
    rare_first = np.argsort(prev, kind="stable")
    order = np.lexsort([-labels[:, j].astype(np.int8) for j in rare_first[::-1]])
    cum = np.cumsum(weights[order] / weights.sum())
    cum[-1] = 1.0
    points = (rng.random() + np.arange(n)) / n
    picked = order[np.searchsorted(cum, points, side="right")]
    return rng.permutation(picked)
