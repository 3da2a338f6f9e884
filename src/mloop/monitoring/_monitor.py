"""Monitor: consume batches, cut them into windows (rows or time), and compute per window the drift,
quality and performance; evaluate alert rules; send alerts to sinks; hand results to a persistence
hook (the store).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from mloop.errors import InvalidInputError
from mloop.monitoring._alerts import Alert, AlertRule, AlertSink, as_sink
from mloop.monitoring._batches import column_values, concat
from mloop.monitoring._cbpe import CBPE, PerformanceEstimate
from mloop.monitoring._columns import check_columns
from mloop.monitoring._data import read, refuse_profile
from mloop.monitoring._performance import PerformanceReport, performance_report
from mloop.monitoring._profile import Profile, load_if_profile
from mloop.monitoring._quality import quality_report
from mloop.monitoring._rule_metrics import RuleContext, check_available
from mloop.monitoring._summary import summarize
from mloop.monitoring._window import (
    MonitorRecord,
    ResultSink,
    StoreResultSink,
    WindowResult,
    _CallablePersist,
)
from mloop.tables import column_names, iter_batches

__all__ = ["Monitor", "MonitorRecord", "ResultSink", "StoreResultSink", "WindowResult"]

log = logging.getLogger("mloop.monitoring")
#: Rows read at a time from a batch given as a file, folder or Dataset.
UPDATE_ROWS = 1 << 16
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|hr|d|w)\s*$", re.IGNORECASE)
_UNIT_NS = {
    "ms": 10**6,
    "s": 10**9,
    "sec": 10**9,
    "m": 60 * 10**9,
    "min": 60 * 10**9,
    "h": 3600 * 10**9,
    "hr": 3600 * 10**9,
    "d": 86400 * 10**9,
    "w": 7 * 86400 * 10**9,
}


class Monitor:
    """Streaming monitor: feed it batches, get one result per completed window.

    Parameters
    ----------
    reference : Profile, or any table :func:`mloop.tables.read_table` accepts
        What "normal" looks like (a path may name a saved profile). Data is profiled once, at
        construction; only the monitored, label, prediction and score columns are read.
    window_rows : int, optional
        Cut a window every this many rows.
    window : str or timedelta, optional
        Cut windows by time ("30s", "15min", "1h", "1d", "1w"), aligned to the Unix epoch (UTC).
        Needs ``timestamp_column``; batches are expected in roughly increasing time order: rows
        for an already closed window are dropped and counted in the next result's notes.
    timestamp_column : str, optional
        datetime64 values, or numbers as Unix seconds.
    columns : iterable of str, optional
        Columns to monitor (default: every reference column except the label and timestamp).
    categorical : iterable of str, optional
        Columns to treat as categorical.
    drift_options : mapping, optional
        Extra keyword arguments for ``drift_report`` (methods, thresholds, ...).
    quality_thresholds : mapping, optional
        Overrides of ``quality_report`` thresholds.
    y_true, y_pred, y_score : str, optional
        Label, prediction and score columns. With labels present in a window, ``performance`` is
        computed; without, and with a reference that has labels and scores, CBPE estimates it.
    task : {"binary", "multiclass", "regression"}, default "binary"
    cbpe : CBPE or bool, default True
        A (fitted or unfitted) CBPE, or ``False`` to never estimate.
    rules : iterable of AlertRule or str
        E.g. ``["share_drifted >= 0.5", AlertRule.parse("performance.accuracy < 0.8",
        consecutive=3)]``. Checked here: a rule on a metric this monitor never computes (an
        unwatched column, performance without ``y_true``, drift with ``drift=False``...) is an
        :class:`InvalidInputError`, since it could never fire.
    sinks : iterable
        ``"log"``, an http(s) URL (webhook), a callable, or any object with
        ``send(alert, result)``. A URL becomes a :class:`WebhookSink`, which posts alerts from a
        background thread (retrying without delaying :meth:`update`); pass
        ``WebhookSink(url, background=False)`` to post in :meth:`update` instead.
    store : Store, optional
        Persist every result through ``store.log_monitor_result(MonitorRecord)``. A stored result
        holds verdicts and counts on the reference's bins and labels, never rows: its size does
        not grow with the window's rows, nor with the labels it brings that the reference lacks
        (at most 20 listed, the others counted in one bucket; see :class:`ColumnHistogram`).
    persist : ResultSink or callable, optional
        Any other persistence hook (called with a :class:`MonitorRecord`).
    name : str, default "monitor"
    history : int, default 1000
        Results kept in memory (``Monitor.results``).
    min_window_rows : int, default 1
        ``flush()`` drops a partial window smaller than this (with a log line).
    """

    def __init__(
        self,
        reference: Any,
        *,
        window_rows: int | None = None,
        window: str | timedelta | None = None,
        timestamp_column: str | None = None,
        columns: Iterable[str] | None = None,
        categorical: Iterable[str] | None = None,
        drift_options: Mapping[str, Any] | None = None,
        quality_thresholds: Mapping[str, float] | None = None,
        y_true: str | None = None,
        y_pred: str | None = None,
        y_score: str | Sequence[str] | None = None,
        task: Literal["binary", "multiclass", "regression"] = "binary",
        cbpe: CBPE | bool = True,
        rules: Iterable[AlertRule | str] | AlertRule | str = (),
        sinks: Iterable[Any] = (),
        store: Any = None,
        persist: ResultSink | Callable[[MonitorRecord], Any] | None = None,
        name: str = "monitor",
        history: int = 1000,
        min_window_rows: int = 1,
        drift: bool = True,
        quality: bool = True,
    ) -> None:
        if (window_rows is None) == (window is None):
            raise InvalidInputError("Pass exactly one of `window_rows` and `window`.")
        if window_rows is not None and (not isinstance(window_rows, int) or window_rows < 1):
            raise InvalidInputError(f"`window_rows` must be an int >= 1; got {window_rows!r}.")
        self.width_ns = None if window is None else _parse_window(window)
        if self.width_ns is not None and not timestamp_column:
            raise InvalidInputError("A time `window` needs `timestamp_column=`.")
        self.window_rows = window_rows
        self.timestamp_column = timestamp_column
        self.name = name
        self.y_true, self.y_pred, self.y_score, self.task = y_true, y_pred, y_score, task
        self.categorical = list(categorical or ())
        self.drift_options = dict(drift_options or {})
        self.quality_thresholds = dict(quality_thresholds or {})
        self.min_window_rows = min_window_rows
        self.rules = _as_rules(rules)
        self.sinks: list[AlertSink] = [as_sink(s) for s in sinks]
        self._persist: list[ResultSink] = []
        if store is not None:
            self._persist.append(StoreResultSink(store))
        if persist is not None:
            self._persist.append(
                persist if isinstance(persist, ResultSink) else _CallablePersist(persist)
            )
        self.results: deque[WindowResult] = deque(maxlen=history)

        reference = load_if_profile(reference)
        if isinstance(reference, Profile):
            available = list(reference.columns)
        else:
            refuse_profile(reference)
            available = column_names(reference, what="reference")
        skip = {c for c in (y_true, timestamp_column) if c}
        self.columns = [c for c in available if c not in skip] if columns is None else list(columns)
        check_columns(self.columns, available, what="`columns`", where="in the reference")
        check_columns(self.categorical, available, what="`categorical`", where="in the reference")
        check_columns(
            self.categorical,
            self.columns,
            what="`categorical`",
            where="monitored",
            listing="monitored columns",
        )
        cat = set(self.categorical)
        ref_data: pa.Table | None = None
        if not isinstance(reference, Profile):
            scores = [y_score] if isinstance(y_score, str) else list(y_score or ())
            wanted = [*self.columns, *(c for c in (y_true, y_pred, *scores) if c)]
            present = set(available)
            ref_data = read(reference, columns=[c for c in dict.fromkeys(wanted) if c in present])
            mon = ref_data.select(self.columns)
            self._ref_summary = summarize(mon, categorical=cat)
            self._drift_reference: Any = _profile_or_data(mon, self.categorical) if drift else None
        else:
            self._ref_summary = summarize(reference)
            self._drift_reference = reference
        self._drift_fn = _drift_function() if drift else None
        self._quality = quality
        self._cbpe: CBPE | None = None
        if task != "regression" and cbpe is not False and y_score is not None:
            model = cbpe if isinstance(cbpe, CBPE) else None
            if model is not None and hasattr(model, "calibrators_"):
                self._cbpe = model
            elif ref_data is not None and y_true in ref_data.column_names:
                model = model or CBPE(y_true=y_true or "label", y_score=y_score, y_pred=y_pred)
                self._cbpe = model.fit(ref_data)
        # A rule on a metric this monitor never computes would never fire: refuse it now.
        context = RuleContext(
            drift_columns=list(self.drift_options.get("columns", self.columns)),
            quality_columns=self.columns,
            task=task,
            why_no_drift=None if drift else "drift=False",
            why_no_quality=None if quality else "quality=False",
            why_no_performance=_why_no_performance(y_true, y_pred, y_score),
            why_no_estimate=None if self._cbpe else _why_no_estimate(cbpe, task, y_score),
        )
        for rule in self.rules:
            check_available(rule.target, rule.expression, context)
        self._chunks: list[pa.Table] = []
        self._buffered = 0
        self._rows_seen = 0
        self._index = 0
        self._open_window: int | None = None
        self._dropped_late = 0

    # ------------------------------------------------------------------ streaming

    def update(self, batch: Any) -> list[WindowResult]:
        """Consume one batch; return the windows it completed.

        ``batch`` is any table :func:`mloop.tables.read_table` accepts. A Parquet file, folder or
        pyarrow Dataset is consumed piece by piece (never read whole), so a batch may be larger
        than memory.
        """
        refuse_profile(batch)
        out: list[WindowResult] = []
        for part in iter_batches(batch, what="batch", mixed="text", batch_rows=UPDATE_ROWS):
            n = part.num_rows
            if n == 0:
                continue
            table = pa.Table.from_batches([part])
            if self.width_ns is None:
                out += self._update_rows(table, n)
            else:
                out += self._update_time(table, n)
        return out

    def flush(self) -> list[WindowResult]:
        """Close the partial window, if any (e.g. at the end of a stream)."""
        if self._buffered == 0:
            return []
        if self._buffered < self.min_window_rows:
            log.info(
                "monitor %s: dropped a partial window of %d rows (< min_window_rows=%d)",
                self.name,
                self._buffered,
                self.min_window_rows,
            )
            self._chunks, self._buffered = [], 0
            return []
        return [self._close()]

    def _update_rows(self, table: pa.Table, n: int) -> list[WindowResult]:
        assert self.window_rows is not None
        out: list[WindowResult] = []
        offset = 0
        while offset < n:
            take = min(self.window_rows - self._buffered, n - offset)
            self._chunks.append(table.slice(offset, take))
            self._buffered += take
            offset += take
            if self._buffered == self.window_rows:
                out.append(self._close())
        return out

    def _update_time(self, table: pa.Table, n: int) -> list[WindowResult]:
        assert self.width_ns is not None and self.timestamp_column is not None
        if self.timestamp_column not in table.column_names:
            raise InvalidInputError(f"The batch has no timestamp column {self.timestamp_column!r}.")
        ts = _timestamps_ns(column_values(table.column(self.timestamp_column)))
        valid = ts != np.iinfo(np.int64).min
        wid = np.floor_divide(ts, self.width_ns)
        if self._open_window is not None:
            late = valid & (wid < self._open_window)
        else:
            late = np.zeros(n, dtype=bool)
        self._dropped_late += int(late.sum()) + int((~valid).sum())
        keep = valid & ~late
        out: list[WindowResult] = []
        for w in np.unique(wid[keep]):
            w = int(w)
            if self._open_window is not None and w != self._open_window and self._buffered:
                out.append(self._close())
            self._open_window = w
            m = keep & (wid == w)
            self._chunks.append(table.filter(pa.array(m)))
            self._buffered += int(m.sum())
        return out

    # ------------------------------------------------------------------ per window

    def _close(self) -> WindowResult:
        data = concat(self._chunks)
        n = self._buffered
        if self.width_ns is None:
            start: Any = self._rows_seen
            end: Any = self._rows_seen + n
        else:
            assert self._open_window is not None
            start = _iso(self._open_window * self.width_ns)
            end = _iso((self._open_window + 1) * self.width_ns)
        self._rows_seen += n
        self._chunks, self._buffered = [], 0
        notes: list[str] = []
        if self._dropped_late:
            notes.append(
                f"{self._dropped_late} rows arrived after their window closed (or had no "
                "timestamp) and were dropped"
            )
            self._dropped_late = 0
        monitored = set(self.columns)
        current = data.select([k for k in data.column_names if k in monitored])
        drift = None
        if self._drift_fn is not None:
            drift = self._drift_fn(self._drift_reference, current, **self._drift_kwargs())
        quality = None
        if self._quality:
            quality = quality_report(
                self._ref_summary,
                current,
                columns=[c for c in self.columns if c in self._ref_summary.columns],
                categorical=self.categorical,
                thresholds=self.quality_thresholds,
            )
        performance, estimate = self._performance(data, notes)
        result = WindowResult(
            monitor=self.name,
            index=self._index,
            start=start,
            end=end,
            n_rows=n,
            drift=drift,
            quality=quality,
            performance=performance,
            estimated_performance=estimate,
            notes=notes,
        )
        self._index += 1
        # Built complete, never changed after: its alerts, then a note per alert a sink failed.
        result = self._dispatch(replace(result, alerts=self._evaluate(result)))
        self.results.append(result)
        return result

    def _drift_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.drift_options)
        kwargs.setdefault("columns", self.columns)
        if self.categorical and "categorical" not in kwargs:
            kwargs["categorical"] = self.categorical
        return kwargs

    def _performance(
        self, table: pa.Table, notes: list[str]
    ) -> tuple[PerformanceReport | None, PerformanceEstimate | None]:
        names = [self.y_score] if isinstance(self.y_score, str) else list(self.y_score or ())
        wanted = [c for c in (self.y_true, self.y_pred, *names) if c]
        data = {
            c: column_values(table.column(c))
            for c in dict.fromkeys(wanted)
            if c in table.column_names
        }
        has_labels = bool(self.y_true and self.y_true in data and _any_present(data[self.y_true]))
        if has_labels and (self.y_pred in data or self.y_score is not None):
            score = None
            if names and all(c in data for c in names):
                stacked = np.column_stack([data[c] for c in names])
                score = stacked[:, 0] if isinstance(self.y_score, str) else stacked
            try:
                report = performance_report(
                    data[self.y_true],  # type: ignore[index]
                    data.get(self.y_pred) if self.y_pred else None,
                    score,
                    task=self.task,
                )
            except InvalidInputError as exc:
                notes.append(f"performance not computed: {exc}")
                return None, None
            return report, None
        if self._cbpe is not None:
            try:
                return None, self._cbpe.estimate(table)
            except InvalidInputError as exc:
                notes.append(f"performance not estimated: {exc}")
        return None, None

    def _evaluate(self, result: WindowResult) -> list[Alert]:
        if not self.rules:
            return []
        metrics = result.metrics()
        alerts = []
        for rule in self.rules:
            fire, value = rule.evaluate(metrics)
            if not fire:
                continue
            assert value is not None
            streak = rule.streak
            when = f" for {streak} consecutive windows" if rule.consecutive > 1 else ""
            alerts.append(
                Alert(
                    rule=rule.expression,
                    name=rule.name,
                    severity=rule.severity,
                    monitor=self.name,
                    window_index=result.index,
                    window_start=result.start,
                    window_end=result.end,
                    metric=rule.metric,
                    op=rule.op,
                    threshold=rule.threshold,
                    value=value,
                    consecutive=streak,
                    message=f"{rule.metric} = {value:.4g} ({rule.op} {rule.threshold:g}){when}",
                )
            )
        return alerts

    def _dispatch(self, result: WindowResult) -> WindowResult:
        """Send the alerts to the sinks and persist the result, with a note per failed send."""
        failed: list[str] = []
        for alert in result.alerts:
            for sink in self.sinks:
                try:
                    sink.send(alert, result)
                except Exception as exc:  # a boundary: one failing sink must not stop the stream
                    log.exception("monitor %s: alert sink %r failed", self.name, sink)
                    failed.append(f"alert sink {type(sink).__name__} failed: {exc}")
        if failed:
            result = replace(result, notes=[*result.notes, *failed])
        if self._persist:
            wire = result.to_dict()
            record = MonitorRecord(
                monitor=self.name,
                window_index=result.index,
                window_start=result.start,
                window_end=result.end,
                n_rows=result.n_rows,
                result=wire,
                alerts=wire["alerts"],
            )
            for hook in self._persist:
                hook.write_result(record)
        return result


# ---------------------------------------------------------------- helpers


def _as_rules(rules: Iterable[AlertRule | str] | AlertRule | str) -> list[AlertRule]:
    if isinstance(rules, (str, AlertRule)):  # one rule, not one rule per character
        rules = [rules]
    out = []
    for rule in rules:
        if isinstance(rule, str):
            out.append(AlertRule.parse(rule))
        elif isinstance(rule, AlertRule):
            out.append(rule)
        else:
            raise InvalidInputError(
                "`rules` must hold rule texts such as 'share_drifted >= 0.5' or AlertRule "
                f"objects; got {rule!r} ({type(rule).__name__})."
            )
    return out


def _why_no_performance(y_true: str | None, y_pred: str | None, y_score: Any) -> str | None:
    if not y_true:
        return "no labels: pass y_true= (and y_pred= or y_score=)"
    if not y_pred and y_score is None:
        return "y_true= alone: pass y_pred= or y_score= too"
    return None


def _why_no_estimate(cbpe: Any, task: str, y_score: Any) -> str:
    if cbpe is False:
        return "cbpe=False"
    if task == "regression":
        return "task='regression': CBPE estimates classification metrics only"
    if y_score is None:
        return "no y_score= column to estimate from"
    return "the reference has no y_true= labels to fit CBPE on; pass a fitted CBPE as cbpe="


def _profile_or_data(data: pa.Table, categorical: list[str]) -> Any:
    """Profile the reference once (fast per-window drift); fall back to the data itself."""
    try:
        module = importlib.import_module("mloop.monitoring._profile")
    except ImportError:
        return data
    return module.Profile.from_data(data, categorical=categorical or None)


def _drift_function() -> Callable[..., Any]:
    try:
        from mloop.monitoring._drift import drift_report
    except ImportError as exc:
        raise InvalidInputError(
            "Drift is not available in this build (mloop.monitoring._drift); pass drift=False."
        ) from exc
    params = inspect.signature(drift_report).parameters
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())

    def run(reference: Any, current: Any, **kwargs: Any) -> Any:
        if not accepts_any:
            kwargs = {k: v for k, v in kwargs.items() if k in params}
        return drift_report(reference, current, **kwargs)

    return run


def _parse_window(window: str | timedelta) -> int:
    if isinstance(window, timedelta):
        ns = int(window.total_seconds() * 10**9)
    else:
        m = _DURATION.match(str(window))
        if not m:
            raise InvalidInputError(
                f"`window` must be a duration like '30s', '15min', '1h', '1d' or a timedelta; "
                f"got {window!r}."
            )
        ns = int(float(m.group(1)) * _UNIT_NS[m.group(2).lower()])
    if ns <= 0:
        raise InvalidInputError(f"`window` must be positive; got {window!r}.")
    return ns


def _timestamps_ns(values: np.ndarray) -> np.ndarray:
    """int64 nanoseconds since the epoch; missing -> int64 min."""
    nat = np.iinfo(np.int64).min
    if values.dtype.kind == "M":
        return values.astype("datetime64[ns]").astype(np.int64)
    if values.dtype.kind in "iuf":
        v = values.astype(np.float64)
        out = np.full(len(v), nat, dtype=np.int64)
        ok = np.isfinite(v)
        out[ok] = np.round(v[ok] * 1e9).astype(np.int64)
        return out
    import pyarrow as pa

    try:
        arr = pa.array(values.tolist()).cast(pa.timestamp("ns"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InvalidInputError(
            f"Timestamps must be datetimes or Unix seconds; got {values.dtype} values."
        ) from exc
    return np.asarray(arr.fill_null(pa.scalar(nat, pa.timestamp("ns"))).cast(pa.int64()))


def _iso(ns: int) -> str:
    return (
        datetime.fromtimestamp(0, tz=timezone.utc) + timedelta(microseconds=ns // 1000)
    ).isoformat()


def _any_present(values: np.ndarray) -> bool:
    if values.dtype.kind == "f":
        return bool(np.any(~np.isnan(values)))
    if values.dtype.kind == "O":
        return any(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in values)
    return len(values) > 0
