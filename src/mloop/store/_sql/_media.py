"""The media index on SQL: one row per (run, key, step); a row written again replaces it, in
the same transaction that checks the run and the artifacts it points at."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mloop.errors import NotFoundError
from mloop.store._media_base import MediaItem
from mloop.store._sql import _schema as t
from mloop.store._sql._tx import SqlBase

__all__ = ["SqlMediaMixin"]

_IN_CHUNK = 900


def _item(row: Any) -> MediaItem:
    from mloop.codec import loads

    return MediaItem(
        key=row.key,
        step=row.step,
        kind=row.kind,
        path=row.path,
        meta=loads(row.meta, what="stored media meta"),
        timestamp_ms=row.timestamp_ms,
    )


class SqlMediaMixin(SqlBase):
    """Mixed into :class:`SqlStore` (uses its ``_read``/``_write`` and ``_require_run``)."""

    def _do_add_media(self, run_id: str, items: list[MediaItem]) -> None:
        from mloop.codec import dumps, to_wire

        m, a = t.media, t.artifacts
        with self._write() as conn:
            self._require_run(conn, run_id)
            paths = sorted({i.path for i in items})
            known: set[str] = set()
            for start in range(0, len(paths), _IN_CHUNK):
                part = paths[start : start + _IN_CHUNK]
                known.update(
                    conn.execute(
                        sa.select(a.c.path).where(a.c.run_id == run_id, a.c.path.in_(part))
                    ).scalars()
                )
            missing = [p for p in paths if p not in known]
            if missing:
                raise NotFoundError(
                    f"run {run_id} has no artifact {missing[0]!r}; log the media's bytes as an "
                    "artifact before indexing them.",
                    details={"run_id": run_id, "path": missing[0]},
                )
            conn.execute(
                m.delete().where(
                    m.c.run_id == run_id,
                    m.c.key == sa.bindparam("k"),
                    m.c.step == sa.bindparam("s"),
                ),
                [{"k": i.key, "s": i.step} for i in items],
            )
            conn.execute(
                m.insert(),
                [
                    {
                        "run_id": run_id,
                        "key": i.key,
                        "step": i.step,
                        "kind": i.kind,
                        "path": i.path,
                        "meta": dumps(to_wire(dict(i.meta), what="media meta")),
                        "timestamp_ms": i.timestamp_ms,
                    }
                    for i in items
                ],
            )

    def _do_list_media(self, run_id: str, key: str | None, kind: str | None) -> list[MediaItem]:
        m = t.media
        q = sa.select(m).where(m.c.run_id == run_id)
        if key is not None:
            q = q.where(m.c.key == key)
        if kind is not None:
            q = q.where(m.c.kind == kind)
        with self._read() as conn:
            found = [_item(r) for r in conn.execute(q.order_by(m.c.key, m.c.step)).all()]
            if not found:
                self._require_run(conn, run_id)
            return found
