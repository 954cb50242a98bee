"""Build the book: results -> executed notebooks -> offline HTML (``python -m prunecxr book``).

:func:`build_book` is the whole chain behind ``make book``:

1. ``ensure_results`` computes whatever the profile still lacks (data, training, sweep);
2. the book sources (``_config.yml``, ``_toc.yml``, ``book/*.md``, ``book/references.bib``)
   are copied into a staging folder ``OUT/source/``;
3. every notebook under ``notebooks/`` is executed with papermill (parameters ``profile``,
   ``results_dir``, ``overrides`` and, when given, ``dataset`` / ``data_dir``) into
   ``OUT/source/book/_generated/``, where ``_toc.yml`` expects it;
4. MathJax 3 is fetched once (PyPI wheel ``django-static-mathjax``, or the npm tarball),
   verified against a pinned sha256, cached under ``$PRUNECXR_HOME/cache/`` and copied into
   ``OUT/source/book/_generated/assets/mathjax/``, so math renders with the network off;
5. Jupyter Book renders the staged sources with execution off, warnings as errors
   (``--warningiserror --keep-going``), into ``OUT/html/``.

Nothing generated is written into the source tree; ``OUT`` (default ``_build``) is ignored by
git. The notebooks also use :func:`open_results` and :func:`glue_values` from here, so a
notebook opened in Jupyter and "Run All" computes missing results itself, exactly like the
build does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import unquote, urlsplit

from . import io
from .paths import home

# Chapter notebooks in reading order; the toc lists the same names under book/_generated/.
NOTEBOOKS = (
    "data_methods",
    "q1_overall",
    "q2_forgetting",
    "q3_cooccurrence",
    "q4_pies",
    "paper_vs_build",
    "reproducibility",
)
GENERATED = Path("book") / "_generated"
ASSETS = GENERATED / "assets"
SOURCE_FILES = ("_config.yml", "_toc.yml")
BOOK_SOURCE_SUFFIXES = (".md", ".bib")

MATHJAX_VERSION = "3.2.2"
# Two pinned routes to the same MathJax release; each artifact is checked against its sha256.
MATHJAX_PYPI = ("django-static-mathjax==3.2.2.1", "django_static_mathjax-3.2.2.1-py3-none-any.whl",
                "05ad109fd9e5d9d380c76389689b7f523e9ccb7f7a85c1eb962c7564eac7601d",
                "mathjax/static/mathjax/es5/")
MATHJAX_NPM = ("mathjax@3.2.2", "mathjax-3.2.2.tgz",
               "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09", "package/es5/")
# What the book needs of MathJax's es5 tree: the combined TeX+MathML->SVG component and the
# pieces it loads on demand (TeX extensions, menu, accessibility, speech rules).
MATHJAX_KEEP = ("tex-mml-svg.js", "input/", "output/svg", "ui/", "a11y/", "sre/", "adaptors/")
MATHJAX_ENTRY = "tex-mml-svg.js"


class BookError(RuntimeError):
    """The book could not be built; the message says which step failed and why."""


# --------------------------------------------------------------------------- notebook helpers

def normalize_overrides(overrides: Any) -> list[str]:
    """Notebook/CLI overrides as a list of ``field=value`` strings.

    Accepts a list (``["population=2", "max_epochs=1"]``, what ``papermill -y`` passes), a
    string with overrides separated by ``;`` or newlines (what ``papermill -p`` can pass:
    ``-p overrides "population=2;max_epochs=1"``), a dict, or ``None``/``""``.
    """
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [f"{k}={v}" for k, v in overrides.items()]
    if isinstance(overrides, str):
        items = re.split(r"[;\n]", overrides)
    elif isinstance(overrides, Iterable):
        items = list(overrides)
    else:
        raise ValueError(f"overrides must be a list of 'field=value' strings, got {overrides!r}")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"overrides must be 'field=value' strings, got {item!r}")
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like field=value (e.g. population=5)")
        out.append(item)
    return out


def configure(profile: str = "default", dataset: str = "", data_dir: str = "",
              overrides: Any = None):
    """A notebook's parameters -> a validated :class:`prunecxr.config.Config` (nothing computed).

    Raises ``ValueError`` naming the bad parameter (profile, dataset, an override) and the
    values allowed, so a notebook fails in its first cells, before any expensive step.
    """
    from .config import load_config

    for name, value in (("profile", profile), ("dataset", dataset), ("data_dir", data_dir)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"parameter {name} must be a string, got {value!r}")
    config = load_config(profile, dataset=dataset or None, data_dir=data_dir or None,
                         overrides=normalize_overrides(overrides))
    if config.dataset != "phantom" and not config.data_dir:
        raise ValueError(
            f"parameter data_dir is required for dataset {config.dataset!r} (the folder holding "
            f"its label files and images, or the CSV file for dataset='csv'), e.g. "
            f"papermill ... -p dataset {config.dataset} -p data_dir /data/{config.dataset}")
    return config


def results(config, results_dir: str | os.PathLike = "", progress: bool = True):
    """The results store for ``config``, computing whatever is missing (with progress bars).

    ``results_dir`` is the root that holds one folder per configuration key ("" means
    ``$PRUNECXR_HOME/results``), the same root ``python -m prunecxr run --results-dir`` takes.
    """
    import warnings

    with warnings.catch_warnings():  # tqdm.auto without ipywidgets: text bars are fine
        warnings.filterwarnings("ignore", message="IProgress not found")
        from .pipeline import ensure_results
    from .store import load

    if results_dir is not None and not isinstance(results_dir, (str, os.PathLike)):
        raise ValueError(f"parameter results_dir must be a string, got {results_dir!r}")
    return load(ensure_results(config, results_root=results_dir or None, progress=progress))


def open_results(profile: str = "default", dataset: str = "", data_dir: str = "",
                 results_dir: str = "", overrides: Any = None, progress: bool = True):
    """``configure`` then ``results``: returns ``(config, store)``."""
    config = configure(profile, dataset, data_dir, overrides)
    return config, results(config, results_dir, progress)


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """Raise ``ValueError("<name> must be one of [...], got ...")`` unless value is allowed."""
    if value not in allowed:
        raise ValueError(f"parameter {name} must be one of {list(allowed)}, got {value!r}")


def check_range(name: str, value: Any, low: float, high: float, *, inclusive: bool = True) -> None:
    """Raise ``ValueError`` unless ``low <= value <= high`` (or strict when not inclusive)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = low <= value <= high if inclusive else low < value < high
    if not ok:
        bounds = f"[{low}, {high}]" if inclusive else f"({low}, {high})"
        raise ValueError(f"parameter {name} must be a number in {bounds}, got {value!r}")


def nearest_level(name: str, value: float, levels: Sequence[float], tol: float = 1e-6) -> float:
    """The grid level equal to ``value``; ``ValueError`` listing the grid when there is none."""
    for level in levels:
        if abs(float(level) - float(value)) <= tol:
            return float(level)
    raise ValueError(f"parameter {name}={value!r} is not a sparsity level of these results; "
                     f"available: {[round(float(x), 4) for x in levels]}")


def plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (glue's text/plain must be a literal like ``0.65``)."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def glue_values(**values: Any) -> None:
    """``myst_nb.glue(name, value, display=False)`` for each keyword, numpy scalars unwrapped."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, plain(value), display=False)


def glue_figure(name: str, fig: Any) -> None:
    """Glue a matplotlib figure (for a ``{glue:figure}`` directive) and close it."""
    from myst_nb import glue

    glue(name, fig, display=False)
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # a Figure not managed by pyplot: nothing to close
        pass


# --------------------------------------------------------------------------------- MathJax

def mathjax_cache() -> Path:
    return home() / "cache" / f"mathjax-{MATHJAX_VERSION}"


def fetch_mathjax(cache: str | os.PathLike | None = None, route: str = "auto") -> Path:
    """A folder holding MathJax's es5 tree (``tex-mml-svg.js`` and what it loads on demand).

    Looked up in this order: ``$PRUNECXR_MATHJAX`` (a folder you provide, for machines without
    network), the cache (``$PRUNECXR_HOME/cache/mathjax-3.2.2``), then a download: the PyPI
    wheel ``django-static-mathjax==3.2.2.1`` through pip (``route="pypi"``) or the npm tarball
    ``mathjax@3.2.2`` through ``npm pack`` (``route="npm"``); ``auto`` tries PyPI, then npm.
    Each download is checked against its pinned sha256 before anything is extracted.
    """
    env = os.environ.get("PRUNECXR_MATHJAX")
    if env:
        folder = Path(env).expanduser()
        if not (folder / MATHJAX_ENTRY).is_file():
            raise BookError(f"PRUNECXR_MATHJAX={env}: no {MATHJAX_ENTRY} in that folder (it must "
                            "be MathJax 3's es5/ folder)")
        return folder
    target = Path(cache) if cache else mathjax_cache()
    marker = target / "complete.json"
    if marker.is_file() and (target / MATHJAX_ENTRY).is_file():
        return target
    routes = {"pypi": _mathjax_from_pypi, "npm": _mathjax_from_npm}
    if route != "auto" and route not in routes:
        raise ValueError(f"route must be one of ['auto', 'pypi', 'npm'], got {route!r}")
    errors = []
    for name in (["pypi", "npm"] if route == "auto" else [route]):
        with tempfile.TemporaryDirectory(prefix="mathjax-") as tmp:
            try:
                members, prefix, origin = routes[name](Path(tmp))
            except (BookError, OSError, subprocess.SubprocessError) as exc:
                errors.append(f"{name}: {exc}")
                continue
            staging = Path(tempfile.mkdtemp(prefix=".mathjax.", dir=_ensure_dir(target.parent)))
            try:
                for rel, read in members:
                    if not rel.startswith(prefix):
                        continue
                    sub = rel[len(prefix):]
                    if not sub or not sub.startswith(MATHJAX_KEEP) or ".." in Path(sub).parts:
                        continue
                    dest = staging / sub
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(read())
                if not (staging / MATHJAX_ENTRY).is_file():
                    raise BookError(f"{origin} has no {prefix}{MATHJAX_ENTRY}")
                io.write_json(staging / "complete.json", {"version": MATHJAX_VERSION,
                                                          "origin": origin})
                if target.exists():
                    shutil.rmtree(target)
                os.replace(staging, target)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
            return target
    raise BookError(
        "could not fetch MathJax (needed so that the book renders math offline):\n  "
        + "\n  ".join(errors)
        + "\nConnect to PyPI or the npm registry once (the copy is cached under "
        f"{target}), or point PRUNECXR_MATHJAX at MathJax 3's es5/ folder.")


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _checked(path: Path, expected: str) -> Path:
    got = io.sha256_file(path)
    if got != expected:
        raise BookError(f"{path.name}: sha256 {got} does not match the pinned {expected}")
    return path


def _mathjax_from_pypi(tmp: Path):
    spec, filename, sha, prefix = MATHJAX_PYPI
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "-d", str(tmp), spec]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    path = tmp / filename
    if done.returncode != 0 or not path.is_file():
        raise BookError(f"`{' '.join(cmd[2:])}` failed: {(done.stderr or done.stdout).strip()[-500:]}")
    archive = zipfile.ZipFile(_checked(path, sha))
    members = [(n, (lambda n=n: archive.read(n))) for n in archive.namelist() if not n.endswith("/")]
    return members, prefix, f"PyPI {spec}"


def _mathjax_from_npm(tmp: Path):
    spec, filename, sha, prefix = MATHJAX_NPM
    npm = shutil.which("npm")
    if npm is None:
        raise BookError("npm is not installed")
    done = subprocess.run([npm, "pack", spec, "--silent"], cwd=tmp, capture_output=True,
                          text=True, timeout=600)
    path = tmp / filename
    if done.returncode != 0 or not path.is_file():
        raise BookError(f"`npm pack {spec}` failed: {(done.stderr or done.stdout).strip()[-500:]}")
    archive = tarfile.open(_checked(path, sha), "r:gz")
    members = [(m.name, (lambda m=m: archive.extractfile(m).read()))
               for m in archive.getmembers() if m.isfile()]
    return members, prefix, f"npm {spec}"


# ------------------------------------------------------------------------------- the build

def repo_root() -> Path:
    """The source checkout holding ``_config.yml``, ``_toc.yml``, ``book/`` and ``notebooks/``."""
    root = Path(__file__).resolve().parent.parent
    missing = [p for p in ("_config.yml", "_toc.yml", "book", "notebooks") if not (root / p).exists()]
    if missing:
        raise BookError(f"{root} is not a prunecxr source checkout (missing {', '.join(missing)}); "
                        "the book builds from a git clone, not from an installed wheel")
    return root


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
    for path in sorted((root / "book").iterdir()):
        if path.is_file() and path.suffix in BOOK_SOURCE_SUFFIXES:
            shutil.copy2(path, book / path.name)
    (stage / GENERATED).mkdir(parents=True, exist_ok=True)
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
                     timeout: int | None = None) -> float:
    """Run ``notebooks/<name>.ipynb`` with papermill into ``dest_dir``; return seconds taken."""
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
    return time.perf_counter() - t0


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
               timeout: int | None = None) -> BookBuild:
    """Compute results for the profile, execute every chapter, render the book to ``OUT/html``.

    ``results_root`` defaults to ``$PRUNECXR_HOME/results``; ``overrides`` are ``field=value``
    strings (or a dict) applied to the profile; ``dataset``/``data_dir`` switch the data.
    ``notebooks`` restricts execution to some chapters (the others must then already exist in
    the staging area from an earlier build). Raises ``ValueError`` for a bad parameter and
    :class:`BookError` when a notebook or the HTML build fails.
    """
    from .config import load_config
    from .pipeline import ensure_results

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
    folder = ensure_results(config, results_root=results_root, progress=progress)
    timings["results"] = time.perf_counter() - t0

    stage_sources(stage, root)
    t0 = time.perf_counter()
    install_mathjax(stage)
    timings["mathjax"] = time.perf_counter() - t0

    parameters = {"profile": profile, "results_dir": str(results_root or ""),
                  "overrides": overrides}
    if dataset:
        parameters["dataset"] = dataset
    if data_dir:
        parameters["data_dir"] = str(data_dir)
    timings_file = out / "timings.json"
    timings["notebooks"] = {}
    for name in names:
        params = dict(parameters)
        if name == "reproducibility":
            io.write_json(timings_file, timings)
            params["timings_file"] = str(timings_file)
        if progress:
            print(f"[book] executing {name}.ipynb", flush=True)
        timings["notebooks"][name] = execute_notebook(name, stage / GENERATED, params, root,
                                                      timeout=timeout)
    missing = [n for n in NOTEBOOKS if not (stage / GENERATED / f"{n}.ipynb").is_file()]
    if missing:
        raise BookError(f"no executed notebook for {missing} in {stage / GENERATED}; "
                        "build without `notebooks=` once")

    if progress:
        print("[book] rendering HTML with jupyter-book", flush=True)
    t0 = time.perf_counter()
    html = render_html(stage, out / "html")
    timings["jupyter_book"] = time.perf_counter() - t0
    io.write_json(timings_file, timings)
    problems = audit_html(html)
    if problems:
        raise BookError("the built book has problems:\n  " + "\n  ".join(problems[:40]))
    if progress:
        print(f"[book] {html / 'index.html'}", flush=True)
    return BookBuild(html=html, source=stage, results_dir=folder, timings=timings)


# ------------------------------------------------------------------------------ HTML audit

class _Refs(HTMLParser):
    """Collect resource references (scripts, stylesheets, images, iframes...) of a page."""

    RESOURCE = {"script": "src", "img": "src", "iframe": "src", "source": "src",
                "video": "src", "audio": "src", "embed": "src", "object": "data"}

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in self.RESOURCE and a.get(self.RESOURCE[tag]):
            self.resources.append((tag, a[self.RESOURCE[tag]]))
        if tag == "link" and a.get("href"):
            rel = (a.get("rel") or "").lower()
            if any(r in rel for r in ("stylesheet", "preload", "icon", "modulepreload", "prefetch")):
                self.resources.append(("link", a["href"]))


# A role or directive left as text (e.g. MyST inside pasted inline markdown) is a bug.
RAW_ROLE = re.compile(r"\{(?:numref|ref|doc|eq|cite(?::[pt])?|glue(?::[a-z]+)?|math)\}")
GLUE_ERROR_MARKERS = ("No key ", "glue data for this document", "Failed to format",
                      "pending_glue", 'class="system-message"', 'class="problematic"')


def audit_html(html: str | os.PathLike, pages: Iterable[str] | None = None) -> list[str]:
    """Problems a reader would see, per page: external resources, missing local files,
    unresolved references (``??``, docutils problematic/system-message nodes, glue errors).

    Returns a list of ``page: problem`` strings (empty when the book is clean).
    """
    html = Path(html)
    files = ([html / p for p in pages] if pages is not None else
             sorted(p for p in html.rglob("*.html")
                    if not p.relative_to(html).as_posix().startswith(("_static/", "_sources/"))))
    problems = []
    for page in files:
        rel = page.relative_to(html).as_posix()
        if not page.is_file():
            problems.append(f"{rel}: missing")
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        parser = _Refs()
        parser.feed(text)
        for tag, url in parser.resources:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") or url.startswith("//"):
                problems.append(f"{rel}: external {tag} resource {url}")
            elif parts.scheme in ("", "file") and parts.path:
                target = (page.parent / unquote(parts.path)).resolve()
                if not target.exists():
                    problems.append(f"{rel}: {tag} refers to missing file {parts.path}")
        if rel in ("genindex.html", "search.html"):
            continue
        body = _main_text(text)
        for marker in GLUE_ERROR_MARKERS:
            if marker in body:
                problems.append(f"{rel}: contains {marker!r} (an unresolved reference or glue)")
        if re.search(r">\s*\?\?\s*<", body):
            problems.append(f"{rel}: contains an unresolved reference '??'")
        raw = RAW_ROLE.search(re.sub(r"<pre.*?</pre>|<code.*?</code>", "", body, flags=re.S))
        if raw:
            problems.append(f"{rel}: shows an unrendered MyST role or directive {raw.group(0)!r}")
    if pages is None:
        for css in sorted(html.rglob("*.css")):
            text = css.read_text(encoding="utf-8", errors="replace")
            for match in CSS_EXTERNAL.finditer(text):
                problems.append(f"{css.relative_to(html).as_posix()}: external stylesheet "
                                f"resource {match.group(0)}")
    return problems


# A stylesheet that pulls fonts or styles from the network (url(https://...), @import "//...").
CSS_EXTERNAL = re.compile(r"(?:url\(\s*|@import\s+)['\"]?(?:https?:)?//[^)'\";\s]+")


def _main_text(text: str) -> str:
    start = text.find('<main')
    end = text.rfind('</main>')
    return text[start:end] if start >= 0 and end > start else text


# ------------------------------------------------------------------------ nbval references

REF_DIR = Path("tests") / "notebooks"


def regenerate_nbval_refs(dest: str | os.PathLike | None = None, profile: str = "smoke",
                          notebooks: Sequence[str] | None = None, progress: bool = True) -> list[Path]:
    """Execute the chapters on the smoke profile into ``tests/notebooks/`` (nbval references).

    Results come from ``$PRUNECXR_HOME`` (computed if missing). Images are dropped from the
    saved outputs (nbval never compares them), text outputs are kept, and the machine's paths
    in them are what ``tests/nbval_sanitize.cfg`` masks.
    """
    import nbformat

    from .config import load_config
    from .pipeline import ensure_results

    root = repo_root()
    dest = Path(dest) if dest else root / REF_DIR
    ensure_results(load_config(profile), progress=progress)
    written = []
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m prunecxr.book [build|refs|mathjax] ...`` (the CLI's book is ``build``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m prunecxr.book", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compute results, execute the notebooks, build the HTML")
    b.add_argument("--profile", default="default")
    b.add_argument("--dataset", default=None)
    b.add_argument("--data-dir", default=None)
    b.add_argument("--results-dir", default=None)
    b.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    b.add_argument("--out", default="_build")
    r = sub.add_parser("refs", aliases=["nbval-refs"],
                       help="re-execute the nbval reference notebooks (smoke profile)")
    r.add_argument("names", nargs="*", help=f"some of {', '.join(NOTEBOOKS)} (default: all)")
    m = sub.add_parser("mathjax", help="fetch MathJax into the cache and print its folder")
    m.add_argument("--route", default="auto", choices=["auto", "pypi", "npm"])
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            built = build_book(args.profile, args.results_dir, args.out, args.overrides,
                               dataset=args.dataset, data_dir=args.data_dir)
            print(json.dumps({k: v for k, v in built.timings.items()}, indent=1, default=str))
        elif args.command in ("refs", "nbval-refs"):
            for path in regenerate_nbval_refs(notebooks=args.names or None):
                print(path)
        else:
            print(fetch_mathjax(route=args.route))
    except (ValueError, BookError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
