"""MathJax 3 for offline math: fetched once, checked against a pinned sha256, cached."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from .. import io
from ..paths import home
from .errors import BookError

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


