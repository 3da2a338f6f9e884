"""Monitoring a deployment from its inference log: one result per time window, resumable.

:class:`InferenceMonitor` reads what a server logged (:mod:`mloop.inference`) and feeds it, one
window at a time, to a :class:`~mloop.monitoring.Monitor` with ``timestamp_column="ts"``,
``y_pred="prediction"`` and ``y_true="label"``: drift of every window against the training
reference, data quality, realized performance where labels have arrived (:func:`mloop.log_labels`)
and CBPE's estimate where they have not.

A window is evaluated once, when it is complete: ``lateness`` after its end (the time for every
replica to flush its rows, and for labels to arrive if the monitor should wait for them). Each
:meth:`InferenceMonitor.poll` evaluates every complete window not evaluated yet and records how far
it got in the store, as the event cursor ``monitor-<name>`` whose position is the end of the last
evaluated window in ms since the epoch. A restarted monitor resumes there: no window is evaluated
twice or skipped. (A window is cut by time, not by chunk, because a chunk may span windows and the
chunks of several replicas interleave in time; a chunk-id cursor could not say which of a chunk's
rows were already counted.) Rows logged more than ``lateness`` after their window ended miss it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mloop.artifacts import BlobStore
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.inference import read_inference_chunk, to_ms
from mloop.monitoring._monitor import Monitor, WindowResult, _parse_window
from mloop.store import InferenceChunk, Store, open_store, validate_name

__all__ = ["InferenceMonitor", "monitor_inference_log"]

_PAGE = 1000


class InferenceMonitor:
    """A :class:`~mloop.monitoring.Monitor` over a deployment's inference log.

    Parameters
    ----------
    deployment : str
        Whose log to read (a deployment, or the served model's name).
    reference : Profile, or any table :func:`mloop.tables.read_table` accepts
        The training data (or its profile): what "normal" looks like. With labels (``y_true``)
        and scores (``y_score``) in it, CBPE estimates performance before labels arrive.
    window : str or timedelta, default "1h"
        Window width ("5min", "1h", "1d"), aligned to the Unix epoch (UTC).
    lateness : str or timedelta, default "1min"
        How long after its end a window is evaluated. Longer waits for late replicas and for
        labels: set it to the label delay to get realized rather than estimated performance.
    name : str, optional
        The monitor's name (default: the deployment's), used for its results and its cursor.
    store, blobstore : optional
        Where the log is (default: those of the environment, ``MLOOP_HOME`` ...).
    resume : bool, default True
        Keep the position in the store (event cursor ``monitor-<name>``) and start from it.
    save_results : bool, default True
        Persist each window's result in the store (``store.log_monitor_result``).
    y_true, y_pred, y_score : str, optional
        The label, prediction and score columns of the log (``y_score`` e.g.
        ``"prediction_1"`` for a served ``predict_proba``).
    **monitor_kwargs
        Passed to :class:`~mloop.monitoring.Monitor` (``rules``, ``sinks``, ``columns``,
        ``categorical``, ``drift_options``, ``task``, ``cbpe``, ``min_window_rows``, ...).

    Examples
    --------
    >>> mon = InferenceMonitor("churn-api", reference="train.parquet", window="1h",
    ...                        rules=["share_drifted >= 0.3"], sinks=["log"])  # doctest: +SKIP
    >>> for result in mon.poll():                                              # doctest: +SKIP
    ...     print(result.start, result.drift.share_drifted, result.alerts)
    """

    def __init__(
        self,
        deployment: str,
        *,
        reference: Any,
        window: str | timedelta = "1h",
        lateness: str | timedelta = "1min",
        name: str | None = None,
        store: Store | None = None,
        blobstore: BlobStore | None = None,
        resume: bool = True,
        save_results: bool = True,
        y_true: str | None = "label",
        y_pred: str | None = "prediction",
        y_score: str | Sequence[str] | None = None,
        **monitor_kwargs: Any,
    ) -> None:
        self.deployment = validate_name(deployment, what="deployment")
        self.name = validate_name(name or self.deployment, what="monitor name")
        for key in ("timestamp_column", "window_rows", "store"):
            if key in monitor_kwargs:
                raise InvalidInputError(
                    f"`{key}` is set by InferenceMonitor (the log's `ts` column, time windows, "
                    "its own store); leave it out."
                )
        if store is None or blobstore is None:
            settings = Settings.from_env()
            store = store if store is not None else open_store(settings)
            blobstore = (
                blobstore
                if blobstore is not None
                else BlobStore(settings.artifact_uri, token=settings.token)
            )
        self.store = store
        self.blobstore = blobstore
        self.width_ms = _parse_window(window) // 10**6
        if self.width_ms < 1:
            raise InvalidInputError(f"`window` must be at least 1ms; got {window!r}.")
        self.lateness_ms = _parse_window(lateness) // 10**6 if lateness else 0
        self.cursor_name = f"monitor-{self.name}" if resume else None
        self.monitor = Monitor(
            reference,
            window=window,
            timestamp_column="ts",
            y_true=y_true,
            y_pred=y_pred,
            y_score=y_score,
            name=self.name,
            store=store if save_results else None,
            **monitor_kwargs,
        )
        scores = [y_score] if isinstance(y_score, str) else list(y_score or ())
        wanted = [*self.monitor.columns, *(c for c in (y_pred, *scores) if c), "ts"]
        self._columns = list(dict.fromkeys(wanted))
        self._y_true = y_true
        self.position_ms: int | None = None
        if self.cursor_name is not None:
            cursor = store.get_cursor(self.cursor_name)  # also checks the name
            if cursor is not None:
                self.position_ms = cursor.position

    def __repr__(self) -> str:
        return f"InferenceMonitor({self.deployment!r}, name={self.name!r})"

    @property
    def results(self) -> Any:
        """The latest window results kept in memory (see ``Monitor.results``)."""
        return self.monitor.results

    def poll(self, *, until: Any = None) -> list[WindowResult]:
        """Evaluate every complete window not evaluated yet; return their results in time order.

        Parameters
        ----------
        until : datetime, ISO-8601 string or int (ms since the epoch), optional
            Evaluate windows that end by this time (default: now minus ``lateness``).
        """
        horizon = to_ms(until, "until")
        if horizon is None:
            horizon = int(time.time() * 1000) - self.lateness_ms
        cut = (horizon // self.width_ms) * self.width_ms
        start = self.position_ms
        if start is None:
            start = self._earliest()
            if start is None:
                return []
            start = (start // self.width_ms) * self.width_ms
        if start >= cut:
            return []
        results = list(self._sweep(start, cut))
        self.position_ms = cut
        if self.cursor_name is not None:
            self.store.ack_event(self.cursor_name, cut)
        return results

    def _earliest(self) -> int | None:
        page = self.store.list_inference_chunks(self.deployment, limit=_PAGE)
        return min((c.first_ts_ms for c in page), default=None)

    def _chunks(self, start: int, cut: int) -> list[InferenceChunk]:
        out: list[InferenceChunk] = []
        after = 0
        while True:
            page = self.store.list_inference_chunks(
                self.deployment, after_id=after, since_ms=start, until_ms=cut, limit=_PAGE
            )
            out += page
            if len(page) < _PAGE:
                return sorted(out, key=lambda c: (c.first_ts_ms, c.id))
            after = page[-1].id

    def _sweep(self, start: int, cut: int) -> Iterator[WindowResult]:
        """Windows in time order, holding only the chunks that overlap the current one."""
        chunks = self._chunks(start, cut)
        held: list[pa.Table] = []
        i = 0
        w = start
        while held or i < len(chunks):
            nearest = []
            if held:
                nearest.append(
                    min(int(pc.min(t.column("ts").cast(pa.int64())).as_py()) for t in held)
                )
            if i < len(chunks):
                nearest.append(max(chunks[i].first_ts_ms, start))
            w = max(w, (min(nearest) // self.width_ms) * self.width_ms)
            if w >= cut:
                return
            end = w + self.width_ms
            while i < len(chunks) and chunks[i].first_ts_ms < end:
                table = read_inference_chunk(
                    chunks[i],
                    store=self.store,
                    blobstore=self.blobstore,
                    since=start,
                    until=cut,
                    columns=self._columns,
                    with_labels=self._y_true is not None,
                )
                if self._y_true is not None and self._y_true != "label":
                    names = table.column_names
                    table = table.rename_columns(
                        [self._y_true if n == "label" else n for n in names]
                    )
                if table.num_rows:
                    held.append(table)
                i += 1
            current, later = [], []
            for table in held:
                inside = pc.less(table.column("ts").cast(pa.int64()), end)
                current.append(table.filter(inside))
                rest = table.filter(pc.invert(inside))
                if rest.num_rows:
                    later.append(rest)
            held = later
            rows = pa.concat_tables(current, promote_options="permissive")
            if rows.num_rows:
                yield from self.monitor.update(rows)
                yield from self.monitor.flush()
            w = end


def monitor_inference_log(
    deployment: str,
    *,
    reference: Any,
    window: str | timedelta = "1h",
    until: Any = None,
    **kwargs: Any,
) -> list[WindowResult]:
    """Evaluate the complete windows of a deployment's inference log not evaluated yet.

    One pass of an :class:`InferenceMonitor` (same parameters): run it from a scheduler, and each
    run picks up where the last one stopped (its position is kept in the store). Pass
    ``resume=False`` to evaluate the whole log from its first window instead.

    Returns
    -------
    list of WindowResult
        In time order; alerts fired are in each result's ``alerts`` (and sent to ``sinks``).

    Examples
    --------
    >>> results = monitor_inference_log("churn-api", reference="train.parquet",
    ...                                 window="1h", rules=["share_drifted >= 0.3"])  # doctest: +SKIP
    """
    return InferenceMonitor(deployment, reference=reference, window=window, **kwargs).poll(
        until=until
    )
