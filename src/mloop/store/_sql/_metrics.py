"""Metric writes (chunked history + per-key summary, one transaction per batch) and history reads."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mloop.errors import ConflictError
from mloop.ids import now_ms
from mloop.store._entities import MetricSeries
from mloop.store._sql import _schema as t

MAX_CHUNK_POINTS = 65_536

_SUMMARY_FOR_UPDATE = (
    sa.select(t.metric_summary)
    .where(
        t.metric_summary.c.run_id == sa.bindparam("rid"),
        t.metric_summary.c.key.in_(sa.bindparam("keys", expanding=True)),
    )
    .with_for_update()
)


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
    last = int(np.lexsort((ts, s))[-1]) if len(v) > 1 else 0
    finite = v[~np.isnan(v)]
    lo = float(finite.min()) if len(finite) else None
    hi = float(finite.max()) if len(finite) else None
    return float(v[last]), int(s[last]), int(ts[last]), lo, hi, len(v)


def write_metrics(conn: Connection, run_id: str, metrics: Mapping[str, MetricSeries]) -> None:
    chunk_rows = []
    for key, series in metrics.items():
        n = len(series)
        for start in range(0, n, MAX_CHUNK_POINTS):
            sl = slice(start, start + MAX_CHUNK_POINTS)
            st = series.steps[sl]
            chunk_rows.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "n": len(st),
                    "step_min": int(st.min()),
                    "step_max": int(st.max()),
                    "data": pack_chunk(st, series.timestamps[sl], series.values[sl]),
                }
            )
    conn.execute(t.metric_chunks.insert(), chunk_rows)

    ms = t.metric_summary
    existing = {
        r.key: r for r in conn.execute(_SUMMARY_FOR_UPDATE, {"rid": run_id, "keys": list(metrics)})
    }
    inserts, updates = [], []
    for key, series in metrics.items():
        last, step, ts, lo, hi, count = _summarise(series)
        old = existing.get(key)
        if old is not None:
            if (step, ts) < (old.step, old.timestamp):
                last = math.nan if old.is_nan else float(old.value)
                step, ts = old.step, old.timestamp
            lo = (
                old.min_value
                if lo is None
                else (lo if old.min_value is None else min(lo, old.min_value))
            )
            hi = (
                old.max_value
                if hi is None
                else (hi if old.max_value is None else max(hi, old.max_value))
            )
            count += old._mapping["count"]
        row = {
            "value": None if math.isnan(last) else last,
            "is_nan": math.isnan(last),
            "step": step,
            "timestamp": ts,
            "min_value": lo,
            "max_value": hi,
            "count": count,
        }
        if old is None:
            inserts.append({"run_id": run_id, "key": key, **row})
        else:
            updates.append({"b_run_id": run_id, "b_key": key, **row})
    if inserts:
        conn.execute(ms.insert(), inserts)
    if updates:
        conn.execute(
            ms.update()
            .where(ms.c.run_id == sa.bindparam("b_run_id"), ms.c.key == sa.bindparam("b_key"))
            .values(
                {
                    c: sa.bindparam(c)
                    for c in (
                        "value",
                        "is_nan",
                        "step",
                        "timestamp",
                        "min_value",
                        "max_value",
                        "count",
                    )
                }
            ),
            updates,
        )


def write_params(conn: Connection, run_id: str, params: Mapping[str, str]) -> None:
    """Insert write-once params; the same value again is fine, another value is a ConflictError."""
    p = t.params
    existing = dict(
        conn.execute(
            sa.select(p.c.key, p.c.value).where(p.c.run_id == run_id, p.c.key.in_(list(params)))
        ).all()
    )
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
    new_rows = [
        {"run_id": run_id, "key": k, "value": v} for k, v in params.items() if k not in existing
    ]
    if new_rows:
        conn.execute(p.insert(), new_rows)


def write_tags(conn: Connection, run_id: str, tags: Mapping[str, str]) -> None:
    tg = t.tags
    conn.execute(tg.delete().where(tg.c.run_id == run_id, tg.c.key.in_(list(tags))))
    conn.execute(tg.insert(), [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()])


def claim_batch(conn: Connection, run_id: str, batch_id: str) -> bool:
    """Record ``batch_id`` as applied; False when it already was (the caller skips the batch).

    One ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL both have it) instead of a read
    and a write.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(t.batches)
        .on_conflict_do_nothing(index_elements=["batch_id"])
        .returning(t.batches.c.batch_id)
    )
    row = conn.execute(
        stmt, {"batch_id": batch_id, "run_id": run_id, "applied_ms": now_ms()}
    ).first()
    return row is not None


def read_history(
    conn: Connection, run_id: str, key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mc = t.metric_chunks
    rows = conn.execute(
        sa.select(mc.c.n, mc.c.data).where(mc.c.run_id == run_id, mc.c.key == key).order_by(mc.c.id)
    ).all()
    return sort_history(*unpack_chunks([(n, bytes(d)) for n, d in rows]))
