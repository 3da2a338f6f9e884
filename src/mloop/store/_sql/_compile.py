"""One compiler from the filter AST (``mloop.store._filter``) to SQLAlchemy Core, for every entity.

An entity (runs, registered models, model versions) describes itself once as a :class:`FieldMap`:
which attribute names map to which column expressions, and which of metrics / params / tags it has
as key-value tables correlated with its rows. The compiler turns comparisons and order keys into
clauses over that map, so every entity shares one meaning of each operator:

- numbers take ``=, !=, >, >=, <, <=``; strings take ``=, !=, LIKE, ILIKE, IN, NOT IN``;
- ``LIKE`` is case-sensitive and ``ILIKE`` is not, on every backend; in both, ``%`` and ``_`` are
  wildcards and a backslash escapes them (``'50\\%'`` matches ``50%``). PostgreSQL escapes with a
  backslash by default and SQLite has no default escape character, so the escape is explicit;
- a row that lacks the metric, param or tag compared never matches, not even ``!=`` or ``NOT IN``
  (as in MLflow), and neither does a NULL attribute;
- ordering puts missing values (and NaN metrics, stored as NULL) last in both directions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from mloop.errors import InvalidInputError
from mloop.store._filter import Comparison, Entity, OrderKey

__all__ = [
    "ESCAPE",
    "OPERATORS",
    "Attribute",
    "FieldMap",
    "KeyValues",
    "compile_comparison",
    "compile_filter",
    "compile_order",
    "search_query",
]

Kind = Literal["string", "number"]

OPERATORS: dict[str, tuple[str, ...]] = {
    "string": ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"),
    "number": ("=", "!=", ">", ">=", "<", "<="),
}
ESCAPE = "\\"  # the LIKE escape character on every backend


@dataclass(frozen=True)
class Attribute:
    """An attribute of the searched rows: a column (or expression) and the kind of its values."""

    column: ColumnElement[Any]
    kind: Kind


@dataclass(frozen=True)
class KeyValues:
    """A ``(key, value)`` table of the searched rows: their metrics, params or tags.

    ``owner(table)`` is the condition that a row of ``table`` (or of an alias of it) belongs to the
    outer row, e.g. ``table.c.run_id == runs.c.id``.
    """

    table: sa.Table
    kind: Kind
    owner: Callable[[FromClause], ColumnElement[bool]]


@dataclass(frozen=True)
class FieldMap:
    """What a filter may name on one entity (``what``, plural, names it in error messages)."""

    what: str
    attributes: Mapping[str, Attribute]
    keyed: Mapping[Entity, KeyValues]

    def check(self, entity: Entity, key: str, op: str | None = None) -> Kind:
        """The kind of the field ``entity.key``; an error if this entity has no such field or ``op``
        does not apply to it."""
        if entity == "attribute":
            if key not in self.attributes:
                raise InvalidInputError(
                    f"{self.what} have no attribute {key!r}; expected one of "
                    f"{', '.join(self.attributes)}."
                )
            kind = self.attributes[key].kind
            name = key
        else:
            if entity not in self.keyed:
                raise InvalidInputError(
                    f"{self.what} cannot be filtered or ordered on {entity}s; got {entity}s.{key}. "
                    f"Use {', '.join(_prefixes(self))}."
                )
            kind = self.keyed[entity].kind
            name = f"{entity}s.{key}"
        if op is not None and op not in OPERATORS[kind]:
            raise InvalidInputError(
                f"operator {op} does not apply to {name} ({kind}s take "
                f"{', '.join(OPERATORS[kind])}); got {op}."
            )
        return kind


def _prefixes(fields: FieldMap) -> list[str]:
    return ["attributes", *(f"{e}s" for e in fields.keyed)]


def _check_pattern(pattern: str) -> str:
    """A LIKE pattern must not end in a lone escape: PostgreSQL refuses it, SQLite matches nothing."""
    trailing = len(pattern) - len(pattern.rstrip(ESCAPE))
    if trailing % 2:
        raise InvalidInputError(
            f"a LIKE pattern must not end with an unescaped backslash; got {pattern!r}. "
            "A backslash escapes %, _ or a backslash: write two for a literal one."
        )
    return pattern


def _string_cmp(col: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    if op in ("IN", "NOT IN"):
        if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
            raise InvalidInputError(f"{op} takes a list of strings; got {value!r}.")
        return col.in_(list(value)) if op == "IN" else col.not_in(list(value))
    if not isinstance(value, str):
        raise InvalidInputError(f"{op} takes a string; got {value!r}.")
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    pattern = _check_pattern(value)
    if op == "LIKE":
        return col.like(pattern, escape=ESCAPE)
    # lower() on both sides rather than PostgreSQL's ILIKE: the same meaning on SQLite
    return sa.func.lower(col).like(sa.func.lower(sa.literal(pattern)), escape=ESCAPE)


def _number_cmp(col: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{op} on a number takes a number; got {value!r}.")
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == ">":
        return col > value
    if op == ">=":
        return col >= value
    if op == "<":
        return col < value
    return col <= value  # "<=": check() admitted only the operators of OPERATORS


def _compare(col: ColumnElement[Any], kind: Kind, op: str, value: Any) -> ColumnElement[bool]:
    return _number_cmp(col, op, value) if kind == "number" else _string_cmp(col, op, value)


def compile_comparison(c: Comparison, fields: FieldMap) -> ColumnElement[bool]:
    """The WHERE condition of one comparison on the entity described by ``fields``."""
    kind = fields.check(c.entity, c.key, c.op)
    if c.entity == "attribute":
        return _compare(fields.attributes[c.key].column, kind, c.op, c.value)
    kv = fields.keyed[c.entity]
    t = kv.table
    return sa.exists().where(
        kv.owner(t), t.c.key == c.key, _compare(t.c.value, kind, c.op, c.value)
    )


def compile_filter(ast: Sequence[Comparison], fields: FieldMap) -> list[ColumnElement[bool]]:
    """The WHERE conditions (all must hold) of a parsed filter."""
    return [compile_comparison(c, fields) for c in ast]


def compile_order(
    query: sa.Select[Any], order: Sequence[OrderKey], fields: FieldMap
) -> tuple[sa.Select[Any], list[Any]]:
    """``query`` joined to what ``order`` sorts on, and the ORDER BY terms (missing values last)."""
    terms: list[Any] = []
    for i, o in enumerate(order):
        fields.check(o.entity, o.key)
        if o.entity == "attribute":
            col: ColumnElement[Any] = fields.attributes[o.key].column
        else:
            kv = fields.keyed[o.entity]
            alias = kv.table.alias(f"o{i}")
            query = query.outerjoin(alias, sa.and_(kv.owner(alias), alias.c.key == o.key))
            col = alias.c.value
        terms.append(sa.case((col.is_(None), 1), else_=0))
        terms.append(col.asc() if o.ascending else col.desc())
    return query, terms


def search_query(
    query: sa.Select[Any],
    fields: FieldMap,
    ast: Sequence[Comparison],
    order: Sequence[OrderKey],
    *,
    tiebreak: Sequence[Any],
    limit: int,
    offset: int,
) -> sa.Select[Any]:
    """``query`` filtered by ``ast``, sorted by ``order`` then ``tiebreak``, one page (+1 row, which
    tells whether there is a next page)."""
    query = query.where(*compile_filter(ast, fields))
    query, terms = compile_order(query, order, fields)
    return query.order_by(*terms, *tiebreak).limit(limit + 1).offset(offset)
