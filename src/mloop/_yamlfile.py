"""YAML files checked by a pydantic model, every mistake named with its key and its line.

The gate policy (``mloop.yaml``) and the agent file read this way::

    mloop.yaml, line 7: `non_regression.level` must be a number in (0, 0.5); got 'often'.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["explain", "load_with_lines", "read_text"]

Lines = dict[tuple[Any, ...], int]


def read_text(path: str | os.PathLike[str], *, what: str, error: type[Exception]) -> str:
    """The text of ``path``; ``error`` says when it is missing or unreadable (``what``: "policy
    file", "agent file")."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {str(p)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{what} {str(p)!r} cannot be read: {exc}.") from None


def load_with_lines(
    text: str, *, source: str, error: type[Exception]
) -> tuple[Any, Lines, int] | None:
    """Plain Python from YAML ``text``, the line of every key path in it, and the line the
    document starts on; None for an empty document. Bad YAML raises ``error`` with its line.

    A key YAML 1.1 reads as a boolean (``on:``, ``yes:``) keeps its word; a key that is not a
    plain scalar is refused.
    """
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        # an unclosed bracket is found at the end of the file: point at where it was opened
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        said = f"{context}: {problem}" if context else problem
        raise error(f"{source}{where}: not valid YAML ({said}).") from None
    if node is None:
        return None
    lines: Lines = {}
    data = _construct(yaml.SafeLoader(""), node, (), lines, error)
    return data, lines, node.start_mark.line + 1


def _construct(
    loader: Any, node: Any, path: tuple[Any, ...], lines: Lines, error: type[Exception]
) -> Any:
    import yaml

    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, bool):  # YAML 1.1 reads `on:` as True: keep the word
                key = key_node.value
            if not isinstance(key, (str, int, float)):
                raise error(
                    f"line {key_node.start_mark.line + 1}: a key must be a plain word; "
                    f"got {type(key).__name__}."
                )
            out[key] = _construct(loader, value_node, (*path, key), lines, error)
            lines[(*path, key)] = key_node.start_mark.line + 1  # a key's own line, not its value's
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, v, (*path, i), lines, error) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def explain(exc: ValidationError, lines: Lines, source: str, model: type[BaseModel]) -> str:
    """One line per problem: ``<source>, line <n>: `<dotted.key>` <what is wrong>``."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        # pydantic adds the validator or union member as a trailing str; keep what is a key
        keys = _file_path(loc, lines, model)
        line = lines.get(keys, lines.get((), 1))
        if err["type"] == "missing" and loc and not isinstance(loc[-1], int):
            keys = (*keys, _alias(_model_at(model, keys), loc[-1]))
        dotted = ".".join(str(k) for k in keys) or "(top level)"
        problems.append(f"{source}, line {line}: `{dotted}` {_message(err, loc, model)}")
    return "\n".join(problems)


def _file_path(loc: tuple[Any, ...], lines: Lines, model: type[BaseModel]) -> tuple[Any, ...]:
    """The longest prefix of ``loc`` that is a path in the file (field names mapped to aliases)."""
    keys: tuple[Any, ...] = ()
    for part in loc:
        named = _alias(_model_at(model, keys), part)
        if (*keys, named) in lines:
            keys = (*keys, named)
        elif not keys and named in _keys_of(model):
            keys = (named,)  # a missing top-level section named by the error
    return keys


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the section at ``loc`` (list positions skipped), or None past the models."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = _field(current, part)
        if field is None:  # a union member's tag, or a key past the models: stop here
            return current
        current = _inner_model(field.annotation)
    return current


def _field(model: type[BaseModel], key: Any) -> Any:
    for name, f in model.model_fields.items():
        if key in (name, f.alias):
            return f
    return None


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The first pydantic model in ``annotation`` (``X``, ``X | None``, ``list[X]``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _alias(model: type[BaseModel] | None, key: Any) -> Any:
    if model is None or not isinstance(key, str):
        return key
    f = model.model_fields.get(key)
    return f.alias if f is not None and f.alias else key


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _message(err: Any, loc: tuple[Any, ...], model: type[BaseModel]) -> str:
    kind, got = err["type"], err.get("input")
    if kind == "extra_forbidden":
        known = _keys_of(_model_at(model, loc[:-1]))
        return f"is not a known key; known here: {', '.join(known)}."
    if kind == "missing":
        return "is required."
    msg = str(err["msg"]).removeprefix("Value error, ")
    if "; got " in msg:
        return f"{msg}."
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    return f"{msg[0].lower()}{msg[1:]}; got {shown}."
