"""Headless Chromium (the Debian package, never a downloaded browser) driven by playwright."""

from __future__ import annotations

import os
import shutil
from typing import Iterator

import pytest

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    for path in (os.environ.get("PORTAL_CHROMIUM"), *CHROMIUM_PATHS, shutil.which("chromium")):
        if path and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator:
    path = chromium_path()
    if path is None:
        pytest.skip("chromium not found (apt-get install -y chromium, or `make browser`); "
                    "set PORTAL_CHROMIUM to another Chromium binary")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=["--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (empty storage) in English; JavaScript errors fail the test."""
    context = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(30_000)
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"
