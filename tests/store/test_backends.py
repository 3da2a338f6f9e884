"""The backend registry: a store URI's scheme picks the class that serves it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.store import SqlStore, create_store, open_store, register_backend, registered_schemes
from mloop.store._open import clear_store_cache


def test_sql_schemes_are_served_by_the_sql_store(tmp_path: Path) -> None:
    assert {"sqlite", "postgresql", "postgres"} <= set(registered_schemes())
    s = create_store(f"sqlite:///{tmp_path / 'a.db'}", heartbeat_timeout_s=5)
    try:
        assert isinstance(s, SqlStore) and s.heartbeat_timeout_ms == 5000
    finally:
        s.close()


def test_a_new_backend_is_one_registration(tmp_path: Path) -> None:
    made: list[tuple[str, dict[str, Any]]] = []

    def factory(uri: str, **options: Any) -> SqlStore:
        made.append((uri, options))
        return SqlStore(f"sqlite:///{tmp_path / 'b.db'}")

    register_backend(["memo-test"], factory)
    settings = Settings.from_env({"MLOOP_STORE_URI": "memo-test://anything"}, home=tmp_path)
    try:
        store = open_store(settings)
        assert isinstance(store, SqlStore) and made[0][0] == "memo-test://anything"
        assert made[0][1] == {"heartbeat_timeout_s": 3 * settings.heartbeat_s}
        assert open_store(settings) is store  # cached per URI, as for SQL stores
        assert len(made) == 1
        # A driver suffix falls back to the scheme: memo-test+fast:// is served by the same factory.
        create_store("memo-test+fast://x").close()
        assert made[-1][0] == "memo-test+fast://x"
    finally:
        clear_store_cache()


def test_an_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match=r"no store backend serves 'mysql://u:\*\*\*@h/db'"):
        create_store("mysql://u:secret@h/db")
    with pytest.raises(InvalidInputError, match="a store URI looks like"):
        create_store("just-a-path")
    with pytest.raises(InvalidInputError, match="scheme"):
        register_backend(["bad://"], lambda uri: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(InvalidInputError, match="schemes"):
        register_backend("https", lambda uri: None)  # type: ignore[arg-type,return-value]
