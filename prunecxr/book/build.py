"""Build the book: results -> executed notebooks -> offline HTML (``python -m prunecxr book``).

:func:`build_book` is the whole chain behind ``make book``:

1. ``ensure_ladder`` computes whatever the profile still lacks (data, training, sweep), with
   the other rungs of its capacity ladder (Q6) in the same pools (``ensure_results`` without
   a ladder);
2. the book sources (``_config.yml``, ``_toc.yml``, ``book/*.md``, ``book/references.bib``)
   are copied into a staging folder ``OUT/source/``;
3. every chapter of ``_toc.yml`` (:mod:`.toc`), a notebook under ``notebooks/``, is executed
   with papermill (parameters ``profile``, ``results_dir``, ``overrides`` and, when given,
   ``dataset`` / ``data_dir``) into
   ``OUT/source/chapters/``, where ``_toc.yml`` expects it (pages ``chapters/<name>.html``);
   papermill's injected-parameters cell is folded like the parameters cell;
4. MathJax 3 (:mod:`.assets`) is copied into ``OUT/source/assets/mathjax/``;
5. Jupyter Book renders the staged sources with execution off, warnings as errors
   (``--warningiserror --keep-going``), into ``OUT/html/``; the figures' PNG/SVG/PDF files
   are copied beside the chapter pages, and the HTML is audited (:mod:`.audit`).

Nothing generated is written into the source tree; ``OUT`` (default ``_build``) is ignored by
git.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import io
from .assets import fetch_mathjax
from ..paths import home
from .audit import audit_html, machine_paths
from .chapter import FIGURES_ENV, normalize_overrides
from .errors import BookError
from .toc import NOTEBOOKS, repo_root  # the chapters in reading order: _toc.yml's

CHAPTERS = Path("chapters")   # executed notebooks in the staging folder (and page URLs)
ASSETS = Path("assets")       # html_static_path: copied into _static/ by Sphinx
FIGURES = "figures"           # beside each executed chapter; copied next to its page
SOURCE_FILES = ("_config.yml", "_toc.yml")
BOOK_SOURCE_SUFFIXES = (".md", ".bib")

# ------------------------------------------------------------------------------- the build

def stage_sources(stage: Path, root: Path | None = None) -> Path:
    """Copy the book's hand-written sources into ``stage`` (replacing what was there)."""
    root = root or repo_root()
    stage.mkdir(parents=True, exist_ok=True)
    for name in SOURCE_FILES:
        shutil.copy2(root / name, stage / name)
    book = stage / "book"
    for old in book.glob("*") if book.exists() else []:
        if old.is_file():
            old.unlink()
    book.mkdir(exist_ok=True)
    (stage / ASSETS).mkdir(parents=True, exist_ok=True)
    for path in sorted((root / "book").iterdir()):
        if path.is_file() and path.suffix in BOOK_SOURCE_SUFFIXES:
            shutil.copy2(path, book / path.name)
        elif path.is_file() and path.suffix == ".css":  # html_css_files, served from _static/
            shutil.copy2(path, stage / ASSETS / path.name)
    (stage / CHAPTERS).mkdir(parents=True, exist_ok=True)
    return stage


def install_mathjax(stage: Path, source: Path | None = None) -> Path:
    """Copy MathJax into the staged book's static assets (``_static/mathjax/`` once built)."""
    source = source or fetch_mathjax()
    dest = stage / ASSETS / "mathjax"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("complete.json"))
    return dest


def execute_notebook(name: str, dest_dir: Path, parameters: dict, root: Path | None = None,
                     timeout: int | None = None, figures: Path | None = None) -> float:
    """Run ``notebooks/<name>.ipynb`` with papermill into ``dest_dir``; return seconds taken.

    With ``figures``, the chapter's figures are also written there as PNG, SVG and PDF."""
    with figures_folder(figures):
        return _execute(name, dest_dir, parameters, root, timeout)


@contextmanager
def figures_folder(figures: Path | None):
    """``$PRUNECXR_FIGURES`` set to ``figures`` (when given) for the kernels started inside:
    glue_figure writes each figure's PNG/SVG/PDF there. Restored on exit."""
    saved = os.environ.get(FIGURES_ENV)
    if figures is not None:
        os.environ[FIGURES_ENV] = str(figures)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(FIGURES_ENV, None)
        else:
            os.environ[FIGURES_ENV] = saved


def _execute(name: str, dest_dir: Path, parameters: dict, root: Path | None = None,
             timeout: int | None = None) -> float:
    import papermill as pm

    root = root or repo_root()
    src = root / "notebooks" / f"{name}.ipynb"
    if not src.is_file():
        raise BookError(f"{src} does not exist")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{name}.ipynb"
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(src), str(dest), parameters=parameters, kernel_name="python3",
                            progress_bar=False, cwd=str(dest_dir), execution_timeout=timeout)
    except Exception as exc:  # papermill's error names the cell; keep it, add the notebook
        raise BookError(f"notebook {name}.ipynb failed (executed copy: {dest}):\n{exc}") from exc
    fold_machinery(dest)
    return time.perf_counter() - t0


def fold_machinery(path: Path) -> None:
    """Fold papermill's injected-parameters cell behind the toggle, as the parameters cell is."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    nbformat.write(nb, path)


def copy_figures(chapters: Path, pages: Path) -> None:
    """The figures' PNG/SVG/PDF files, saved by the chapters, beside the chapter pages."""
    src = chapters / FIGURES
    if src.is_dir():
        shutil.copytree(src, pages / FIGURES, dirs_exist_ok=True)


def _shown_path(path, cwd: Path) -> str:
    """A results root as the notebooks receive it: relative to their folder, never absolute
    (the injected-parameters cell is part of the page)."""
    if not path:
        return ""
    return os.path.relpath(Path(path).resolve(), cwd)


def render_html(stage: Path, html: Path, doctrees: Path | None = None) -> Path:
    """Jupyter Book 1 over the staged sources, execution off, warnings as errors.

    Equivalent to ``jupyter-book build STAGE --warningiserror --keep-going`` but with the
    output folder under our control; run in a subprocess so Sphinx's state and output stay
    apart from the caller. Raises :class:`BookError` with every warning on failure.
    """
    doctrees = doctrees or html.parent / ".doctrees"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from jupyter_book.sphinx import build_sphinx\n"
        "src, out, dt = map(Path, sys.argv[1:4])\n"
        "result = build_sphinx(src, out, doctreedir=dt, noconfig=True,\n"
        "    path_config=src / '_config.yml',\n"
        "    confoverrides={'external_toc_path': (src / '_toc.yml').as_posix(),\n"
        "                   'latex_individualpages': False},\n"
        "    warningiserror=True, keep_going=True, freshenv=True)\n"
        "sys.exit(result if isinstance(result, int) else 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(stage), str(html), str(doctrees)],
                          capture_output=True, text=True)
    log = html.parent / "jupyter-book.log"
    io.write_text(log, done.stdout + "\n--- stderr ---\n" + done.stderr)
    if done.returncode != 0 or not (html / "index.html").is_file():
        stderr = re.sub(r"\x1b\[[0-9;]*m", "", done.stderr)
        warnings = [line for line in stderr.splitlines()
                    if "WARNING" in line or "ERROR" in line or "Error" in line]
        shown = "\n  ".join(warnings[:40]) or stderr.strip()[-3000:]
        raise BookError(f"jupyter-book build failed (exit {done.returncode}); full log {log}:\n  {shown}")
    return html


@dataclass
class BookBuild:
    """Where a build went and how long each step took (seconds)."""

    html: Path
    source: Path
    results_dir: Path
    timings: dict

    @property
    def index(self) -> Path:
        return self.html / "index.html"


def build_book(profile: str = "default", results_root: str | os.PathLike | None = None,
               out: str | os.PathLike = "_build", overrides: Any = None,
               dataset: str | None = None, data_dir: str | None = None,
               notebooks: Sequence[str] | None = None, progress: bool = True,
               timeout: int | None = None, jobs: int = 2) -> BookBuild:
    """Compute results for the profile, execute every chapter, render the book to ``OUT/html``.

    ``results_root`` defaults to ``$PRUNECXR_HOME/results``; ``overrides`` are ``field=value``
    strings (or a dict) applied to the profile; ``dataset``/``data_dir`` switch the data.
    ``notebooks`` restricts execution to some chapters (the others must then already exist in
    the staging area from an earlier build); ``jobs`` chapters execute side by side. Raises ``ValueError`` for a bad parameter and
    :class:`BookError` when a notebook or the HTML build fails.
    """
    from ..config import load_config
    from ..pipeline import ensure_ladder, ensure_results

    overrides = normalize_overrides(overrides)
    config = load_config(profile, dataset=dataset, data_dir=data_dir, overrides=overrides)
    names = list(NOTEBOOKS if notebooks is None else notebooks)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise ValueError(f"notebooks must be among {list(NOTEBOOKS)}, got {unknown}")
    root = repo_root()
    out = Path(out).resolve()
    stage = out / "source"
    timings: dict[str, Any] = {}

    t0 = time.perf_counter()
    # the population and the other rungs of its capacity ladder (Q6), their seeds in one pool
    rungs = ensure_ladder(config, results_root=results_root, progress=progress)
    folder = rungs.get(config.width) or ensure_results(config, results_root, progress=progress)
    timings["results"] = time.perf_counter() - t0

    stage_sources(stage, root)
    t0 = time.perf_counter()
    install_mathjax(stage)
    timings["mathjax"] = time.perf_counter() - t0

    parameters = {"profile": profile, "results_dir": _shown_path(results_root, stage / CHAPTERS),
                  "overrides": overrides}
    if dataset:
        parameters["dataset"] = dataset
    if data_dir:
        parameters["data_dir"] = str(data_dir)
    timings_file = out / "timings.json"
    timings["notebooks"] = {}

    def run(name: str) -> float:
        params = dict(parameters)
        if name == "reproducibility":
            io.write_json(timings_file, timings)
            params["timings_file"] = os.path.relpath(timings_file, stage / CHAPTERS)
        if progress:
            print(f"[book] executing {name}.ipynb", flush=True)
        return _execute(name, stage / CHAPTERS, params, root, timeout=timeout)

    # The chapters read the results and write only their own files: ``jobs`` run side by side;
    # the Reproducibility chapter, which shows the others' timings, runs last.
    last = [n for n in names if n == "reproducibility"]
    t0 = time.perf_counter()
    with figures_folder(stage / CHAPTERS / FIGURES), ThreadPoolExecutor(max(1, jobs)) as pool:
        firsts = [n for n in names if n not in last]
        timings["notebooks"].update(zip(firsts, pool.map(run, firsts)))
        timings["chapters"] = time.perf_counter() - t0  # the wall time of those side by side
        timings["notebooks"].update((n, run(n)) for n in last)
    timings["chapters"] = time.perf_counter() - t0
    missing = [n for n in NOTEBOOKS if not (stage / CHAPTERS / f"{n}.ipynb").is_file()]
    if missing:
        raise BookError(f"no executed notebook for {missing} in {stage / CHAPTERS}; "
                        "build without `notebooks=` once")

    if progress:
        print("[book] rendering HTML with jupyter-book", flush=True)
    t0 = time.perf_counter()
    html = render_html(stage, out / "html")
    timings["jupyter_book"] = time.perf_counter() - t0
    io.write_json(timings_file, timings)
    copy_figures(stage / CHAPTERS, html / CHAPTERS)
    problems = audit_html(html) + machine_paths(html, [root, out, folder, home()])
    if problems:
        raise BookError("the built book has problems:\n  " + "\n  ".join(problems[:40]))
    if progress:
        print(f"[book] {html / 'index.html'}", flush=True)
    return BookBuild(html=html, source=stage, results_dir=folder, timings=timings)
