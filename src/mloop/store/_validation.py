"""Input limits shared by every backend (MLflow's, enforced identically on SQLite, PostgreSQL and HTTP)."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from mloop._digest import is_digest
from mloop.errors import InvalidInputError
from mloop.ids import RUN_ID_RE

__all__ = [
    "MAX_ENTITY_NAME",
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE",
    "MAX_TAG_VALUE",
    "is_sha256",
    "storable_text",
    "validate_artifact_path",
    "validate_key",
    "validate_metric_value",
    "validate_params",
    "validate_run_id",
    "validate_sha256",
    "validate_tags",
    "validate_text",
]

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_ENTITY_NAME = 500

_KEY_RE = re.compile(r"^[\w./\- :]+$")
_ok_keys: set[str] = set()


def validate_key(key: object, *, kind: str = "metric") -> str:
    """Return ``key`` if it is a valid metric/param/tag key, else raise :class:`InvalidInputError`.

    Keys are at most 250 characters of letters, digits, ``_ - . / :`` and spaces, and may not contain
    ``..`` path segments or start with ``/`` (they become file-like paths in some views).
    """
    if key in _ok_keys:  # hot path: the same few keys are logged millions of times
        return key
    if not isinstance(key, str):
        raise InvalidInputError(f"{kind} key must be a str; got {type(key).__name__} {key!r}.")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{kind} key must have 1 to {MAX_KEY_LENGTH} characters; got {len(key)} ({key[:60]!r}...)."
            if key
            else f"{kind} key must be a non-empty string; got ''."
        )
    if not _KEY_RE.match(key):
        bad = sorted({c for c in key if not re.match(r"[\w./\- :]", c)})
        raise InvalidInputError(
            f"{kind} key {key!r} contains invalid characters {bad}; allowed are letters, digits, "
            "'_', '-', '.', '/', ':' and spaces."
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidInputError(
            f"{kind} key {key!r} may not start with '/' or contain '..' segments."
        )
    if len(_ok_keys) < 100_000:
        _ok_keys.add(key)
    return key


_SURROGATE = re.compile("[\ud800-\udfff]")


def validate_metric_value(key: str, value: Any) -> float:
    """Return ``value`` as a float; bools, complex numbers and non-numbers are refused.

    NaN and +/-inf are kept. An int too large for a float64 (``10**400``) is refused here, where the
    caller sees it, rather than failing later when the batch is written.
    """
    if isinstance(value, float):
        return value
    if (
        isinstance(value, bool)
        or value is None
        or isinstance(value, (str, bytes, complex))
        or getattr(getattr(value, "dtype", None), "kind", "") in ("b", "c")
    ):
        raise InvalidInputError(
            f"metric {key!r} must be a real number (int or float); got {type(value).__name__} "
            f"{_short_repr(value)}."
        )
    if hasattr(value, "size") and getattr(value, "size", 1) != 1:
        raise InvalidInputError(
            f"metric {key!r} must be a scalar; got an array of shape {getattr(value, 'shape', '?')}."
        )
    try:
        out = float(value)
    except OverflowError:
        raise InvalidInputError(
            f"metric {key!r} is too large for a float64 (at most {sys.float_info.max:.6g} in "
            f"magnitude); got {_short_repr(value)}. Log float('inf') or a scaled value instead."
        ) from None
    except (TypeError, ValueError, ArithmeticError):
        raise InvalidInputError(
            f"metric {key!r} must be a real number (int or float); got {type(value).__name__} "
            f"{_short_repr(value)}."
        ) from None
    return out if not math.isnan(out) else math.nan


def _short_repr(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**60:
        return f"an int of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_text(value: str, *, what: str) -> str:
    """Refuse text no backend can store: NUL characters (PostgreSQL) and lone surrogates (UTF-8).

    Both would otherwise be accepted at call time and refused when the batch is written.
    """
    if value.isascii():
        if "\x00" in value:
            raise InvalidInputError(
                f"{what} must not contain NUL characters ('\\x00'); got {_short_repr(value)}."
            )
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} must be valid Unicode text; got {_short_repr(value)}, whose character at "
            f"position {exc.start} is a lone surrogate (undecodable bytes?). Decode the bytes "
            "with errors='replace' first."
        ) from None
    return value


def storable_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced: for text mloop captures, not user input."""
    if not value.isascii():
        value = _SURROGATE.sub("\ufffd", value)
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _stringify(value: Any, *, what: str) -> str:
    if isinstance(value, str):
        return validate_text(value, what=what)
    try:
        text = str(value)
    except Exception as exc:  # any __str__ can fail (int digit limit, user classes): say where
        raise InvalidInputError(
            f"{what} could not be turned into text: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} could not be turned into text; str() gave {type(text)}.")
    return validate_text(text, what=what)


def validate_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Validate keys and stringify values (at most 6000 characters each)."""
    out: dict[str, str] = {}
    for k, v in params.items():
        validate_key(k, kind="param")
        s = _stringify(v, what=f"param {k!r} value")
        if len(s) > MAX_PARAM_VALUE:
            raise InvalidInputError(
                f"param {k!r} value must have at most {MAX_PARAM_VALUE} characters; got {len(s)}."
            )
        out[k] = s
    return out


def validate_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """Validate keys and stringify values (at most 8000 characters each)."""
    out: dict[str, str] = {}
    for k, v in tags.items():
        validate_key(k, kind="tag")
        s = _stringify(v, what=f"tag {k!r} value")
        if len(s) > MAX_TAG_VALUE:
            raise InvalidInputError(
                f"tag {k!r} value must have at most {MAX_TAG_VALUE} characters; got {len(s)}."
            )
        out[k] = s
    return out


def validate_run_id(run_id: object) -> str:
    # fullmatch: with match, the pattern's "$" also matches before a trailing newline
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        raise InvalidInputError(f"run id must be 32 lowercase hex characters; got {run_id!r}.")
    return run_id


_SHA256_RE = re.compile("[0-9a-f]{64}")


def is_sha256(value: object) -> bool:
    """Whether ``value`` is a sha256 in mloop's spelling: exactly 64 lowercase hex characters."""
    return isinstance(value, str) and _SHA256_RE.fullmatch(value) is not None


def validate_sha256(sha256: object, *, name: str = "sha256") -> str:
    """``sha256`` if it is 64 lowercase hex characters (nothing before or after, not even a
    newline); an :class:`InvalidInputError` otherwise. Every entry point taking a digest uses it."""
    if not is_sha256(sha256):
        raise InvalidInputError(
            f"`{name}` must be 64 lowercase hex characters; got {sha256!r}.",
            details={"sha256": sha256 if isinstance(sha256, str) else repr(sha256)},
        )
    assert isinstance(sha256, str)
    return sha256


def validate_digest(digest: object, *, name: str = "sha256") -> str:
    """``digest`` if it names a blob in mloop's spelling (``blake3-`` and 64 lowercase hex
    characters, or 64 lowercase hex characters for SHA-256; see :mod:`mloop._digest`); an
    :class:`InvalidInputError` otherwise. Every entry point taking a blob's name uses it."""
    if not is_digest(digest):
        raise InvalidInputError(
            f"`{name}` must be a content digest ('blake3-' and 64 lowercase hex characters, or "
            f"64 lowercase hex characters for sha256); got {digest!r}.",
            details={"sha256": digest if isinstance(digest, str) else repr(digest)},
        )
    assert isinstance(digest, str)
    return digest


def validate_name(name: object, *, what: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_ENTITY_NAME:
        raise InvalidInputError(
            f"{what} must be a non-empty string of at most {MAX_ENTITY_NAME} characters; got {name!r}."
        )
    return validate_text(name, what=what)


_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_SEGMENT_BYTES = 255


def validate_artifact_path(path: str, *, name: str = "artifact_path") -> str:
    """Check an artifact path and return its normalized POSIX form.

    Normalization drops empty and ``.`` segments and a trailing slash (``"a//./b/"`` -> ``"a/b"``);
    nothing else is rewritten, so two different valid inputs never silently map onto each other
    except through those no-op segments.

    Parameters
    ----------
    path : str
        A relative, ``/``-separated path such as ``"model/weights.bin"``.
    name : str, default "artifact_path"
        How the parameter is called in error messages.

    Returns
    -------
    str
        The normalized path.

    Raises
    ------
    InvalidInputError
        If ``path`` is not a str, is empty, is absolute (``/x``, ``C:\\x``, ``C:x``, ``\\\\server\\x``),
        contains a ``..`` segment, a backslash, a NUL or another control character, or a segment
        longer than 255 bytes.

    Examples
    --------
    >>> validate_artifact_path("./model//weights.bin")
    'model/weights.bin'
    >>> validate_artifact_path("../etc/passwd")
    Traceback (most recent call last):
    ...
    mloop.errors.InvalidInputError: `artifact_path` must not contain '..' segments; got '../etc/passwd'.
    """
    if not isinstance(path, str):
        raise InvalidInputError(
            f"`{name}` must be a str; got {type(path).__name__} {path!r}.",
            details={"path": repr(path)},
        )

    def bad(rule: str) -> InvalidInputError:
        return InvalidInputError(f"`{name}` must {rule}; got {path!r}.", details={"path": path})

    if path == "":
        raise bad("be a non-empty relative path")
    if "\x00" in path:
        raise bad("not contain NUL characters")
    if _CONTROL.search(path):
        raise bad("not contain control characters")
    if "\\" in path:
        raise bad("use '/' as separator and not contain backslashes")
    if path.startswith("/"):
        raise bad("be relative, not absolute")
    if _DRIVE.match(path):
        raise bad("be relative, not start with a Windows drive")
    segments = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise bad("not contain '..' segments")
    if not segments:
        raise bad("name a file or folder, not only '.' or '/'")
    for seg in segments:
        if len(seg.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT_BYTES:
            raise bad(f"have segments of at most {_MAX_SEGMENT_BYTES} bytes")
    return "/".join(segments)
