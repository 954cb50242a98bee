"""Datasets behind one entry point: ``get_dataset(name, **options)``.

Names: ``phantom`` (the embedded synthetic default), ``nih-cxr-lt``, ``mimic-cxr-lt`` and
``csv`` (any long-tailed multi-label image set described by a CSV file).
"""

from __future__ import annotations

from .base import SPLITS, DataError, Dataset
from .classes import MIMIC_CXR_LT_CLASSES, NIH_CXR_LT_CLASSES, NO_FINDING

DATASETS = ("phantom", "nih-cxr-lt", "mimic-cxr-lt", "csv")


def get_dataset(name: str, **options) -> Dataset:
    """Build or load a dataset by name; ``options`` go to that loader (see its docstring)."""
    if name == "phantom":
        from .phantom import load_phantom
        return load_phantom(**options)
    if name == "nih-cxr-lt":
        from .tables import load_nih_cxr_lt
        return load_nih_cxr_lt(**options)
    if name == "mimic-cxr-lt":
        from .tables import load_mimic_cxr_lt
        return load_mimic_cxr_lt(**options)
    if name == "csv":
        from .tables import load_csv
        return load_csv(**options)
    raise DataError(f"dataset must be one of {DATASETS}, got {name!r}")


__all__ = [
    "DATASETS", "SPLITS", "DataError", "Dataset", "get_dataset",
    "NIH_CXR_LT_CLASSES", "MIMIC_CXR_LT_CLASSES", "NO_FINDING",
]
