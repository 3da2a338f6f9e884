"""MLflow's run-search filter language, parsed once into an AST shared by every backend.

Grammar (MLflow's)::

    filter     := comparison ( AND comparison )*
    comparison := identifier op value
    identifier := ( "metrics" | "params" | "tags" | "attributes" | "attribute" | "attr" | "run" )
                  "." key  |  attribute-name
    key        := name-chars | `backquoted` | "double" | 'single'
    op         := = | != | > | >= | < | <= | LIKE | ILIKE | IN | NOT IN
    value      := number | 'string' | "string" | ( value, ... )

Metrics compare with numbers; params, tags and string attributes (``run_id``, ``run_name``, ``status``,
``user``) with strings (``=``, ``!=``, ``LIKE``, ``ILIKE``, ``IN``, ``NOT IN``); ``start_time`` and
``end_time`` are numbers (ms). Keywords are case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mloop.errors import InvalidInputError
from mloop.store._validation import validate_text

__all__ = ["Comparison", "OrderKey", "parse_filter", "parse_order_by"]

Entity = Literal["metric", "param", "tag", "attribute"]  # pragma: no mutate - only a type

_ATTR_ALIASES = {"id": "run_id", "name": "run_name", "user_id": "user", "created": "start_time"}
_PREFIXES: dict[str, Entity] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_DIGITS = re.compile("[0-9]+")
_IDENTIFIER = "an identifier such as metrics.acc, params.lr, tags.team or status"
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=")
_OPS = {"string": _STRING_OPS, "number": _NUMBER_OPS}  # by kind of value


@dataclass(frozen=True)
class Comparison:
    """``entity.key op value``; ``value`` is a float, a str, or a tuple of str for IN / NOT IN."""

    entity: Entity
    key: str
    op: str
    value: float | str | tuple[str, ...]


@dataclass(frozen=True)
class OrderKey:
    entity: Entity
    key: str
    ascending: bool


@dataclass(frozen=True)  # pragma: no mutate - never hashed nor assigned: frozen or not
class _Tok:
    kind: str
    text: str
    pos: int


def _error(text: str, pos: int, expected: str, got: str, *, what: str) -> InvalidInputError:
    return InvalidInputError(
        f"invalid {what} at position {pos}: expected {expected}; got {got!r}. "
        f"{what.capitalize()}: {text!r}",
        details={"position": pos, "expected": expected},
    )


def _tokenize(text: str, what: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    simple = re.compile(
        r"""(?P<ws>\s+)
          | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
          | (?P<backquoted>`[^`]*`)
          | (?P<op>!=|>=|<=|=|>|<)
          | (?P<lparen>\() | (?P<rparen>\)) | (?P<comma>,) | (?P<dot>(?<=\w)\.|\.(?![0-9]))
          | (?P<number>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_]))
          | (?P<word>[A-Za-z_0-9][\w:\-/]*)
        """,
        re.VERBOSE,
    )
    while pos < len(text):
        m = simple.match(text, pos)
        if m is None:
            char = text[pos]
            if char in ("'", '"', "`"):
                expected = f"a closing {char} for the quote opened here"
                raise _error(text, pos, expected, text[pos:], what=what)
            raise _error(text, pos, "a name, a value or an operator", char, what=what)
        kind = m.lastgroup or ""  # pragma: no mutate - every alternative is a named group
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return toks


def _unquote(tok: _Tok) -> str:
    s = tok.text[1:-1]
    if tok.kind == "string":
        q = tok.text[0]
        s = s.replace("\\" + q, q).replace("\\\\", "\\")
    return s


def _is_key_part(tok: _Tok) -> bool:
    """A name, or a run of digits (``layer.0``: the tokenizer reads those as numbers)."""
    return tok.kind == "word" or (tok.kind == "number" and _DIGITS.fullmatch(tok.text) is not None)


RUN_ATTRIBUTES: dict[str, str] = {
    "run_id": "string",
    "run_name": "string",
    "status": "string",
    "user": "string",
    "start_time": "number",
    "end_time": "number",
}
MODEL_ATTRIBUTES: dict[str, str] = {"name": "string", "created": "number", "updated": "number"}
VERSION_ATTRIBUTES: dict[str, str] = {
    "name": "string",
    "version": "number",
    "run_id": "string",
    "flavor": "string",
    "created": "number",
}


class _Parser:
    def __init__(self, text: str, attributes: dict[str, str] | None, *, what: str) -> None:
        self.text = text
        self.what = what
        self.toks = _tokenize(text, what)
        self.i = 0
        self.attributes = RUN_ATTRIBUTES if attributes is None else attributes

    def error(self, pos: int, expected: str, got: str) -> InvalidInputError:
        return _error(self.text, pos, expected, got, what=self.what)

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self, expected: str) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error(len(self.text), expected, f"end of {self.what}")
        self.i += 1
        return tok

    def parse_identifier(self) -> tuple[Entity, str]:
        tok = self.next(_IDENTIFIER)
        if tok.kind != "word":
            raise self.error(tok.pos, _IDENTIFIER, tok.text)
        nxt = self.peek()
        if nxt is None or nxt.kind != "dot":
            return "attribute", self._attribute(tok.text, tok.pos)
        self.i += 1
        prefix = tok.text.lower()
        if prefix not in _PREFIXES:
            raise self.error(tok.pos, "metrics., params., tags. or attributes.", tok.text + ".")
        key_tok = self.next(f"a key after '{tok.text}.'")
        if key_tok.kind in ("backquoted", "string"):
            key = _unquote(key_tok)
            if not key:
                raise self.error(key_tok.pos, f"a non-empty key after '{tok.text}.'", key_tok.text)
        elif _is_key_part(key_tok):
            key = key_tok.text
            # keys may contain dots (metrics.val.acc, metrics.layer.0.norm)
            while (dot := self.peek()) is not None and dot.kind == "dot":
                self.i += 1
                part = self.next(f"the rest of the key after '{key}.'")
                if not _is_key_part(part):
                    raise self.error(part.pos, f"the rest of the key after '{key}.'", part.text)
                key += "." + part.text
        else:
            raise self.error(key_tok.pos, f"a key after '{tok.text}.'", key_tok.text)
        entity = _PREFIXES[prefix]
        if entity == "attribute":
            key = self._attribute(key, key_tok.pos)
        return entity, key

    def _attribute(self, name: str, pos: int) -> str:
        low = name.lower()
        if low not in self.attributes:
            low = _ATTR_ALIASES.get(low, low)
        if low in self.attributes:
            return low
        raise self.error(pos, "an attribute (" + ", ".join(self.attributes) + ")", name)

    def parse_op(self) -> tuple[str, int]:
        """The operator and where it starts (the position errors about it name)."""
        tok = self.next("a comparison operator")
        if tok.kind == "op":
            return tok.text, tok.pos
        if tok.kind == "word":
            up = tok.text.upper()
            if up in ("LIKE", "ILIKE", "IN"):
                return up, tok.pos
            if up == "NOT":
                nxt = self.next("IN after NOT")
                if nxt.kind == "word" and nxt.text.upper() == "IN":
                    return "NOT IN", tok.pos
                raise self.error(nxt.pos, "IN after NOT", nxt.text)
        raise self.error(
            tok.pos,
            "a comparison operator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN)",
            tok.text,
        )

    def parse_value(
        self, entity: Entity, key: str, op: str, pos: int
    ) -> float | str | tuple[str, ...]:
        if entity == "attribute":
            kind = self.attributes[key]
        else:
            kind = "number" if entity == "metric" else "string"
        allowed = _OPS[kind]
        if op not in allowed:
            name = f"{entity}s.{key}" if entity != "attribute" else key
            raise self.error(pos, f"an operator valid for {name} ({', '.join(allowed)})", op)
        # statuses are stored lower-case; MLflow users write them upper-case
        fold = str.lower if entity == "attribute" and key == "status" else str
        if op in ("IN", "NOT IN"):
            lp = self.next("'(' starting a list of strings")
            if lp.kind != "lparen":
                raise self.error(lp.pos, "'(' starting a list of strings", lp.text)
            items: list[str] = []
            while True:
                tok = self.next("a quoted string")
                if tok.kind != "string":
                    raise self.error(tok.pos, "a quoted string", tok.text)
                items.append(fold(_unquote(tok)))
                sep = self.next("',' or ')'")
                if sep.kind == "rparen":
                    break
                if sep.kind != "comma":
                    raise self.error(sep.pos, "',' or ')'", sep.text)
            return tuple(items)
        tok = self.next("a value")
        if kind == "number":
            if tok.kind != "number":
                raise self.error(tok.pos, "a number", tok.text)
            return float(tok.text)
        if tok.kind != "string":
            raise self.error(tok.pos, "a quoted string", tok.text)
        return fold(_unquote(tok))

    def parse(self) -> list[Comparison]:
        out: list[Comparison] = []
        if not self.toks:
            return out
        while True:
            entity, key = self.parse_identifier()
            op, op_pos = self.parse_op()
            value = self.parse_value(entity, key, op, op_pos)
            out.append(Comparison(entity, key, op, value))
            tok = self.peek()
            if tok is None:
                return out
            if tok.kind == "word" and tok.text.upper() == "AND":
                self.i += 1
                continue
            if tok.kind == "word" and tok.text.upper() == "OR":
                raise self.error(tok.pos, "AND (OR is not supported, as in MLflow)", tok.text)
            raise self.error(tok.pos, "AND or the end of the filter", tok.text)


def parse_filter(text: str, *, attributes: dict[str, str] | None = None) -> list[Comparison]:
    """Parse a filter string into a conjunction of comparisons (empty string -> []).

    ``attributes`` maps the entity's attribute names to ``"string"`` or ``"number"`` (default: run
    attributes; :data:`MODEL_ATTRIBUTES` and :data:`VERSION_ATTRIBUTES` serve the registry).
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"`filter` must be a str; got {type(text).__name__}.")
    validate_text(text, what="`filter`")  # no backend can compare with NUL or a lone surrogate
    return _Parser(text, attributes, what="filter").parse()


def parse_order_by(
    clauses: Sequence[str], *, attributes: dict[str, str] | None = None
) -> list[OrderKey]:
    """Parse ``["metrics.acc DESC", "start_time"]`` style clauses (default ascending)."""
    if isinstance(clauses, str):
        clauses = [clauses]
    out: list[OrderKey] = []
    for clause in clauses:
        if not isinstance(clause, str):
            raise InvalidInputError(f"`order_by` items must be str; got {type(clause).__name__}.")
        validate_text(clause, what="an `order_by` clause")
        p = _Parser(clause, attributes, what="order_by clause")
        entity, key = p.parse_identifier()
        ascending = True
        tok = p.peek()
        if tok is not None:
            # only a name spells ASC or DESC: a quoted token's text keeps its quotes
            direction = tok.text.upper()
            if direction not in ("ASC", "DESC"):
                raise p.error(tok.pos, "ASC, DESC or the end of the clause", tok.text)
            ascending = direction == "ASC"
            p.i += 1
            if (extra := p.peek()) is not None:
                raise p.error(extra.pos, "the end of the clause", extra.text)
        out.append(OrderKey(entity, key, ascending))
    return out
