"""The chapter list, read from ``_toc.yml`` alone: the build, the nbval references and the
tests take the chapters and their order from the one file Jupyter Book reads.

A chapter is a toc entry ``file: chapters/<name>``: the notebook ``notebooks/<name>.ipynb``,
executed into the staging folder's ``chapters/``. The hand-written pages (``book/...``) are
not chapters. Adding a chapter is one notebook and one line in ``_toc.yml``.
"""

from __future__ import annotations

from pathlib import Path

from .errors import BookError

TOC = "_toc.yml"
CHAPTER_PREFIX = "chapters/"
# The source checkout this package runs from (an editable install or the repository itself).
CHECKOUT = Path(__file__).resolve().parents[2]


def repo_root() -> Path:
    """The source checkout holding ``_config.yml``, ``_toc.yml``, ``book/`` and ``notebooks/``."""
    missing = [p for p in ("_config.yml", TOC, "book", "notebooks") if not (CHECKOUT / p).exists()]
    if missing:
        raise BookError(f"{CHECKOUT} is not a prunecxr source checkout (missing "
                        f"{', '.join(missing)}); the book builds from a git clone, not from an "
                        "installed wheel")
    return CHECKOUT


def chapters(toc: str | Path | None = None) -> tuple[str, ...]:
    """The chapter notebooks' names in reading order: every ``file: chapters/<name>`` entry of
    ``toc`` (default: the checkout's ``_toc.yml``), through parts, chapters and sections."""
    import yaml  # with the book's dependencies (jupyter-book, papermill)

    path = Path(toc) if toc is not None else repo_root() / TOC
    names: list[str] = []

    def walk(node) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            entry = node.get("file")
            if isinstance(entry, str) and entry.startswith(CHAPTER_PREFIX):
                names.append(Path(entry[len(CHAPTER_PREFIX):]).with_suffix("").as_posix())
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key))

    walk(yaml.safe_load(path.read_text()))
    if len(set(names)) != len(names):
        raise BookError(f"{path} lists a chapter twice: {names}")
    return tuple(names)


# Empty outside a source checkout (an installed wheel), where no book can be built.
NOTEBOOKS: tuple[str, ...] = chapters(CHECKOUT / TOC) if (CHECKOUT / TOC).is_file() else ()
