"""Loaders for label tables in the real formats: NIH-CXR-LT, MIMIC-CXR-LT and any CSV.

Each loader reads and checks its label files first (cheap), stats the image files, and only then
decodes images, once, into the on-disk cache (:func:`prunecxr.data.base.cached_dataset`). A bad
input fails before any decoding with a :class:`DataError` that names the file and its line (the
header is line 1), the column or the image at fault; nothing complete is cached for it.

Identity of a cached set: loader name and options, the label files' SHA-256, and the image files'
names, sizes and modification times (not their bytes: reading 100k+ images twice to hash them
would double the cost of every load).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from numpy.lib.format import open_memmap

from .base import SPLITS, DataError, Dataset, cache_folder, cached_dataset, digest
from .classes import MIMIC_CXR_LT_CLASSES, NIH_CXR_LT_CLASSES
from ..io import sha256_file
from .images import DECODER_VERSION, MAX_REPORTED, decode_into, fingerprint

NIH_LABEL_FILE = "miccai2023_nih-cxr-lt_labels_{split}.csv"
MIMIC_LABEL_FILE = "miccai2023_mimic-cxr-lt_labels_{split}.csv"

PATIENT_COLUMNS = ("patient", "patient_id", "subject_id", "subj_id", "Patient ID")
"""Columns :func:`load_csv` takes as the patient column when none is named (first one present)."""

ID_COLUMNS = frozenset(c.lower() for c in (
    *PATIENT_COLUMNS, "id", "image_id", "image", "path", "file", "filename", "split",
    "study_id", "dicom_id", "Image Index",
))
"""Column names (any case) that :func:`load_csv` never takes as class columns by default."""

SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validate": "val", "validation": "val",
    "test": "test", "testing": "test",
}
"""Accepted split values (any case, e.g. MIMIC-CXR's own 'validate')."""

_RESERVED = ("image_id", "patient", "split", "path")

UNCERTAIN_POLICIES = ("error", "zero", "one")
"""What :func:`load_csv` does with an uncertain label (-1, as in CheXpert-style tables): reject
it (the default), count it as 0 (negative) or as 1 (positive). There is no "ignore" (a masked
label): training's loss and the AP metrics have no mask, so a policy must pick 0 or 1."""

UNCERTAIN_VALUES = ("-1", "-1.0")


@dataclass
class _Rows:
    """Label rows read from one or more CSV files, all values as stripped strings."""

    frame: pd.DataFrame
    files: np.ndarray  # file name of each row
    lines: np.ndarray  # 1-based line of each row in its file (the header is line 1)
    source: str = ""  # the file (or files) read, for messages about the whole table

    def at(self, i: int) -> str:
        return f"{self.files[i]}, line {self.lines[i]}"

    def __len__(self) -> int:
        return len(self.frame)


# --------------------------------------------------------------------------- public loaders


def _benchmark_tables(files, classes, id_col: str, id_name: str, patient_col: str):
    """Read the three split files of a benchmark and check ids: (rows, labels, ids, patient).

    ``patient`` is None when the optional ``patient_col`` is absent (the caller parses it).
    """
    rows = _read_split_files(files, [id_col, *classes])
    labels = _binary_labels(rows, classes)
    ids = rows.frame[id_col].to_numpy()
    _check_nonempty_values(rows, id_col)
    _check_unique(rows, ids, id_name)
    patient = None
    if patient_col in rows.frame:
        _check_nonempty_values(rows, patient_col)
        patient = rows.frame[patient_col].to_numpy()
    return rows, labels, ids, patient


def load_nih_cxr_lt(
    data_dir: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    image_size: int = 256,
    cache_dir: str | os.PathLike | None = None,
    channels: int = 1,
    workers: int | None = None,
) -> Dataset:
    """NIH-CXR-LT (20 classes) from ``miccai2023_nih-cxr-lt_labels_{train,val,test}.csv``.

    ``data_dir`` holds the three label files (columns ``id``, ``subj_id`` and the 20 classes).
    Images are looked up by ``id`` in ``images_dir`` (default ``data_dir/images``) and in NIH's
    ``images_*/images/`` sub-folders under it (or under ``data_dir``). ``workers`` decoder
    threads (default: up to 8 CPUs) change speed only, never the result.
    """
    _check_options(image_size, channels)
    data_dir = Path(data_dir).expanduser().absolute()
    files = [data_dir / NIH_LABEL_FILE.format(split=s) for s in SPLITS]
    classes = list(NIH_CXR_LT_CLASSES)
    rows, labels, ids, patient = _benchmark_tables(files, classes, "id", "image id", "subj_id")
    if patient is None:  # NIH file names start with the patient number: 00000001_000.png
        patient = np.array([str(int(m.group(1))) if (m := re.match(r"(\d+)_", i)) else ""
                            for i in ids], dtype=object)
        _check_parsed(rows, patient, "patient (no subj_id column; parsed from id)")
    split = rows.frame["split"].to_numpy()
    _check_patients(rows, patient, split)

    base = Path(images_dir).expanduser().absolute() if images_dir else data_dir / "images"
    dirs = [base, *sorted(base.glob("images_*/images"))]
    if images_dir is None:
        dirs += sorted(data_dir.glob("images_*/images"))
    where = _index_files([d for d in dirs if d.is_dir()])
    paths = [where.get(i, base) / i for i in ids]
    hint = (f"looked in {base} and its images_*/images/ sub-folders"
            + ("" if images_dir else f" and {data_dir}/images_*/images/"))

    meta = _meta(rows, ids, patient, split, paths, drop=("id", "subj_id", *classes))
    return _finish("nih-cxr-lt", {"image_size": image_size, "channels": channels}, files,
                   classes, labels, meta, rows, list(ids), image_size, cache_dir, workers, hint)


def load_mimic_cxr_lt(
    data_dir: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    image_size: int = 256,
    cache_dir: str | os.PathLike | None = None,
    channels: int = 1,
    workers: int | None = None,
) -> Dataset:
    """MIMIC-CXR-LT (19 classes) from ``miccai2023_mimic-cxr-lt_labels_{train,val,test}.csv``.

    ``path`` is relative to the ``mimic-cxr-jpg/2.0.0`` root, ``images_dir``; by default the
    first of ``data_dir``, ``data_dir/mimic-cxr-jpg/2.0.0`` and
    ``data_dir/physionet.org/files/mimic-cxr-jpg/2.0.0`` that has a ``files/`` folder. The patient
    is ``subject_id`` when present, else the ``pNNNNNNNN`` folder of the path without its ``p``
    (the same number). ``image_id`` is the relative path.
    """
    _check_options(image_size, channels)
    data_dir = Path(data_dir).expanduser().absolute()
    files = [data_dir / MIMIC_LABEL_FILE.format(split=s) for s in SPLITS]
    classes = list(MIMIC_CXR_LT_CLASSES)
    rows, labels, rel, patient = _benchmark_tables(files, classes, "path", "image path",
                                                   "subject_id")
    if patient is None:
        patient = np.array([m.group(1) if (m := re.search(r"(?:^|/)p(\d+)/s\d+/", p)) else ""
                            for p in rel], dtype=object)
        _check_parsed(rows, patient, "patient (no subject_id column; parsed from path "
                                     "files/pXX/pNNNNNNNN/sNNNNNNNN/...)")
    split = rows.frame["split"].to_numpy()
    _check_patients(rows, patient, split)

    if images_dir is not None:
        root = Path(images_dir).expanduser().absolute()
    else:
        options = [data_dir, data_dir / "mimic-cxr-jpg" / "2.0.0",
                   data_dir / "physionet.org" / "files" / "mimic-cxr-jpg" / "2.0.0"]
        root = next((d for d in options if (d / "files").is_dir()), data_dir)
    paths = [root / p for p in rel]
    meta = _meta(rows, rel, patient, split, paths, drop=("path", *classes))
    return _finish("mimic-cxr-lt", {"image_size": image_size, "channels": channels}, files,
                   classes, labels, meta, rows, list(rel), image_size, cache_dir, workers,
                   f"paths are relative to {root} (the mimic-cxr-jpg/2.0.0 root)")


def load_csv(
    csv: str | os.PathLike,
    image_root: str | os.PathLike | None = None,
    image_col: str = "path",
    class_cols: Sequence[str] | None = None,
    patient_col: str | None = None,
    split_col: str | None = None,
    image_size: int = 256,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    channels: int = 1,
    workers: int | None = None,
    uncertain: str = "error",
) -> Dataset:
    """Any multi-label image set described by one CSV file.

    ``image_col`` holds image paths, absolute or relative to ``image_root`` (default: the CSV's
    folder). ``class_cols`` (a list, or one comma-separated string as ``--set
    data.class_cols=A,B`` gives it) default to every column that is not the image, patient or
    split column nor a known id column (:data:`ID_COLUMNS`); each must hold only 0/1, and -1
    (uncertain) too when ``uncertain`` is ``zero`` or ``one`` (:data:`UNCERTAIN_POLICIES`).
    ``patient_col`` defaults to the first of :data:`PATIENT_COLUMNS` present, else every image
    is its own patient. ``split_col`` defaults to ``split`` if present (values train/val/test or
    an alias in :data:`SPLIT_ALIASES`), else a patient-level 70/10/20 split of the patients drawn
    with ``seed``.
    """
    check_options(image_size=image_size, channels=channels, uncertain=uncertain)
    if isinstance(class_cols, str):
        class_cols = [c.strip() for c in class_cols.split(",") if c.strip()]
    csv = Path(csv).expanduser().absolute()
    rows = _read_csv(csv)
    cols = list(rows.frame.columns)
    _require_columns(rows, [image_col], hint=(
        f"; name the column of image paths with --set data.image_col=<column> (now "
        f"{image_col!r})"))
    if patient_col is None:
        patient_col = next((c for c in PATIENT_COLUMNS if c in cols), None)
    else:
        _require_columns(rows, [patient_col])
    if split_col is None:
        split_col = "split" if "split" in cols else None
    else:
        _require_columns(rows, [split_col])
    if class_cols is None:
        used = {image_col, patient_col, split_col}
        class_cols = [c for c in cols if c not in used and c.lower() not in ID_COLUMNS]
        default_note = ("; class columns default to every column that is not the image, patient "
                        "or split column nor a known id column: choose them with "
                        "--set data.class_cols=A,B,C")
    else:
        class_cols = list(class_cols)
        _require_columns(rows, class_cols)
        default_note = ""
    if not class_cols:
        raise DataError(f"{csv}: no class columns (columns: {cols})")
    labels = _binary_labels(rows, class_cols, note=default_note, uncertain=uncertain)

    image_ids = rows.frame[image_col].to_numpy()
    _check_nonempty_values(rows, image_col)
    _check_unique(rows, image_ids, f"image ({image_col!r})")
    if patient_col is not None:
        _check_nonempty_values(rows, patient_col)
        patient = rows.frame[patient_col].to_numpy()
    else:
        patient = image_ids.copy()
    if split_col is not None:
        split = _parse_splits(rows, split_col)
    else:
        split = patient_split(patient, seed=seed)
    _check_patients(rows, patient, split)
    for s in SPLITS:
        if not (split == s).any():
            how = f"column {split_col!r}" if split_col else f"the seeded split (seed={seed})"
            raise DataError(f"{csv}: the {s!r} split is empty ({how}; "
                            f"{len(set(patient))} patient(s) in total)")

    root = Path(image_root).expanduser().absolute() if image_root is not None else csv.parent
    paths = [root / p for p in image_ids]  # an absolute p replaces root
    meta = _meta(rows, image_ids, patient, split, paths,
                 drop=(image_col, patient_col, split_col, *class_cols))
    options = {"image_size": image_size, "channels": channels, "image_col": image_col,
               "class_cols": class_cols, "patient_col": patient_col, "split_col": split_col,
               "seed": seed if split_col is None else None}
    if uncertain != "error":  # part of the cache identity only when it can change labels
        options["uncertain"] = uncertain
    return _finish("csv", options, [csv], class_cols, labels, meta, rows, list(image_ids),
                   image_size, cache_dir, workers, f"relative paths are resolved against {root}")


def patient_split(patient: Sequence[str], seed: int = 0,
                  fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> np.ndarray:
    """A seeded patient-level train/val/test split; returns the split of every row.

    The distinct patients, sorted (so row order does not matter), are shuffled with
    ``numpy.random.default_rng(seed)``; the first 70% go to train, the next 10% to val, the rest
    to test, each split getting at least one patient when there are three or more.
    """
    patient = np.asarray(patient, dtype=str)
    unique = np.unique(patient)
    n = len(unique)
    n_val = max(1, round(fractions[1] * n)) if n >= 3 else 0
    n_test = max(1, round(fractions[2] * n)) if n >= 3 else 0
    n_train = n - n_val - n_test
    order = np.random.default_rng(seed).permutation(n)
    of_patient = np.empty(n, dtype=object)
    of_patient[order[:n_train]] = "train"
    of_patient[order[n_train:n_train + n_val]] = "val"
    of_patient[order[n_train + n_val:]] = "test"
    return of_patient[np.searchsorted(unique, patient)]


# --------------------------------------------------------------------------- reading and checks


def check_options(image_size: int = 256, channels: int = 1, uncertain: str = "error",
                  **_) -> None:
    """The loaders' option values (the others are checked as their files are read): a
    :class:`DataError` naming the bad one."""
    _check_options(image_size, channels)
    if uncertain not in UNCERTAIN_POLICIES:
        extra = (" ('ignore', a masked label, is not supported: the loss and the AP metrics "
                 "have no mask)" if uncertain == "ignore" else "")
        raise DataError(f"data.uncertain must be one of {', '.join(UNCERTAIN_POLICIES)}, got "
                        f"{uncertain!r}{extra}")


def _check_options(image_size: int, channels: int) -> None:
    if not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise DataError(f"image_size must be a positive integer, got {image_size!r}")
    if channels != 1:
        raise DataError(f"channels must be 1, got {channels!r}: images are cached as one "
                        "grayscale channel and the model repeats it to three")


def _read_csv(path: Path) -> _Rows:
    """Read one CSV with every value a stripped string; blank lines are skipped, not counted."""
    if path.is_dir():
        csvs = sorted(n for n in _names_in(path) if n.lower().endswith(".csv"))[:3]
        there = f"; CSV files there: {', '.join(csvs)}" if csvs else "; it holds no .csv file"
        raise DataError(f"{path} is a folder; pass the label CSV file itself{there}")
    if not path.is_file():
        near = difflib.get_close_matches(path.name, _names_in(path.parent), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise DataError(f"label file not found: {path}{hint}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.apply(lambda col: col.str.strip())
    lines = np.arange(len(frame)) + 2
    blank = (frame == "").all(axis=1).to_numpy()
    frame = frame.loc[~blank].reset_index(drop=True)
    return _Rows(frame, np.full(len(frame), path.name, dtype=object), lines[~blank], str(path))


def _read_split_files(files: Sequence[Path], required: Sequence[str]) -> _Rows:
    """The three label files (train, val, test) as one table with a ``split`` column.

    Each file is checked on its own for the ``required`` columns, so the error names it.
    """
    parts = []
    for path, split in zip(files, SPLITS):
        part = _read_csv(path)
        _require_columns(part, required)
        if "split" in part.frame.columns:
            raise DataError(f"{path}: has its own 'split' column; the split comes from the file")
        if len(part) == 0:
            raise DataError(f"{path}: no data rows, so the {split!r} split is empty")
        part.frame["split"] = split
        parts.append(part)
    frame = pd.concat([p.frame for p in parts], ignore_index=True).fillna("")
    return _Rows(frame, np.concatenate([p.files for p in parts]),
                 np.concatenate([p.lines for p in parts]), ", ".join(str(f) for f in files))


def _require_columns(rows: _Rows, required: Sequence[str], hint: str = "") -> None:
    """Every required column exists; suggest the closest present name for a missing one
    (``hint`` ends the message)."""
    present = list(rows.frame.columns)
    missing = [c for c in required if c not in present]
    if missing:
        extra = [c for c in present if c not in required]
        hints = []
        for c in missing:
            near = difflib.get_close_matches(c, extra, n=1, cutoff=0.6)
            hints.append(f"{c!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        raise DataError(f"{rows.source}: missing column(s) {', '.join(hints)}; "
                        f"columns present: {present}{hint}")


def _binary_labels(rows: _Rows, classes: Sequence[str], note: str = "",
                   uncertain: str | None = None) -> np.ndarray:
    """The class columns as a uint8 matrix; every value must be 0 or 1 (1.0 and 0.0 accepted),
    or -1 (uncertain) read as 0 or 1 when ``uncertain`` is ``zero`` or ``one`` (None: the
    loader has no policy, so the message does not offer one)."""
    out = np.zeros((len(rows), len(classes)), dtype=np.uint8)
    for j, c in enumerate(classes):
        col = rows.frame[c]
        ones = col.isin(("1", "1.0")).to_numpy()
        unsure = col.isin(UNCERTAIN_VALUES).to_numpy()
        bad = ~(ones | col.isin(("0", "0.0")).to_numpy())
        if uncertain in ("zero", "one"):
            bad &= ~unsure
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            hint = note
            if unsure[i] and uncertain == "error":
                hint = ("; -1 is an uncertain label: read it as 0 or 1 with --set "
                        "data.uncertain=zero or --set data.uncertain=one")
            raise DataError(f"{rows.at(i)}: column {c!r} has value {col.iloc[i]!r}, expected 0 "
                            f"or 1 ({int(bad.sum())} such value(s) in that column){hint}")
        out[:, j] = ones | (unsure & (uncertain == "one"))
    return out


def _check_nonempty_values(rows: _Rows, column: str) -> None:
    empty = (rows.frame[column] == "").to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise DataError(f"{rows.at(i)}: column {column!r} is empty "
                        f"({int(empty.sum())} empty value(s))")


def _check_parsed(rows: _Rows, values: np.ndarray, what: str) -> None:
    bad = values == ""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{rows.at(i)}: cannot determine the {what} "
                        f"({int(bad.sum())} row(s) like this)")


def _check_unique(rows: _Rows, ids: np.ndarray, what: str) -> None:
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        first = ids[np.flatnonzero(dup)[0]]
        at = [rows.at(int(i)) for i in np.flatnonzero(ids == first)]
        n = len(set(ids[dup]))
        raise DataError(f"duplicate {what} {first!r} at {' and '.join(at)} "
                        f"({n} duplicated value(s) in total)")


def _check_patients(rows: _Rows, patient: np.ndarray, split: np.ndarray) -> None:
    """No patient in two splits (the splits must be patient-level)."""
    frame = pd.DataFrame({"patient": patient, "split": split})
    n_splits = frame.groupby("patient", sort=False)["split"].nunique()
    leaked = n_splits.index[n_splits.to_numpy() > 1]
    if len(leaked):
        p = leaked[0]
        idx = np.flatnonzero(patient == p)
        seen: dict[str, str] = {}
        for i in idx:
            seen.setdefault(split[i], rows.at(int(i)))
        where = "; ".join(f"{s} at {loc}" for s, loc in seen.items())
        raise DataError(f"patient {p!r} is in several splits ({where}); splits must be "
                        f"patient-level ({len(leaked)} patient(s) affected)")


def _parse_splits(rows: _Rows, column: str) -> np.ndarray:
    raw = rows.frame[column].str.lower()
    split = raw.map(SPLIT_ALIASES)
    bad = split.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{rows.at(i)}: column {column!r} has value "
                        f"{rows.frame[column].iloc[i]!r}, expected one of {SPLITS} "
                        f"({int(bad.sum())} such value(s))")
    return split.to_numpy(dtype=object)


def _names_in(folder: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(folder)]
    except OSError:
        return []


def _index_files(dirs: Sequence[Path]) -> dict[str, Path]:
    """File name -> folder over ``dirs`` (first folder wins); one listing per folder."""
    where: dict[str, Path] = {}
    for d in reversed(dirs):
        where.update({name: d for name in _names_in(d)})
    return where


def _meta(rows: _Rows, image_id, patient, split, paths, drop: Sequence[str | None]) -> pd.DataFrame:
    """Row-aligned metadata: image_id, patient, split, path, then the source's other columns."""
    meta = pd.DataFrame({"image_id": np.asarray(image_id, dtype=str),
                         "patient": np.asarray(patient, dtype=str),
                         "split": np.asarray(split, dtype=str),
                         "path": [str(p) for p in paths]})
    for c in rows.frame.columns:
        if c in drop or c == "split":
            continue
        meta[f"source_{c}" if c in _RESERVED else c] = rows.frame[c].to_numpy()
    return meta


# --------------------------------------------------------------------------- decode and cache


def _finish(name: str, options: dict, label_files: Sequence[Path], classes: Sequence[str],
            labels: np.ndarray, meta: pd.DataFrame, rows: _Rows, names: list[str],
            image_size: int, cache_dir, workers: int | None, hint: str) -> Dataset:
    """Check the image files exist, then load the cache or decode the images into it."""
    paths = [Path(p) for p in meta["path"]]
    image_digest, missing = fingerprint(paths, names)
    if missing:
        listed = "; ".join(f"{paths[i]} ({rows.at(i)})" for i in missing[:MAX_REPORTED])
        more = f" and {len(missing) - MAX_REPORTED} more" if len(missing) > MAX_REPORTED else ""
        raise DataError(f"{name}: {len(missing)} of {len(paths)} image file(s) missing: "
                        f"{listed}{more} ({hint})")
    identity = digest(name, options, DECODER_VERSION, list(classes),
                      {p.name: sha256_file(p) for p in label_files}, image_digest)
    folder = cache_folder(name, identity, cache_dir)
    partial = folder.parent / f".{folder.name}.images.partial.npy"

    def build():
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        out = open_memmap(partial, mode="w+", dtype=np.uint8,
                          shape=(len(paths), image_size, image_size))
        failures = decode_into(out, paths, workers=workers, desc=f"decoding {name}")
        out.flush()
        del out
        if failures:
            listed = "; ".join(f"{paths[i]} ({rows.at(i)}): {why}"
                               for i, why in failures[:MAX_REPORTED])
            more = (f" and {len(failures) - MAX_REPORTED} more"
                    if len(failures) > MAX_REPORTED else "")
            raise DataError(f"{name}: {len(failures)} of {len(paths)} image file(s) could not "
                            f"be decoded: {listed}{more}")
        return list(classes), labels, meta, partial

    try:
        ds = cached_dataset(name, identity, image_size, build, cache_dir=cache_dir)
    finally:
        partial.unlink(missing_ok=True)
    ds.meta["path"] = [str(p) for p in paths]  # the folder may have moved since it was cached
    return ds
