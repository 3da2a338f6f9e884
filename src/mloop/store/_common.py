"""Helpers every part of the Store contract shares: result limits, page tokens, sha256 checks."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from mloop.errors import InvalidInputError
from mloop.store._validation import validate_sha256

__all__ = [
    "MAX_RESULTS_LIMIT",
    "LazyMapping",
    "decode_page_token",
    "encode_page_token",
    "validate_max_results",
    "validate_sha",
]

MAX_RESULTS_LIMIT = 50_000


def validate_sha(sha: object) -> str:
    """The check of a dataset version's sha256 (:func:`validate_sha256`; blobs are named by
    digests, see :func:`validate_digest`)."""
    return validate_sha256(sha)


def validate_max_results(value: object, *, name: str = "max_results") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RESULTS_LIMIT:
        raise InvalidInputError(
            f"`{name}` must be an int in [1, {MAX_RESULTS_LIMIT}]; got {value!r}."
        )
    return value


def encode_page_token(offset: int) -> str:
    import base64

    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_page_token(token: str | None) -> int:
    import base64
    import binascii

    if token is None or token == "":
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("o:"):
            raise ValueError
        digits = raw[2:]
        # at most 18 digits: any offset a store can skip to, and int() never sees a huge text
        if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
            raise ValueError
        offset = int(digits)
        if offset < 0 or math.isnan(offset):
            raise ValueError
        return offset
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInputError(
            f"`page_token` is not a token returned by a previous search; got {token!r}."
        ) from None


class LazyMapping(Mapping[str, Any]):
    """A mapping read on first access: a search result's captured context, which the SQL store
    loads from its database and the HTTP store from the server, a page of results at a time.
    Pickled as the plain dict it reads."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: Mapping[str, Any] | None = None

    def _load(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def _get(self) -> Mapping[str, Any]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (dict(self._get()),)
