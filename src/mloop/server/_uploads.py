"""Resumable uploads of large blobs: a session the client appends to, and resumes after a dropped
connection from the offset the server holds (the tus protocol's shape, in three calls).

    POST   /api/v1/uploads                {"sha256", "size"} -> 201 {"upload_id", "offset"}
                                           (200 {"done": true} when the blob is stored already)
    GET    /api/v1/uploads/{id}            -> {"offset", "size", "sha256"}
    PATCH  /api/v1/uploads/{id}            Upload-Offset: N, body = the bytes from N on -> {"offset"}
    POST   /api/v1/uploads/{id}/complete   -> {"sha256", "size"}: hashed, then moved into the store
    DELETE /api/v1/uploads/{id}            abandon it

The bytes of a PATCH are appended as they arrive, so a connection that drops after 3 GB of a 10 GB
file keeps those 3 GB: the client asks for the offset and sends the rest. Sessions are files in the
server's staging folder (``$MLOOP_HOME/uploads`` for ``mloop server``): they survive a restart of the
server, and every worker of one machine sees them; several machines behind one load balancer need a
shared folder or sticky sessions. A session untouched for a day is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mloop.artifacts import BlobStore
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.store import validate_digest

__all__ = ["SESSION_TTL_S", "UploadSessions"]

SESSION_TTL_S = 24 * 3600
_CHUNK = 1 << 20
_ID_CHARS = frozenset("0123456789abcdef")


class UploadSessions:
    """Upload sessions kept as ``<id>.part`` (the bytes so far) and ``<id>.json`` (what they must
    become) under ``folder``."""

    def __init__(self, artifacts: BlobStore, folder: Path) -> None:
        self.artifacts = artifacts
        self.folder = folder

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        if len(upload_id) != 32 or not set(upload_id) <= _ID_CHARS:
            raise InvalidInputError(f"`upload_id` must be 32 hex characters; got {upload_id!r}.")
        return self.folder / f"{upload_id}.part", self.folder / f"{upload_id}.json"

    def _meta(self, upload_id: str) -> tuple[Path, dict[str, Any]]:
        part, meta = self._paths(upload_id)
        try:
            doc = json.loads(meta.read_text())
        except FileNotFoundError:
            raise NotFoundError(
                f"no upload {upload_id} on this server: it was completed, abandoned or expired "
                f"(after {SESSION_TTL_S // 3600} h); start a new one.",
                details={"upload_id": upload_id},
            ) from None
        return part, doc

    def create(self, sha256: Any, size: Any) -> dict[str, Any]:
        sha = validate_digest(sha256)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInputError(f"`size` must be an int >= 0 (bytes); got {size!r}.")
        if self.artifacts.touch(sha):
            return {"done": True, "sha256": sha, "size": self.artifacts.size(sha)}
        self.folder.mkdir(parents=True, exist_ok=True)
        self._expire()
        upload_id = uuid.uuid4().hex
        part, meta = self._paths(upload_id)
        part.touch()
        meta.write_text(json.dumps({"sha256": sha, "size": size, "created_ms": _now_ms()}))
        return {"upload_id": upload_id, "offset": 0, "size": size, "sha256": sha}

    def status(self, upload_id: str) -> dict[str, Any]:
        part, doc = self._meta(upload_id)
        return {"offset": part.stat().st_size, "size": doc["size"], "sha256": doc["sha256"]}

    def append(self, upload_id: str, offset_header: str | None, body: IO[bytes]) -> dict[str, Any]:
        """Append the body at ``Upload-Offset``; what arrives before a dropped connection stays."""
        part, doc = self._meta(upload_id)
        if offset_header is None or not offset_header.isdigit():
            raise InvalidInputError(
                f"a PATCH needs `Upload-Offset: <bytes already sent>`; got {offset_header!r}."
            )
        offset, size = int(offset_header), int(doc["size"])
        with open(part, "ab") as out, _exclusive(out, upload_id):
            held = os.fstat(out.fileno()).st_size
            if offset != held:
                raise ConflictError(
                    f"upload {upload_id} holds {held:,} bytes; this PATCH starts at {offset:,}. "
                    f"Send the bytes from {held:,} on.",
                    details={"offset": held},
                )
            try:
                while chunk := body.read(_CHUNK):
                    if held + len(chunk) > size:
                        raise InvalidInputError(
                            f"upload {upload_id} is {size:,} bytes; this PATCH goes past its end.",
                            details={"offset": held, "size": size},
                        )
                    out.write(chunk)
                    held += len(chunk)
            finally:
                # Not fsynced (~1 s for 1 GB here): a process that dies keeps what it wrote, and a
                # machine that crashes may leave a part that is whole in size but not in content,
                # which ``complete`` refuses by its hash (the client then uploads again).
                out.flush()
        os.utime(self._paths(upload_id)[1])  # in use: not expired
        return {"offset": held, "size": size}

    def complete(self, upload_id: str) -> dict[str, Any]:
        part, doc = self._meta(upload_id)
        held, size, sha = part.stat().st_size, int(doc["size"]), str(doc["sha256"])
        if held != size:
            raise ConflictError(
                f"upload {upload_id} holds {held:,} of its {size:,} bytes; send the rest first.",
                details={"offset": held, "size": size},
            )
        # Hashed once, while it is stored: content that is not blob ``sha`` is refused unstored.
        with open(part, "rb") as f, _exclusive(f, upload_id):
            try:
                stored, n = self.artifacts.put_file(part, expected_sha256=sha)
            except InvalidInputError as exc:
                actual = exc.details.get("actual_sha256")
                if actual is None:
                    raise
                self.abandon(upload_id)
                raise InvalidInputError(
                    f"the {size:,} bytes of upload {upload_id} hash to {actual}, not {sha}; "
                    "nothing was stored. Upload the file again.",
                    details={"sha256": sha, "actual_sha256": actual},
                ) from None
        self.abandon(upload_id)
        return {"sha256": stored, "size": n}

    def abandon(self, upload_id: str) -> bool:
        part, meta = self._paths(upload_id)
        found = meta.exists()
        for path in (meta, part):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return found

    def _expire(self) -> None:
        cutoff = time.time() - SESSION_TTL_S
        for meta in self.folder.glob("*.json"):
            with contextlib.suppress(OSError, InvalidInputError):
                if meta.stat().st_mtime < cutoff:
                    self.abandon(meta.stem)


@contextlib.contextmanager
def _exclusive(f: IO[bytes], upload_id: str) -> Iterator[None]:
    """Hold the session's lock: two requests never write (or hash) one upload at once."""
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConflictError(
            f"upload {upload_id} is being written by another request; ask for its offset "
            "(GET) once that one ends.",
            details={"upload_id": upload_id},
        ) from None
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
