"""Notebook regression on any CPU: the chapters, executed on the frozen smoke results, must print
the same headline numbers as their committed reference copies in ``tests/notebooks/``.

The smoke pipeline's bits depend on the CPU's vector kernels (AVX2, AVX-512 and NEON train to
different weights, and tiny models turn the last bits into different PIEs), so nbval does not
run on a fresh smoke run. It runs on ``tests/fixtures/smoke_results/`` (:mod:`prunecxr.book.refs`),
installed into a temporary ``PRUNECXR_HOME`` under the folder name the current smoke
configuration resolves to: the chapters' ``ensure_results`` finds it finished and computes
nothing, and what nbval pins is the analysis. nbval compares only the cells marked
``# NBVAL_CHECK_OUTPUT`` (``--nbval-lax``), after the replacements in
``tests/nbval_sanitize.cfg``; every other cell must still run without error. The check runs
under two sets of CPU kernels at once (:func:`kernel_settings`), neither of them necessarily
the one that wrote the references.

Remedies: a chapter changed on purpose -> ``make nbval-refs`` (references from the fixture, no
training); the pipeline's results changed on purpose (the fixture's configuration no longer
matches the smoke profile's) -> ``make nbval-fixture`` (a fresh smoke run frozen, then every
reference). Review the diff of ``tests/notebooks/`` either way.

The same check from the shell, on a home where the fixture is installed::

    PRUNECXR_HOME=/some/home python -m pytest --nbval-lax --nbval-current-env \\
        --nbval-sanitize-with tests/nbval_sanitize.cfg tests/notebooks
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checkout import checkout_env
from prunecxr.book import NOTEBOOKS
from prunecxr.book.refs import (FIXTURE, PLACEHOLDER_KEY, RUNG_FIXTURES, FixtureMismatch,
                                install_fixture)

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
REFERENCES = TESTS / "notebooks"
FIXTURE_DIR = REPO / FIXTURE
RUNG_DIR = REPO / RUNG_FIXTURES
FIXTURE_LIMIT = 8 * 2**20  # committed with every regeneration: keep it small


def nbval_command(paths: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
            "--nbval-sanitize-with", str(TESTS / "nbval_sanitize.cfg"),
            "-p", "no:cacheprovider", "-q", "--no-header", "-o", "addopts=",
            *(paths or [str(REFERENCES)])]


def _numpy_simd() -> tuple[list[str], dict]:
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return list(__cpu_dispatch__), dict(__cpu_features__)


def kernel_settings() -> dict[str, dict[str, str]]:
    """Two sets of CPU kernels as environment variables (each read when its library loads):
    ``default``, torch's baseline kernels with numpy's and OpenBLAS's pre-AVX ones; and, on an
    x86 CPU with AVX2, ``avx2``, the kernels of a machine without AVX-512 throughout. On
    another CPU (ARM) the second is the machine's own kernels; on a CPU whose own kernels are
    torch's baseline there is only one."""
    import torch

    dispatch, features = _numpy_simd()
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    settings = {"default": {"ATEN_CPU_CAPABILITY": "default"}}
    if x86:
        below_avx = [t for t in dispatch if features.get(t)]
        settings["default"].update(OPENBLAS_CORETYPE="Nehalem", MKL_ENABLE_INSTRUCTIONS="SSE4_2",
                                   NPY_DISABLE_CPU_FEATURES=" ".join(below_avx))
    if x86 and features.get("AVX2"):
        avx2_level = {"X86_V3", "AVX", "F16C", "FMA3", "AVX2"}
        above = [t for t in dispatch if features.get(t) and t not in avx2_level]
        settings["avx2"] = {"ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell",
                            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                            "NPY_DISABLE_CPU_FEATURES": " ".join(above)}
    elif torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        settings["native"] = {}
    for env in settings.values():
        if not env.get("NPY_DISABLE_CPU_FEATURES", "x"):
            env.pop("NPY_DISABLE_CPU_FEATURES")
    return settings


def _capability(env: dict) -> str:
    """The kernels torch really dispatches to under ``env`` (a fresh interpreter)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()[-1]


@pytest.fixture(scope="module")
def nbval_home(tmp_path_factory) -> Path:
    """A ``PRUNECXR_HOME`` holding the fixture under the smoke profile's folder name (and the
    smoke dataset's cache); fails with the one-line remedy when the fixture is stale."""
    home = tmp_path_factory.mktemp("nbval_home")
    try:
        install_fixture(home)
    except FixtureMismatch as exc:
        pytest.fail(str(exc), pytrace=False)
    return home


def test_reference_notebooks_exist():
    missing = [n for n in NOTEBOOKS if not (REFERENCES / f"{n}.ipynb").is_file()]
    assert not missing, f"no nbval reference for {missing}; run `make nbval-refs`"


def test_the_fixture_is_a_small_finished_smoke_folder(nbval_home, monkeypatch):
    """Installed, the fixture is the smoke profile's finished results folder: the pipeline
    computes nothing, every prediction matches its checksum, and only the first seed keeps its
    weights (the others hold the placeholder, which no chapter may load)."""
    from prunecxr import pipeline
    from prunecxr.config import load_config
    from prunecxr.store import load

    size = sum(p.stat().st_size for d in (FIXTURE_DIR, RUNG_DIR) for p in d.rglob("*")
               if p.is_file())
    assert size < FIXTURE_LIMIT, f"{FIXTURE_DIR} is {size / 2**20:.1f} MB; keep it small"

    def nothing_to_compute(stage, jobs, *args, **kwargs):
        raise AssertionError(f"the installed fixture lacks {stage} jobs {jobs}; run "
                             "`make nbval-fixture`")

    monkeypatch.setattr(pipeline, "_run_stage", nothing_to_compute)
    config = load_config("smoke")
    folders = sorted((nbval_home / "results").iterdir())
    ladder = pipeline.ensure_ladder(config, results_root=nbval_home / "results", progress=False)
    assert sorted(ladder.values()) == folders and len(folders) == len(config.widths) == 2
    folder = pipeline.ensure_results(config, results_root=nbval_home / "results", progress=False)
    assert ladder[config.width] == folder
    store = load(folder)
    assert store.methods == list(config.methods) and len(store.seeds) == config.population
    for method in store.methods:
        for seed in store.method_seeds(method):
            assert store.predictions(method, seed).shape[1:] == store.labels.shape
    assert store.prunable_weights(store.seeds[0]).size > 0
    for seed in store.seeds[1:]:
        assert list(store.state_dict(seed)) == [PLACEHOLDER_KEY]
    for fixture in (FIXTURE_DIR, RUNG_DIR):
        assert not list(fixture.rglob("last.pt")) and not list(fixture.rglob("*.partial.npz"))


def test_a_stale_fixture_fails_with_the_remedy(tmp_path):
    """A result-determining field changed on purpose: one line naming the field and
    ``make nbval-fixture``, before any data is built."""
    from prunecxr.config import load_config

    changed = load_config("smoke", overrides=["finetune_lr=0.001"])
    with pytest.raises(FixtureMismatch) as info:
        install_fixture(tmp_path, changed)
    message = str(info.value)
    assert "finetune_lr" in message and "make nbval-fixture" in message and "\n" not in message
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


def test_a_fixture_the_pipeline_would_complete_fails_with_the_remedy(nbval_home, tmp_path):
    """A fixture missing a finished file (e.g. after a change of the results layout) is
    refused, never completed by training inside the chapters."""
    fixture = tmp_path / "fixture"
    shutil.copytree(FIXTURE_DIR, fixture)
    (fixture / "predictions" / "quant" / "seed_001.npy").unlink()
    shutil.copytree(nbval_home / "data", tmp_path / "home" / "data")  # no second data build
    with pytest.raises(FixtureMismatch, match=r"sweeps missing: \[\('quant', 1\)\].*make nbval-fixture"):
        install_fixture(tmp_path / "home", fixture=fixture)


@pytest.mark.slow
def test_chapters_reproduce_their_reference_outputs_on_any_cpu(nbval_home, tmp_path):
    """nbval on the fixture under two sets of CPU kernels at once (one home each): both must
    match the references, which were written under whatever kernels ``make nbval-refs`` had."""
    settings = kernel_settings()
    envs, runs = {}, {}
    for name, extra in settings.items():
        home = tmp_path / name
        shutil.copytree(nbval_home, home)
        envs[name] = checkout_env(PRUNECXR_HOME=str(home), PRUNECXR_TEST_HOME=str(home), **extra)
    capabilities = {name: _capability(env) for name, env in envs.items()}
    for name, extra in settings.items():
        if "ATEN_CPU_CAPABILITY" in extra:
            assert capabilities[name] == extra["ATEN_CPU_CAPABILITY"].upper(), capabilities
    assert len(set(capabilities.values())) == len(settings), capabilities
    for name, env in envs.items():
        runs[name] = subprocess.Popen(nbval_command(), cwd=REPO, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    outputs = {name: proc.communicate(timeout=1800)[0] for name, proc in runs.items()}
    failed = {name: out for name, out in outputs.items() if runs[name].returncode != 0}
    assert not failed, (
        "nbval found differences between the chapters (run on tests/fixtures/smoke_results) and "
        "tests/notebooks/ under the CPU kernels "
        + ", ".join(f"{n} ({capabilities[n]})" for n in failed)
        + "; if a chapter changed on purpose, run `make nbval-refs` and review the diff:\n"
        + "\n".join(f"--- {n}:\n{out[-6000:]}" for n, out in failed.items()))


def _code_cells(path: Path) -> list[str]:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"
            and "injected-parameters" not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_references_run_the_current_notebook_code(name):
    """nbval re-executes the reference copies, so they must hold the code of notebooks/ now:
    a changed chapter without regenerated references fails here, fast, with the remedy."""
    source = REPO / "notebooks" / f"{name}.ipynb"
    reference = REFERENCES / f"{name}.ipynb"
    if not reference.is_file():
        pytest.fail(f"{reference} is missing; run `make nbval-refs`")
    assert _code_cells(reference) == _code_cells(source), (
        f"notebooks/{name}.ipynb changed since its nbval reference was made; run "
        "`make nbval-refs` (python -m prunecxr.book refs) and review the diff of tests/notebooks/")
