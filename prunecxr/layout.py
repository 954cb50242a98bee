"""The results folder's layout, declared once: every path the pipeline writes and the store reads.

::

    <results root>/<profile>-<dataset>-<config key>-<dataset identity, 8 hex>/   (folder_name)
        config.json  dataset.json  manifest.json
        test_labels.npy  test_meta.csv  [test_images.npy]
        models/seed_XXX/   best.pt  last.pt (while training)  done.json  history.csv
        predictions/<method>/seed_XXX.npy   + seed_XXX.json (sidecar: shape, levels, achieved
                                              facts, sha256)  + seed_XXX.partial.npz (while sweeping)
        slurm/jobs.json  slurm/logs/

Writers (:mod:`prunecxr.train`, :mod:`prunecxr.sweep`, :mod:`prunecxr.pipeline`,
:mod:`prunecxr.cluster`) and the reader (:mod:`prunecxr.store`) take their paths from here, so
reading a results folder needs no training code. The ground floor of the package: imports
only :mod:`prunecxr.io` (for the sidecar check).
"""

from __future__ import annotations

from pathlib import Path

from . import io

CONFIG = "config.json"          # the Config's result fields and its key
DATASET = "dataset.json"        # name, identity, classes, split sizes and counts
MANIFEST = "manifest.json"      # stage times and throughput, versions, machine
TEST_LABELS = "test_labels.npy"
TEST_META = "test_meta.csv"
TEST_IMAGES = "test_images.npy"  # copied only when small enough (dataset.json says)
# What a results folder has once its data stage is done (the store refuses one without them).
DATA_FILES = (DATASET, CONFIG, TEST_LABELS, TEST_META)

BEST = "best.pt"          # lowest-validation-loss weights (a state dict)
LAST = "last.pt"          # the epoch checkpoint a resumed run starts from; gone when done
DONE = "done.json"        # the seed's training summary; marks it finished
HISTORY = "history.csv"   # one row per epoch

SLURM_JOBS = Path("slurm") / "jobs.json"  # which SLURM job holds which seed
SLURM_LOGS = Path("slurm") / "logs"       # submitit's logs


def folder_name(profile: str, dataset: str, key: str, identity: str) -> str:
    """A results folder's name: the profile, dataset, config key and dataset identity, so a
    changed parameter or changed data never reuses stale results."""
    return f"{profile}-{dataset}-{key}-{identity[:8]}"


def seed_dir(results_dir: str | Path, seed: int) -> Path:
    """The folder of one seed's trained model."""
    return Path(results_dir) / "models" / f"seed_{seed:03d}"


def prediction_path(results_dir: str | Path, method: str, seed: int) -> Path:
    """One (method, seed) prediction array, ``(levels, test images, classes)`` float32."""
    return Path(results_dir) / "predictions" / method / f"seed_{seed:03d}.npy"


def sidecar_path(predictions: Path) -> Path:
    """The JSON sidecar of a prediction array."""
    return predictions.with_suffix(".json")


def partial_path(predictions: Path) -> Path:
    """The levels of an unfinished sweep, saved after each one (resumed from)."""
    return predictions.with_suffix(".partial.npz")


def verify_predictions(path: Path, shape: tuple[int, ...] | None = None) -> dict | None:
    """The sidecar of a finished prediction file if the file is intact (its sha256, and
    ``shape`` when given, match the sidecar's), else None."""
    side = sidecar_path(path)
    if not (path.exists() and side.exists()):
        return None
    try:
        info = io.read_json(side)
    except ValueError:
        return None
    if info.get("sha256") != io.sha256_file(path):
        return None
    if shape is not None and tuple(info.get("shape", ())) != tuple(shape):
        return None
    return info
