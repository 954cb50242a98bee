"""The chapter list comes from ``_toc.yml`` alone (prunecxr.book.toc): every notebook is a
chapter, every chapter a notebook, in the toc's order."""

from __future__ import annotations

import pytest

from prunecxr.book import NOTEBOOKS, BookError, repo_root
from prunecxr.book.toc import chapters


def test_every_notebook_is_a_chapter_of_the_toc_and_back():
    root = repo_root()
    assert NOTEBOOKS == chapters(root / "_toc.yml")
    assert sorted(NOTEBOOKS) == sorted(p.stem for p in (root / "notebooks").glob("*.ipynb"))


def test_chapters_in_reading_order_through_parts_and_sections(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: A\n    chapters:\n      - file: chapters/b\n"
        "        sections:\n          - file: chapters/a.ipynb\n      - file: book/references\n"
        "  - caption: B\n    chapters:\n      - file: chapters/c\n")
    assert chapters(toc) == ("b", "a", "c")
    toc.write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: chapters/a\n"
                   "  - file: chapters/a\n")
    with pytest.raises(BookError, match="twice"):
        chapters(toc)
