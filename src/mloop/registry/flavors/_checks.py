"""Guards for classes named in a manifest (the manifest is not hash-protected, so check them)."""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidInputError


def checked_subclass(cls: Any, base: type) -> type:
    """``cls`` if it is a subclass of ``base``; refuse anything else a manifest might name."""
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise InvalidInputError(
            f"The manifest names {cls!r} as the model class, which is not a "
            f"{base.__module__}.{base.__qualname__}; refusing to instantiate it."
        )
    return cls
