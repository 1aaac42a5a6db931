"""A headless Chromium driven by Selenium, from the operating system's packages.

The browser and its driver are found at ``$PAYMENTS_TEST_CHROMIUM`` and
``$PAYMENTS_TEST_CHROMEDRIVER``, else as ``chromium`` and ``chromedriver`` on the ``PATH``
(Debian's ``chromium`` and ``chromium-driver`` packages). Both paths are handed to Selenium, so
Selenium Manager never runs and nothing is downloaded. Where either is missing, or the browser
does not start, the tests are skipped with a message saying so, as the PostgreSQL ones are.

The window is a phone's (390 × 844 CSS pixels). Screenshots go to the test's temporary
directory, or to ``$PAYMENTS_SCREENSHOTS`` when set (``docs/images`` regenerates the docs').
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PHONE_WIDTH, PHONE_HEIGHT = 390, 844

# Flags that keep a headless Chromium quiet and local: it runs as root in CI (no sandbox), and
# nothing of its own (updates, sync, safe browsing) reaches past loopback.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
# Chromium keeps a window at least 500 pixels wide: the phone's screen is emulated instead.
PHONE = {"width": PHONE_WIDTH, "height": PHONE_HEIGHT, "pixelRatio": 1.0}


def _binary(variable: str, name: str) -> str:
    """The path of ``name`` (from ``$variable`` or the ``PATH``), or a skip saying why not."""
    path = os.environ.get(variable) or shutil.which(name)
    if not path or not os.access(path, os.X_OK):
        pytest.skip(
            f"browser tests need {name} (apt-get install chromium chromium-driver, or set "
            f"{variable}); none found"
        )
    return path


@contextmanager
def chromium(width: int, height: int, *, phone: bool = False) -> Iterator[Any]:
    """A headless Chromium with a ``width`` × ``height`` window (a phone's screen emulated when
    ``phone``), quit on exit; a skip saying why where there is none or it does not start."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("browser tests need selenium: pip install -e '.[dev]'")
    binary = _binary("PAYMENTS_TEST_CHROMIUM", "chromium")
    chromedriver = _binary("PAYMENTS_TEST_CHROMEDRIVER", "chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    if phone:
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    except WebDriverException as exc:
        pytest.skip(f"Chromium at {binary} did not start: {' '.join(str(exc).split())[:300]}")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium with a phone-sized window, closed after the module's tests."""
    with chromium(PHONE_WIDTH, PHONE_HEIGHT, phone=True) as driver:
        yield driver


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where this test saves its screenshots."""
    configured = os.environ.get("PAYMENTS_SCREENSHOTS")
    folder = Path(configured) if configured else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
