"""``Run``: the object a training script logs through. ``log`` never blocks; nothing accepted is lost."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mloop.config import Settings
from mloop.errors import (
    ConflictError,
    InvalidInputError,
    MloopError,
    NotFoundError,
    StoreUnavailableError,
)
from mloop.ids import now_ms
from mloop.store import (
    ArtifactEntry,
    DatasetVersion,
    RunInput,
    Store,
    validate_key,
    validate_metric_value,
    validate_params,
    validate_tags,
)
from mloop.tracking._media import is_media
from mloop.tracking._media_run import MediaLogging
from mloop.tracking._spool import SpoolWriter
from mloop.tracking._writer import BackgroundWriter

if TYPE_CHECKING:
    from mloop.artifacts import BlobStore

__all__ = ["Run", "flatten_config"]

_log = logging.getLogger("mloop.tracking")
_FLOAT, _INT = float, int
_MAX_FLOAT_INT = int(sys.float_info.max)  # an int beyond it has no float64
_MAX_STEP = 1 << 63


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"opt": {"lr": 0.1}}`` -> ``{"opt.lr": 0.1}`` (how nested configs become params)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v
    return out


class _Summary(MutableMapping[str, Any]):
    """``run.summary[key] = value``: numbers become a metric point at the run's current step (so they
    can be searched and sorted on), anything else a tag ``summary.<key>``."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._data: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        validate_key(key, kind="summary")
        if isinstance(value, bool) or (
            not isinstance(value, (int, float)) and not hasattr(value, "__float__")
        ):
            self._run.set_tags({f"summary.{key}": value})
        else:
            v = validate_metric_value(key, value)
            self._run._enqueue(max(self._run._step - 1, 0), {key: v})
        self._data[key] = value

    def remember(self, values: Mapping[str, Any]) -> None:
        """Show ``values`` in the summary without recording them again (they were just logged)."""
        self._data.update(values)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __delitem__(self, key: str) -> None:
        raise InvalidInputError("run summary values cannot be deleted (they are already recorded).")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Summary({self._data!r})"


class Run(MediaLogging):
    """A live run. Create it with :func:`mloop.start_run` or :func:`mloop.init`, not directly.

    ``log`` validates cheaply, appends to an in-memory buffer and returns (a few microseconds); a
    background thread writes batches, one transaction each. ``flush()`` waits for the buffer to drain;
    ``finish()``, leaving a ``with`` block and interpreter exit flush too. If the store is unreachable
    or locked, batches go to the spool under ``$MLOOP_HOME/spool`` and are replayed later, idempotently.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store | None,
        run_id: str,
        project: str,
        project_id: str | None,
        name: str,
        params: Mapping[str, str] | None = None,
        start_step: int = 0,
        system_metrics: bool | float = True,
    ) -> None:
        self.id = run_id
        self.project = project
        self.project_id = project_id
        self.name = name
        self.settings = settings
        self._step = start_step
        self._ok_keys: set[str] = set()
        self._params: dict[str, str] = dict(params or {})
        self.summary: MutableMapping[str, Any] = _Summary(self)
        self._finished = False
        # False for a run attached from another process (:func:`attached_run`): finishing it
        # flushes what this process logged and leaves the status to whoever started it.
        self._owns_status = True
        self._lock = threading.Lock()
        self._blobstore: BlobStore | None = None
        self._artifact_paths: set[str] = set()  # what this process logged (known offline too)
        self._media_steps: dict[str, int] = {}  # media key -> its last step (for step=None)
        self._media_lock = threading.Lock()
        # Folders of model versions whose registration is spooled (the store cannot guard them
        # yet): folder -> model name. Writes under them are refused here, as the store would.
        self.pending_packages: dict[str, str] = {}
        self._spool = SpoolWriter(settings.spool_dir)
        # Called with this run when it finishes (whatever started it keeps its own state).
        self._on_finish: list[Callable[[Run], None]] = []
        self._writer = BackgroundWriter(
            store,
            run_id,
            self._spool,
            flush_interval_s=settings.flush_interval_s,
            heartbeat_s=settings.heartbeat_s,
            store_factory=_store_factory(settings) if store is None else None,
        )
        self._queue = self._writer.queue
        self._flush_at = self._writer.flush_at
        self._sampler: Any = None
        self._want_system_metrics = system_metrics

    @property
    def store(self) -> Store | None:
        """The store this run writes to (None while it is unreachable or in offline mode)."""
        return self._writer.store

    def _start_background(self) -> None:
        self._writer.start()
        if self._want_system_metrics:
            from mloop.tracking._system import SystemMetricsSampler

            want = self._want_system_metrics
            interval = 10.0 if want is True else float(want)
            counter = iter(range(1 << 62))
            self._sampler = SystemMetricsSampler(
                lambda m: self._enqueue(next(counter), m), interval_s=interval
            )
            self._sampler.start()

    # ------------------------------------------------------------------ logging
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log metric values at ``step`` (default: one more than the previous ``log`` call).

        Non-blocking: validates keys and values, appends to a buffer and returns. Values must be real
        numbers (``bool`` is refused); NaN and +/-inf are kept as they are. Media may sit among
        them (:class:`~mloop.tracking.Image`, :class:`~mloop.tracking.Histogram`,
        :class:`~mloop.tracking.Table`, a matplotlib figure): they are stored at ``step`` as by
        :meth:`log_image` and friends, before this call returns.

        Raises
        ------
        InvalidInputError
            A key is malformed or a value is not a number; nothing of this call is buffered.
        """
        if self._finished:
            raise MloopError(f"run {self.id} is finished; start a new run to log more.")
        if step is None:
            step = self._step
        elif type(step) is not int:
            if isinstance(step, bool) or not hasattr(step, "__index__"):
                raise InvalidInputError(
                    f"`step` must be an int; got {type(step).__name__} {step!r}."
                )
            step = int(step)
        if not -_MAX_STEP <= step < _MAX_STEP:
            raise InvalidInputError(f"`step` must fit in a signed 64-bit int; got {step}.")
        self._step = step + 1
        ok = self._ok_keys
        clean = None
        media: dict[str, Any] | None = None
        for k, v in metrics.items():
            if k not in ok:
                validate_key(k)
                ok.add(k)
            t = type(v)
            if t is not _FLOAT and (t is not _INT or not -_MAX_FLOAT_INT <= v <= _MAX_FLOAT_INT):
                if clean is None:
                    clean = dict(metrics)
                if is_media(v):  # only a value that is not a plain number gets here
                    media = media or {}
                    media[k] = clean.pop(k)
                    continue
                clean[k] = validate_metric_value(k, v)
        if media is not None:
            self._log_media_values(media, step)
            if not clean:
                return
        self._queue.append(
            (step, time.time_ns() // 1_000_000, clean if clean is not None else dict(metrics))
        )
        if len(self._queue) >= self._flush_at:
            self._writer.wake()  # cheap when already woken: see _Flusher.wake

    def _enqueue(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Buffer values without touching the step counter (system metrics, summary).

        They are validated like ``log``'s: whatever reaches the buffer can be written.
        """
        if not self._finished:
            clean = {validate_key(k): validate_metric_value(k, v) for k, v in metrics.items()}
            self._queue.append((step, now_ms(), clean))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record hyper-parameters (values stringified). Params are write-once.

        Raises
        ------
        ConflictError
            A key already has a different value in this run; nothing of this call is recorded.
        """
        clean = validate_params(params)
        with self._lock:
            conflicts = {
                k: (self._params[k], v)
                for k, v in clean.items()
                if k in self._params and self._params[k] != v
            }
            if conflicts:
                k, (stored, wanted) = next(iter(conflicts.items()))
                raise ConflictError(
                    f"param {k!r} of run {self.id} is already {stored!r}; params are write-once, so it "
                    f"cannot become {wanted!r}. Log the new value under another key or start a new run."
                )
            fresh = {k: v for k, v in clean.items() if k not in self._params}
            self._params.update(fresh)
        if fresh:
            self._writer.add_params(fresh)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (values stringified); a tag set again is overwritten."""
        self._writer.add_tags(validate_tags(tags))

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    @property
    def params(self) -> dict[str, str]:
        return dict(self._params)

    @property
    def step(self) -> int:
        """The step the next ``log`` call without ``step=`` will use."""
        return self._step

    # ------------------------------------------------------------------ artifacts & datasets
    def _blobs(self) -> BlobStore:
        if self._blobstore is None:
            from mloop.artifacts import BlobStore

            self._blobstore = BlobStore(self.settings.artifact_uri, token=self.settings.token)
        return self._blobstore

    def _record(self, op: str, fn: Any, record: Mapping[str, Any]) -> None:
        """Run a store write now, or spool it (in order) when the store is out of reach."""
        if self.store is not None and not self._spool.pending:
            try:
                fn()
                return
            except StoreUnavailableError as exc:
                _log.warning(
                    "mloop: store unavailable (%s); spooling %s for run %s",
                    exc.message,
                    op,
                    self.id,
                )
        self._writer.spool_op({"op": op, "run_id": self.id, **record})

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactEntry]:
        """Store a file or a directory as artifacts of this run (content-addressed, deduplicated).

        ``artifact_path`` places it under a folder of the run's artifact tree (default: the root,
        under the file's or folder's own name).
        """
        from mloop.artifacts import upload_tree

        entries = upload_tree(self._blobs(), local_path, artifact_path=artifact_path)
        self._refuse_pending_package([e.path for e in entries])
        self._record(
            "add_artifacts",
            lambda: self.store.add_artifacts(self.id, entries),  # type: ignore[union-attr]
            {"entries": [[e.path, e.size, e.sha256] for e in entries]},
        )
        self._artifact_paths.update(e.path for e in entries)
        return entries

    def log_text(self, text: str, artifact_file: str) -> ArtifactEntry:
        """Store ``text`` as the artifact file ``artifact_file`` (e.g. ``"notes/summary.md"``)."""
        return self._log_bytes(text.encode("utf-8"), artifact_file)

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> ArtifactEntry:
        """Store ``data`` as JSON (or YAML for ``.yaml``/``.yml`` names) at ``artifact_file``."""
        import json

        return self._log_bytes(
            json.dumps(data, indent=2, default=str, sort_keys=True).encode(), artifact_file
        )

    def _log_bytes(self, data: bytes, artifact_file: str) -> ArtifactEntry:
        from mloop.store import validate_artifact_path

        path = validate_artifact_path(artifact_file, name="artifact_file")
        self._refuse_pending_package([path])
        sha, size = self._blobs().put_bytes(data)
        entry = ArtifactEntry(path, size, sha)
        self._record(
            "add_artifacts",
            lambda: self.store.add_artifacts(self.id, [entry]),  # type: ignore[union-attr]
            {"entries": [[entry.path, entry.size, entry.sha256]]},
        )
        self._artifact_paths.add(entry.path)
        return entry

    def _refuse_pending_package(self, paths: list[str]) -> None:
        for folder, model in self.pending_packages.items():
            for p in paths:
                if p == folder or p.startswith(folder + "/"):
                    raise ConflictError(
                        f"artifact {p!r} of run {self.id} is in {folder!r}, the package of a "
                        f"version of model {model!r} waiting to be registered by `mloop sync`; "
                        "a registered version's files never change. Log it under another path.",
                        details={"run_id": self.id, "path": p},
                    )

    def _has_artifacts_under(self, path: str) -> bool:
        """Whether the run has a file at or under the normalized ``path``: logged by this process
        (spooled or not), or in the store's index (when it can be reached)."""
        prefix = path + "/"
        if any(p == path or p.startswith(prefix) for p in self._artifact_paths):
            return True
        if self.store is None:
            return False
        try:
            return bool(self.store.list_artifacts(self.id, prefix=path))
        except (StoreUnavailableError, NotFoundError):  # not reachable, or the run is still spooled
            return False

    def log_dataset(
        self,
        data: Any,
        *,
        name: str,
        context: str = "training",
        source_uri: str | None = None,
    ) -> DatasetVersion:
        """Store a dataset version (Parquet keyed by its content hash) and record it as an input.

        ``data`` may be a pandas or polars DataFrame, a pyarrow Table, a dict of numpy arrays, or a
        path to a Parquet/CSV/JSON file. The same content logged twice is one dataset version.
        """
        from mloop.artifacts import store_dataset
        from mloop.store import validate_name, validate_text

        validate_name(name, what="dataset name")
        validate_text(context, what="input `context`")
        if source_uri is not None:
            validate_text(source_uri, what="`source_uri`")
        ds = store_dataset(self._blobs(), data, name=name, source_uri=source_uri)
        run_input = RunInput(ds.sha256, name, context)

        def _write() -> None:
            assert self.store is not None
            self.store.put_dataset(ds)
            self.store.log_input(self.id, run_input)

        self._record(
            "log_input",
            _write,
            {
                "dataset": {
                    "sha256": ds.sha256,
                    "name": ds.name,
                    "schema": dict(ds.schema),
                    "num_rows": ds.num_rows,
                    "source_uri": ds.source_uri,
                    "storage_uri": ds.storage_uri,
                    "created_ms": ds.created_ms,
                    "profile": ds.profile,
                },
                "input": {"dataset_sha256": ds.sha256, "name": name, "context": context},
            },
        )
        return ds

    # ------------------------------------------------------------------ lifecycle
    def flush(self, *, timeout_s: float | None = None) -> bool:
        """Block until everything logged so far is in the store (or, if it is unreachable, spooled).

        Parameters
        ----------
        timeout_s : float or None
            Wait about this long at most: a write already under way gets until then to finish,
            and the store waits for its locks no longer than that (what it cannot take in time is
            spooled). None waits as long as it takes.

        Returns
        -------
        bool
            True when everything logged before the call reached the store or the spool; False
            when a write stuck in an unresponsive store held the writer past ``timeout_s``. What
            was logged then stays buffered, for a later flush or :meth:`finish` (which spools it
            if the store still does not answer); nothing is lost.
        """
        if timeout_s is None:
            self._writer.drain()
            return True
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, (int, float))
            or not 0 < timeout_s < float("inf")
        ):
            raise InvalidInputError(
                f"`timeout_s` must be a positive number of seconds or None; got {timeout_s!r}."
            )
        return self._writer.flush(float(timeout_s))

    def finish(self, status: str = "finished") -> None:
        """Flush, stop the background threads and record the final status. Idempotent.

        If the store cannot take everything within ``MLOOP_FLUSH_TIMEOUT_S``, the rest is spooled and a
        warning names what was spooled; nothing accepted is lost.
        """
        from mloop.store import RUN_STATUSES

        if status not in RUN_STATUSES:
            raise InvalidInputError(
                f"`status` must be one of {list(RUN_STATUSES)}; got {status!r}."
            )
        with self._lock:
            if self._finished:
                return
            self._finished = True
        if self._sampler is not None:
            self._sampler.stop()
        end = now_ms()
        timeout_s = self.settings.flush_timeout_s
        deadline = time.monotonic() + timeout_s
        w = self._writer
        if self._owns_status:
            in_time = w.stop(timeout_s=timeout_s, status=status, end_ms=end)
        else:
            in_time = w.stop(timeout_s=timeout_s)
        store = self.store
        if self._spool.pending and store is not None and time.monotonic() < deadline:
            try:
                with store.write_deadline(deadline):
                    self._spool.replay(store)
            except Exception as exc:  # the spool stays for `mloop sync`; say so below
                _log.debug("mloop: replay at finish of run %s deferred: %s", self.id, exc)
        if self._spool.pending:
            late = (
                ""
                if in_time
                else f"the store did not take the last writes within {timeout_s:.0f} s; "
            )
            warn(
                f"mloop: run {self.id}: {late}{self._spool.total_points} metric points "
                f"({self._spool.total_records} writes) are in the spool "
                f"{', '.join(map(str, self._spool.paths))} because the store was unreachable or "
                "locked; run `mloop sync` to replay them."
            )
            self._spool.close()
        if w.refused:
            warn(
                f"mloop: run {self.id}: {w.refused} value(s) the store refused are kept in "
                f"{w.quarantine_path}; the rest of the run is written. See `mloop sync`."
            )
        for callback in self._on_finish:  # e.g. the fluent API forgets its active run
            callback(self)
        if w.held:
            points = sum(p.points for p in w.held)
            assert w.hold_error is not None
            raise StoreUnavailableError(
                f"run {self.id}: {points} metric points and the rest of {len(w.held)} write(s) "
                f"could not be kept: the store did not take them and {w.hold_error.message} "
                "They exist only in this process now.",
                details={"run_id": self.id, "points": points},
            )

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish("killed")
        else:
            self.finish("failed")

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, project={self.project!r}, name={self.name!r})"

    @property
    def url(self) -> str:
        return f"runs:/{self.id}"

    def download_artifacts(
        self, path: str = "", dest: str | os.PathLike[str] | None = None
    ) -> Path:
        from mloop.tracking._client import Client

        self.flush()
        return Client(settings=self.settings, store=self.store).download_artifacts(
            self.id, path, dest=dest or tempfile.mkdtemp(prefix="mloop-")
        )


def _store_factory(settings: Settings) -> Any:
    if settings.mode == "offline":
        return None

    def _open() -> Store:
        from mloop.store import open_store

        return open_store(settings)

    return _open


def warn(message: str) -> None:
    """A warning about the user's data (spooled, not written): always on stderr, and in the log."""
    print(message, file=sys.stderr, flush=True)
    _log.info(message)
