"""The reader's form in a real browser: headless Chromium, opened from disk, network off.

Answers every image by clicking, goes back once to change an answer, saves, and imports the
downloaded CSV through ``load_responses``; a broken copy of it is refused. Skips when
Chromium/chromedriver are missing, fails instead under ``CI=true`` (see ``tests/browser.py``).
"""

from __future__ import annotations

import csv
import re

import pytest

import browser
from browser import chrome_driver, wait_for_file
from prunecxr.study import StudyError, load_responses, make_packet, read_key
from test_study import fake_store

N = 6


def click(driver, element_id: str) -> None:
    from selenium.webdriver.common.by import By
    driver.find_element(By.ID, element_id).click()


def text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, element_id).text


@pytest.mark.browser
def test_form_offline_round_trip(tmp_path):
    store = fake_store()
    packet = make_packet(store, tmp_path / "packet", readers=2, per_reader=N, image_size=96,
                         pies=store.is_hard, seed=7)
    form = packet / "readers" / "reader_01" / "reader_01.html"
    assert not re.search(r"https?://", form.read_text("utf-8"))
    downloads = tmp_path / "downloads"
    driver = chrome_driver(tmp_path, download_dir=downloads)
    try:
        assert browser.network_blocked(driver)      # the network really is off
        driver.get(form.as_uri())
        assert driver.title == "Reader study: reader_01"
        expected = {}
        for k in range(1, N + 1):
            assert text(driver, "position") == f"Image {k} of {N}"
            src, width = driver.execute_script(
                "var i = document.getElementById('img'); return [i.src, i.naturalWidth];")
            assert src.startswith("data:image/png;base64,") and width == 96
            assert text(driver, "labels")          # the image's labels are shown
            answer = ("yes" if k % 2 else "no", 1 + k % 5, 5 - k % 5)
            click(driver, f"agree-{answer[0]}")
            click(driver, f"quality-{answer[1]}")
            click(driver, f"difficulty-{answer[2]}")
            expected[k] = answer
            if k == 3:                              # saving early lists what is missing
                click(driver, "save-btn")
                assert "3 image(s) not fully answered yet: 4, 5, 6" in text(driver, "message")
            if k < N:
                click(driver, "next")
        assert f"{N} of {N} answered" in text(driver, "progress")

        click(driver, "prev")                       # go back once and change an answer
        assert text(driver, "position") == f"Image {N - 1} of {N}"
        assert driver.execute_script(
            f"return document.getElementById('quality-{expected[N - 1][1]}').checked")
        flipped = "no" if expected[N - 1][0] == "yes" else "yes"
        click(driver, f"agree-{flipped}")
        click(driver, "difficulty-1")
        expected[N - 1] = (flipped, expected[N - 1][1], 1)

        click(driver, "save-btn")
        saved = wait_for_file(downloads, "reader_01_responses.csv")
        assert "Saved reader_01_responses.csv" in text(driver, "message")
        shown = driver.execute_script("return document.getElementById('csv').value")
        assert saved.read_text("utf-8") == shown    # the copy-paste fallback is the same file
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; })")
        assert all(r.startswith(("data:", "blob:", "file:")) for r in resources), resources

        driver.refresh()                            # answers survive a reload (localStorage)
        assert f"{N} of {N} answered" in text(driver, "progress")
    finally:
        driver.quit()

    table = load_responses(packet, [saved])
    key = read_key(packet)[0].set_index("item")
    got = {int(key.loc[r.item, "position"]): ("yes" if r.agrees_with_label else "no",
                                              r.quality, r.difficulty)
           for r in table.itertuples()}
    assert got == expected
    assert (table["reader"] == "reader_01").all() and table["is_pie"].sum() == N // 2

    with open(saved, newline="") as fh:
        rows = list(csv.reader(fh))
    rows[4][4] = "9"
    broken = tmp_path / "broken.csv"
    with open(broken, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(StudyError, match=re.escape(f"{broken}: line 5: quality must be an "
                                                   "integer 1-5, got '9'")):
        load_responses(packet, [broken])


def test_missing_browser_skips_locally_and_fails_under_ci(monkeypatch, tmp_path):
    """Whatever this machine has installed: a missing piece skips naming exactly what is
    missing and how to install it; under CI=true the same situation fails instead."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "selenium", types.ModuleType("selenium"))  # "installed"
    fake_chromium = tmp_path / "chromium"
    fake_chromium.write_text("#!/bin/sh\n")
    fake_chromium.chmod(0o755)
    cases = [  # (chromium candidates, chromedriver candidates, what the message must name)
        (("/nonexistent/chromium",), ("/nonexistent/chromedriver",), "chromium, chromedriver"),
        ((str(fake_chromium),), ("/nonexistent/chromedriver",), "chromedriver"),
        (("/nonexistent/chromium",), (str(fake_chromium),), "chromium"),
    ]
    for chromium, driver, named in cases:
        monkeypatch.setattr(browser, "CHROMIUM", chromium)
        monkeypatch.setattr(browser, "CHROMEDRIVER", driver)
        monkeypatch.delenv("CI", raising=False)
        with pytest.raises(pytest.skip.Exception) as skipped:
            browser.browser_paths()
        message = str(skipped.value)
        assert message.startswith(f"browser test needs {named}; install with: "), message
        assert browser.INSTALL_HINT in message
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception) as failed:
            browser.browser_paths()
        assert f"browser test needs {named}; install" in str(failed.value)
        assert "CI=true: browser tests may not be skipped" in str(failed.value)
    # Everything present: the paths come back, nothing is skipped, with or without CI.
    monkeypatch.setattr(browser, "CHROMIUM", (str(fake_chromium),))
    monkeypatch.setattr(browser, "CHROMEDRIVER", (str(fake_chromium),))
    assert browser.browser_paths() == (str(fake_chromium), str(fake_chromium))
    monkeypatch.setitem(sys.modules, "selenium", None)  # not installed: import fails
    with pytest.raises(pytest.fail.Exception, match=r"needs selenium \(python package\)"):
        browser.browser_paths()
