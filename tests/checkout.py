"""Subprocesses that run the checkout under test, not whatever ``prunecxr`` is installed.

``python -m prunecxr`` imports the package from its working folder only when that folder is
the checkout; from anywhere else (a temporary folder, a mutation tool's copy of the tree) it
imports the virtual environment's installed copy, which may be another tree. Every test that
starts Python in a subprocess takes its environment from :func:`checkout_env`, which puts the
checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def checkout_env(root: str | Path = REPO, env: dict | None = None, **extra: str) -> dict:
    """``env`` (default: this process's environment) plus ``extra``, with ``root`` (a folder
    holding ``prunecxr/``: the checkout, or a copy of it) first on ``PYTHONPATH``."""
    root = Path(root).resolve()
    if not (root / "prunecxr" / "__init__.py").is_file():
        raise FileNotFoundError(f"{root} holds no prunecxr package")
    out = {**(os.environ if env is None else env), **extra}
    rest = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]
    out["PYTHONPATH"] = os.pathsep.join([str(root), *rest])
    return out
