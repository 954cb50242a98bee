"""The built book in a real browser, from disk, with the network off.

Headless Chromium (``tests/browser.py``: DevTools network emulation set to offline, a 1280 px
wide window) opens the pages from ``file://`` and checks what a reader sees: MathJax has
typeset the math (``mjx-container`` elements, no raw ``\\(`` left in the text); the landing
page shows the verdict table and a figure; on every chapter the first visible element after
the title is the "In this build" box, not code; every figure has loaded
(``naturalWidth > 0``); no page scrolls sideways; the search page finds "forgettability".
Skipped without Chromium, except under ``CI=true``.
"""

from __future__ import annotations

import time

import pytest
from browser import chrome_driver
from test_book import build_once

pytestmark = [pytest.mark.slow, pytest.mark.browser]

from prunecxr.book import NOTEBOOKS

PAGES = ["book/intro.html", "chapters/q2_forgetting.html", "chapters/data_methods.html"]
ALL_PAGES = ["book/intro.html", *(f"chapters/{n}.html" for n in NOTEBOOKS), "book/references.html"]


@pytest.fixture(scope="session")
def built_html(tmp_path_factory, smoke_results):
    return build_once(tmp_path_factory.getbasetemp(), smoke_results).html


def _wait(driver, script, timeout=20.0):
    deadline = time.monotonic() + timeout
    value = driver.execute_script(script)
    while not value and time.monotonic() < deadline:
        time.sleep(0.2)
        value = driver.execute_script(script)
    return value


@pytest.mark.parametrize("page", PAGES)
def test_math_typeset_and_figures_loaded_offline(built_html, tmp_path, page):
    driver = chrome_driver(tmp_path)
    try:
        driver.get((built_html / page).as_uri())
        assert _wait(driver, "return document.readyState === 'complete'")
        n_math = _wait(driver, "return document.querySelectorAll('mjx-container').length")
        assert n_math and n_math > 0, f"{page}: MathJax did not typeset anything"
        assert _wait(driver, "return window.MathJax && MathJax.startup && "
                             "MathJax.startup.promise && true")
        driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "MathJax.startup.promise.then(() => done(true)).catch(() => done(false));")
        text = driver.execute_script("return document.querySelector('main').innerText")
        assert "\\(" not in text and "\\[" not in text and "$$" not in text, \
            f"{page}: raw TeX left on the page"
        errors = driver.execute_script("return document.querySelectorAll('mjx-merror').length")
        assert errors == 0, f"{page}: MathJax reported {errors} error(s)"
        images = driver.execute_script(
            "return Array.from(document.querySelectorAll('main img'))"
            ".map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);")
        broken = [src for src, complete, width in images if not (complete and width > 0)]
        assert not broken, f"{page}: figures that did not load: {broken}"
        if page != "book/intro.html":
            assert images, f"{page}: no figures"
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    d = chrome_driver(tmp_path_factory.mktemp("chrome"))
    yield d
    d.quit()


def _open(driver, url):
    driver.get(url)
    assert _wait(driver, "return document.readyState === 'complete'")


def test_landing_page_shows_the_verdict_table_and_a_figure(built_html, driver):
    _open(driver, (built_html / "book/intro.html").as_uri())
    rows = driver.execute_script(
        "const t = document.querySelector('main table.verdict-table');"
        "if (!t) return 0; const r = t.getBoundingClientRect();"
        "return r.width > 0 && r.height > 0 ? t.querySelectorAll('tbody tr').length : 0;")
    assert rows >= 10, "the verdict table is not visible on the landing page"
    loaded = _wait(driver, "return Array.from(document.querySelectorAll('main img'))"
                           ".filter(i => i.complete && i.naturalWidth > 0).length")
    assert loaded >= 1, "no figure loaded on the landing page"


# The first element after the h1 that a reader can see (non-zero size, not hidden).
FIRST_VISIBLE = """
const h1 = document.querySelector('main article section h1');  // not the print-only h1
let el = h1.nextElementSibling;
while (el) {
  const r = el.getBoundingClientRect();
  const style = getComputedStyle(el);
  if (r.height > 0 && r.width > 0 && style.visibility !== 'hidden' && style.display !== 'none')
    return [el.tagName, el.className, el.innerText.slice(0, 80)];
  el = el.nextElementSibling;
}
return null;
"""


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_chapter_opens_with_its_answer_box(built_html, driver, name):
    _open(driver, (built_html / "chapters" / f"{name}.html").as_uri())
    first = driver.execute_script(FIRST_VISIBLE)
    assert first is not None, f"{name}: nothing visible after the title"
    tag, cls, text = first
    assert "answer-box" in cls and text.startswith("In this build"), \
        f"{name}: first visible element after the title is {tag}.{cls}: {text!r}"


@pytest.mark.parametrize("page", ALL_PAGES)
def test_figures_load_and_nothing_scrolls_sideways(built_html, driver, page):
    _open(driver, (built_html / page).as_uri())
    width = driver.execute_script("return window.innerWidth")
    assert width >= 1200, f"window is {width} px wide"
    images = driver.execute_script(
        "return Array.from(document.querySelectorAll('main img'))"
        ".map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);")
    broken = [src for src, complete, w in images if not (complete and w > 0)]
    assert not broken, f"{page}: figures that did not load: {broken}"
    sideways = driver.execute_script(
        "const e = document.scrollingElement;"
        "return [e.scrollWidth, e.clientWidth];")
    assert sideways[0] <= sideways[1], f"{page}: scrolls sideways ({sideways[0]} > {sideways[1]} px)"


def test_search_finds_forgettability_offline(built_html, driver):
    _open(driver, (built_html / "search.html").as_uri() + "?q=forgettability")
    hits = _wait(driver, "return document.querySelectorAll('#search-results li').length", 30)
    assert hits and hits > 0, "search found nothing for 'forgettability'"
    links = driver.execute_script("return Array.from(document.querySelectorAll("
                                  "'#search-results li a')).map(a => a.getAttribute('href'))")
    assert any("q2_forgetting" in (h or "") for h in links), links
