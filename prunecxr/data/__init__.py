"""Datasets behind one entry point: ``get_dataset(name, **options)``.

The datasets are declared in :mod:`prunecxr.data.registry` (``phantom``, the embedded synthetic
default, ``nih-cxr-lt``, ``mimic-cxr-lt`` and ``csv``, any long-tailed multi-label image set
described by a CSV file). The dataset interface and the loaders are imported on first use, so
listing the names (the CLI's ``--help``) stays light.
"""

from __future__ import annotations

from ..errors import DataError
from .registry import DATASETS, REGISTRY, get_dataset

_LAZY = {
    "SPLITS": ".base", "Dataset": ".base",
    "MIMIC_CXR_LT_CLASSES": ".classes", "NIH_CXR_LT_CLASSES": ".classes", "NO_FINDING": ".classes",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS", "REGISTRY", "SPLITS", "DataError", "Dataset", "get_dataset",
    "NIH_CXR_LT_CLASSES", "MIMIC_CXR_LT_CLASSES", "NO_FINDING",
]
