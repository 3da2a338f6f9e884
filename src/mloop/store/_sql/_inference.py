"""The inference log's chunk index and delayed labels on SQL."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mloop.ids import now_ms
from mloop.store._inference_base import InferenceChunk, InferenceLabel
from mloop.store._sql import _schema as t
from mloop.store._sql._tx import SqlBase

__all__ = ["SqlInferenceMixin"]

# First key of pg_advisory_xact_lock(int, int) taken by the writers of a deployment's chunks and
# labels (the second key is the deployment's hash): ids are then assigned in commit order.
_PG_CHUNKS_LOCK = 0x6D6C6F69
_PG_LABELS_LOCK = 0x6D6C6F6C
_IN_BATCH = 500  # ids in one IN (...) list

_T = TypeVar("_T")


def _batches(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), _IN_BATCH):
        yield items[i : i + _IN_BATCH]


def _chunk(r: Any) -> InferenceChunk:
    return InferenceChunk(
        r.id,
        r.deployment,
        r.sha256,
        r.size,
        r.n_rows,
        r.first_ts_ms,
        r.last_ts_ms,
        json.loads(r.model_versions),
        r.created_ms,
    )


class SqlInferenceMixin(SqlBase):
    def _lock_deployment(self, conn: Connection, key: int, deployment: str) -> None:
        if self.dialect == "postgresql":
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k, hashtext(:d))"),
                {"k": key, "d": deployment},
            )

    # ------------------------------------------------------------------ chunks
    def _do_add_inference_chunk(
        self,
        deployment: str,
        sha256: str,
        size: int,
        n_rows: int,
        first_ts_ms: int,
        last_ts_ms: int,
        model_versions: dict[str, int],
    ) -> InferenceChunk:
        c = t.inference_chunks
        with self._write() as conn:
            # Under the lock (PostgreSQL) or the write lock (SQLite), looking first is race-free.
            self._lock_deployment(conn, _PG_CHUNKS_LOCK, deployment)
            found = conn.execute(
                sa.select(c).where(c.c.deployment == deployment, c.c.sha256 == sha256)
            ).first()
            if found is not None:
                return _chunk(found)
            ts = now_ms()
            body = json.dumps(model_versions, sort_keys=True)
            cid = conn.execute(
                c.insert().values(
                    deployment=deployment,
                    sha256=sha256,
                    size=size,
                    n_rows=n_rows,
                    first_ts_ms=first_ts_ms,
                    last_ts_ms=last_ts_ms,
                    model_versions=body,
                    created_ms=ts,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return InferenceChunk(
            int(cid),
            deployment,
            sha256,
            size,
            n_rows,
            first_ts_ms,
            last_ts_ms,
            json.loads(body),
            ts,
        )

    def _do_list_inference_chunks(
        self,
        deployment: str,
        after_id: int,
        since_ms: int | None,
        until_ms: int | None,
        limit: int,
    ) -> list[InferenceChunk]:
        c = t.inference_chunks
        q = sa.select(c).where(c.c.deployment == deployment, c.c.id > after_id)
        if since_ms is not None:
            q = q.where(c.c.last_ts_ms >= since_ms)
        if until_ms is not None:
            q = q.where(c.c.first_ts_ms < until_ms)
        with self._read() as conn:
            return [_chunk(r) for r in conn.execute(q.order_by(c.c.id).limit(limit))]

    def _do_delete_inference_chunks(self, deployment: str, ids: list[int]) -> int:
        c = t.inference_chunks
        n = 0
        with self._write() as conn:
            for part in _batches(ids):
                n += conn.execute(
                    c.delete().where(c.c.deployment == deployment, c.c.id.in_(part))
                ).rowcount
        return n

    # ------------------------------------------------------------------ labels
    def _do_log_labels(self, deployment: str, labels: dict[str, str], ts_ms: int | None) -> int:
        lb = t.inference_labels
        ts = now_ms() if ts_ms is None else ts_ms
        rids = list(labels)
        with self._write() as conn:
            self._lock_deployment(conn, _PG_LABELS_LOCK, deployment)
            # An upsert is a delete and an insert: the new row takes a new id, so a reader
            # following ids sees the changed label again.
            for part in _batches(rids):
                conn.execute(
                    lb.delete().where(lb.c.deployment == deployment, lb.c.request_id.in_(part))
                )
            conn.execute(
                lb.insert(),
                [
                    {"deployment": deployment, "request_id": r, "label": labels[r], "ts_ms": ts}
                    for r in rids
                ],
            )
        return len(rids)

    def _do_get_labels(self, deployment: str, request_ids: list[str]) -> dict[str, Any]:
        lb = t.inference_labels
        out: dict[str, Any] = {}
        with self._read() as conn:
            for part in _batches(request_ids):
                rows = conn.execute(
                    sa.select(lb.c.request_id, lb.c.label).where(
                        lb.c.deployment == deployment, lb.c.request_id.in_(part)
                    )
                )
                out.update((r.request_id, json.loads(r.label)) for r in rows)
        return {r: out[r] for r in request_ids if r in out}

    def _do_list_labels(self, deployment: str, after_id: int, limit: int) -> list[InferenceLabel]:
        lb = t.inference_labels
        q = (
            sa.select(lb)
            .where(lb.c.deployment == deployment, lb.c.id > after_id)
            .order_by(lb.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [
                InferenceLabel(r.id, r.deployment, r.request_id, json.loads(r.label), r.ts_ms)
                for r in conn.execute(q)
            ]
