"""Notebook regression: the chapters re-executed on the smoke profile must print the same
headline numbers as their committed reference copies in ``tests/notebooks/``.

nbval compares only the cells marked ``# NBVAL_CHECK_OUTPUT`` (``--nbval-lax``), after the
replacements in ``tests/nbval_sanitize.cfg`` (paths, result-folder keys, dates, durations); every
other cell must still run without error. The smoke results are computed once per test session
(the ``smoke_results`` fixture) and the inner nbval run reads them through ``PRUNECXR_HOME``.

The same check from the shell::

    PRUNECXR_HOME=/some/home python -m pytest --nbval-lax --nbval-current-env \\
        --nbval-sanitize-with tests/nbval_sanitize.cfg tests/notebooks

After an intended change of results, regenerate the references with ``make nbval-refs``
(``python -m prunecxr.book refs``) and review the diff of ``tests/notebooks/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from prunecxr.book import NOTEBOOKS

TESTS = Path(__file__).resolve().parent
REFERENCES = TESTS / "notebooks"

def nbval_command(paths: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
            "--nbval-sanitize-with", str(TESTS / "nbval_sanitize.cfg"),
            "-p", "no:cacheprovider", "-q", "--no-header", "-o", "addopts=",
            *(paths or [str(REFERENCES)])]


def test_reference_notebooks_exist():
    missing = [n for n in NOTEBOOKS if not (REFERENCES / f"{n}.ipynb").is_file()]
    assert not missing, f"no nbval reference for {missing}; run `make nbval-refs`"


@pytest.mark.slow
def test_chapters_reproduce_their_reference_outputs(smoke_results, prunecxr_home):
    env = dict(os.environ, PRUNECXR_HOME=str(prunecxr_home),
               PRUNECXR_TEST_HOME=str(prunecxr_home))
    done = subprocess.run(nbval_command(), cwd=TESTS.parent, env=env, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, (
        "nbval found differences between the chapters and tests/notebooks/ (if the change is "
        "intended, run `make nbval-refs` and review the diff):\n"
        + done.stdout[-6000:] + done.stderr[-2000:])


def _code_cells(path: Path) -> list[str]:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"
            and "injected-parameters" not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_references_run_the_current_notebook_code(name):
    """nbval re-executes the reference copies, so they must hold the code of notebooks/ now:
    a changed chapter without regenerated references fails here, fast, with the remedy."""
    source = TESTS.parent / "notebooks" / f"{name}.ipynb"
    reference = REFERENCES / f"{name}.ipynb"
    if not reference.is_file():
        pytest.fail(f"{reference} is missing; run `make nbval-refs`")
    assert _code_cells(reference) == _code_cells(source), (
        f"notebooks/{name}.ipynb changed since its nbval reference was made; run "
        "`make nbval-refs` (python -m prunecxr.book refs) and review the diff of tests/notebooks/")
