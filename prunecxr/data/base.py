"""The one dataset interface every loader returns, and its on-disk cache.

A :class:`Dataset` exposes ``classes``, a 0/1 ``labels`` matrix (n_images x n_classes) and a
row-aligned ``meta`` frame (at least ``image_id``, ``patient``, ``split``). Images are decoded
once into a uint8 array ``(n_images, size, size)`` cached on disk and memory-mapped, so no
epoch and no sparsity level ever decodes an image file again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import io
from ..errors import DataError
from ..paths import data_cache

SPLITS = ("train", "val", "test")
CACHE_FORMAT = 1


@dataclass
class Dataset:
    """Images, labels and metadata of one multi-label image set, row-aligned."""

    name: str
    classes: list[str]
    labels: np.ndarray
    meta: pd.DataFrame
    identity: str
    image_size: int
    images_path: Path | None = None
    _images: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.uint8)
        if self.labels.shape != (len(self.meta), len(self.classes)):
            raise DataError(
                f"{self.name}: labels have shape {self.labels.shape}, expected "
                f"({len(self.meta)}, {len(self.classes)})"
            )

    def __len__(self) -> int:
        return len(self.meta)

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split ('train', 'val' or 'test')."""
        if split not in SPLITS:
            raise DataError(f"split must be one of {SPLITS}, got {split!r}")
        return np.flatnonzero(self.meta["split"].to_numpy() == split)

    def images(self, split: str | None = None) -> np.ndarray:
        """uint8 images ``(n, size, size)``; all rows, or one split's rows in row order."""
        if self._images is None:
            if self.images_path is None:
                raise DataError(f"{self.name}: no image array attached")
            self._images = np.load(self.images_path, mmap_mode="r")
        return self._images if split is None else np.asarray(self._images[self.indices(split)])

    def split_labels(self, split: str) -> np.ndarray:
        return self.labels[self.indices(split)]

    def split_meta(self, split: str) -> pd.DataFrame:
        return self.meta.iloc[self.indices(split)].reset_index(drop=True)

    def counts(self, split: str = "train") -> pd.Series:
        """Positives per class in one split, indexed by class name."""
        return pd.Series(self.split_labels(split).sum(axis=0).astype(int), index=self.classes)


def digest(*parts: object) -> str:
    """A stable hex digest of JSON-serialisable parts (used for dataset identity and keys)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def validate_splits(meta: pd.DataFrame, labels: np.ndarray, classes: list[str], source: str) -> None:
    """Check the split column: known values, no empty split, no patient in two splits.

    A class with no positives in a split is a warning, not an error (AP is then NaN there).
    """
    bad = ~meta["split"].isin(SPLITS)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{source}: row {row}: split {meta['split'].iloc[row]!r} is not one of {SPLITS}"
        )
    for split in SPLITS:
        if not (meta["split"] == split).any():
            raise DataError(f"{source}: the {split!r} split is empty")
    per_patient = meta.groupby("patient")["split"].nunique()
    leaked = per_patient[per_patient > 1]
    if len(leaked):
        patient = leaked.index[0]
        splits = sorted(meta.loc[meta["patient"] == patient, "split"].unique())
        raise DataError(
            f"{source}: patient {patient!r} appears in several splits {splits} "
            f"({len(leaked)} patient(s) in total); splits must be patient-level"
        )
    for split in SPLITS:
        counts = labels[meta["split"].to_numpy() == split].sum(axis=0)
        empty = [c for c, n in zip(classes, counts) if n == 0]
        if empty:
            warnings.warn(
                f"{source}: no positives in the {split} split for {empty}; "
                "their AP is NaN and excluded from means",
                stacklevel=3,
            )


Builder = Callable[[], tuple[list[str], np.ndarray, pd.DataFrame, "np.ndarray | Path"]]


def cache_folder(name: str, identity: str, cache_dir: str | Path | None = None) -> Path:
    """The folder that holds the cache of dataset ``name`` with this ``identity``."""
    root = Path(cache_dir) if cache_dir is not None else data_cache()
    return root / f"{name}-{identity[:16]}"


def cached_dataset(
    name: str, identity: str, image_size: int, build: Builder, cache_dir: str | Path | None = None
) -> Dataset:
    """Load the dataset cached under ``identity``, or ``build()`` it and cache it atomically.

    ``build`` returns ``(classes, labels, meta, images)``; ``images`` is a uint8 array or the
    path of a finished uint8 ``.npy`` file on the same file system as the cache (a large set
    decoded into a memory map), which is moved into place rather than copied. The files are
    written one by one,
    each atomically, and a ``complete.json`` marker last: a folder without the marker (an
    interrupted build) is rebuilt from scratch, never half-read.
    """
    folder = cache_folder(name, identity, cache_dir)
    root = folder.parent
    marker = folder / "complete.json"
    if marker.exists():
        try:
            info = io.read_json(marker)
            if info.get("identity") == identity and info.get("format") == CACHE_FORMAT:
                classes = io.read_json(folder / "classes.json")
                labels = np.load(folder / "labels.npy")
                meta = pd.read_csv(folder / "meta.csv", keep_default_na=False, na_values=[""],
                                   dtype={"patient": str, "image_id": str})
                images = np.load(folder / "images.npy", mmap_mode="r")
                if images.shape[0] == len(meta) == labels.shape[0]:
                    return Dataset(name, classes, labels, meta, identity, image_size,
                                   folder / "images.npy")
        except (OSError, ValueError, KeyError) as exc:  # corrupt cache: rebuild it
            warnings.warn(f"{folder}: unreadable cache ({exc}); rebuilding", stacklevel=2)
    if folder.exists():
        shutil.rmtree(folder)
    classes, labels, meta, images = build()
    labels = np.asarray(labels, dtype=np.uint8)
    meta = meta.reset_index(drop=True)
    validate_splits(meta, labels, list(classes), name)
    if isinstance(images, (str, Path)):
        _adopt_npy(Path(images), folder / "images.npy", len(meta), name)
    else:
        io.save_npy(folder / "images.npy", np.asarray(images, dtype=np.uint8))
    io.save_npy(folder / "labels.npy", labels)
    with io.atomic_path(folder / "meta.csv") as tmp:
        meta.to_csv(tmp, index=False)
    io.write_json(folder / "classes.json", list(classes))
    io.write_json(marker, {"identity": identity, "format": CACHE_FORMAT, "name": name,
                           "n_images": int(len(meta)), "image_size": int(image_size)})
    return cached_dataset(name, identity, image_size, build, cache_dir=root)


def _adopt_npy(source: Path, target: Path, n_rows: int, name: str) -> None:
    """Move a finished image ``.npy`` into the cache after checking its dtype and row count."""
    arr = np.load(source, mmap_mode="r")
    ok = arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[0] == n_rows
    shape, dtype = arr.shape, arr.dtype
    del arr
    if not ok:
        raise DataError(f"{name}: image array {source} is {dtype} {shape}, "
                        f"expected uint8 ({n_rows}, size, size)")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
