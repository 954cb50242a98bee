"""Headless Chromium for browser tests, with one skip rule shared by every such test.

``chrome_driver(tmp_path, download_dir=None)`` returns a selenium driver on a fresh profile
with the network cut off (DevTools network emulation: offline) and downloads going to
``download_dir`` without a prompt. Missing Chromium or chromedriver skips the test with a
clear message, except under CI (``CI=true``), where a browser test that cannot run fails.

Import it as ``from browser import chrome_driver`` (pytest puts ``tests/`` on ``sys.path``
in its default import mode while ``tests/`` has no ``__init__.py``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver (Debian) and pip install selenium"


def _find(candidates: tuple[str, ...]) -> str | None:
    for cand in candidates:
        path = cand if os.path.isabs(cand) else shutil.which(cand)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def browser_paths() -> tuple[str, str]:
    """(chromium binary, chromedriver) or skip/fail via :func:`require_browser`."""
    binary, driver = _find(CHROMIUM), _find(CHROMEDRIVER)
    missing = [what for what, path in (("chromium", binary), ("chromedriver", driver))
               if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (python package)")
    if missing:
        unavailable(f"browser test needs {', '.join(missing)}; install with: {INSTALL_HINT}")
    return binary, driver


def unavailable(message: str) -> None:
    """Skip with ``message``; fail instead when ``CI`` is ``true`` (a CI run must test it)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: browser tests may not be skipped)", pytrace=False)
    pytest.skip(message)


def chrome_driver(tmp_path: Path, download_dir: Path | None = None, offline: bool = True):
    """A headless Chromium driver on an empty profile under ``tmp_path``; caller quits it."""
    binary, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tmp_path) / "chrome-profile"
    profile.mkdir(parents=True, exist_ok=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,1000", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    if download_dir is not None:
        Path(download_dir).mkdir(parents=True, exist_ok=True)
        opts.add_experimental_option("prefs", {
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
            "download.directory_upgrade": True,
            "safebrowsing.enabled": False,
        })
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        if download_dir is not None:
            driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                   {"behavior": "allow", "downloadPath": str(download_dir)})
        if offline:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
                "offline": True, "latency": 0, "downloadThroughput": -1,
                "uploadThroughput": -1})
    except Exception:
        driver.quit()
        raise
    return driver


def network_blocked(driver, timeout: float = 10.0) -> bool:
    """Whether ``driver`` fails to load a page from a live HTTP server on 127.0.0.1.

    Proves that the offline emulation holds at the network level. ``navigator.onLine`` is no
    proof: Chromium 150 reports ``true`` again after every navigation although requests still
    fail. Navigates the driver (load the page under test afterwards).
    """
    import functools
    import http.server
    import threading

    from selenium.common.exceptions import WebDriverException

    marker = "prunecxr-network-probe"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = f"<html><body>{marker}</body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=functools.partial(server.serve_forever, 0.05), daemon=True)
    thread.start()
    try:
        driver.set_page_load_timeout(timeout)
        try:
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/probe.html")
        except WebDriverException:
            return True
        return marker not in driver.page_source
    finally:
        server.shutdown()
        server.server_close()


def wait_for_file(folder: Path, pattern: str, timeout: float = 15.0) -> Path:
    """The first finished download matching ``pattern`` in ``folder`` (waits up to timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in Path(folder).glob(pattern)
                if not p.name.endswith((".crdownload", ".tmp")) and p.stat().st_size > 0]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no file matching {pattern!r} appeared in {folder} within {timeout}s "
                         f"(found: {sorted(p.name for p in Path(folder).iterdir())})")
