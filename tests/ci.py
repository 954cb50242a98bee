"""Skips that never hide a missing piece under CI (``CI=true``).

A test that cannot run here (a tool, a device) skips with a message saying what is missing;
under ``CI=true`` it fails instead, since a CI run must test everything, unless the piece can
never exist on a CI runner (a CUDA GPU): then ``allowed_on_ci`` names why, and the skip says
so. The browser, SLURM and NIH-metadata checks follow the same rule with their own messages
(``tests/browser.py``, ``tests/test_slurm.py``, ``tests/test_phantom.py``).
"""

from __future__ import annotations

import os
import shutil

import pytest

NO_GPU_ON_CI = ("CI runners have no GPU; benchmarks/gpu_check.sh runs the CUDA tests on a GPU "
                "machine")


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(message: str, allowed_on_ci: str | None = None) -> None:
    """Skip with ``message``; under CI=true fail, unless ``allowed_on_ci`` says why it may skip."""
    if on_ci():
        if allowed_on_ci is None:
            pytest.fail(f"{message} (CI=true: this test may not be skipped)", pytrace=False)
        pytest.skip(f"{message} (allowed under CI=true: {allowed_on_ci})")
    pytest.skip(message)


def require_module(name: str, hint: str):
    """The imported module ``name``, or a skip (a failure under CI=true) naming ``hint``."""
    try:
        return __import__(name)
    except ImportError:
        skip_or_fail(f"{name} is not installed ({hint})")


def require_program(name: str, hint: str) -> str:
    """The path of program ``name``, or a skip (a failure under CI=true) naming ``hint``."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not on PATH ({hint})")
    return path


def require_cuda() -> None:
    """Skip without a CUDA device, explicitly allowed under CI=true (no GPU there)."""
    import torch

    if not torch.cuda.is_available():
        skip_or_fail("needs a CUDA device", allowed_on_ci=NO_GPU_ON_CI)


def under_mutmut() -> bool:
    """Whether this test runs under ``make mutation``: mutmut's trampoline then stands between
    a test and the function it calls, so the frame a warning's stacklevel names is mutmut's."""
    return "MUTANT_UNDER_TEST" in os.environ
