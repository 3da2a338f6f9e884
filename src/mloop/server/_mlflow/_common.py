"""What several MLflow areas share: experiment ids, page tokens, and MLflow filters rewritten into
mloop's (status names, run-name tags) or matched in memory (experiments, logged models)."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from mloop.errors import InvalidInputError, NotFoundError
from mloop.store import Comparison, OrderKey, Project, Store

__all__ = [
    "DEFAULT_EXPERIMENT",
    "decode_token",
    "encode_token",
    "filter_text",
    "matches",
    "order_text",
    "project_for",
    "sort_items",
]

# The experiment every MLflow client logs to when none is set (id "0" in MLflow's stores).
DEFAULT_EXPERIMENT = "Default"


def project_for(store: Store, experiment_id: str) -> Project:
    """The project an MLflow experiment id names; ``"0"`` is the project named ``Default``."""
    if experiment_id == "0":
        return store.get_or_create_project(DEFAULT_EXPERIMENT)
    if experiment_id.isdigit() and int(experiment_id) >= 2**63:
        # Past what a SQL integer holds: no store handed it out.
        raise NotFoundError(f"No Experiment with id={experiment_id} exists")
    return store.get_project(experiment_id)


def encode_token(offset: int) -> str:
    """MLflow's page token: base64 of ``{"offset": n}``."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        doc = json.loads(base64.b64decode(token.encode(), validate=True))
        offset = doc["offset"]
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInputError(
            f"Invalid page token, could not base64-decode: {token!r:.80}"
        ) from None


# ------------------------------------------------------------------------------ run filters
_PREFIX = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}
# MLflow's system tags that mloop keeps as run columns.
_TAG_ATTRIBUTES = {"mlflow.runName": "run_name", "mlflow.user": "user"}


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value(c: Comparison) -> str:
    v = c.value
    if isinstance(v, tuple):
        return "(" + ", ".join(_quote(x) for x in v) + ")"
    if isinstance(v, str):
        return _quote(v)
    return repr(float(v))


def _to_mloop(c: Comparison) -> Comparison:
    if c.entity == "tag" and c.key in _TAG_ATTRIBUTES:
        c = Comparison("attribute", _TAG_ATTRIBUTES[c.key], c.op, c.value)
    if c.entity == "attribute" and c.key == "status":
        v = c.value
        lower = tuple(x.lower() for x in v) if isinstance(v, tuple) else str(v).lower()
        c = Comparison("attribute", "status", c.op, lower)
    return c


def filter_text(ast: Sequence[Comparison]) -> str:
    """A parsed MLflow run filter as mloop's filter text (statuses lower-case, run-name tags as the
    run's name), so the store parses what it can search."""
    parts = []
    for c in map(_to_mloop, ast):
        parts.append(f"{_PREFIX[c.entity]}.`{c.key}` {c.op} {_value(c)}")
    return " AND ".join(parts)


def order_text(order: Sequence[OrderKey]) -> list[str]:
    out = []
    for k in order:
        key = k.key
        entity = k.entity
        if entity == "tag" and key in _TAG_ATTRIBUTES:
            entity, key = "attribute", _TAG_ATTRIBUTES[key]
        out.append(f"{_PREFIX[entity]}.`{key}` {'ASC' if k.ascending else 'DESC'}")
    return out


# ------------------------------------------------------------------------------ in memory
def _like(pattern: str, *, flags: int = 0) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(out), flags | re.DOTALL)


def matches(c: Comparison, actual: Any) -> bool:
    """Whether ``actual`` satisfies one comparison (None: the key is absent, which never matches)."""
    if actual is None:
        return False
    v, op = c.value, c.op
    if op in ("IN", "NOT IN"):
        assert isinstance(v, tuple)
        return (str(actual) in v) == (op == "IN")
    if op == "LIKE":
        return _like(str(v)).fullmatch(str(actual)) is not None
    if op == "ILIKE":
        return _like(str(v), flags=re.IGNORECASE).fullmatch(str(actual)) is not None
    if isinstance(v, float):
        try:
            a: Any = float(actual)
        except (TypeError, ValueError):
            return False
    else:
        a = str(actual)
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda x, y: x == y,
        "!=": lambda x, y: x != y,
        ">": lambda x, y: x > y,
        ">=": lambda x, y: x >= y,
        "<": lambda x, y: x < y,
        "<=": lambda x, y: x <= y,
    }
    return ops[op](a, v)


def _key_of(value: Callable[[Any, OrderKey], Any], key: OrderKey, item: Any) -> Any:
    return value(item, key)


def sort_items(
    items: list[Any], order: Sequence[OrderKey], value: Callable[[Any, OrderKey], Any]
) -> list[Any]:
    """Sort by each key in turn (the last key first, stably); absent values sort last."""
    for key in reversed(order):
        present = [i for i in items if value(i, key) is not None]
        absent = [i for i in items if value(i, key) is None]
        present.sort(key=functools.partial(_key_of, value, key), reverse=not key.ascending)
        items = present + absent
    return items
