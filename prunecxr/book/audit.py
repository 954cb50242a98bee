"""The HTML audit: what a reader would see go wrong on a built page."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote, urlsplit

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




# Absolute paths of a build machine: home folders, temporary folders, a Windows profile.
MACHINE_PATH = re.compile(r"(?<![\w.~-])(?:/home/|/root/|/Users/|/tmp/|/private/var/|/work/"
                          r"|[A-Z]:\\\\Users\\\\)")


def machine_paths(html: str | os.PathLike, paths: Iterable[str | os.PathLike] = ()) -> list[str]:
    """Pages (``.html`` and the search index) that show an absolute path of the build machine:
    one of ``paths`` (e.g. the checkout, the results folder) or a home/temporary folder."""
    html = Path(html)
    needles = sorted({str(Path(p)) for p in paths if p and len(str(Path(p))) > 1}, key=len,
                     reverse=True)
    problems = []
    for page in sorted([*html.rglob("*.html"), *html.glob("searchindex.js")]):
        rel = page.relative_to(html).as_posix()
        if rel.startswith("_static/"):
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        found = [n for n in needles if n in text]
        match = MACHINE_PATH.search(text)
        if found or match:
            shown = found[0] if found else text[match.start():match.start() + 60].split("<")[0]
            problems.append(f"{rel}: shows a path of the build machine: {shown!r}")
    return problems
