"""Serving's per-minute aggregates on SQL: a minute written again replaces its row (deployment,
replica, minute), in one transaction per call."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from mloop.store._serving_base import ServingMinute
from mloop.store._sql import _schema as t
from mloop.store._sql._tx import SqlBase

__all__ = ["SqlServingMixin"]


def _minute(r: Any) -> ServingMinute:
    return ServingMinute(
        deployment=r.deployment,
        replica=r.replica,
        minute_ms=r.minute_ms,
        requests=r.requests,
        errors=r.errors,
        latency_sum_ms=r.latency_sum_ms,
        latency_max_ms=r.latency_max_ms,
        latency_counts=tuple(json.loads(r.latency_counts)),
    )


class SqlServingMixin(SqlBase):
    """Mixed into :class:`SqlStore` (uses its ``_read``/``_write``)."""

    def _do_record_serving_minutes(self, minutes: list[ServingMinute]) -> None:
        s = t.serving_minutes
        with self._write() as conn:
            conn.execute(
                s.delete().where(
                    s.c.deployment == sa.bindparam("d"),
                    s.c.replica == sa.bindparam("r"),
                    s.c.minute_ms == sa.bindparam("m"),
                ),
                [{"d": m.deployment, "r": m.replica, "m": m.minute_ms} for m in minutes],
            )
            conn.execute(
                s.insert(),
                [
                    {
                        "deployment": m.deployment,
                        "replica": m.replica,
                        "minute_ms": m.minute_ms,
                        "requests": m.requests,
                        "errors": m.errors,
                        "latency_sum_ms": m.latency_sum_ms,
                        "latency_max_ms": m.latency_max_ms,
                        "latency_counts": json.dumps(list(m.latency_counts)),
                    }
                    for m in minutes
                ],
            )

    def _do_list_serving_minutes(
        self, deployment: str, since_ms: int | None, until_ms: int | None, limit: int
    ) -> list[ServingMinute]:
        s = t.serving_minutes
        q = sa.select(s).where(s.c.deployment == deployment)
        if since_ms is not None:
            q = q.where(s.c.minute_ms >= since_ms)
        if until_ms is not None:
            q = q.where(s.c.minute_ms < until_ms)
        q = q.order_by(s.c.minute_ms, s.c.replica).limit(limit)
        with self._read() as conn:
            return [_minute(r) for r in conn.execute(q).all()]
