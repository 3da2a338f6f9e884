"""JSON Schema of the wire form of a Python type, as :mod:`mloop.codec` writes and reads it.

The walk mirrors the codec's decoder type by type, so the OpenAPI document says exactly what the
server accepts and answers: non-finite floats are the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``; integers are int64 (what every store keeps); dataclasses and TypedDicts are named
components whose keys are their fields (unknown keys refused); classes with a wire form of their
own (columnar ``MetricSeries``, ``MetricHistory``, ``Page``) have their schema written once, here.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from mloop.codec import INFINITY, NAN, NEG_INFINITY
from mloop.store import MetricHistory, MetricSeries, Page

__all__ = ["INT64_MAX", "INT64_MIN", "SchemaBuilder", "is_scalar"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Schema = dict[str, Any]

FLOAT_SCHEMA: Schema = {
    "description": "A float64; the non-finite values are the strings "
    f"{NAN!r}, {INFINITY!r} and {NEG_INFINITY!r}.",
    "anyOf": [{"type": "number"}, {"type": "string", "enum": [NAN, INFINITY, NEG_INFINITY]}],
}
INT_SCHEMA: Schema = {
    "type": "integer",
    "format": "int64",
    "minimum": INT64_MIN,
    "maximum": INT64_MAX,
}
_SCALARS: dict[Any, Schema] = {
    Any: {},
    object: {},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"$ref": "#/components/schemas/Int64"},
    float: {"$ref": "#/components/schemas/Float"},
    type(None): {"type": "null"},
    None: {"type": "null"},
}


def is_scalar(tp: Any) -> bool:
    """Whether values of ``tp`` are JSON scalars (str, int, float, bool, a Literal, optional)."""
    if tp in (str, int, float, bool):
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return True
    if origin is typing.Union or origin is types.UnionType:
        return all(a is type(None) or is_scalar(a) for a in typing.get_args(tp))
    return False


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


# Classes whose wire form is not their fields: schema(builder, type arguments) -> schema.
_OWN_WIRE_FORM: dict[type, Callable[[SchemaBuilder, tuple[Any, ...]], Schema]] = {
    MetricSeries: lambda b, args: {
        "type": "object",
        "description": "Columnar metric points of one key (int64 steps, int64 ms timestamps, "
        "float64 values), all three of one length.",
        "properties": {
            "steps": _array(b.of(int)),
            "timestamps": _array(b.of(int)),
            "values": _array(b.of(float)),
        },
        "required": ["steps", "timestamps", "values"],
        "additionalProperties": False,
    },
    MetricHistory: lambda b, args: {
        "type": "object",
        "description": "A metric's history ordered by (step, timestamp), as columns; "
        "`downsampled` when max_points reduced it, `total` the full point count.",
        "properties": {
            "key": b.of(str),
            "step": _array(b.of(int)),
            "timestamp": _array(b.of(int)),
            "value": _array(b.of(float)),
            "total": b.of(int),
            "downsampled": b.of(bool),
        },
        "required": ["key", "step", "timestamp", "value", "total"],
        "additionalProperties": False,
    },
    Page: lambda b, args: {
        "type": "object",
        "description": "One page of results; `next_page_token` is null on the last page.",
        "properties": {
            "items": _array(b.of(args[0]) if args else {}),
            "next_page_token": {"type": ["string", "null"]},
        },
        "required": ["items"],
        "additionalProperties": False,
    },
}


class SchemaBuilder:
    """Builds schemas of types, collecting the named ones (dataclasses, TypedDicts) as components.

    ``of(tp)`` is the schema of values of ``tp``; ``components`` what its ``$ref`` s point at.
    A type the codec cannot carry raises :class:`TypeError` naming it, so an endpoint whose
    types have no schema fails when the app is built, not in a client.
    """

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {"Int64": INT_SCHEMA, "Float": FLOAT_SCHEMA}
        self._names: dict[Any, str] = {}

    def of(self, tp: Any) -> Schema:
        if tp in _SCALARS:
            return dict(_SCALARS[tp])
        if tp is dict:
            tp = dict[str, Any]
        elif tp is list:
            tp = list[Any]
        elif tp is tuple:
            tp = tuple[Any, ...]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin is typing.Union or origin is types.UnionType:
            inner = [a for a in args if a is not type(None)]
            if len(inner) != 1:
                raise TypeError(f"the wire codec cannot tell the members of {tp!r} apart.")
            return {"anyOf": [self.of(inner[0]), {"type": "null"}]}
        if origin in (dict, cabc.Mapping, cabc.MutableMapping):
            key, value = args or (str, Any)
            out: Schema = {"type": "object", "additionalProperties": self.of(value)}
            if key is int:
                out["propertyNames"] = {"pattern": "^-?[0-9]+$"}
            elif key not in (str, Any):
                raise TypeError(f"the wire codec reads dict keys of type str or int; got {key!r}.")
            return out
        if origin in (list, cabc.Sequence, cabc.MutableSequence):
            return _array(self.of(args[0]) if args else {})
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return _array(self.of(args[0]))
            return {
                "type": "array",
                "prefixItems": [self.of(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        cls = origin if isinstance(origin, type) else tp
        if cls in _OWN_WIRE_FORM:
            return self._named(tp, cls.__name__, lambda: _OWN_WIRE_FORM[cls](self, args))
        if isinstance(tp, type) and typing.is_typeddict(tp):
            return self._named(tp, tp.__name__, lambda: self._typeddict(tp))
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self._named(tp, tp.__name__, lambda: self._dataclass(tp))
        raise TypeError(
            f"no JSON schema for {tp!r}: the API carries str, int, float, bool, None, Literal, "
            "Optional, list, tuple, dict, dataclasses and TypedDicts; a class with a wire form of "
            "its own needs its schema in mloop.server._schema._OWN_WIRE_FORM."
        )

    def _named(self, tp: Any, base: str, build: Callable[[], Schema]) -> Schema:
        name = self._names.get(tp)
        if name is None:
            name = base
            args = typing.get_args(tp)
            if args:
                name += "Of" + "".join(getattr(a, "__name__", "Any") for a in args)
            n = 2
            while name in self.components:
                name, n = f"{base}{n}", n + 1
            self._names[tp] = name
            self.components[name] = {}  # reserved: a recursive type refers to itself
            self.components[name] = build()
        return {"$ref": f"#/components/schemas/{name}"}

    def _dataclass(self, cls: type) -> Schema:
        if _has_own_wire_form(cls):
            raise TypeError(
                f"no JSON schema for {cls.__name__}: its wire form is not its fields (it defines "
                "_wire_ or its own to_dict); write it in mloop.server._schema._OWN_WIRE_FORM."
            )
        hints = typing.get_type_hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.init]
        schema: Schema = {
            "type": "object",
            "properties": {f.name: self.of(hints[f.name]) for f in fields},
            "required": [
                f.name
                for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ],
            "additionalProperties": False,
        }
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        if doc:
            schema["description"] = " ".join(doc.split())
        return schema

    def _typeddict(self, tp: Any) -> Schema:
        hints = typing.get_type_hints(tp)
        return {
            "type": "object",
            "properties": {k: self.of(v) for k, v in hints.items()},
            "required": sorted(getattr(tp, "__required_keys__", hints)),
            "additionalProperties": False,
        }


def _has_own_wire_form(cls: type) -> bool:
    if callable(getattr(cls, "_wire_", None)):
        return True
    # a WireEntity's to_dict is its fields; another to_dict writes a form of its own
    return getattr(cls, "to_dict", None) is not None and not getattr(cls, "_wire_fields_", False)


def fields_of(tp: Any) -> Mapping[str, Any] | None:
    """The declared keys of a dataclass or TypedDict's wire form and their types (else None)."""
    if isinstance(tp, type) and typing.is_typeddict(tp):
        return typing.get_type_hints(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and not _has_own_wire_form(tp):
        hints = typing.get_type_hints(tp)
        return {f.name: hints[f.name] for f in dataclasses.fields(tp) if f.init}
    return None


def _resolve(schema: Schema, components: Mapping[str, Schema]) -> Schema:
    ref = schema.get("$ref")
    while ref is not None:
        schema = components[ref.rsplit("/", 1)[1]]
        ref = schema.get("$ref")
    return schema


_LEAF_TYPES = frozenset({"string", "integer", "number", "boolean", "null"})


def _is_leaf(schema: Schema, components: Mapping[str, Schema]) -> bool:
    schema = _resolve(schema, components)
    if not schema:
        return True  # Any: free-form, nothing to check inside
    if "enum" in schema:
        return True
    kinds = schema.get("type")
    if isinstance(kinds, str):
        return kinds in _LEAF_TYPES
    if isinstance(kinds, list):
        return set(kinds) <= _LEAF_TYPES
    alternatives = schema.get("anyOf") or []
    return bool(alternatives) and all(_is_leaf(s, components) for s in alternatives)


def violation(
    schema: Schema, value: Any, components: Mapping[str, Schema], where: str
) -> str | None:
    """What the codec lets through but the schema forbids, as a message (None when nothing):
    keys an object does not declare (the codec ignores them when it reads stored data, but in a
    request a misspelt field must not be dropped silently) and integers outside int64. Arrays of
    scalars are not walked: a metric series' columns are checked by the codec as int64 arrays."""
    schema = _resolve(schema, components)
    if type(value) is int:
        if "anyOf" in schema:
            return _alternative(schema, value, components, where)
        if schema.get("format") == "int64" and not INT64_MIN <= value <= INT64_MAX:
            return f"`{where}` must be an integer in [{INT64_MIN}, {INT64_MAX}]; got {value}."
        return None
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            if schema.get("additionalProperties") is False:
                extra = [k for k in value if k not in props]
                if extra:
                    return f"`{where}` has unknown key(s) {sorted(map(str, extra))}; its keys are {list(props)}."
            for k, v in value.items():
                if k in props and (isinstance(v, (dict, list)) or type(v) is int):
                    found = violation(props[k], v, components, f"{where}.{k}")
                    if found:
                        return found
            return None
        inner = schema.get("additionalProperties")
        if isinstance(inner, dict) and inner:
            for k, v in value.items():
                if isinstance(v, (dict, list)) or type(v) is int:
                    found = violation(inner, v, components, f"{where}[{k!r}]")
                    if found:
                        return found
        return _alternative(schema, value, components, where)
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict) and not _is_leaf(items, components):
            for i, v in enumerate(value):
                if isinstance(v, (dict, list)):
                    found = violation(items, v, components, f"{where}[{i}]")
                    if found:
                        return found
        for i, (s, v) in enumerate(zip(schema.get("prefixItems", ()), value, strict=False)):
            found = violation(s, v, components, f"{where}[{i}]")
            if found:
                return found
        return _alternative(schema, value, components, where)
    return None


def _alternative(
    schema: Schema, value: Any, components: Mapping[str, Schema], where: str
) -> str | None:
    # ``Optional[X]`` is ``anyOf: [X, null]``: a value that is not null is an X.
    for s in schema.get("anyOf", ()):
        if s.get("type") != "null":
            return violation(s, value, components, where)
    return None
