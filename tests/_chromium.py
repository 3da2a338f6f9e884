"""Debian's Chromium driven by Playwright, for the tests that look at pages in a real browser.

Playwright's own browser download does not work here, so the system ``chromium`` is launched by
path. A missing Playwright or Chromium is a failure under ``CI=true`` and a skip elsewhere
(:func:`_services.service_missing`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

from _services import service_missing

__all__ = ["chromium"]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A running headless Chromium (a Playwright ``Browser``), closed on exit."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("playwright is not installed (pip install playwright)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        service_missing("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(
                executable_path=executable,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
        except PlaywrightError as exc:
            service_missing(f"chromium does not start: {exc}")
        try:
            yield b
        finally:
            b.close()
