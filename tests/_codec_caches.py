"""An autouse fixture for the codec's tests: each test builds the decoders and encoders it uses
(they are cached per type), so what it checks is the code that builds them, not what an earlier
test or process left cached (this is what lets mutation testing judge that code)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def decoders_built_per_test() -> None:
    from mloop.codec import _encode, _types

    for cached in (
        _types._decoder,
        _types._plan,
        _types._compiled,
        _encode._field_names,
        _encode._fields_encoder,
    ):
        cached.cache_clear()
