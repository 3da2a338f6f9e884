"""The quarantine: records the store refused, or that could not be read, kept instead of dropped.

A spool record that fails for a reason a retry will not fix (a damaged line, an unknown operation,
a value the store refuses) must neither be deleted with its spool file nor block the records after
it. It is moved here, one JSON line per record, with where it came from (spool file and line) and
why it failed. ``mloop sync`` reports it and exits non-zero; ``mloop sync --retry-quarantined``
applies what can be applied now (after a fix) and keeps the rest. The live writer puts here, too,
the parts of a batch the store refuses (so the rest of the run is written).

Each quarantine file is named after its source and only ever appended to or rewritten whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "QuarantineEntry",
    "count_quarantined",
    "live_name",
    "quarantine",
    "quarantine_dir",
    "quarantine_files",
    "read_quarantine",
    "rewrite",
]


@dataclass(frozen=True)
class QuarantineEntry:
    """One kept record: ``record`` (decoded) or ``raw`` (the line as it was, when unreadable)."""

    source: str
    line: int | None
    error: str
    record: Mapping[str, Any] | None = None
    raw: str | None = None

    def to_json(self) -> str:
        body: dict[str, Any] = {"source": self.source, "line": self.line, "error": self.error}
        if self.record is not None:
            body["record"] = self.record
        if self.raw is not None:
            body["raw"] = self.raw
        return json.dumps(body, separators=(",", ":"), allow_nan=True)


def quarantine_dir(spool_dir: Path) -> Path:
    return Path(spool_dir) / "quarantine"


def quarantine(spool_dir: Path, name: str, entries: list[QuarantineEntry]) -> Path | None:
    """Append ``entries`` to the quarantine file ``name`` (durably: fsync before returning)."""
    if not entries:
        return None
    qdir = quarantine_dir(spool_dir)
    qdir.mkdir(parents=True, exist_ok=True)
    path = qdir / (Path(name).stem + ".jsonl")
    with open(path, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        fh.write("".join(e.to_json() + "\n" for e in entries))
        fh.flush()
        os.fsync(fh.fileno())
    return path


def live_name(run_id: str) -> str:
    """The quarantine file of what a live writer's store refused."""
    return f"live-{socket.gethostname()}-{os.getpid()}-{run_id[:8]}"


def read_quarantine(path: Path) -> Iterator[QuarantineEntry]:
    with open(path, encoding="utf-8") as fh:
        for text in fh:
            if not text.strip():
                continue
            try:
                body = json.loads(text)
                yield QuarantineEntry(
                    source=str(body.get("source", "?")),
                    line=body.get("line"),
                    error=str(body.get("error", "")),
                    record=body.get("record"),
                    raw=body.get("raw"),
                )
            except (json.JSONDecodeError, AttributeError):
                yield QuarantineEntry(source=path.name, line=None, error="unreadable", raw=text)


def quarantine_files(spool_dir: Path) -> list[Path]:
    qdir = quarantine_dir(spool_dir)
    return sorted(qdir.glob("*.jsonl")) if qdir.is_dir() else []


def count_quarantined(spool_dir: Path) -> int:
    n = 0
    for path in quarantine_files(spool_dir):
        with contextlib.suppress(OSError), open(path, encoding="utf-8") as fh:
            n += sum(1 for text in fh if text.strip())
    return n


def rewrite(path: Path, entries: list[QuarantineEntry]) -> None:
    """Replace a quarantine file by ``entries`` (atomically), or remove it when none are left."""
    if not entries:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("".join(e.to_json() + "\n" for e in entries))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
