"""Metric writes (chunked history + per-key summary, one transaction per batch) and history reads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mloop._lazy import LazyModule
from mloop.errors import ConflictError
from mloop.ids import now_ms
from mloop.store._entities import MetricSeries
from mloop.store._sql import _schema as t
from mloop.store._sql._raw import Cursor

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy", globals(), "np")


# Points per stored chunk: small enough that a step-range read (a chart zoom) of a long metric
# reads little beyond its range (a 1% zoom of 1M points: at most 3 chunks, ~2.5%), large enough
# that a full read of 1M points is ~120 rows.
MAX_CHUNK_POINTS = 8_192

_IN_CHUNK = 500  # keys per ``IN (...)``: far below SQLite's and PostgreSQL's parameter limits


def pack_chunk(steps: np.ndarray, ts: np.ndarray, values: np.ndarray) -> bytes:
    """Little-endian int64 steps | int64 timestamps | float64 values (NaN/inf bit-exact)."""
    return b"".join(
        (
            steps.astype("<i8", copy=False).tobytes(),
            ts.astype("<i8", copy=False).tobytes(),
            values.astype("<f8", copy=False).tobytes(),
        )
    )


def unpack_chunks(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    total = sum(n for n, _ in rows)
    steps = np.empty(total, dtype=np.int64)
    ts = np.empty(total, dtype=np.int64)
    values = np.empty(total, dtype=np.float64)
    pos = 0
    for n, data in rows:
        buf = np.frombuffer(data, dtype="<i8", count=2 * n)
        steps[pos : pos + n] = buf[:n]
        ts[pos : pos + n] = buf[n:]
        values[pos : pos + n] = np.frombuffer(data, dtype="<f8", count=n, offset=16 * n)
        pos += n
    return steps, ts, values


def sort_history(
    steps: np.ndarray, ts: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order by (step, timestamp), keeping insertion order among ties; no-op when already ordered."""
    if len(steps) < 2:
        return steps, ts, values
    ds = np.diff(steps)
    if (ds > 0).all() or ((ds >= 0).all() and (np.diff(ts)[ds == 0] >= 0).all()):
        return steps, ts, values
    order = np.lexsort((ts, steps))
    return steps[order], ts[order], values[order]


def _summarise(series: MetricSeries) -> tuple[float, int, int, float | None, float | None, int]:
    s, ts, v = series.steps, series.timestamps, series.values
    if len(v) == 1:  # the common case (one step per flush) without numpy reductions
        x = float(v[0])
        edge = None if math.isnan(x) else x
        return x, int(s[0]), int(ts[0]), edge, edge, 1
    last = int(np.lexsort((ts, s))[-1])
    finite = v[~np.isnan(v)]
    lo = float(finite.min()) if len(finite) else None
    hi = float(finite.max()) if len(finite) else None
    return float(v[last]), int(s[last]), int(ts[last]), lo, hi, len(v)


_INSERT_CHUNK = "INSERT INTO metric_chunks (run_id, key, n, step_min, step_max, data)"
# The summary merge happens in the database, in one statement per batch: a point replaces the last
# value when its (step, timestamp) is not older (ties go to the later write); min and max ignore
# NaN (NULL); counts add up. In an upsert, ``metric_summary.*`` is the stored row.
_NEWER = (
    "(excluded.step > metric_summary.step OR (excluded.step = metric_summary.step AND "
    'excluded."timestamp" >= metric_summary."timestamp"))'
)
_UPSERT_SUMMARY = """
INSERT INTO metric_summary
    (run_id, key, value, is_nan, step, "timestamp", min_value, max_value, "count")
"""
_MERGE_SUMMARY = f"""
ON CONFLICT (run_id, key) DO UPDATE SET
    value = CASE WHEN {_NEWER} THEN excluded.value ELSE metric_summary.value END,
    is_nan = CASE WHEN {_NEWER} THEN excluded.is_nan ELSE metric_summary.is_nan END,
    step = CASE WHEN {_NEWER} THEN excluded.step ELSE metric_summary.step END,
    "timestamp" = CASE WHEN {_NEWER} THEN excluded."timestamp" ELSE metric_summary."timestamp" END,
    min_value = CASE
        WHEN excluded.min_value IS NULL THEN metric_summary.min_value
        WHEN metric_summary.min_value IS NULL OR excluded.min_value < metric_summary.min_value
            THEN excluded.min_value
        ELSE metric_summary.min_value END,
    max_value = CASE
        WHEN excluded.max_value IS NULL THEN metric_summary.max_value
        WHEN metric_summary.max_value IS NULL OR excluded.max_value > metric_summary.max_value
            THEN excluded.max_value
        ELSE metric_summary.max_value END,
    "count" = metric_summary."count" + excluded."count"
"""


def write_metrics(cur: Cursor, run_id: str, metrics: Mapping[str, MetricSeries]) -> None:
    chunk_rows = []
    summary_rows = []
    for key, series in metrics.items():
        n = len(series)
        for start in range(0, n, MAX_CHUNK_POINTS):
            st = series.steps[start : start + MAX_CHUNK_POINTS]
            tss = series.timestamps[start : start + MAX_CHUNK_POINTS]
            vals = series.values[start : start + MAX_CHUNK_POINTS]
            lo_step, hi_step = (int(st[0]),) * 2 if len(st) == 1 else (int(st.min()), int(st.max()))
            chunk_rows.append((run_id, key, len(st), lo_step, hi_step, pack_chunk(st, tss, vals)))
        last, step, ts, lo, hi, count = _summarise(series)
        nan = math.isnan(last)
        summary_rows.append((run_id, key, None if nan else last, nan, step, ts, lo, hi, count))
    cur.insert(_INSERT_CHUNK, chunk_rows)
    cur.insert(_UPSERT_SUMMARY, summary_rows, _MERGE_SUMMARY)


def _in(n: int) -> str:
    return "(" + ", ".join("?" * n) + ")"


def write_params(cur: Cursor, run_id: str, params: Mapping[str, str]) -> None:
    """Insert write-once params; the same value again is fine, another value is a ConflictError."""
    keys = list(params)
    existing: dict[str, str] = {}
    for i in range(0, len(keys), _IN_CHUNK):
        part = keys[i : i + _IN_CHUNK]
        rows = cur.execute(
            f"SELECT key, value FROM params WHERE run_id = ? AND key IN {_in(len(part))}",
            (run_id, *part),
        ).fetchall()
        existing.update(rows)
    conflicts = {
        k: (existing[k], v) for k, v in params.items() if k in existing and existing[k] != v
    }
    if conflicts:
        k, (old, new) = next(iter(conflicts.items()))
        raise ConflictError(
            f"param {k!r} of run {run_id} is already {old!r}; params are write-once, so it cannot "
            f"become {new!r}. Log the new value under another key or start a new run.",
            details={"conflicts": {k: {"stored": o, "new": n} for k, (o, n) in conflicts.items()}},
        )
    insert_params(cur, run_id, {k: v for k, v in params.items() if k not in existing})


def insert_params(cur: Cursor, run_id: str, params: Mapping[str, str]) -> None:
    """Params of a run that has none of these keys yet (a new run): no read first."""
    cur.insert(
        "INSERT INTO params (run_id, key, value)", [(run_id, k, v) for k, v in params.items()]
    )


def write_tags(cur: Cursor, run_id: str, tags: Mapping[str, str]) -> None:
    cur.insert(
        "INSERT INTO tags (run_id, key, value)",
        [(run_id, k, v) for k, v in tags.items()],
        "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
    )


def claim_batch(cur: Cursor, run_id: str, batch_id: str) -> Any:
    """Record ``batch_id`` as applied; the result has a row unless it already was.

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (SQLite and PostgreSQL both have it)
    instead of a read and a write; read the result after ``cur.sync()``.
    """
    return cur.execute(
        "INSERT INTO batches (batch_id, run_id, applied_ms) VALUES (?, ?, ?) "
        "ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id",
        (batch_id, run_id, now_ms()),
    )


def read_history(
    conn: Connection,
    run_id: str,
    key: str,
    *,
    min_step: int | None = None,
    max_step: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A metric's points ordered by (step, timestamp); with a step range, only the chunks that
    overlap it are read (by their ``step_min`` / ``step_max``), then cut to the range."""
    mc = t.metric_chunks
    q = sa.select(mc.c.n, mc.c.data).where(mc.c.run_id == run_id, mc.c.key == key)
    if min_step is not None:
        q = q.where(mc.c.step_max >= min_step)
    if max_step is not None:
        q = q.where(mc.c.step_min <= max_step)
    rows = conn.execute(q.order_by(mc.c.id)).all()
    step, ts, value = unpack_chunks([(n, bytes(d)) for n, d in rows])
    if min_step is not None or max_step is not None:
        keep = np.ones(len(step), dtype=bool)
        if min_step is not None:
            keep &= step >= min_step
        if max_step is not None:
            keep &= step <= max_step
        if not keep.all():
            step, ts, value = step[keep], ts[keep], value[keep]
    return sort_history(step, ts, value)
