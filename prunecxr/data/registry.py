"""The datasets, one entry each: the one place a new dataset is declared.

An entry names its loader (``module:function``, imported on first use), what ``--data-dir``
(chapter parameter ``data_dir``) must be for it (nothing, a folder or a CSV file) and which
loader keyword receives it, a description for the book and a rerun example for the chapters'
closing commands. :func:`get_dataset`, the configuration's dataset options, the CLI's and the
chapters' data checks, the rerun commands and the book's dataset facts all read it, so adding a
dataset touches its entry here and its loader module only.

Imports nothing heavy (the CLI's ``--help`` lists the names).
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import DataError, UsageError, did_you_mean, option, option_value

if TYPE_CHECKING:
    from .base import Dataset


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset: how to load it and how to describe it."""

    name: str
    loader: str  # "module:function", relative to prunecxr.data
    data_dir: str | None  # None: reads no files; "folder"; "file" (a CSV file)
    data_dir_option: str | None  # the loader keyword that receives --data-dir
    holds: str  # what --data-dir must hold (for messages and the rerun comment)
    description: str  # for the book (a phrase, after "the dataset is ...")
    example: str = ""  # a --data-dir for the rerun commands
    rerun_profile: str = "paper"  # the profile of the rerun example
    sizes: Callable[[dict], dict] | None = None  # loader options -> images per split, read
    #   without decoding anything (for run --dry-run); None: unknown until loaded
    check: Callable[[dict], None] | None = None  # loader options (defaults filled in) ->
    #   DataError for a bad value, before anything runs; None: the loader checks them itself

    def load_function(self) -> Callable:
        module, _, function = self.loader.partition(":")
        return getattr(importlib.import_module(module, __package__), function)

    def options(self) -> list[str]:
        """Keyword options of the loader (what ``--set data.<option>=...`` may name)."""
        return list(inspect.signature(self.load_function()).parameters)

    def user_options(self) -> list[str]:
        """Options a user sets with ``data.<option>`` (the data folder comes from data_dir)."""
        return [o for o in self.options() if o != self.data_dir_option]


FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}  # the default patient-level split


def _by_fraction(n: int) -> dict:
    return {s: round(f * n) for s, f in FRACTIONS.items()}


def _rows(path: Path) -> int:
    """Data rows of a CSV file (non-blank lines after the header)."""
    with open(path, "rb") as fh:
        return max(0, sum(1 for line in fh if line.strip()) - 1)


def _phantom_sizes(options: dict) -> dict:
    from .phantom import DEFAULT_N_IMAGES, SPLIT_FRACTIONS

    n = int(options.get("n_images") or DEFAULT_N_IMAGES)
    return {s: round(f * n) for s, f in SPLIT_FRACTIONS.items()}


def _phantom_check(o: dict) -> None:
    from .phantom import _validate

    _validate(o["n_images"], o["image_size"], o["seed"], o["label_noise"])


def _tables_check(o: dict) -> None:
    from .tables import check_options

    check_options(**o)


def _split_file_sizes(pattern: str) -> Callable[[dict], dict]:
    """Sizes from one label file per split, ``pattern`` with ``{split}``, under data_dir."""
    return lambda options: {s: _rows(Path(options["data_dir"]) / pattern.format(split=s))
                            for s in FRACTIONS}


REGISTRY: dict[str, DatasetEntry] = {e.name: e for e in (
    DatasetEntry(
        "phantom", ".phantom:load_phantom", None, None,
        "nothing: the phantom is generated",
        "a synthetic chest X-ray phantom whose class frequencies and co-occurrences follow the "
        "public NIH ChestX-ray14 metadata, and which records every image's ground truth (label "
        "noise, image quality, difficulty)", sizes=_phantom_sizes, check=_phantom_check),
    DatasetEntry(
        "nih-cxr-lt", ".tables:load_nih_cxr_lt", "folder", "data_dir",
        "the folder with the miccai2023_nih-cxr-lt_labels_{train,val,test}.csv files and the "
        "NIH images (images/ or images_*/images/)",
        "NIH ChestX-ray14 with the 20 long-tailed NIH-CXR-LT labels", "/data/nih-cxr-lt",
        sizes=_split_file_sizes("miccai2023_nih-cxr-lt_labels_{split}.csv"), check=_tables_check),
    DatasetEntry(
        "mimic-cxr-lt", ".tables:load_mimic_cxr_lt", "folder", "data_dir",
        "the folder with the miccai2023_mimic-cxr-lt_labels_{train,val,test}.csv files and the "
        "mimic-cxr-jpg/2.0.0 root",
        "MIMIC-CXR-JPG (frontal views) with the 19 long-tailed MIMIC-CXR-LT labels",
        "/data/mimic-cxr-lt",
        sizes=_split_file_sizes("miccai2023_mimic-cxr-lt_labels_{split}.csv"),
        check=_tables_check),
    DatasetEntry(
        "csv", ".tables:load_csv", "file", "csv",
        "the CSV file itself (an image path column, 0/1 class columns, optional patient and "
        "split columns)",
        "a multi-label image set described by a CSV file", "/data/my_labels.csv",
        rerun_profile="default", sizes=lambda options: _by_fraction(_rows(Path(options["csv"]))),
        check=_tables_check),
)}

DATASETS = tuple(REGISTRY)


def entry(name: str) -> DatasetEntry:
    """The registry entry of dataset ``name``; :class:`UsageError` naming the choices."""
    if name not in REGISTRY:
        raise UsageError(f"{option('dataset')} must be one of {', '.join(DATASETS)}, got "
                         f"{name!r}{did_you_mean(name, DATASETS)}")
    return REGISTRY[name]


def get_dataset(name: str, **options) -> Dataset:
    """Build or load a dataset by name; ``options`` go to its loader (see its docstring)."""
    e = entry(name)
    check_options(name, options, allow_data_dir=True)
    if e.data_dir_option and e.data_dir_option not in options:
        raise DataError(_missing_data_dir(e))
    return e.load_function()(**options)


def check_options(name: str, data: dict, allow_data_dir: bool = False) -> None:
    """Every key of ``data`` is an option of the loader; else :class:`UsageError` with the
    closest option and the list."""
    e = entry(name)
    known = e.options() if allow_data_dir else e.user_options()
    for key in data:
        if key not in known:
            listed = ", ".join(f"data.{o}" for o in known)
            near = did_you_mean(f"data.{key}", [f"data.{o}" for o in known])
            raise UsageError(f"unknown option data.{key} for dataset {name!r}{near}; "
                             f"its options: {listed}")


def _missing_data_dir(e: DatasetEntry, why: str = "") -> str:
    return (f"{option('data_dir')} is required for dataset {e.name!r}{why}: {e.holds}, e.g. "
            f"{option_value('data_dir', e.example)}")


def check_data_dir(name: str, data_dir: str | os.PathLike | None, profile: str = "",
                   profile_default: bool = False) -> None:
    """``data_dir`` fits dataset ``name``: given when it reads files (a folder, or a CSV file
    for ``csv``), absent when it reads none. Raises :class:`UsageError` saying what to pass.

    ``profile_default``: the dataset came from the profile, not from ``--dataset`` (named in
    the message, e.g. the paper profile's NIH-CXR-LT).
    """
    e = entry(name)
    why = f" (the dataset of the {profile} profile)" if profile_default and profile else ""
    if e.data_dir is None:
        if data_dir:
            others = ", ".join(n for n, x in REGISTRY.items() if x.data_dir)
            raise UsageError(f"{option('data_dir')} {data_dir} is given, but dataset {name!r}"
                             f"{why} reads no files; drop {option('data_dir')}, or choose a "
                             f"dataset that reads it with {option('dataset')} ({others})")
        return
    if not data_dir:
        raise UsageError(_missing_data_dir(e, why))
    path = Path(data_dir).expanduser()
    if e.data_dir == "file":
        if path.is_dir():
            csvs = sorted(p.name for p in path.glob("*.csv"))[:3]
            hint = (f"; CSV files there: {', '.join(csvs)}" if csvs else "; it holds no .csv file")
            raise UsageError(f"{option('data_dir')} {path} is a folder, but dataset {name!r} "
                             f"takes {e.holds}, e.g. "
                             f"{option_value('data_dir', str(path / (csvs[0] if csvs else 'labels.csv')))}"
                             f"{hint}")
        if not path.exists():
            raise UsageError(f"{option('data_dir')} {path}: no such file{_near(path)}; dataset "
                             f"{name!r} takes {e.holds}")
    else:
        if path.is_file():
            raise UsageError(f"{option('data_dir')} {path} is a file, but dataset {name!r} takes "
                             f"{e.holds}; pass that folder, e.g. "
                             f"{option_value('data_dir', str(path.parent))}")
        if not path.exists():
            raise UsageError(f"{option('data_dir')} {path}: no such folder{_near(path)}; "
                             f"dataset {name!r} takes {e.holds}")


def _near(path: Path) -> str:
    """`` (did you mean '<sibling>'?)`` for a close name in the parent folder."""
    try:
        names = [p.name for p in path.parent.iterdir()]
    except OSError:
        return ""
    return did_you_mean(path.name, names)


def check_data(config, profile_default: bool = False) -> None:
    """The configuration's dataset, its ``data.*`` options (names and values) and
    ``data_dir`` fit together (what the CLI and the chapters check before anything runs)."""
    check_options(config.dataset, config.data)
    check_data_dir(config.dataset, config.data_dir, config.profile, profile_default)
    e = entry(config.dataset)
    if e.check is not None:
        bound = inspect.signature(e.load_function()).bind_partial(**dataset_options(config))
        bound.apply_defaults()
        e.check(dict(bound.arguments))


def dataset_options(config) -> dict:
    """Keyword arguments for ``get_dataset(config.dataset, ...)``: the ``data.*`` options,
    the data folder under the loader's own keyword, the image size and the cache folder."""
    e = entry(config.dataset)
    opts = dict(config.data)
    if e.data_dir_option:
        if not config.data_dir and e.data_dir_option not in opts:
            raise UsageError(_missing_data_dir(e))
        if config.data_dir:
            opts.setdefault(e.data_dir_option, config.data_dir)
    opts.setdefault("image_size", config.image_size)
    if config.cache_dir:
        opts.setdefault("cache_dir", config.cache_dir)
    return opts


def split_sizes(config) -> dict:
    """Images per split of the configuration's data, without decoding (None where unknown)."""
    e = entry(config.dataset)
    try:
        if e.sizes is not None:
            return e.sizes(dataset_options(config))
    except (OSError, KeyError, ValueError):
        pass
    return {s: None for s in FRACTIONS}


def description(name: str) -> str:
    """The book's phrase for dataset ``name`` (the name itself for an unknown one)."""
    return REGISTRY[name].description if name in REGISTRY else name


def rerun_targets() -> list[DatasetEntry]:
    """Datasets a chapter's closing commands show a rerun on (those that read files)."""
    return [e for e in REGISTRY.values() if e.data_dir and e.example]
