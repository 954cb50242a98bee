"""Image files: find them, fingerprint them cheaply, decode them once into a uint8 array.

Every image becomes one ``size x size`` grayscale uint8 frame (no crop; the aspect ratio is not
kept, as in the reference code). The model replicates the channel itself, so the cache holds a
third of what RGB would. Decoding runs in a thread pool (Pillow releases the GIL while it decodes
and resizes) and writes into a preallocated array, so a 100k-image set never holds more than a few
decoded images at once.
"""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from ..progress import tqdm

DECODER_VERSION = 1
"""Bump when :func:`decode_gray` changes its output, so old caches are not reused."""

MAX_REPORTED = 5
"""How many bad file names an error message lists before it just counts."""

_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def fingerprint(paths: Sequence[Path], names: Sequence[str]) -> tuple[str, list[int]]:
    """Digest of the image files' names, sizes and mtimes, and the rows whose file is missing.

    Stat-based on purpose: hashing 100k+ images on every load would read the whole set twice.
    ``names`` are what goes into the digest (paths relative to the image folder), so moving the
    whole folder elsewhere keeps the cache. Returns ``(hex digest, missing row indices)``.
    """
    h = hashlib.sha256()
    missing: list[int] = []
    for i, (path, name) in enumerate(zip(paths, names)):
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            missing.append(i)
            continue
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest(), missing


def decode_gray(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode one image file to a ``(size, size)`` uint8 grayscale array.

    8-bit files keep their values (a constant gray stays that gray). 16-bit grayscale is scaled
    from 0..65535 to 0..255 and resized in floating point, so no precision is lost to clipping
    (Pillow's own 16-to-8-bit conversion clips at 255). Colour and alpha are dropped (ITU-R 601
    luma). JPEGs are decoded at a reduced DCT scale still at least ``size`` pixels wide.
    """
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("L", (size, size))
        img.load()
        if img.mode in _SIXTEEN_BIT:
            arr = np.asarray(img, dtype=np.float32) * (255.0 / 65535.0)
            small = Image.fromarray(arr).resize((size, size), Image.Resampling.BILINEAR)
            return np.clip(np.rint(np.asarray(small)), 0, 255).astype(np.uint8)
        if img.mode != "L":
            img = img.convert("L")
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def decode_into(
    out: np.ndarray,
    paths: Sequence[Path],
    workers: int | None = None,
    desc: str = "decoding images",
) -> list[tuple[int, str]]:
    """Decode ``paths[i]`` into ``out[i]`` for every i, with a progress bar.

    Returns the failures as ``(row index, reason)`` for every file that could not be decoded
    (the caller decides how to report them); the rows of failed files are left as zeros.
    """
    size = out.shape[1]
    workers = default_workers() if workers is None else max(1, int(workers))
    failures: list[tuple[int, str]] = []

    def one(i: int) -> tuple[int, str] | None:
        try:
            out[i] = decode_gray(paths[i], size)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is reported per file
            return i, f"{type(exc).__name__}: {exc}"
        return None

    chunk = 1024  # bounded number of pending futures, whatever the set's size
    with tqdm(total=len(paths), desc=desc, unit="img", dynamic_ncols=True) as bar:
        if workers == 1:
            for i in range(len(paths)):
                if (bad := one(i)) is not None:
                    failures.append(bad)
                bar.update(1)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for start in range(0, len(paths), chunk):
                    for bad in pool.map(one, range(start, min(start + chunk, len(paths)))):
                        if bad is not None:
                            failures.append(bad)
                        bar.update(1)
    return failures


def default_workers() -> int:
    """Decoder threads: the CPUs this process may use, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))
