"""Shared pytest fixtures (small-data mode is set by the root ``conftest.py``)."""

from __future__ import annotations

import functools
import http.server
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
# Where .ci/run finds the real rubert-tiny tokenizer and config (no weights) offline.
SHARED_TOKENIZER = ROOT.parent / "shared" / "models" / "rubert-tiny-tokenizer"


@pytest.fixture
def restore_package_logger() -> Iterator[None]:
    """The package's logger (level and handlers) as it was before the test, after it."""
    from helpers.messages import PACKAGE_LOGGER

    logger = logging.getLogger(PACKAGE_LOGGER)
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.fixture(scope="session")
def rubert_tokenizer_dir() -> Path:
    """A folder with rubert-tiny's tokenizer and config: the shared copy, else ``BOOK_TEACHER``."""
    # A git worktree of the checkout lies deeper: the shared folder is then a level further up.
    candidates = [SHARED_TOKENIZER, ROOT.parents[1] / "shared" / "models" / "rubert-tiny-tokenizer"]
    teacher = os.environ.get("BOOK_TEACHER", "").strip()
    if teacher:
        candidates.append(Path(teacher).expanduser())
    for folder in candidates:
        if (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file():
            return folder
    pytest.skip(f"no rubert-tiny tokenizer folder found (looked in {candidates})")


@pytest.fixture(scope="session")
def standin_teacher_dir(
    tmp_path_factory: pytest.TempPathFactory, rubert_tokenizer_dir: Path
) -> Path:
    """A stand-in teacher (random rubert-tiny-shaped BertForPreTraining plus the real tokenizer)."""
    from helpers.standin import make_standin_teacher

    return make_standin_teacher(rubert_tokenizer_dir, tmp_path_factory.mktemp("standin-teacher"))


# The rendered book, built once per session and opened in headless Chromium (tests/test_site.py,
# tests/test_try_it.py).
def find_browser() -> tuple[str, str]:
    """Paths of Chromium and ChromeDriver; skip (fail in CI) when they are not installed."""
    browser = next((path for name in CHROMIUM if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = ("headless Chromium and ChromeDriver are needed to check the rendered book: "
               "`apt-get install chromium chromium-driver` (Debian/Ubuntu)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered book's html folder: ``--site DIR``, else a fresh ``jupyter-book build``."""
    given = request.config.getoption("--site")
    if given:
        html = Path(given).resolve()
        assert (html / "index.html").is_file(), f"--site {given}: no index.html there"
        return html
    find_browser()  # no point in building a site no browser can open
    out = tmp_path_factory.mktemp("book")
    # The console script installed beside this Python (jupyter_book has no ``__main__``).
    command = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    build = subprocess.run([command, "build", str(ROOT), "--path-output", str(out)],
                           capture_output=True, text=True, cwd=ROOT)
    assert build.returncode == 0, f"jupyter-book build failed:\n{build.stdout[-4000:]}\n" \
                                  f"{build.stderr[-4000:]}"
    return out / "_build" / "html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="session")
def server(site: Path) -> Iterator[str]:
    """The site served on a free port of localhost, for the duration of the tests."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser(server: str) -> Iterator[object]:
    """Headless Chromium driven by Selenium, with no network beyond localhost."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1024"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    chrome.set_page_load_timeout(60)
    yield chrome
    chrome.quit()
