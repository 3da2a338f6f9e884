"""The append-only spool: where writes go when the store is unreachable (or in offline mode).

Each process appends JSON lines to its own file under ``$MLOOP_HOME/spool/`` and holds an exclusive
``flock`` on it while it is open, so ``mloop sync`` (or another process's opportunistic replay) only
takes files nobody is writing. Every record is an idempotent operation: run creation is keyed by the
run id, batches by a batch id the store remembers, status updates are last-writer-wins. Replaying a
file twice therefore writes nothing twice.

Every line ends with a CRC-32 of the record (``,"_crc":"<8 hex>"}``), so a damaged line is
recognised as damaged rather than applied with wrong values. A record that cannot be applied for a
reason a retry will not fix (damaged, torn by a crash mid-write, an unknown operation, a value the
store refuses) is moved to the quarantine (``_quarantine.py``) with its file and line; the records
after it are still applied. Only an unreachable store stops a replay, keeping the file for later.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import socket
import threading
import uuid
import zlib
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mloop._lazy import LazyModule
from mloop.errors import AlreadyExistsError, ConflictError, MloopError, StoreUnavailableError
from mloop.store import ArtifactEntry, MetricSeries, RunInput, Store
from mloop.tracking._quarantine import (
    QuarantineEntry,
    count_quarantined,
    quarantine,
    quarantine_dir,
    quarantine_files,
    read_quarantine,
    rewrite,
)

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy", globals(), "np")


__all__ = [
    "ReplayResult",
    "SpoolWriter",
    "count_quarantined",
    "encode_metrics",
    "encode_record",
    "quarantine_dir",
    "replay_spool",
    "retry_quarantined",
]

_log = logging.getLogger("mloop.tracking")


def encode_metrics(metrics: Mapping[str, MetricSeries]) -> dict[str, list[Any]]:
    return {
        k: [
            len(s),
            base64.b64encode(s.steps.astype("<i8").tobytes()).decode(),
            base64.b64encode(s.timestamps.astype("<i8").tobytes()).decode(),
            # float64 is numpy's default: "<f8" pins the byte order only (big-endian hosts).
            base64.b64encode(s.values.astype("<f8").tobytes()).decode(),  # pragma: no mutate
        ]
        for k, s in metrics.items()
    }


def decode_metrics(raw: Mapping[str, list[Any]]) -> dict[str, MetricSeries]:
    out = {}
    for k, (_n, steps, ts, values) in raw.items():
        out[k] = MetricSeries(
            np.frombuffer(base64.b64decode(steps), dtype="<i8"),
            np.frombuffer(base64.b64decode(ts), dtype="<i8"),
            # As in encode_metrics: only the byte order, on big-endian hosts.
            np.frombuffer(base64.b64decode(values), dtype="<f8"),  # pragma: no mutate
        )
    return out


class SpoolUnavailableError(StoreUnavailableError):
    """The spool cannot be written either (an unwritable or missing ``MLOOP_HOME``)."""


class SpoolWriter:
    """This process's spool file, opened (and locked) lazily on the first record.

    ``append(record, wait_s=...)`` waits at most ``wait_s`` for another thread that holds the
    file (a replay in progress); past that the record goes to a "late" file beside it, whose name
    sorts after this one's, so ``mloop sync`` still applies them in order.
    """

    def __init__(self, spool_dir: Path, *, name: str | None = None) -> None:
        self.dir = Path(spool_dir)
        self.path: Path | None = None
        self._name = name
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()
        self._late: SpoolWriter | None = None
        self.records = 0
        self.points = 0

    def append(
        self, record: Mapping[str, Any], *, wait_s: float | None = None, points: int = 0
    ) -> Path:
        """Append ``record`` durably (fsync); ``points`` counts the metric points it carries."""
        line = encode_record(record)
        if not self._lock.acquire(timeout=-1 if wait_s is None else max(wait_s, 0.0)):
            return self._late_writer().append(record, points=points)
        try:
            return self._append_locked(line, points)
        except OSError as exc:
            raise SpoolUnavailableError(
                f"cannot write the spool under {str(self.dir)!r}: {exc.strerror or exc}. Point "
                "MLOOP_HOME at a writable folder.",
                details={"spool_dir": str(self.dir)},
            ) from None
        finally:
            self._lock.release()

    def _append_locked(self, line: str, points: int) -> Path:
        # The caller holds the lock: the flusher and the finishing thread may both spool.
        if self._fh is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            name = (
                self._name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            )
            self.path = self.dir / name
            # Lines are ASCII (json.dumps escapes the rest), so the encoding never matters here.
            self._fh = open(self.path, "a", encoding="ascii")  # noqa: SIM115 - held open while spooling
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        self._fh.write(line)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records += 1
        self.points += points
        assert self.path is not None
        return self.path

    def _late_writer(self) -> SpoolWriter:
        if self._late is None:
            base = self.path.stem if self.path is not None else uuid.uuid4().hex[:8]
            self._late = SpoolWriter(self.dir, name=f"{base}.late-{uuid.uuid4().hex[:6]}.jsonl")
        return self._late

    @property
    def pending(self) -> bool:
        return self._fh is not None or (self._late is not None and self._late.pending)

    @property
    def paths(self) -> list[Path]:
        """The files holding this writer's records (the main one, then the late one)."""
        out = [self.path] if self.path is not None else []
        return out + (self._late.paths if self._late is not None else [])

    @property
    def total_records(self) -> int:
        return self.records + (self._late.total_records if self._late is not None else 0)

    @property
    def total_points(self) -> int:
        return self.points + (self._late.total_points if self._late is not None else 0)

    def replay(self, store: Store) -> ReplayResult:
        """Replay this process's own files into ``store``; each is removed once replayed.

        Records that fail for good are quarantined (see :func:`replay_spool`); an unreachable store,
        or an unexpected error that may pass, raises and keeps the file for the next attempt.
        """
        result = ReplayResult()
        with self._lock:
            if self._fh is not None and self.path is not None:
                _replay_file(store, self.path, result, quarantine_unexpected=False)
                self._discard_locked()
        if self._late is not None:
            result_late = self._late.replay(store)
            result.applied += result_late.applied
            result.duplicates += result_late.duplicates
            result.failed += result_late.failed
            result.errors += result_late.errors
            result.quarantined += result_late.quarantined
            self._late = None
        return result

    def _discard_locked(self) -> None:
        if self._fh is not None:
            assert self.path is not None  # set together in _append_locked
            self.path.unlink()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
        self._fh = None
        self.path = None
        self.records = 0
        self.points = 0

    def close(self) -> None:
        """Release the lock but keep the files for ``mloop sync``."""
        with self._lock:
            if self._fh is not None:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
                self._fh.close()
            self._fh = None
        if self._late is not None:
            self._late.close()


@dataclass
class ReplayResult:
    """What a replay did. ``failed`` records (``torn`` among them) were quarantined, not dropped."""

    files: int = 0
    applied: int = 0
    duplicates: int = 0
    failed: int = 0
    torn: int = 0
    errors: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    pending_files: int = 0  # files kept for the next attempt (the store was unreachable)


# Every key a spool record may have (see _apply and _register.replay_registration).
_RECORD_KEYS = frozenset(
    [
        "op",
        "run_id",
        "batch_id",
        "metrics",
        "params",
        "tags",
        "status",
        "end_ms",
        "project",
        "run",
        "entries",
        "items",
        "dataset",
        "input",
        "name",
        "artifact_path",
        "manifest_file",
        "manifest",
        "description",
        "actor",
        "registration_id",
    ]
)
_CRC_TAIL = re.compile(r',"_crc":"([0-9a-f]{8})"}\n?$')


def encode_record(record: Mapping[str, Any]) -> str:
    """One spool line: the record as JSON with a CRC-32 of that JSON as its last member."""
    body = json.dumps(record, separators=(",", ":"), allow_nan=True)
    crc = zlib.crc32(body.encode("ascii"))  # json.dumps escapes everything else
    return f'{body[:-1]},"_crc":"{crc:08x}"}}\n'


def decode_record(line: str) -> dict[str, Any]:
    """The record of a spool line; ``ValueError`` says why a damaged line is unusable."""
    m = _CRC_TAIL.search(line)
    if m is not None:
        body = line[: m.start()] + "}"
        # The line was read with surrogateescape: this gives back the bytes that were on disk.
        # (Codec names are case-insensitive: "UTF-8" is the same codec.)
        on_disk = body.encode("utf-8", "surrogateescape")  # pragma: no mutate
        if zlib.crc32(on_disk) != int(m.group(1), 16):
            raise ValueError("damaged record (its checksum does not match)")
    else:
        body = line  # written before spool lines carried checksums
    try:
        rec = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"unreadable record ({exc.msg} at column {exc.colno})") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("op"), str):
        raise ValueError("malformed record (not an object with an 'op')")
    if m is None and not rec.keys() <= _RECORD_KEYS:
        # A line without a readable checksum is accepted only as a record of the known shape (one
        # written before checksums); an unknown key is the checksum itself, damaged.
        raise ValueError("damaged record (its checksum is unreadable)")
    return rec


class PartlyApplied(MloopError):
    """A record was applied but for ``rest``, which the store refused (``message`` says why)."""

    def __init__(self, message: str, *, rest: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.rest = rest


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
            # A param conflicting with a value stored meanwhile: write everything else of the
            # batch, and keep the params (quarantined) rather than drop them.
            if not (metrics or rec.get("tags") or rec.get("status")):
                raise  # nothing else in it: the record is kept as it is
            store.log_batch(
                rec["run_id"],
                metrics=metrics,
                tags=rec.get("tags") or {},
                batch_id=rec["batch_id"],
                status=rec.get("status"),
                end_ms=rec.get("end_ms"),
            )
            raise PartlyApplied(
                exc.message,
                rest={
                    "op": "log_batch",
                    "run_id": rec["run_id"],
                    "batch_id": f"{rec['batch_id']}-params",
                    "params": rec.get("params") or {},
                },
            ) from None
    if op == "update_run":
        store.set_run_status(rec["run_id"], rec["status"], end_ms=rec.get("end_ms"))
        return True
    if op == "add_artifacts":
        store.add_artifacts(rec["run_id"], [ArtifactEntry(*e) for e in rec["entries"]])
        return True
    if op == "add_media":
        # The media's files and their index entries, in that order (the index points at them).
        from mloop.store import MediaItem

        store.add_artifacts(rec["run_id"], [ArtifactEntry(*e) for e in rec["entries"]])
        store.add_media(rec["run_id"], [MediaItem.from_dict(i) for i in rec["items"]])
        return True
    if op == "log_input":
        from mloop.store import DatasetVersion

        store.put_dataset(DatasetVersion(**rec["dataset"]))
        store.log_input(rec["run_id"], RunInput(**rec["input"]))
        return True
    if op == "register_version":
        # A model version logged while the store was out of reach; keyed by its registration id.
        from mloop.tracking._register import replay_registration

        return replay_registration(store, rec)
    raise MloopError(
        f"unknown spool record op {op!r} (known: {', '.join(_OPS)}); was it written by a newer "
        "mloop? Upgrade mloop, then run `mloop sync --retry-quarantined`."
    )


_OPS = (
    "create_run",
    "log_batch",
    "update_run",
    "add_artifacts",
    "add_media",
    "log_input",
    "register_version",
)


def _replay_file(
    store: Store, path: Path, result: ReplayResult, *, quarantine_unexpected: bool
) -> None:
    """Apply every record of ``path``; quarantine each one that fails for good, then return.

    Raises :class:`StoreUnavailableError` (or, unless ``quarantine_unexpected``, an unexpected
    error) when the store cannot take records now: nothing is quarantined then, and the file stays.
    """
    kept: list[QuarantineEntry] = []
    failed_before, torn_before = result.failed, result.torn
    errors_before = len(result.errors)
    # Bytes that are not UTF-8 (damage on disk) survive as surrogates, which the checksum catches.
    # Codec names are case-insensitive: "UTF-8" is the same codec.
    text = path.read_bytes().decode("utf-8", "surrogateescape")  # pragma: no mutate
    lines = text.splitlines(keepends=True)
    try:
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = decode_record(line)
            except ValueError as exc:
                torn = lineno == len(lines) and not line.endswith("\n")
                why = (
                    "torn last record: the writing process stopped in the middle of writing it"
                    if torn
                    else str(exc)
                )
                result.torn += torn
                kept.append(QuarantineEntry(path.name, lineno, why, raw=line))
                continue
            try:
                if _apply(store, rec):
                    result.applied += 1
                else:
                    result.duplicates += 1
            except StoreUnavailableError:
                raise
            except PartlyApplied as exc:
                result.applied += 1
                kept.append(QuarantineEntry(path.name, lineno, exc.message, record=exc.rest))
            except MloopError as exc:
                kept.append(QuarantineEntry(path.name, lineno, exc.message, record=rec))
            except (KeyError, TypeError, ValueError) as exc:
                kept.append(
                    QuarantineEntry(
                        path.name, lineno, f"malformed {rec['op']!r} record: {exc!r}", record=rec
                    )
                )
            except Exception as exc:
                if not quarantine_unexpected:
                    raise
                kept.append(
                    QuarantineEntry(path.name, lineno, f"{type(exc).__name__}: {exc}", record=rec)
                )
    except Exception:
        # Nothing of this attempt is quarantined: the next attempt sees the same records again.
        result.failed, result.torn = failed_before, torn_before
        del result.errors[errors_before:]
        raise
    result.files += 1
    result.failed += len(kept)
    for e in kept:
        result.errors.append(f"{e.source}:{e.line}: {e.error}")
    qpath = quarantine(path.parent, path.name, kept)
    if qpath is not None:
        result.quarantined.append(str(qpath))


def _claimable(spool_dir: Path) -> Generator[tuple[Path, IO[bytes]], None, None]:
    for path in sorted(spool_dir.glob("*.jsonl")):
        fh = open(path, "rb")  # noqa: SIM115 - only held for its lock; closed below
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()  # a live process is still writing it
            continue
        try:
            yield path, fh
        finally:  # also when the caller stops early (the store went away)
            with contextlib.suppress(OSError):
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()


def replay_spool(store: Store, spool_dir: Path) -> ReplayResult:
    """Replay every spool file no live process holds; each file is removed once replayed.

    Every record is applied or, when it fails for a reason a retry will not fix, quarantined with
    its file, line and error (:attr:`ReplayResult.errors`, :attr:`ReplayResult.quarantined`); the
    records after a bad one are still applied. When the store is unreachable that file and the
    ones after it are kept for the next attempt (:attr:`ReplayResult.pending_files` counts them).
    """
    result = ReplayResult()
    if not Path(spool_dir).is_dir():
        return result
    with contextlib.closing(_claimable(Path(spool_dir))) as files:
        for path, _fh in files:
            try:
                _replay_file(store, path, result, quarantine_unexpected=True)
            except StoreUnavailableError as exc:
                result.pending_files += 1 + sum(1 for _ in files)
                result.errors.append(f"{path.name}: kept for later: {exc.message}")
                break
            path.unlink()
    return result


def retry_quarantined(store: Store, spool_dir: Path) -> ReplayResult:
    """Apply quarantined records again (after a fix); those that still fail stay quarantined.

    Unreadable lines can never be applied: they stay, for a person to look at.
    """
    result = ReplayResult()
    for path in quarantine_files(Path(spool_dir)):
        with open(path, "ab") as lock:  # only held for its lock
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            entries = list(read_quarantine(path))
            left: list[QuarantineEntry] = []
            result.files += 1
            for i, e in enumerate(entries):
                if e.record is None:
                    left.append(e)
                    continue
                try:
                    if _apply(store, e.record):
                        result.applied += 1
                    else:
                        result.duplicates += 1
                except PartlyApplied as exc:
                    result.applied += 1
                    left.append(QuarantineEntry(e.source, e.line, exc.message, record=exc.rest))
                except StoreUnavailableError as exc:
                    left.extend(entries[i:])
                    result.pending_files += 1
                    result.errors.append(f"{path.name}: kept for later: {exc.message}")
                    break
                except Exception as exc:
                    msg = exc.message if isinstance(exc, MloopError) else f"{exc!r}"
                    left.append(QuarantineEntry(e.source, e.line, msg, record=e.record))
            result.failed += len(left)
            result.errors.extend(f"{e.source}:{e.line}: {e.error}" for e in left)
            rewrite(path, left)
    return result
