"""Where prunecxr keeps caches and results unless told otherwise.

Everything lives under one home folder, ``$PRUNECXR_HOME`` or ``~/.cache/prunecxr``:
``data/`` holds decoded image caches, ``results/`` holds one folder per experiment key.
The CLI, the notebooks and the Makefile all resolve the same default, so a result computed
by ``make book`` is found again by "Run All" in Jupyter.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The prunecxr home folder (``$PRUNECXR_HOME`` or ``~/.cache/prunecxr``)."""
    env = os.environ.get("PRUNECXR_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prunecxr"


def data_cache() -> Path:
    """Folder for decoded, resized image arrays (one sub-folder per dataset identity)."""
    return home() / "data"


def results_root() -> Path:
    """Folder that holds one results folder per experiment key."""
    return home() / "results"
