"""A page of the web UI in Chromium for the browser tests: console errors and requested URLs are
recorded (the ``ui`` fixture of tests/server/conftest.py checks them after each test)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["Page", "shot"]


class Page:
    """A page in a fresh context (no saved table settings) that records console errors and
    every URL it asks for."""

    def __init__(self, browser: Any, world: dict[str, Any]) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.base = world["url"]
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None,
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, fragment: str) -> Any:
        self.page.goto(f"{self.base}/ui/#{fragment}")
        return self.page

    def expected_http_errors(self, status: int, count: int) -> None:
        """Chromium logs every refused request; drop those a test provoked on purpose."""
        logged = f"Failed to load resource: the server responded with a status of {status} "
        mine = [e for e in self.errors if e.startswith(logged)]
        assert len(mine) == count, self.errors
        self.errors = [e for e in self.errors if e not in mine]

    def close(self) -> None:
        self.context.close()


def shot(page: Any, name: str) -> None:
    """A full-page screenshot for review, when ``MLOOP_UI_SHOTS`` names a folder."""
    folder = os.environ.get("MLOOP_UI_SHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)
