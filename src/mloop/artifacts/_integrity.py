"""How a blob's content is checked against its name (its digest, see :mod:`mloop._digest`): the error
a mismatch raises, and the write-to-temp, verify, rename-into-place sequence that every download
uses."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from mloop._digest import hasher
from mloop.errors import InvalidInputError, MloopError
from mloop.store import validate_digest

__all__ = [
    "IntegrityError",
    "check_content",
    "check_sha",
    "verified_into_place",
    "write_chunks",
]


class IntegrityError(MloopError):
    """A blob's content does not match its digest (corrupted or tampered with in storage)."""

    error_code: ClassVar[str] = "ARTIFACT_INTEGRITY_ERROR"
    http_status: ClassVar[int] = 500


def write_chunks(
    chunks: Iterable[bytes | memoryview], path: Path, *, verify: bool, like: str
) -> str:
    """Write ``chunks`` to the new file ``path``; their digest (with the algorithm of ``like``,
    the blob's name) when ``verify``, else ``""``."""
    h = hasher(like)
    with open(path, "xb") as out:
        for chunk in chunks:
            if verify:
                h.update(chunk)
            out.write(chunk)
    return h.result() if verify else ""


def verified_into_place(
    dest: Path, sha256: str, blob_uri: str, whose: str, fill: Callable[[Path], str]
) -> Path:
    """``fill`` a temporary file beside ``dest`` (it returns the content's digest, or ``""``
    when it did not check), then rename it into place; on a mismatch or any failure ``dest`` is
    untouched and the temporary file removed."""
    tmp = dest.with_name(f".{dest.name}.mloop-{uuid.uuid4().hex[:12]}.part")
    try:
        actual = fill(tmp) or sha256
        if actual != sha256:
            raise IntegrityError(
                f"Blob {blob_uri} is corrupted: expected digest {sha256}, got {actual}. "
                f"'{dest}' was not written. The {whose} was changed or damaged; restore it "
                "from a backup or re-log the artifact.",
                details={"sha256": sha256, "actual_sha256": actual, "dest": str(dest)},
            )
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dest


def check_sha(sha: str) -> str:
    return validate_digest(sha)  # the store's validator: one spelling of a digest everywhere


def check_content(expected: str, actual: str, size: int) -> None:
    """Refuse content announced as blob ``expected`` that hashes to ``actual``."""
    if actual != expected:
        raise InvalidInputError(
            f"the content sent as blob {expected} hashes to {actual} ({size:,} bytes); nothing "
            "was stored. Send the file again (it may have changed while being sent).",
            details={"sha256": expected, "actual_sha256": actual, "size": size},
        )
