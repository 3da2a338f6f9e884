"""Building ``Run`` objects from run rows: params, tags, inputs and metric summaries of a page.

A search page of 1,000 runs needs each run's params, tags, dataset inputs and metric summaries.
They come in two queries for the whole page, sent together (one round trip on PostgreSQL):

- params, tags and inputs as one JSON text per run, aggregated by the database (strings only, so
  JSON is lossless); fetching one row per key was what dominated large searches;
- the metric summary rows themselves, with native floats: SQLite prints REALs in JSON with 15
  significant digits and its ``printf('%!.17g')`` misreads ~0.1% of doubles, so summaries are not
  aggregated to text.

The page's run ids travel as one parameter (a JSON array for SQLite's ``json_each``, an array for
PostgreSQL's ``ANY``), not as 1,000 bound parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from mloop.store._common import LazyMapping
from mloop.store._entities import MetricSummary, Run, RunInput
from mloop.store._sql._errors import translate
from mloop.store._sql._raw import Cursor

__all__ = ["PageContexts", "load_runs"]

_EXTRAS = {
    "sqlite": """
SELECT j.value,
    (SELECT json_group_object(key, value) FROM params WHERE run_id = j.value),
    (SELECT json_group_object(key, value) FROM tags WHERE run_id = j.value),
    (SELECT json_group_array(json_array(dataset_sha256, name, context))
     FROM run_inputs WHERE run_id = j.value)
FROM json_each(?) AS j
""",
    "postgresql": """
SELECT j.id,
    (SELECT json_object_agg(key, value)::text FROM params WHERE run_id = j.id),
    (SELECT json_object_agg(key, value)::text FROM tags WHERE run_id = j.id),
    (SELECT json_agg(json_build_array(dataset_sha256, name, context))::text
     FROM run_inputs WHERE run_id = j.id)
FROM unnest(?::text[]) AS j(id)
""",
}
_SUMMARY_COLUMNS = 'run_id, key, value, is_nan, step, "timestamp", min_value, max_value, "count"'
_SUMMARIES = {
    "sqlite": f"SELECT {_SUMMARY_COLUMNS} FROM metric_summary "
    "WHERE run_id IN (SELECT value FROM json_each(?))",
    "postgresql": f"SELECT {_SUMMARY_COLUMNS} FROM metric_summary WHERE run_id = ANY(?)",
}
_CONTEXTS = {
    "sqlite": "SELECT id, context FROM runs WHERE id IN (SELECT value FROM json_each(?))",
    "postgresql": "SELECT id, context FROM runs WHERE id = ANY(?)",
}
_NAN = float("nan")
_new = object.__new__


def _ids_param(cur: Cursor, ids: list[str]) -> Any:
    return ids if cur.pg else json.dumps(ids)


class PageContexts:
    """Loads the captured contexts of one page of search results in one query, on first use.

    A run's context (installed packages, ~3 KB) is rarely read from search results, and fetching it
    doubled the cost of the search query itself.
    """

    def __init__(self, engine: Any, ids: list[str]) -> None:
        self._engine = engine
        self._ids = ids
        self._raw: dict[str, str | None] | None = None

    def raw(self, run_id: str) -> str | None:
        if self._raw is None:
            try:
                with self._engine.connect() as conn:
                    cur = Cursor(conn)
                    try:
                        rows = cur.execute(
                            _CONTEXTS[conn.dialect.name], (_ids_param(cur, self._ids),)
                        ).fetchall()
                    finally:
                        cur.close()
            except DBAPIError as exc:  # read after the search returned: translated here
                where = self._engine.url.render_as_string(hide_password=True)
                raise translate(exc, where) from exc
            self._raw = dict(rows)
        return self._raw.get(run_id)


class LazyJson(LazyMapping):
    """A run's captured context, read and parsed on first access."""

    __slots__ = ("_page", "_raw", "_run_id")

    def __init__(
        self, raw: str | None = None, *, page: PageContexts | None = None, run_id: str = ""
    ) -> None:
        super().__init__()
        self._raw = raw
        self._page = page
        self._run_id = run_id

    def _load(self) -> Mapping[str, Any]:
        raw = self._raw if self._page is None else self._page.raw(self._run_id)
        self._raw = self._page = None
        return json.loads(raw) if raw else {}


def _summaries(rows: list[Any]) -> dict[str, dict[str, MetricSummary]]:
    out: dict[str, dict[str, MetricSummary]] = {}
    for rid, key, value, is_nan, step, ts, lo, hi, count in rows:
        m = _new(MetricSummary)  # frozen-dataclass __init__ costs ~1.5 us; thousands per page
        m.__dict__.update(
            key=key, last=_NAN if is_nan else float(value), step=step, timestamp=ts,
            min=lo, max=hi, count=count,
        )  # fmt: skip
        per = out.get(rid)
        if per is None:
            out[rid] = {key: m}
        else:
            per[key] = m
    return out


def load_runs(
    conn: Connection, rows: Sequence[Any], *, page: PageContexts | None = None
) -> list[Run]:
    """``Run`` objects for run rows (``runs`` columns plus ``effective_status``), in row order.

    Rows without a ``context`` column get contexts loaded lazily, for the whole ``page`` at once.
    """
    if not rows:
        return []
    ids = [r[0] for r in rows]  # runs.id is the first column
    cur = Cursor(conn)
    try:
        with cur.pipelined():
            extras = cur.execute(_EXTRAS[conn.dialect.name], (_ids_param(cur, ids),))
            summaries = cur.execute(_SUMMARIES[conn.dialect.name], (_ids_param(cur, ids),))
            cur.sync()
            extra_rows = extras.fetchall()
            metrics = _summaries(summaries.fetchall())
    finally:
        cur.close()
    loads = orjson.loads  # params and tags: JSON objects of strings, as json writes them
    aggregated = {
        rid: (
            loads(p) if p else {},
            loads(t) if t else {},
            tuple(
                sorted((RunInput(*i) for i in loads(i_)), key=lambda x: (x.name, x.dataset_sha256))
            )
            if i_ and i_ != "[]"
            else (),
        )
        for rid, p, t, i_ in extra_rows
    }
    pos = {name: i for i, name in enumerate(rows[0]._fields)}
    (i_id, i_pid, i_name, i_status, i_eff, i_start, i_end, i_hb, i_parent, i_user, i_host, i_git,
     i_dirty, i_stage) = (pos[k] for k in (
        "id", "project_id", "name", "status", "effective_status", "start_ms", "end_ms",
        "heartbeat_ms", "parent_run_id", "user", "host", "git_commit", "git_dirty",
        "lifecycle_stage"))  # fmt: skip
    i_ctx = pos.get("context")
    out: list[Run] = []
    for r in rows:
        rid, eff, end = r[i_id], r[i_eff], r[i_end]
        if end is None and eff == "killed" and r[i_status] == "running":
            end = r[i_hb]  # a lapsed run ended, as far as anyone knows, at its last heartbeat
        params, tags, inputs = aggregated.get(rid) or ({}, {}, ())
        m = metrics.get(rid)
        run = _new(Run)
        # Frozen-dataclass __init__ costs ~10 us a run; searches build thousands of runs.
        run.__dict__.update(
            id=rid,
            project_id=str(r[i_pid]),
            name=r[i_name],
            status=eff,
            start_ms=r[i_start],
            end_ms=end,
            heartbeat_ms=r[i_hb],
            parent_run_id=r[i_parent],
            user=r[i_user],
            host=r[i_host],
            git_commit=r[i_git],
            git_dirty=None if r[i_dirty] is None else bool(r[i_dirty]),
            lifecycle_stage=r[i_stage],
            params=params,
            tags=tags,
            metrics=dict(sorted(m.items())) if m else {},
            context=LazyJson(r[i_ctx]) if i_ctx is not None else LazyJson(page=page, run_id=rid),
            inputs=inputs,
        )
        out.append(run)
    return out
