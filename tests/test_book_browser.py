"""The built book in a real browser, from disk, with the network off.

Headless Chromium (``tests/browser.py``: DevTools network emulation set to offline) opens the
intro and a chapter from ``file://`` and checks what a reader sees: MathJax has typeset the math
(``mjx-container`` elements, no raw ``\\(`` left in the text) and every figure has loaded
(``naturalWidth > 0``). Skipped without Chromium, except under ``CI=true``.
"""

from __future__ import annotations

import time

import pytest
from browser import chrome_driver
from test_book import build_once

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PAGES = ["book/intro.html", "book/_generated/q2_forgetting.html",
         "book/_generated/data_methods.html"]


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
