"""``phantom``: the embedded default dataset, synthetic chest radiographs with a real label structure.

Real chest X-rays cannot be shipped, so the default runs on a deterministic phantom built to keep
what the paper's questions depend on:

- **Labels** follow the real NIH ChestX-ray14 joint label distribution (prevalences and
  co-occurrence of the 14 findings + No Finding, from the committed table
  ``nih_label_structure.json``), extended by the five NIH-CXR-LT classes with documented rules
  (``label_structure.py``). No Finding excludes every other class.
- **Small sizes stay usable** (the tail floor): at ``n_images`` every finding's prevalence is
  lifted by the same amount, just enough that the rarest class expects
  ``tail_floor() = ceil(max(min_positives / split_fraction))`` (= 50) images, by iterative
  proportional fitting that keeps the frequency order and the conditional odds ratios; the lift
  vanishes once ``n_images`` is large enough for the real prevalences (about 28,000 images).
  Label sets are drawn by systematic sampling, so counts sit at their expectations.
- **Patients** have several images, their number drawn from the real images-per-patient
  distribution clipped at :data:`MAX_IMAGES_PER_PATIENT`; each patient has its own anatomy
  (so patient-level splitting matters), each image its own pose and exposure. Findings are
  drawn independently per image from the label-set distribution.
- **Splits** are 70/10/20 of images at the patient level, assigned by iterative stratification
  (rarest class first, each patient to the split that most lacks that class, then the rest by
  image count), with at least :data:`MIN_POSITIVES` positives per class in val and test wherever
  a class has enough positives. At the default size every class has >= 10 test and >= 5 val
  positives while train keeps a head/tail ratio above 100.
- **Images**: grayscale radiograph-like phantoms (body, lungs, heart, mediastinum, trachea,
  diaphragm, ribs, clavicles, aortic knob, lung markings); every finding has its own localized
  signature at an anatomically plausible site (see :data:`SIGNATURES`), drawn with a per-image
  severity. Designed in normalised coordinates, so they render at any ``image_size``.
  Nuisance per image: contrast, brightness, blur, Gaussian noise, small rotation, shift, zoom.
- **Known truth** in ``meta``: ``true_labels``, ``label_corrupted``, ``corrupted_classes``
  (label noise: a drawn finding left unlabelled, on ``round(label_noise * n_images)`` images),
  ``noise_sd``, ``contrast``, ``blur``, ``quality``, ``min_severity``, ``n_findings`` and
  ``difficulty`` (formulas in :func:`quality_and_difficulty`).

Determinism: every random draw comes from a ``numpy`` Generator seeded by ``(seed, stream)``;
rendering uses only + - * / sqrt, min/max and floor (no exp/sin or BLAS whose last bit can depend
on the CPU), and the rotation is parametrised rationally by ``t = tan(angle/2)``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd

from . import label_structure as ls
from .base import SPLITS, DataError, Dataset, cached_dataset, digest
from .classes import NIH_CXR_LT_CLASSES, NO_FINDING

GENERATOR_VERSION = 1  # bump when the generator's code changes; its constants enter the key
DEFAULT_N_IMAGES = 10000
DEFAULT_IMAGE_SIZE = 64
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
MIN_POSITIVES = {"val": 5, "test": 10}
MAX_IMAGES_PER_PATIENT = 20  # the real table goes to 184; clipped so no patient dominates a split
MIN_N_IMAGES = 100
IMAGE_SIZE_RANGE = (16, 512)
MAX_LABEL_NOISE = 0.4
BATCH = 256  # images rendered at once; a constant, so the random streams never depend on memory

_STREAMS = {"labels": 1, "patients": 2, "noise": 3, "splits": 4, "anatomy": 5, "nuisance": 6,
            "findings": 7, "render": 8}

# Per-image nuisance ranges (uniform) and the quality / difficulty constants.
CONTRAST = (0.7, 1.3)
BRIGHTNESS = (-0.06, 0.06)
NOISE_SD = (0.01, 0.06)
BLUR = (0.0, 1.0)  # weight of a [1, 2, 1]/4 smoothing mixed into the image
ROTATION_T = 0.04  # |tan(angle / 2)| <= 0.04, i.e. rotation up to about 4.6 degrees
SHIFT = 0.04
ZOOM = (0.96, 1.04)
SEVERITY = (0.5, 1.0)
BLUR_LOSS = 0.5  # fraction of signal a full blur is taken to cost in the quality score
CROWDING = 0.5  # each extra finding adds this much to the "visibility divisor" of difficulty

# Where and how each finding shows; the renderer implements exactly these.
SIGNATURES = {
    "Infiltration": "mottled patchy opacity, upper-mid zone of one lung",
    "Effusion": "homogeneous fluid at one lung base with a meniscus rising laterally",
    "Atelectasis": "thin plate-like oblique band, lower zone of one lung",
    "Nodule": "small sharp round opacity in one lung",
    "Mass": "large lobulated opacity near one hilum",
    "Consolidation": "dense upper-lobe opacity with a sharp horizontal (fissure) lower border",
    "Pneumothorax": "dark apical-lateral rim without lung markings, visible pleural line",
    "Pleural Thickening": "bright band along the mid-lower lateral chest wall of one side",
    "Cardiomegaly": "enlarged heart shadow, widened to the left",
    "Emphysema": "hyperinflated darker lungs, flattened diaphragm, fewer markings",
    "Edema": "bilateral perihilar (bat-wing) haze",
    "Fibrosis": "bilateral peripheral basal reticular (net-like) pattern",
    "Subcutaneous Emphysema": "dark mottled air in the lateral chest-wall soft tissue",
    "Pneumonia": "fluffy ill-defined lower-lobe opacity in one lung",
    "Tortuous Aorta": "bulging descending-aorta contour left of the spine",
    "Calcification of the Aorta": "thin very bright arc on the aortic knob",
    "Pneumoperitoneum": "dark crescent of free air under the right hemidiaphragm",
    "Hernia": "retrocardiac air bubble with a fluid level",
    "Pneumomediastinum": "dark streaks outlining the mediastinum up into the neck",
}

# Signature amplitudes (image units before contrast; for Cardiomegaly the relative widening of
# the heart, for Emphysema the extra darkening of the lungs), set so the classes' signal energies stay
# within a small factor of each other (see tests/test_phantom.py::test_signatures_comparable).
GAIN = {
    "Infiltration": 0.30, "Effusion": 0.25, "Atelectasis": 0.30, "Nodule": 0.42, "Mass": 0.22,
    "Consolidation": 0.17, "Pneumothorax": 0.22, "Pleural Thickening": 0.42,
    "Cardiomegaly": 0.40, "Emphysema": 0.05, "Edema": 0.18, "Fibrosis": 0.30,
    "Subcutaneous Emphysema": 0.40, "Pneumonia": 0.36, "Tortuous Aorta": 0.22,
    "Calcification of the Aorta": 0.38, "Pneumoperitoneum": 0.45, "Hernia": 0.40,
    "Pneumomediastinum": 0.22,
}

# Patient anatomy (uniform ranges, normalised coordinates: x right, y down, both in [-1, 1]).
ANATOMY = {
    "body_ax": (0.86, 0.96), "tissue": (0.40, 0.48),
    "lung_x": (0.39, 0.44), "lung_y": (-0.08, -0.01), "lung_ax": (0.25, 0.29),
    "lung_ay": (0.50, 0.57), "dome_y": (0.30, 0.38), "dome_k": (1.2, 1.8),
    "heart_cx": (0.06, 0.11), "heart_cy": (0.27, 0.32), "heart_ax": (0.19, 0.23),
    "heart_ay": (0.15, 0.19), "med_w": (0.10, 0.125), "rib_period": (0.17, 0.21),
    "rib_phase": (0.0, 1.0),
}


# ----------------------------------------------------------------------------- public API

def load_phantom(
    n_images: int = DEFAULT_N_IMAGES,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    label_noise: float = 0.05,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """The phantom dataset, generated on first use into the cache and memory-mapped after.

    The cache key digests :data:`GENERATOR_VERSION`, every option and the label-structure
    table's and rules' content, so a changed generator never reuses stale images.
    """
    _validate(n_images, image_size, seed, label_noise)
    identity = phantom_identity(n_images, image_size, seed, label_noise)
    ds = cached_dataset(
        "phantom", identity, int(image_size),
        lambda: build_phantom(n_images, image_size, seed, label_noise), cache_dir,
    )
    ds.meta["corrupted_classes"] = ds.meta["corrupted_classes"].fillna("").astype(str)
    return ds


def phantom_identity(n_images: int, image_size: int, seed: int, label_noise: float) -> str:
    """Digest naming one phantom build (generator version, options, label table and rules)."""
    return digest("phantom", GENERATOR_VERSION, int(n_images), int(image_size), int(seed),
                  float(label_noise), ls.table_sha256(), ls.rules_spec(), _constants())


def _constants() -> dict:
    """Every tunable constant of the generator, so changing one changes the cache key."""
    names = ("SPLIT_FRACTIONS", "MIN_POSITIVES", "MAX_IMAGES_PER_PATIENT", "BATCH", "CONTRAST",
             "BRIGHTNESS", "NOISE_SD", "BLUR", "ROTATION_T", "SHIFT", "ZOOM", "SEVERITY",
             "BLUR_LOSS", "CROWDING", "GAIN", "ANATOMY")
    return {k: globals()[k] for k in names}


def tail_floor() -> int:
    """Expected images of the rarest class: the fewest that split proportionally give
    ``MIN_POSITIVES`` in every held-out split."""
    return math.ceil(max(MIN_POSITIVES[s] / SPLIT_FRACTIONS[s] for s in MIN_POSITIVES))


def label_distribution(n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """Label sets (0/1 over the 20 classes) and their probabilities after the tail floor."""
    classes = NIH_CXR_LT_CLASSES
    labels, weights = ls.extended_combinations(classes)
    prev = ls.prevalences(labels, weights)
    nf = classes.index(NO_FINDING)
    findings = [j for j in range(len(classes)) if j != nf]
    lift = max(0.0, tail_floor() / n_images - float(prev[findings].min()))
    return labels, ls.raise_tail(labels, weights, lift, exclude=[nf])


def build_phantom(
    n_images: int = DEFAULT_N_IMAGES,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    label_noise: float = 0.05,
) -> tuple[list[str], np.ndarray, pd.DataFrame, np.ndarray]:
    """Generate ``(classes, labels, meta, images)`` without touching any cache."""
    _validate(n_images, image_size, seed, label_noise)
    n = int(n_images)
    classes = list(NIH_CXR_LT_CLASSES)
    true, observed, dropped, patient, follow_up, split = sample_labels(n, seed, label_noise)
    nuisance = _draw_nuisance(n, _rng(seed, "nuisance"))
    severity, side = _draw_findings(true, _rng(seed, "findings"))
    anatomy = _draw_anatomy(int(patient.max()) + 1, _rng(seed, "anatomy"))
    params = {k: v[patient] for k, v in anatomy.items()} | nuisance
    images = render(true, severity, side, params, int(image_size), seed)

    findings = true.copy()
    findings[:, classes.index(NO_FINDING)] = 0
    n_findings = findings.sum(axis=1).astype(np.int64)
    min_sev = np.where(n_findings > 0, np.where(findings == 1, severity, np.inf).min(axis=1), 1.0)
    quality, difficulty = quality_and_difficulty(
        nuisance["contrast"], nuisance["noise_sd"], nuisance["blur"], min_sev, n_findings)
    names = np.array(classes, dtype=object)
    meta = pd.DataFrame({
        "image_id": [f"phantom_{p + 1:08d}_{k:03d}.png" for p, k in zip(patient, follow_up)],
        "patient": [f"phantom_{p + 1:08d}" for p in patient],
        "follow_up": follow_up,
        "split": np.array(SPLITS, dtype=object)[split],
        "true_labels": ["|".join(names[row == 1]) for row in true],
        "label_corrupted": dropped >= 0,
        "corrupted_classes": [names[d] if d >= 0 else "" for d in dropped],
        "n_findings": n_findings,
        "min_severity": _r6(min_sev),
        "noise_sd": _r6(nuisance["noise_sd"]),
        "contrast": _r6(nuisance["contrast"]),
        "blur": _r6(nuisance["blur"]),
        "quality": _r6(quality),
        "difficulty": _r6(difficulty),
    })
    return classes, observed, meta, images


def _r6(x) -> np.ndarray:
    return np.round(np.asarray(x, dtype=np.float64), 6)


def sample_labels(n_images: int, seed: int = 0, label_noise: float = 0.05):
    """Everything but the pixels: ``(true, observed, dropped, patient, follow_up, split)``.

    ``true``/``observed`` are 0/1 label matrices, ``dropped`` the class index each corrupted
    image lost (-1 if clean), ``patient`` and ``follow_up`` integers, ``split`` indices into
    ``SPLITS``. Cheap (no rendering), so the label guarantees can be checked at any size.
    """
    _validate(n_images, DEFAULT_IMAGE_SIZE, seed, label_noise)
    n = int(n_images)
    combos, weights = label_distribution(n)
    true = combos[ls.systematic_sample(combos, weights, n, _rng(seed, "labels"))]
    patient, follow_up = sample_patients(n, _rng(seed, "patients"))
    observed, dropped = corrupt_labels(true, label_noise, _rng(seed, "noise"))
    split = assign_splits(patient, observed, _rng(seed, "splits"))
    return true, observed, dropped, patient, follow_up, split


def quality_and_difficulty(contrast, noise_sd, blur, min_severity, n_findings):
    """Ground-truth image quality and diagnosis difficulty, both in (0, 1).

    ``snr = contrast * (1 - BLUR_LOSS * blur) / noise_sd`` is the signal a unit-amplitude finding
    keeps against the noise; ``s_ref`` is its value at the centre of the nuisance ranges.
    ``quality = snr / (snr + s_ref)`` (0.5 at the centre, higher is better).
    ``difficulty = s_ref / (s_ref + visibility)`` with ``visibility = snr * min_severity /
    (1 + CROWDING * (n_findings - 1))``: fainter findings, worse images and more simultaneous
    findings make an image harder; an image without findings counts as one finding of
    severity 1.
    """
    s_ref = (np.mean(CONTRAST) * (1 - BLUR_LOSS * np.mean(BLUR))) / np.mean(NOISE_SD)
    snr = np.asarray(contrast) * (1 - BLUR_LOSS * np.asarray(blur)) / np.asarray(noise_sd)
    crowd = 1 + CROWDING * np.maximum(np.asarray(n_findings, dtype=np.int64) - 1, 0)
    visibility = snr * np.asarray(min_severity) / crowd
    return snr / (snr + s_ref), s_ref / (s_ref + visibility)


# What the book says the phantom is (the data chapter), beside what depends on the labels.
DESCRIPTION = (
    "The phantom's label sets follow the joint distribution of the 14 findings and No "
    "Finding in the public NIH ChestX-ray14 metadata, extended by the five NIH-CXR-LT "
    "classes; at small sizes every prevalence is lifted just enough that the rarest class "
    "keeps a usable number of images, preserving the frequency order and the co-occurrence "
    "odds ratios. Every finding is drawn with its own localized signature at an "
    "anatomically plausible site and a per-image severity, on a synthetic chest whose "
    "anatomy varies by patient and whose contrast, brightness, blur, noise and pose vary "
    "by image. {numref}`fig-signatures` shows each finding alone on one synthetic patient. "
    "A known fraction of images has a finding left unlabelled (label noise), and every "
    "image records its quality and difficulty: the ground truth used in Q4.")


def label_dependence_statement() -> str:
    """Which per-image ground truth of the phantom depends on the labels by construction (for
    the data-and-methods chapter; tests/test_analysis_pies_sound.py checks each part against
    the generator): label corruption, difficulty and image quality."""
    return (
        "By construction, two of the phantom's ground-truth properties depend on an image's "
        "findings and one does not. Label corruption falls only on images with at least one "
        "drawn finding (a fixed number of them, chosen uniformly, each losing one finding from "
        "its label), so an image without findings is never corrupted. Diagnosis difficulty "
        "rises with the number of findings: each finding beyond the first adds "
        f"{CROWDING:g} to the divisor of the weakest finding's visibility, and the weakest of "
        "several findings is on average fainter. Image quality depends only on contrast, "
        "noise and blur, drawn independently of the labels. PIEs that are rich in findings "
        "therefore have more label noise and higher difficulty whatever pruning does, so "
        "these two are compared within strata of the number of findings; image quality is "
        "the one property independent of the labels.")


# ----------------------------------------------------------------------------- validation

def _validate(n_images, image_size, seed, label_noise) -> None:
    def is_int(x):
        return isinstance(x, Integral) and not isinstance(x, bool)

    if not is_int(n_images) or n_images < MIN_N_IMAGES:
        raise DataError(f"phantom: n_images must be an integer >= {MIN_N_IMAGES} "
                        f"(a 70/10/20 patient split needs it), got {n_images!r}")
    lo, hi = IMAGE_SIZE_RANGE
    if not is_int(image_size) or not lo <= image_size <= hi:
        raise DataError(f"phantom: image_size must be an integer in [{lo}, {hi}] pixels, "
                        f"got {image_size!r}")
    if not is_int(seed) or seed < 0:
        raise DataError(f"phantom: seed must be a non-negative integer, got {seed!r}")
    if (not isinstance(label_noise, Real) or isinstance(label_noise, bool)
            or not 0 <= label_noise <= MAX_LABEL_NOISE):
        raise DataError(f"phantom: label_noise must be a fraction of images in "
                        f"[0, {MAX_LABEL_NOISE}], got {label_noise!r}")


def _rng(seed: int, stream: str, *more: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), _STREAMS[stream], *more]))


# ----------------------------------------------------------------------------- labels, patients, splits

def sample_patients(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Patient index and follow-up number of each of ``n`` images (patients' images adjacent)."""
    values, probs = ls.images_per_patient_pmf(MAX_IMAGES_PER_PATIENT)
    sizes = rng.choice(values, size=n, p=probs)  # n patients always hold >= n images
    last = int(np.searchsorted(np.cumsum(sizes), n))
    sizes = sizes[: last + 1].copy()
    sizes[-1] -= int(sizes.sum()) - n
    patient = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return patient, np.arange(n) - starts


def corrupt_labels(
    true: np.ndarray, rate: float, rng: np.random.Generator, classes=NIH_CXR_LT_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """Observed labels and the dropped class per image (-1 where clean).

    Exactly ``round(rate * n)`` images, chosen uniformly among those with a drawn finding,
    lose one of their findings (chosen uniformly) from the label; an image left with no label
    becomes No Finding, as a report that missed it would read.
    """
    nf = classes.index(NO_FINDING)
    n = len(true)
    findings = true.copy()
    findings[:, nf] = 0
    eligible = np.flatnonzero(findings.any(axis=1))
    k = int(round(rate * n))
    if k > len(eligible):
        raise DataError(f"phantom: label_noise={rate} asks for {k} corrupted images but only "
                        f"{len(eligible)} of {n} have a finding to drop")
    chosen = np.sort(rng.choice(eligible, size=k, replace=False))
    dropped = np.full(n, -1)
    observed = true.copy()
    for i in chosen:
        present = np.flatnonzero(findings[i])
        c = present[rng.integers(len(present))]
        dropped[i] = c
        observed[i, c] = 0
        if present.size == 1:
            observed[i, nf] = 1
    return observed, dropped


def assign_splits(
    patient: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
    classes=NIH_CXR_LT_CLASSES,
) -> np.ndarray:
    """Split index (into ``SPLITS``) of each image, constant within a patient.

    Iterative stratification at the patient level: classes are taken rarest first; each not yet
    placed patient with that class goes to the split whose remaining demand for the class is
    largest (ties: largest remaining image demand). A split's demand is its fraction of the
    class's positives, raised to ``MIN_POSITIVES`` for val/test when the class has enough
    positives to give every split its minimum and train at least one. Patients left over go,
    largest first, to the split with the largest remaining image demand.
    """
    n_pat = int(patient.max()) + 1
    per_patient = np.zeros((n_pat, labels.shape[1]))
    np.add.at(per_patient, patient, labels)
    size = np.bincount(patient, minlength=n_pat).astype(float)
    frac = np.array([SPLIT_FRACTIONS[s] for s in SPLITS])
    total = per_patient.sum(axis=0)
    demand = frac[:, None] * total[None, :]
    enough = total >= sum(MIN_POSITIVES.values()) + 1
    for s, m in MIN_POSITIVES.items():
        row = SPLITS.index(s)
        demand[row] = np.where(enough, np.maximum(demand[row], m), demand[row])
    held_out = [SPLITS.index(s) for s in SPLITS if s != "train"]
    demand[SPLITS.index("train")] = total - demand[held_out].sum(axis=0)
    image_demand = frac * len(patient)
    assigned = np.full(n_pat, -1)

    def place(p: int, s: int) -> None:
        assigned[p] = s
        demand[s] -= per_patient[p]
        image_demand[s] -= size[p]

    nf = classes.index(NO_FINDING)
    for c in np.argsort(total, kind="stable"):
        if c == nf or total[c] == 0:
            continue
        for p in rng.permutation(np.flatnonzero((per_patient[:, c] > 0) & (assigned < 0))):
            place(p, max(range(len(SPLITS)), key=lambda s: (demand[s, c], image_demand[s])))
    rest = rng.permutation(np.flatnonzero(assigned < 0))
    for p in rest[np.argsort(-size[rest], kind="stable")]:
        place(p, int(np.argmax(image_demand)))
    return assigned[patient]


# ----------------------------------------------------------------------------- per-image draws

def _uniform(rng, bounds, n):
    lo, hi = bounds
    return (lo + (hi - lo) * rng.random(n)).astype(np.float32)


def _draw_anatomy(n_patients: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {k: _uniform(rng, b, n_patients) for k, b in ANATOMY.items()}


def _draw_nuisance(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "contrast": _uniform(rng, CONTRAST, n), "brightness": _uniform(rng, BRIGHTNESS, n),
        "noise_sd": _uniform(rng, NOISE_SD, n), "blur": _uniform(rng, BLUR, n),
        "rot_t": _uniform(rng, (-ROTATION_T, ROTATION_T), n),
        "shift_x": _uniform(rng, (-SHIFT, SHIFT), n), "shift_y": _uniform(rng, (-SHIFT, SHIFT), n),
        "zoom": _uniform(rng, ZOOM, n), "inspiration": _uniform(rng, (0.97, 1.03), n),
        # position of a nodule / mass inside its lung, in lung-relative units
        "nod_u": _uniform(rng, (-0.3, 0.5), n), "nod_v": _uniform(rng, (-0.55, 0.25), n),
        "mass_u": _uniform(rng, (-0.45, 0.1), n), "mass_v": _uniform(rng, (-0.3, 0.25), n),
        "lobe_dx": _uniform(rng, (-1.0, 1.0), n), "lobe_dy": _uniform(rng, (-1.0, 1.0), n),
    }


def _draw_findings(true: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Severity in SEVERITY and side (-1 patient right, +1 left) of every (image, class)."""
    severity = _uniform(rng, SEVERITY, true.size).reshape(true.shape)
    side = np.where(rng.random(true.shape) < 0.5, -1.0, 1.0).astype(np.float32)
    return severity, side


# ----------------------------------------------------------------------------- rendering

def _smoothstep(e0, e1, x):
    """0 below e0, 1 above e1 (or reversed when e0 > e1), cubic in between."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bump(q):
    """Smooth compact blob of a squared normalised distance q: (1 - q)^2 inside, 0 outside."""
    t = np.clip(1.0 - q, 0.0, 1.0)
    return t * t


def _tri(x):
    """Triangle wave with period 1, 0 at integers, 1 at half-integers."""
    return 1.0 - np.abs(2.0 * (x - np.floor(x)) - 1.0)


def _upsample(field: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of ``(b, g, g)`` to ``(b, size, size)`` by gathers (no BLAS)."""
    g = field.shape[-1]
    u = ((np.arange(size, dtype=np.float32) + 0.5) / size * (g - 1)).astype(np.float32)
    i0 = np.minimum(np.floor(u).astype(int), g - 2)
    a = (u - i0).astype(np.float32)
    rows = field[:, i0, :] * (1 - a)[None, :, None] + field[:, i0 + 1, :] * a[None, :, None]
    return rows[:, :, i0] * (1 - a)[None, None, :] + rows[:, :, i0 + 1] * a[None, None, :]


class _Frame:
    """Coordinates and parameters of a set of images, with the anatomy's derived masks."""

    def __init__(self, X, Y, p, px):
        self.X, self.Y, self.p, self.e = X, Y, p, np.float32(px)

    def sub(self, idx):
        return _Frame(self.X[idx], self.Y[idx], {k: v[idx] for k, v in self.p.items()}, self.e)

    def ellipse(self, cx, cy, ax, ay, soft=1.0):
        d = np.sqrt(((self.X - cx) / ax) ** 2 + ((self.Y - cy) / ay) ** 2)
        e = soft * self.e / np.minimum(ax, ay)
        return _smoothstep(1.0 + e, 1.0 - e, d), d

    def dome(self, side):
        p = self.p
        return p["dome_y"] + p["dome_k"] * (self.X - side * p["lung_x"]) ** 2

    def lung(self, side):
        """Soft mask of one lung (side -1: image left = patient right) and its radius."""
        p = self.p
        mask, d = self.ellipse(side * p["lung_x"], p["lung_y"], p["lung_ax"], p["lung_ay"])
        return mask * _smoothstep(self.dome(side) + self.e, self.dome(side) - self.e, self.Y), d

    def local(self, side):
        """Lung-relative coordinates: u lateral-positive, v from apex (-1) to base (+1)."""
        p = self.p
        u = side * (self.X - side * p["lung_x"]) / p["lung_ax"]
        return u, (self.Y - p["lung_y"]) / p["lung_ay"]

    def disc(self, cx, cy, r):
        d = np.sqrt((self.X - cx) ** 2 + (self.Y - cy) ** 2)
        return _smoothstep(r + self.e, r - self.e, d)


def render(true, severity, side, params, size, seed) -> np.ndarray:
    """uint8 images ``(n, size, size)`` of the drawn findings ``true`` with per-image params."""
    n = len(true)
    out = np.empty((n, size, size), dtype=np.uint8)
    grid = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1).astype(np.float32)
    for b, start in enumerate(range(0, n, BATCH)):
        sl = slice(start, min(start + BATCH, n))
        p = {k: np.asarray(v[sl], dtype=np.float32)[:, None, None] for k, v in params.items()}
        out[sl] = _render_batch(true[sl], severity[sl], side[sl], p, grid,
                                _rng(seed, "render", b))
    return out


def _render_batch(true, severity, side, p, grid, rng) -> np.ndarray:
    classes = NIH_CXR_LT_CLASSES
    size = len(grid)
    has = {c: true[:, j] == 1 for j, c in enumerate(classes)}
    sev = {c: severity[:, j][:, None, None] for j, c in enumerate(classes)}
    sgn = {c: side[:, j][:, None, None] for j, c in enumerate(classes)}

    # Findings that change the anatomy itself.
    p = dict(p)
    cm = np.where(has["Cardiomegaly"][:, None, None], sev["Cardiomegaly"], 0).astype(np.float32)
    em = np.where(has["Emphysema"][:, None, None], sev["Emphysema"], 0).astype(np.float32)
    p["heart_ax"] = p["heart_ax"] * (1 + GAIN["Cardiomegaly"] * cm)
    p["heart_ay"] = p["heart_ay"] * (1 + GAIN["Cardiomegaly"] / 3 * cm)
    p["heart_cx"] = p["heart_cx"] + GAIN["Cardiomegaly"] / 8 * cm
    p["lung_ay"] = p["lung_ay"] * p["inspiration"] * (1 + 0.08 * em)
    p["lung_ax"] = p["lung_ax"] * (1 + 0.03 * em)
    p["dome_y"] = p["dome_y"] + 0.04 * em
    p["dome_k"] = p["dome_k"] * (1 - 0.5 * em)

    # Pose: image coordinates -> anatomy coordinates (rational rotation, zoom, shift).
    t = p["rot_t"]
    cos, sin = (1 - t * t) / (1 + t * t), 2 * t / (1 + t * t)
    X0, Y0 = grid[None, None, :], grid[None, :, None]
    X = (cos * X0 + sin * Y0) * p["zoom"] - p["shift_x"]
    Y = (-sin * X0 + cos * Y0) * p["zoom"] - p["shift_y"]
    f = _Frame(X, Y, p, 2.0 / size)

    img = _anatomy(f, em, rng, size)
    markings = img.pop("markings")
    img = img["density"]

    for name in classes[1:]:
        idx = np.flatnonzero(has[name])
        if idx.size == 0 or name in ("Cardiomegaly", "Emphysema"):
            continue
        g = f.sub(idx)
        delta = _FINDINGS[name](g, sev[name][idx], sgn[name][idx], markings[idx], rng, size)
        img[idx] += GAIN[name] * delta

    # Exposure: contrast and brightness, detector blur, quantum noise, 8-bit quantisation.
    img = 0.5 + p["brightness"] + p["contrast"] * (img - 0.42)
    pad = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    smooth = (pad[:, :-2] + 2 * pad[:, 1:-1] + pad[:, 2:]) / 4
    smooth = (smooth[:, :, :-2] + 2 * smooth[:, :, 1:-1] + smooth[:, :, 2:]) / 4
    img = (1 - p["blur"]) * img + p["blur"] * smooth
    img = img + p["noise_sd"] * rng.standard_normal(img.shape, dtype=np.float32)
    return np.floor(np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def _anatomy(f: _Frame, emphysema, rng, size) -> dict[str, np.ndarray]:
    p, X, Y, e = f.p, f.X, f.Y, f.e
    ax = np.abs(X)
    body, _ = f.ellipse(0.0, 0.15, p["body_ax"], 1.15, soft=2.0)
    heart, _ = f.ellipse(p["heart_cx"], p["heart_cy"], p["heart_ax"], p["heart_ay"], soft=1.5)
    # The heart displaces lung: where it lies the lung's air is gone.
    lungs = (f.lung(-1.0)[0] + f.lung(1.0)[0]) * (1.0 - heart)
    spine = _smoothstep(p["med_w"] + e, p["med_w"] - e, ax) * body
    trachea = _smoothstep(0.045 + e, 0.045 - e, ax) * _smoothstep(-0.3, -0.42, Y)
    knob = _bump(((X - p["med_w"] - 0.01) ** 2 + (Y + 0.42) ** 2) / 0.07 ** 2)
    density = (0.06 + p["tissue"] * body + 0.10 * spine * (1.0 - 0.5 * heart) + 0.06 * heart
               + 0.10 * knob - 0.12 * trachea
               - (0.34 + GAIN["Emphysema"] * emphysema) * lungs)
    # Ribs: posterior ribs run down and out from the spine; clavicles across the apices.
    thorax = np.minimum(1.0, f.ellipse(-p["lung_x"], p["lung_y"], p["lung_ax"] * 1.25,
                                       p["lung_ay"] * 1.1, soft=3.0)[0]
                        + f.ellipse(p["lung_x"], p["lung_y"], p["lung_ax"] * 1.25,
                                    p["lung_ay"] * 1.1, soft=3.0)[0])
    rib = _smoothstep(0.55, 0.8, _tri((Y - 0.3 * ax) / p["rib_period"] + p["rib_phase"]))
    density = density + 0.04 * rib * thorax * _smoothstep(p["med_w"], p["med_w"] + 0.05, ax)
    clav_y = -0.64 + 0.2 * ax
    clav = (_smoothstep(0.035 + e, 0.035 - e, np.abs(Y - clav_y))
            * _smoothstep(0.06, 0.1, ax) * _smoothstep(0.62, 0.52, ax))
    density = density + 0.10 * clav
    # Lung markings: a smooth random texture, strongest near the hila, fading to the periphery.
    field = _upsample(rng.standard_normal((len(X), 7, 7), dtype=np.float32), size)
    hila = 0.0
    for s in (-1.0, 1.0):
        hx = s * (p["lung_x"] - 0.45 * p["lung_ax"])
        hila = hila + _bump(((X - hx) ** 2 + (Y - p["lung_y"] - 0.05) ** 2) / 0.5 ** 2)
    markings = (0.05 * np.clip(0.6 + 0.3 * field, 0.0, 1.0) * (0.3 + hila) * lungs
                * (1 - 0.6 * emphysema))
    return {"density": density + markings, "markings": markings}


# Each renderer: (frame of the affected images, severity, side, markings, rng, size) -> delta
# in units of the class GAIN (positive = denser / brighter).

def _infiltration(g, sev, side, mk, rng, size):
    u, v = g.local(side)
    region = _bump((u - 0.05) ** 2 / 0.6 ** 2 + (v + 0.2) ** 2 / 0.45 ** 2) * g.lung(side)[0]
    mottle = np.clip(0.5 + 0.5 * _upsample(rng.standard_normal((len(u), 10, 10),
                                                                dtype=np.float32), size), 0, 1)
    return sev * region * (0.3 + 0.9 * mottle)


def _effusion(g, sev, side, mk, rng, size):
    u, v = g.local(side)
    top = 0.75 - 0.35 * sev - 0.35 * np.clip(u, 0.0, 1.0) ** 2
    e = g.e / g.p["lung_ay"]
    return _smoothstep(top - e, top + e, v) * g.lung(side)[0]


def _atelectasis(g, sev, side, mk, rng, size):
    u, v = g.local(side)
    d = np.abs(v - 0.35 - 0.2 * u) * g.p["lung_ay"]
    w = 0.03 + 0.015 * sev
    return _smoothstep(w + g.e, w - g.e, d) * _smoothstep(0.8, 0.6, np.abs(u)) * g.lung(side)[0]


def _nodule(g, sev, side, mk, rng, size):
    p = g.p
    cx = side * (p["lung_x"] + p["nod_u"] * p["lung_ax"])
    cy = p["lung_y"] + p["nod_v"] * p["lung_ay"]
    return (0.6 + 0.4 * sev) * g.disc(cx, cy, 0.07 + 0.01 * sev)


def _mass(g, sev, side, mk, rng, size):
    p = g.p
    cx = side * (p["lung_x"] + p["mass_u"] * p["lung_ax"])
    cy = p["lung_y"] + p["mass_v"] * p["lung_ay"]
    r = 0.12 + 0.05 * sev
    norm = np.sqrt(p["lobe_dx"] ** 2 + p["lobe_dy"] ** 2) + 1e-3
    dx, dy = 0.5 * r * p["lobe_dx"] / norm, 0.5 * r * p["lobe_dy"] / norm
    lobes = np.maximum(g.disc(cx, cy, r), g.disc(cx + dx, cy + dy, 0.75 * r))
    return (0.6 + 0.4 * sev) * lobes


def _consolidation(g, sev, side, mk, rng, size):
    u, v = g.local(side)
    e = g.e / g.p["lung_ay"]
    fissure = -0.1 - 0.2 * (1 - sev)
    lobe = _smoothstep(fissure + e, fissure - e, v) * g.lung(side)[0]
    return (0.6 + 0.4 * sev) * lobe * _smoothstep(-1.0, -0.7, v)


def _pneumothorax(g, sev, side, mk, rng, size):
    u, v = g.local(side)
    lung, d = g.lung(side)
    edge = 1.0 - (0.25 + 0.15 * sev)
    e = g.e / g.p["lung_ax"]
    where = lung * _smoothstep(0.35, 0.0, v) * _smoothstep(-0.6, -0.2, u)
    zone = _smoothstep(edge - e, edge + e, d) * where
    line = _smoothstep(1.5 * e, 0.5 * e, np.abs(d - edge)) * where
    return -(mk / GAIN["Pneumothorax"] + 0.8) * zone + 0.6 * line


def _pleural_thickening(g, sev, side, mk, rng, size):
    u, v = g.local(side)
    lung, d = g.lung(side)
    w = 0.14 + 0.06 * sev
    band = _smoothstep(1.0 - w - 0.05, 1.0 - w, d) * lung
    return band * _smoothstep(0.0, 0.4, u) * _smoothstep(-0.5, -0.2, v) * _smoothstep(0.8, 0.6, v)


def _edema(g, sev, side, mk, rng, size):
    out = 0.0
    for s in (-1.0, 1.0):
        u, v = g.local(s)
        out = out + _bump((u + 0.45) ** 2 / 0.75 ** 2 + v ** 2 / 0.6 ** 2) * g.lung(s)[0]
    return sev * out


def _fibrosis(g, sev, side, mk, rng, size):
    period = 0.14
    net = np.maximum(_tri(g.X / period), _tri(g.Y / period))
    net = _smoothstep(0.6, 0.9, net)
    out = 0.0
    for s in (-1.0, 1.0):
        u, v = g.local(s)
        out = out + g.lung(s)[0] * _smoothstep(-0.2, 0.5, u) * _smoothstep(0.0, 0.5, v)
    return sev * out * (0.3 + 0.7 * net)


def _subcutaneous_emphysema(g, sev, side, mk, rng, size):
    p = g.p
    lateral = side * g.X
    inner = p["lung_x"] + p["lung_ax"] + 0.02
    band = _smoothstep(inner, inner + 0.06, lateral) * _smoothstep(-0.7, -0.5, g.Y)
    band = band * _smoothstep(0.3, 0.1, g.Y)
    body, _ = g.ellipse(0.0, 0.15, p["body_ax"] - 0.03, 1.12, soft=1.0)
    bubbles = np.clip(0.5 + 0.6 * _upsample(rng.standard_normal((len(g.X), 14, 14),
                                                                  dtype=np.float32), size), 0, 1)
    return -sev * band * body * (0.4 + 0.6 * bubbles)


def _pneumonia(g, sev, side, mk, rng, size):
    u, v = g.local(side)
    return sev * _bump((u - 0.1) ** 2 / 0.6 ** 2 + (v - 0.45) ** 2 / 0.35 ** 2) * g.lung(side)[0]


def _tortuous_aorta(g, sev, side, mk, rng, size):
    p = g.p
    cx = p["med_w"] + 0.03 + 0.04 * sev
    return g.ellipse(cx, -0.12, 0.06, 0.2, soft=1.0)[0]


def _calcification_aorta(g, sev, side, mk, rng, size):
    cx, cy, r = g.p["med_w"] + 0.01, -0.42, 0.075
    d = np.sqrt((g.X - cx) ** 2 + (g.Y - cy) ** 2)
    w = 0.02 + g.e * 0.5
    ring = _smoothstep(w + g.e, w, np.abs(d - r)) * _smoothstep(cy + 0.03, cy - 0.01, g.Y)
    return (0.6 + 0.4 * sev) * ring


def _pneumoperitoneum(g, sev, side, mk, rng, size):
    p = g.p
    top = g.dome(-1.0) + 0.035
    th = 0.06 + 0.05 * sev
    crescent = _smoothstep(top - g.e, top + g.e, g.Y) * _smoothstep(top + th + g.e, top + th, g.Y)
    lateral = _smoothstep(p["lung_ax"] * 0.95, p["lung_ax"] * 0.6,
                          np.abs(g.X + p["lung_x"]))
    return -crescent * lateral


def _hernia(g, sev, side, mk, rng, size):
    p = g.p
    cx, cy = p["heart_cx"] - 0.02, p["heart_cy"] + 0.02
    r = 0.08 + 0.03 * sev
    air = g.disc(cx, cy, r) * _smoothstep(cy + 0.02, cy - 0.0, g.Y)
    return -air


def _pneumomediastinum(g, sev, side, mk, rng, size):
    p = g.p
    ax = np.abs(g.X)
    mid = p["med_w"] - 0.03
    w = 0.01 + 0.01 * sev + 0.5 * g.e
    streak = _smoothstep(w + g.e, w, np.abs(ax - mid))
    top_of_heart = p["heart_cy"] - 0.7 * p["heart_ay"]
    return -streak * _smoothstep(-0.8, -0.7, g.Y) * _smoothstep(top_of_heart, top_of_heart - 0.1, g.Y)


_FINDINGS = {
    "Infiltration": _infiltration, "Effusion": _effusion, "Atelectasis": _atelectasis,
    "Nodule": _nodule, "Mass": _mass, "Consolidation": _consolidation,
    "Pneumothorax": _pneumothorax, "Pleural Thickening": _pleural_thickening,
    "Edema": _edema, "Fibrosis": _fibrosis, "Subcutaneous Emphysema": _subcutaneous_emphysema,
    "Pneumonia": _pneumonia, "Tortuous Aorta": _tortuous_aorta,
    "Calcification of the Aorta": _calcification_aorta, "Pneumoperitoneum": _pneumoperitoneum,
    "Hernia": _hernia, "Pneumomediastinum": _pneumomediastinum,
}


# ----------------------------------------------------------------------------- figures

def phantom_signatures(image_size: int = 64) -> tuple[list[str], np.ndarray]:
    """One noise-free image per class: each finding alone (severity 1) on the same standard
    patient (mid-range anatomy, neutral pose and exposure); No Finding is the bare background.
    Returns ``(classes, images)`` with images ``(20, size, size)`` uint8."""
    classes = list(NIH_CXR_LT_CLASSES)
    c = len(classes)
    true = np.eye(c, dtype=np.uint8)
    params = {k: np.full(c, (lo + hi) / 2, dtype=np.float32) for k, (lo, hi) in ANATOMY.items()}
    params |= {k: np.full(c, v, dtype=np.float32) for k, v in {
        "contrast": 1.0, "brightness": 0.0, "noise_sd": 0.0, "blur": 0.0, "rot_t": 0.0,
        "shift_x": 0.0, "shift_y": 0.0, "zoom": 1.0, "inspiration": 1.0, "nod_u": 0.1,
        "nod_v": -0.3, "mass_u": -0.2, "mass_v": 0.0, "lobe_dx": 1.0, "lobe_dy": 0.5}.items()}
    severity = np.ones((c, c), dtype=np.float32)
    side = np.full((c, c), -1.0, dtype=np.float32)
    return classes, render(true, severity, side, params, int(image_size), seed=0)


def _grid_figure(images, titles, ncols, title_size=7):
    from matplotlib.figure import Figure

    n = len(images)
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(1.6 * ncols, 1.85 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, img, title in zip(axes.ravel(), images, titles):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=title_size, wrap=True)
    return fig


def _wrap(names: list[str], width: int = 22) -> str:
    lines, line = [], ""
    for name in names:
        if line and len(line) + len(name) + 2 > width:
            lines.append(line + ",")
            line = name
        else:
            line = f"{line}, {name}" if line else name
    return "\n".join(lines + [line])


def sample_grid(dataset: Dataset, n: int = 16, split: str = "train", seed: int = 0):
    """A matplotlib Figure of ``n`` random images of one split titled with their label names."""
    idx = dataset.indices(split)
    if n < 1:
        raise DataError(f"sample_grid: n must be >= 1, got {n!r}")
    pick = np.sort(np.random.default_rng(seed).choice(idx, size=min(n, len(idx)), replace=False))
    images = dataset.images()
    titles = [_wrap([c for c, y in zip(dataset.classes, dataset.labels[i]) if y]) for i in pick]
    return _grid_figure([images[i] for i in pick], titles, ncols=min(len(pick), 4 if n <= 16 else 8))


def signature_grid(image_size: int = 64):
    """A Figure of :func:`phantom_signatures`: every class's finding alone on one patient."""
    classes, images = phantom_signatures(image_size)
    return _grid_figure(images, [_wrap([c], 18) for c in classes], ncols=5)
