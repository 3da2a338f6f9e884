"""The searchable entities (runs, registered models, model versions) as field maps, and their search
queries; the filter AST is compiled by ``_compile``, identically on every backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from mloop.store._filter import (
    MODEL_ATTRIBUTES,
    RUN_ATTRIBUTES,
    VERSION_ATTRIBUTES,
    Comparison,
    OrderKey,
)
from mloop.store._sql import _schema as t
from mloop.store._sql._compile import (
    Attribute,
    FieldMap,
    KeyValues,
    Kind,
    compile_filter,
    search_query,
)

__all__ = [
    "END",
    "MODELS",
    "RUNS",
    "STATUS",
    "VERSIONS",
    "build_query",
    "ids_query",
    "models_query",
    "versions_query",
]

_r = t.runs
# A run is lapsed when it reads ``running`` but its last heartbeat is older than the cutoff.
# Built once; the cutoff is bound per query (parameter ``cutoff_ms``).
_LAPSED = sa.and_(
    _r.c.status == "running",
    sa.func.coalesce(_r.c.heartbeat_ms, _r.c.start_ms)
    < sa.bindparam("cutoff_ms", type_=sa.BigInteger),
)
# A run's effective status: a lapsed run reads ``killed``.
STATUS = sa.case((_LAPSED, sa.literal("killed")), else_=_r.c.status)
# A run's effective end: a lapsed run without an end time ended, as far as anyone knows, at its
# last heartbeat (what ``load_runs`` shows), so ``end_time`` filters and sorts it by that time.
END = sa.case((sa.and_(_LAPSED, _r.c.end_ms.is_(None)), _r.c.heartbeat_ms), else_=_r.c.end_ms)


def _attributes(
    kinds: Mapping[str, str], columns: Mapping[str, ColumnElement[Any]]
) -> dict[str, Attribute]:
    """The parser's attribute names and kinds, each with its column: one list, checked here."""
    if set(kinds) != set(columns):
        raise AssertionError(f"attribute columns {sorted(columns)} != parser's {sorted(kinds)}")
    return {name: Attribute(columns[name], cast(Kind, kind)) for name, kind in kinds.items()}


RUNS = FieldMap(
    "runs",
    _attributes(
        RUN_ATTRIBUTES,
        {
            "run_id": _r.c.id,
            "run_name": _r.c.name,
            "status": STATUS,
            "user": _r.c.user,
            "start_time": _r.c.start_ms,
            "end_time": END,
        },
    ),
    {
        "metric": KeyValues(t.metric_summary, "number", lambda a: a.c.run_id == _r.c.id),
        "param": KeyValues(t.params, "string", lambda a: a.c.run_id == _r.c.id),
        "tag": KeyValues(t.tags, "string", lambda a: a.c.run_id == _r.c.id),
    },
)

_rm = t.registered_models
MODELS = FieldMap(
    "registered models",
    _attributes(
        MODEL_ATTRIBUTES,
        {"name": _rm.c.name, "created": _rm.c.created_ms, "updated": _rm.c.updated_ms},
    ),
    {"tag": KeyValues(t.registered_model_tags, "string", lambda a: a.c.name == _rm.c.name)},
)

_mv = t.model_versions


def _of_version(a: Any) -> ColumnElement[bool]:
    return sa.and_(a.c.name == _mv.c.name, a.c.version == _mv.c.version)


VERSIONS = FieldMap(
    "model versions",
    _attributes(
        VERSION_ATTRIBUTES,
        {
            "name": _mv.c.name,
            "version": _mv.c.version,
            "run_id": _mv.c.source_run_id,
            "flavor": _mv.c.flavor,
            "created": _mv.c.created_ms,
        },
    ),
    {
        "metric": KeyValues(t.model_version_metrics, "number", _of_version),
        "tag": KeyValues(t.model_version_tags, "string", _of_version),
    },
)


def build_query(
    project_ids: list[int],
    ast: list[Comparison],
    order: list[OrderKey],
    *,
    include_deleted: bool,
    limit: int,
    offset: int,
) -> sa.Select[Any]:
    """The run search; execute it with ``{"cutoff_ms": ...}`` (see :data:`STATUS`)."""
    # The captured context (~3 KB a run) is left out: results load it lazily, a page at a time.
    columns = [c for c in _r.c if c.name != "context"]
    q = sa.select(*columns, STATUS.label("effective_status")).where(
        _r.c.project_id.in_(project_ids)
    )
    if not include_deleted:
        q = q.where(_r.c.lifecycle_stage == "active")
    tiebreak: list[Any] = []
    if not any(o.entity == "attribute" and o.key == "start_time" for o in order):
        tiebreak.append(_r.c.start_ms.desc())  # newest first by default
    tiebreak.append(_r.c.id.asc())
    return search_query(q, RUNS, ast, order, tiebreak=tiebreak, limit=limit, offset=offset)


def ids_query(
    project_ids: list[int], ast: list[Comparison], *, include_deleted: bool, limit: int
) -> sa.Select[Any]:
    """The ids of the runs :func:`build_query` finds (same filter, default order), nothing else:
    execute it with ``{"cutoff_ms": ...}`` too (a ``status`` filter uses it)."""
    q = sa.select(_r.c.id).where(_r.c.project_id.in_(project_ids))
    if not include_deleted:
        q = q.where(_r.c.lifecycle_stage == "active")
    q = q.where(*compile_filter(ast, RUNS))
    return q.order_by(_r.c.start_ms.desc(), _r.c.id.asc()).limit(limit)


def models_query(
    ast: list[Comparison], order: list[OrderKey], *, limit: int, offset: int
) -> sa.Select[Any]:
    """The registered-model search, by name after ``order``."""
    return search_query(
        sa.select(_rm), MODELS, ast, order, tiebreak=[_rm.c.name], limit=limit, offset=offset
    )


def versions_query(
    ast: list[Comparison],
    order: list[OrderKey],
    *,
    include_deleted: bool,
    limit: int,
    offset: int,
) -> sa.Select[Any]:
    """The model-version search, by name then newest version after ``order``."""
    q = sa.select(_mv)
    if not include_deleted:
        q = q.where(_mv.c.deleted == sa.false())
    tiebreak = [_mv.c.name, _mv.c.version.desc()]
    return search_query(q, VERSIONS, ast, order, tiebreak=tiebreak, limit=limit, offset=offset)
