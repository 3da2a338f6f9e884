"""cloudpickle with a diagnosis: when an object cannot be pickled, say which attribute is to blame."""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError

from . import missing_code_error, require

__all__ = ["dump", "find_unpicklable", "load"]

_PROTOCOL = 5


def dump(obj: Any, file: Path, *, root: str = "model") -> None:
    """cloudpickle ``obj`` into ``file``.

    Raises
    ------
    InvalidInputError
        The object (or something it holds) cannot be pickled; the message names the attribute
        path (e.g. ``model.cache._lock``) and its type (e.g. ``_thread.lock``).
    """
    cloudpickle = require("cloudpickle")
    buf = io.BytesIO()
    try:
        cloudpickle.dump(obj, buf, protocol=_PROTOCOL)
    except Exception as exc:  # pickling raises TypeError, PicklingError, AttributeError, ...
        found = find_unpicklable(obj, root=root)
        if found is None:
            raise InvalidInputError(
                f"Cannot serialize {root}: {type(exc).__name__}: {exc}"
            ) from exc
        where, type_name = found
        raise InvalidInputError(
            f"Cannot serialize {root}: `{where}` is a `{type_name}`, which cannot be pickled "
            f"({type(exc).__name__}: {exc}). Drop it before saving (for example with a "
            "`__getstate__` that leaves it out and a `__setstate__` that recreates it).",
            details={"attribute": where, "type": type_name},
        ) from exc
    file.write_bytes(buf.getbuffer())


def load(file: Path) -> Any:
    """Unpickle ``file`` (trusted sources only: unpickling can run arbitrary code).

    Raises
    ------
    MissingDependencyError
        The pickle refers to a module that cannot be imported (or a class its module lacks); the
        message names it and suggests installing it or saving the model with ``code_paths``.
    """
    require("cloudpickle")  # cloudpickle-written files may reference cloudpickle internals
    with open(file, "rb") as fh:
        try:
            return pickle.load(fh)
        except (ImportError, AttributeError) as exc:
            missing = missing_code_error(exc, file=file.name)
            if missing is None:
                raise
            raise missing from exc


def _picklable(obj: Any) -> bool:
    cloudpickle = require("cloudpickle")
    try:
        cloudpickle.dumps(obj, protocol=_PROTOCOL)
    except Exception:  # any failure means "not picklable"; the walk looks for the culprit
        return False
    return True


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"[{key!r}]", value
        return
    if isinstance(obj, list | tuple | set | frozenset):
        for i, value in enumerate(obj):
            yield f"[{i}]", value
        return
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        for key, value in state.items():
            yield f".{key}", value
    for slot in getattr(type(obj), "__slots__", ()):
        if isinstance(slot, str) and hasattr(obj, slot):
            yield f".{slot}", getattr(obj, slot)


def find_unpicklable(
    obj: Any, *, root: str = "model", max_depth: int = 40
) -> tuple[str, str] | None:
    """The deepest attribute path under ``obj`` that cannot be pickled, with its type name.

    Returns ``None`` when ``obj`` pickles, e.g. ``("model.cache._lock", "_thread.lock")`` otherwise.
    """
    seen: set[int] = set()

    def walk(value: Any, path: str, depth: int) -> tuple[str, str] | None:
        if id(value) in seen or _picklable(value):
            return None
        seen.add(id(value))
        if depth < max_depth:
            for suffix, child in _children(value):
                found = walk(child, path + suffix, depth + 1)
                if found is not None:
                    return found
        cls = type(value)
        return path, f"{cls.__module__}.{cls.__qualname__}".removeprefix("builtins.")

    return walk(obj, root, 0)
