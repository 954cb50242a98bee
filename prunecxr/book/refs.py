"""nbval references: the chapters executed on a frozen smoke results folder, images dropped.

The smoke pipeline is deterministic on one machine, but its bits depend on the CPU's vector
kernels (AVX2, AVX-512, NEON train to different weights; tiny models turn the last bits into
different PIEs). So the chapters' regression test does not run on a fresh smoke run: it runs on
:data:`FIXTURE` (``tests/fixtures/smoke_results/``), the results folder of one smoke run
committed with the tests, installed by :func:`install_fixture` into a temporary
``$PRUNECXR_HOME`` under the folder name the current smoke configuration resolves to. The
chapters' ``ensure_results`` finds it finished and computes nothing, and nbval pins the
analysis, which is the same on every CPU.

- :func:`regenerate_nbval_refs` (``make nbval-refs``): the references from the fixture; no
  training, about a minute.
- :func:`regenerate_fixture` (``make nbval-fixture``): a fresh smoke run frozen into the
  fixture (:func:`freeze_fixture`), then every reference; for an intended change of the
  pipeline's results.

The fixture keeps every file of the finished folder except the weights of the seeds after the
first (about 3 MB each, read by no chapter): their ``best.pt`` holds only
:data:`PLACEHOLDER_KEY`, so the pipeline counts the seed as trained and a chapter that loads
those weights fails loudly, naming the key. The first seed's weights are kept in float16.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from .build import NOTEBOOKS, execute_notebook, repo_root

REF_DIR = Path("tests") / "notebooks"
FIXTURE = Path("tests") / "fixtures" / "smoke_results"
# The smoke ladder's other rungs (Q6), frozen the same way: one folder width_<w> per rung.
RUNG_FIXTURES = Path("tests") / "fixtures" / "smoke_rungs"
FIXTURE_PROFILE = "smoke"
PLACEHOLDER_KEY = "weights_not_kept_in_the_nbval_fixture_only_the_first_seeds"
# Files of a results folder that a finished folder does not need (checkpoints, partial sweeps,
# SLURM bookkeeping): never frozen.
TRANSIENT = ("last.pt", "*.partial.npz", "slurm", "*.tmp")
REFRESH = ("run `make nbval-fixture` (a fresh smoke run frozen into tests/fixtures/smoke_results, "
           "then every nbval reference) and review the diff")


class FixtureMismatch(ValueError):
    """The frozen smoke results no longer match the current smoke configuration or data."""


@contextmanager
def temporary_home() -> Iterator[Path]:
    """A throwaway ``$PRUNECXR_HOME`` for this process and its children (kernels, workers)."""
    old = os.environ.get("PRUNECXR_HOME")
    with tempfile.TemporaryDirectory(prefix="prunecxr-nbval-") as home:
        os.environ["PRUNECXR_HOME"] = home
        try:
            yield Path(home)
        finally:
            if old is None:
                os.environ.pop("PRUNECXR_HOME", None)
            else:
                os.environ["PRUNECXR_HOME"] = old


def _differences(frozen: dict, current: dict) -> list[str]:
    return [f"{k}: {frozen.get(k, '(absent)')!r} frozen, {current.get(k, '(absent)')!r} now"
            for k in sorted(set(frozen) | set(current)) if frozen.get(k) != current.get(k)]


def install_fixture(home: str | os.PathLike, config=None, fixture: str | os.PathLike | None = None,
                    rungs: str | os.PathLike | None = None) -> Path:
    """Copy the frozen results into ``home/results/<the folder name of config>`` and return it;
    likewise each other rung of its capacity ladder, from ``rungs/width_<w>`` (default
    :data:`RUNG_FIXTURES`).

    ``config`` defaults to the smoke profile. Raises :class:`FixtureMismatch` (one line, with
    the remedy) when a result-determining field of ``config`` or the dataset's identity differs
    from what the fixture was frozen with, or when the pipeline would still compute something
    in the installed copy (a changed results layout). The library version alone may differ (it is in the
    key, so in the folder name): the installed ``config.json`` then takes the current key. The
    dataset is built (or found) in ``home/data``, where the chapters look for it.
    """
    from ..config import ladder, load_config
    from ..data import get_dataset

    home = Path(home)
    fixture = Path(fixture) if fixture else repo_root() / FIXTURE
    rungs = Path(rungs) if rungs else repo_root() / RUNG_FIXTURES
    config = dataclasses.replace(config or load_config(FIXTURE_PROFILE),
                                 cache_dir=str(home / "data"))
    folders = [(fixture, config)] + [(rungs / f"width_{r.width}", r) for r in ladder(config)
                                     if r is not config]
    for path, cfg in folders:  # before any data is built
        _check_config(path, cfg)
    dataset = get_dataset(config.dataset, **config.dataset_options())
    return [_install(path, cfg, dataset, home) for path, cfg in folders][0]


def _check_config(fixture: Path, config) -> None:
    from .. import io

    if not (fixture / "config.json").is_file():
        raise FixtureMismatch(f"{fixture} holds no frozen results (no config.json); {REFRESH}")
    frozen = io.read_json(fixture / "config.json")
    frozen.pop("key", None)
    current = json.loads(json.dumps(config.result_fields(), default=str))
    diff = _differences(frozen, current)
    if diff:
        raise FixtureMismatch(f"{fixture} was frozen from another smoke configuration "
                              f"({'; '.join(diff)}); {REFRESH}")


def _install(fixture: Path, config, dataset, home: Path) -> Path:
    """One frozen results folder installed for ``config`` (see :func:`install_fixture`)."""
    from .. import io
    from ..pipeline import missing_sweeps, results_dir_for
    from ..train import is_trained

    identity = io.read_json(fixture / "dataset.json")["identity"]
    if identity != dataset.identity:
        raise FixtureMismatch(f"{fixture} was frozen from other data ({dataset.name} identity "
                              f"{identity[:12]} frozen, {dataset.identity[:12]} now); {REFRESH}")
    dest = results_dir_for(config, dataset, home / "results")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(fixture, dest)
    io.write_json(dest / "config.json", {**config.result_fields(), "key": config.key})
    untrained = [s for s in config.seeds if not is_trained(dest, s)]
    unswept = missing_sweeps(config, dest, len(dataset.indices("test")), len(dataset.classes))
    if untrained or unswept:  # e.g. the results layout changed: the chapters would train
        raise FixtureMismatch(f"{fixture} lacks what the pipeline now expects (seeds untrained: "
                              f"{untrained}, sweeps missing: {unswept[:5]}); {REFRESH}")
    return dest


def freeze_fixture(results_dir: str | os.PathLike, fixture: str | os.PathLike | None = None) -> Path:
    """Replace the fixture with a copy of the finished ``results_dir``: transient files
    dropped, the weights of every seed but the first replaced by a placeholder."""
    import torch

    from .. import io
    from ..train import seed_dir

    fixture = Path(fixture) if fixture else repo_root() / FIXTURE
    if fixture.exists():
        shutil.rmtree(fixture)
    fixture.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(results_dir, fixture, ignore=shutil.ignore_patterns(*TRANSIENT))
    first = seed_dir(fixture, int(io.read_json(fixture / "config.json")["first_seed"]))
    for path in sorted(fixture.rglob("best.pt")):
        # saved again under its own name: torch's archive holds the name it was written under
        # (a temporary one), so identical weights would otherwise give different bytes in git
        kept = torch.load(path, map_location="cpu", weights_only=True)
        torch.save(_half(kept) if path.parent == first else {PLACEHOLDER_KEY: torch.zeros(0)},
                   path)
    return fixture


def _half(state: dict) -> dict:
    """Floating tensors as float16: the fixture's one set of weights stays under 2 MB (loading
    it into a model casts it back; the frozen analysis reads these values on every CPU)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def regenerate_fixture(fixture: str | os.PathLike | None = None, progress: bool = True,
                       rungs: str | os.PathLike | None = None) -> list[Path]:
    """A fresh smoke run and its capacity ladder (in a temporary home, so no cached folder is
    reused) frozen into the fixtures, then every reference regenerated from them. Returns the
    fixtures and the references."""
    from ..config import load_config
    from ..pipeline import ensure_ladder, ensure_results

    config = load_config(FIXTURE_PROFILE)
    with temporary_home():
        folder = ensure_results(config, progress=progress)
        written = [freeze_fixture(folder, fixture)]
        written += freeze_rungs(config, ensure_ladder(config, progress=progress), rungs)
    if progress:
        size = sum(p.stat().st_size for w in written for p in w.rglob("*") if p.is_file())
        print(f"[nbval-fixture] {', '.join(map(str, written))}: {size / 2**20:.1f} MB", flush=True)
    return [*written, *regenerate_nbval_refs(fixture=fixture, progress=progress)]


def freeze_rungs(config, folders: dict, rungs: str | os.PathLike | None = None) -> list[Path]:
    """Freeze the ladder's rungs other than ``config``'s own (``folders``: width -> results
    folder, from :func:`prunecxr.pipeline.ensure_ladder`) into ``rungs/width_<w>``."""
    rungs = Path(rungs) if rungs else repo_root() / RUNG_FIXTURES
    if rungs.exists():
        shutil.rmtree(rungs)
    return [freeze_fixture(folder, rungs / f"width_{width}")
            for width, folder in sorted(folders.items()) if width != config.width]


def regenerate_nbval_refs(dest: str | os.PathLike | None = None, profile: str = FIXTURE_PROFILE,
                          notebooks: Sequence[str] | None = None, progress: bool = True,
                          fixture: str | os.PathLike | None = None) -> list[Path]:
    """Execute the chapters on the frozen smoke results into ``tests/notebooks/``.

    The fixture is installed into a temporary ``$PRUNECXR_HOME`` (:func:`install_fixture`), so
    nothing is trained and the user's own cached results are never read. Images are dropped
    from the saved outputs (nbval never compares them), text outputs are kept, and the paths in
    them are what ``tests/nbval_sanitize.cfg`` masks.
    """
    import nbformat

    from ..config import load_config

    root = repo_root()
    dest = Path(dest) if dest else root / REF_DIR
    written = []
    with temporary_home() as home:
        install_fixture(home, load_config(profile), fixture)
        for name in notebooks or NOTEBOOKS:
            if progress:
                print(f"[nbval-refs] executing {name}.ipynb", flush=True)
            params = {"profile": profile, "results_dir": "", "overrides": []}
            if name == "reproducibility":
                params["timings_file"] = ""
            execute_notebook(name, dest, params, root)
            path = dest / f"{name}.ipynb"
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                for output in cell.get("outputs", []):
                    data = output.get("data")
                    if data:
                        for mime in [m for m in data if m.endswith(("image/png", "image/svg+xml",
                                                                    "image/jpeg"))]:
                            del data[mime]
            nb.metadata.get("papermill", {}).pop("input_path", None)
            nb.metadata.get("papermill", {}).pop("output_path", None)
            nbformat.write(nb, path)
            written.append(path)
    return written
