from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _ui_page import Page

from _chromium import chromium


@pytest.fixture
def mlflow(server: Any) -> Iterator[Any]:
    """The ``mlflow`` module pointed at the module's MLflow-dialect ``server``
    (``server = server_fixture(...)`` from ``_mlflow_server``)."""
    from _mlflow_server import mlflow_client_on

    with mlflow_client_on(server.url) as m:
        yield m


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser), one per module."""
    with chromium() as b:
        yield b


@pytest.fixture
def ui(browser: Any, world: dict[str, Any]) -> Iterator[Page]:
    """A fresh page on the module's ``world`` server; after the test, no console error and no
    request that left the server."""
    page = Page(browser, world)
    yield page
    assert page.errors == []
    assert all(u.startswith(world["url"]) or u.startswith("blob:") for u in page.requests)
    page.close()
