"""The append-only spool: where writes go when the store is unreachable (or in offline mode).

Each process appends JSON lines to its own file under ``$MLOOP_HOME/spool/`` and holds an exclusive
``flock`` on it while it is open, so ``mloop sync`` (or another process's opportunistic replay) only
takes files nobody is writing. Every record is an idempotent operation: run creation is keyed by the
run id, batches by a batch id the store remembers, status updates are last-writer-wins. Replaying a
file twice therefore writes nothing twice.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from mloop.errors import AlreadyExistsError, ConflictError, MloopError, NotFoundError
from mloop.store import ArtifactEntry, MetricSeries, RunInput, Store

__all__ = ["ReplayResult", "SpoolWriter", "encode_metrics", "replay_spool"]

_log = logging.getLogger("mloop.tracking")


def encode_metrics(metrics: Mapping[str, MetricSeries]) -> dict[str, list[Any]]:
    return {
        k: [
            len(s),
            base64.b64encode(s.steps.astype("<i8").tobytes()).decode(),
            base64.b64encode(s.timestamps.astype("<i8").tobytes()).decode(),
            base64.b64encode(s.values.astype("<f8").tobytes()).decode(),
        ]
        for k, s in metrics.items()
    }


def decode_metrics(raw: Mapping[str, list[Any]]) -> dict[str, MetricSeries]:
    out = {}
    for k, (_n, steps, ts, values) in raw.items():
        out[k] = MetricSeries(
            np.frombuffer(base64.b64decode(steps), dtype="<i8"),
            np.frombuffer(base64.b64decode(ts), dtype="<i8"),
            np.frombuffer(base64.b64decode(values), dtype="<f8"),
        )
    return out


class SpoolWriter:
    """This process's spool file, opened (and locked) lazily on the first record."""

    def __init__(self, spool_dir: Path) -> None:
        self.dir = Path(spool_dir)
        self.path: Path | None = None
        self._fh: IO[str] | None = None
        self.records = 0

    def append(self, record: Mapping[str, Any]) -> Path:
        if self._fh is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self.path = self.dir / name
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open while spooling
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        line = json.dumps(record, separators=(",", ":"), allow_nan=True)
        self._fh.write(line + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records += 1
        assert self.path is not None
        return self.path

    @property
    def pending(self) -> bool:
        return self._fh is not None

    def replay(self, store: Store) -> ReplayResult:
        """Replay this process's own file into ``store``; on success the file is removed."""
        if self._fh is None or self.path is None:
            return ReplayResult()
        result = ReplayResult()
        _replay_file(store, self.path, result)
        if result.failed == 0:
            self.discard()
        return result

    def discard(self) -> None:
        if self._fh is not None and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
        self._fh = None
        self.path = None
        self.records = 0

    def close(self) -> None:
        """Release the lock but keep the file for ``mloop sync``."""
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
        self._fh = None


@dataclass
class ReplayResult:
    files: int = 0
    applied: int = 0
    duplicates: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _apply(store: Store, rec: Mapping[str, Any]) -> bool:
    """Apply one record; True if it changed the store, False if it was already there."""
    op = rec["op"]
    if op == "create_run":
        project = store.get_or_create_project(rec["project"])
        try:
            store.create_run(project.id, **rec["run"])
        except AlreadyExistsError:
            return False
        return True
    if op == "log_batch":
        metrics = decode_metrics(rec.get("metrics", {}))
        try:
            return store.log_batch(
                rec["run_id"],
                metrics=metrics,
                params=rec.get("params") or {},
                tags=rec.get("tags") or {},
                batch_id=rec["batch_id"],
                status=rec.get("status"),
                end_ms=rec.get("end_ms"),
            )
        except ConflictError as exc:
            # A param conflicting with a value stored meanwhile: keep everything else of the batch.
            _log.warning("mloop: spooled params dropped on replay: %s", exc.message)
            return store.log_batch(
                rec["run_id"],
                metrics=metrics,
                tags=rec.get("tags") or {},
                batch_id=rec["batch_id"],
                status=rec.get("status"),
                end_ms=rec.get("end_ms"),
            )
    if op == "update_run":
        store.set_run_status(rec["run_id"], rec["status"], end_ms=rec.get("end_ms"))
        return True
    if op == "add_artifacts":
        store.add_artifacts(rec["run_id"], [ArtifactEntry(*e) for e in rec["entries"]])
        return True
    if op == "log_input":
        from mloop.store import DatasetVersion

        store.put_dataset(DatasetVersion(**rec["dataset"]))
        store.log_input(rec["run_id"], RunInput(**rec["input"]))
        return True
    raise MloopError(f"unknown spool record op {op!r}")


def _replay_file(store: Store, path: Path, result: ReplayResult) -> None:
    result.files += 1
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                # A torn last line from a crash mid-write: everything before it is intact.
                result.errors.append(f"{path.name}:{lineno}: unreadable record skipped")
                continue
            try:
                if _apply(store, rec):
                    result.applied += 1
                else:
                    result.duplicates += 1
            except NotFoundError as exc:
                result.failed += 1
                result.errors.append(f"{path.name}:{lineno}: {exc.message}")
                raise
            except MloopError as exc:
                result.failed += 1
                result.errors.append(f"{path.name}:{lineno}: {exc.message}")
                raise


def _claimable(spool_dir: Path) -> Iterator[tuple[Path, IO[str]]]:
    for path in sorted(spool_dir.glob("*.jsonl")):
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()  # a live process is still writing it
            continue
        yield path, fh
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def replay_spool(store: Store, spool_dir: Path) -> ReplayResult:
    """Replay every spool file no live process holds; files fully applied are removed.

    A file whose replay fails (store still unreachable) is kept for the next attempt; the error is in
    :attr:`ReplayResult.errors`.
    """
    result = ReplayResult()
    if not Path(spool_dir).is_dir():
        return result
    for path, _fh in _claimable(Path(spool_dir)):
        try:
            _replay_file(store, path, result)
        except MloopError:
            continue
        path.unlink()
    return result
