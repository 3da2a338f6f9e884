from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mloop.config import Settings
from mloop.store._open import clear_store_cache


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings rooted in a temp MLOOP_HOME, with a short flush interval."""
    s = Settings.from_env({}, home=tmp_path / "home", flush_interval_s=0.05)
    yield s
    from mloop.tracking import _fluent

    for run in list(_fluent._active):
        run.finish()
    clear_store_cache()
