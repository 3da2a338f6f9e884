"""Compile the filter AST (``mloop.store._filter``) to one SQL query, identical on every backend."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from mloop.store._filter import Comparison, OrderKey
from mloop.store._sql import _schema as t

# A run's effective status: ``running`` with a heartbeat older than the cutoff reads ``killed``.
# Built once; the cutoff is bound per query (parameter ``cutoff_ms``).
STATUS = sa.case(
    (
        sa.and_(
            t.runs.c.status == "running",
            sa.func.coalesce(t.runs.c.heartbeat_ms, t.runs.c.start_ms)
            < sa.bindparam("cutoff_ms", type_=sa.BigInteger),
        ),
        sa.literal("killed"),
    ),
    else_=t.runs.c.status,
)


def _string_cmp(col: ColumnElement[Any], op: str, value: Any) -> ColumnElement[Any]:
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == "LIKE":
        return col.like(value)
    if op == "ILIKE":
        return sa.func.lower(col).like(sa.func.lower(sa.literal(value)))
    if op == "IN":
        return col.in_(list(value))
    if op == "NOT IN":
        return col.not_in(list(value))
    raise AssertionError(op)  # the parser only produces the operators above


def _number_cmp(col: ColumnElement[Any], op: str, value: float) -> ColumnElement[Any]:
    return {
        "=": col == value,
        "!=": col != value,
        ">": col > value,
        ">=": col >= value,
        "<": col < value,
        "<=": col <= value,
    }[op]


_ATTR_COLUMNS = {
    "run_id": "id",
    "run_name": "name",
    "user": "user",
    "start_time": "start_ms",
    "end_time": "end_ms",
}


def _attr_col(key: str, status: ColumnElement[Any]) -> ColumnElement[Any]:
    if key == "status":
        return status
    return t.runs.c[_ATTR_COLUMNS[key]]


def where_clause(c: Comparison, status: ColumnElement[Any]) -> ColumnElement[Any]:
    r = t.runs
    if c.entity == "attribute":
        col = _attr_col(c.key, status)
        if isinstance(c.value, float):
            return _number_cmp(col, c.op, c.value)
        return _string_cmp(col, c.op, c.value)
    if c.entity == "metric":
        ms = t.metric_summary
        assert isinstance(c.value, float)
        return sa.exists().where(
            ms.c.run_id == r.c.id, ms.c.key == c.key, _number_cmp(ms.c.value, c.op, c.value)
        )
    table = t.params if c.entity == "param" else t.tags
    cond = sa.exists().where(
        table.c.run_id == r.c.id, table.c.key == c.key, _string_cmp(table.c.value, c.op, c.value)
    )
    return cond


def build_query(
    project_ids: list[int],
    ast: list[Comparison],
    order: list[OrderKey],
    *,
    include_deleted: bool,
    limit: int,
    offset: int,
) -> sa.Select[Any]:
    """The search query; execute it with ``{"cutoff_ms": ...}`` (see :data:`STATUS`)."""
    r = t.runs
    status = STATUS
    # The captured context (~3 KB a run) is left out: results load it lazily, a page at a time.
    columns = [c for c in r.c if c.name != "context"]
    q = sa.select(*columns, status.label("effective_status")).where(r.c.project_id.in_(project_ids))
    if not include_deleted:
        q = q.where(r.c.lifecycle_stage == "active")
    for c in ast:
        q = q.where(where_clause(c, status))
    order_cols: list[Any] = []
    for i, o in enumerate(order):
        if o.entity == "attribute":
            col = _attr_col(o.key, status)
        else:
            table = {"metric": t.metric_summary, "param": t.params, "tag": t.tags}[o.entity]
            alias = table.alias(f"o{i}")
            q = q.outerjoin(alias, sa.and_(alias.c.run_id == r.c.id, alias.c.key == o.key))
            col = alias.c.value
        # Missing values (and NaN metrics, stored as NULL) sort last in both directions, as in MLflow.
        order_cols.append(sa.case((col.is_(None), 1), else_=0))
        order_cols.append(col.asc() if o.ascending else col.desc())
    if not any(o.entity == "attribute" and o.key == "start_time" for o in order):
        order_cols.append(r.c.start_ms.desc())
    order_cols.append(r.c.id.asc())
    return q.order_by(*order_cols).limit(limit + 1).offset(offset)
