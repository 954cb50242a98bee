"""Shared fixtures: an isolated PRUNECXR_HOME for the whole session and one smoke run.

The smoke results are computed once per test session (about half a minute) and reused by
the pipeline, analysis, study, notebook and book tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def prunecxr_home(tmp_path_factory) -> Path:
    """Keep every cache and result of the test session out of the user's home."""
    home = Path(os.environ.get("PRUNECXR_TEST_HOME") or tmp_path_factory.mktemp("prunecxr_home"))
    old = os.environ.get("PRUNECXR_HOME")
    os.environ["PRUNECXR_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("PRUNECXR_HOME", None)
    else:
        os.environ["PRUNECXR_HOME"] = old


@pytest.fixture(scope="session")
def smoke_results(prunecxr_home) -> Path:
    """Results folder of the smoke profile (computed once, then cached)."""
    from prunecxr.config import load_config
    from prunecxr.pipeline import ensure_results

    return ensure_results(load_config("smoke"), progress=False)


@pytest.fixture(scope="session")
def smoke_store(smoke_results):
    from prunecxr.store import load

    return load(smoke_results)


@pytest.fixture(scope="module", autouse=True)
def torch_threads(request):
    """Torch intra-op threads for a module that sets ``TORCH_THREADS`` (the modules that train
    tiny models in-process): one thread makes them many times faster on a busy 2-core machine
    (two OpenMP threads wait on each other for every small kernel). Other modules, and the
    session's smoke results, keep torch's default (a seed's bits depend on the thread count)."""
    threads = getattr(request.module, "TORCH_THREADS", None)
    if threads is None:
        yield None
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    yield threads
    torch.set_num_threads(before)


def _prunecxr_table(pyproject: Path) -> dict:
    """``[tool.prunecxr]`` of pyproject.toml (the mutation run's test selection)."""
    import tomllib

    return tomllib.loads(pyproject.read_text()).get("tool", {}).get("prunecxr", {})


def mutation_test_files(mutant: str, pyproject: Path) -> list[str] | None:
    """The test files a mutmut mutant runs against, in their listed order
    (``[tool.prunecxr.mutation_tests]`` of pyproject.toml, by the mutant's module:
    ``prunecxr.analysis.pies.x_f__mutmut_3`` is module ``analysis/pies``, covered by its own
    entry or by ``analysis``'s); None when the variable names no mutant (an ordinary run,
    mutmut's stats and clean runs) or the module has no entry."""
    if "__mutmut_" not in mutant or not pyproject.is_file():
        return None
    entries = _prunecxr_table(pyproject).get("mutation_tests", {})
    parts = mutant.split(".")[1:]
    module = "/".join(p for p in parts[: next(i for i, p in enumerate(parts)
                                              if p.startswith(("x_", "xǁ")))])
    while module:
        if module in entries:
            return list(entries[module])
        module = module.rpartition("/")[0]
    return None


def pytest_collection_modifyitems(config, items):
    """Under ``make mutation``, keep only the mutated module's own test files and run them
    file by file in their listed order (the cheap ones first, so that a killed mutant fails
    early), each file in its source order. mutmut passes a mutant's tests in a set's order,
    and pytest builds a module-scoped fixture (the micro ladder, a trained model) again each
    time it comes back to a file."""
    files = mutation_test_files(os.environ.get("MUTANT_UNDER_TEST", ""),
                                Path(config.rootpath) / "pyproject.toml")
    if files is None:
        return
    rank = {name: i for i, name in enumerate(files)}
    drop = [item for item in items if Path(str(item.fspath)).name not in rank]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = sorted((item for item in items if Path(str(item.fspath)).name in rank),
                      key=lambda item: (rank[Path(str(item.fspath)).name], item.location[1]))


def pytest_sessionfinish(session):
    """Under mutmut's stats run: credit every test of a ``mutation_whole_files`` file with what
    any test of that file reaches. mutmut maps each mutated function to the tests that call
    it, and a module-scoped fixture runs inside the first test that asks for it, so without
    this a mutant of what the fixture computes (the micro ladder's training and sweeps, the
    frozen stores' reading) would skip every later test that reads the fixture's results."""
    if os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return
    from mutmut.state import state  # only under mutmut

    pyproject = Path(session.config.rootpath) / "pyproject.toml"
    whole = set(_prunecxr_table(pyproject).get("mutation_whole_files", []))
    by_file: dict[str, set[str]] = {}
    for test in state().duration_by_test:
        by_file.setdefault(Path(test.split("::")[0]).name, set()).add(test)
    for tests in state().tests_by_mangled_function_name.values():
        for name in {Path(t.split("::")[0]).name for t in tests} & whole:
            tests |= by_file[name]
