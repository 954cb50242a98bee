"""``make lab`` renders a chapter's MyST as the book does: JupyterLab with the jupyterlab-myst
extension, a chapter opened in headless Chromium (``tests/browser.py``).

The answer box (a ``{admonition}`` with ``:class: tip answer-box``) must show as an admonition,
and no raw MyST (``:class:``, ``{glue:text}``, ``{cite:p}``) may be visible. myst-nb's
``{glue:figure}`` and ``{glue}`` directives are not known to jupyterlab-myst: JupyterLab shows
them as "Unknown Directive" boxes (the book fills them in); that is not checked here.

JupyterLab comes with the test extras (as ``make lab`` installs it); without it the test skips,
and fails under ``CI=true`` like every browser test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browser import chrome_driver, unavailable
from checkout import checkout_env

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]
TOKEN = "prunecxr-lab-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a copy of one chapter; yields its base URL."""
    import importlib.util

    missing = [m for m in ("jupyterlab", "jupyterlab_myst") if importlib.util.find_spec(m) is None]
    if missing:
        unavailable(f"the JupyterLab check needs {', '.join(missing)}; install with make lab")
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy2(REPO / "notebooks" / "q1_overall.ipynb", root)
    port = _free_port()
    env = checkout_env(JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
                       JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    args = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
            "--ip=127.0.0.1", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):  # up to 2 min (or more with slow answers) on a loaded machine
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    break
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
        assert server.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_a_chapter_renders_myst_in_jupyterlab(lab, tmp_path):
    driver = chrome_driver(tmp_path / "chrome", offline=False)  # the page talks to its server
    try:
        driver.get(f"{lab}/lab/tree/q1_overall.ipynb?token={TOKEN}")
        raw_markers = (":class:", "{glue:text}", "{cite:p}", "```{admonition}")
        boxes, text = 0, ""
        # JupyterLab renders the markdown cells one by one, slowly on a loaded 2-core machine:
        # wait until the answer box is there and every cell has rendered, or the time is up.
        for _ in range(600):
            boxes = driver.execute_script(
                "return document.querySelectorAll('.jp-MarkdownCell aside.myst-admonition"
                ".answer-box').length")
            text = driver.execute_script(
                "const nb = document.querySelector('.jp-Notebook'); return nb ? nb.innerText : ''")
            if boxes and not any(raw in text for raw in raw_markers):
                break
            time.sleep(0.5)
        assert boxes == 1, text[:2000]
        for raw in raw_markers:
            assert raw not in text, raw
        assert "In this build" in text
    finally:
        driver.quit()
