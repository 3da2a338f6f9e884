"""The REST API v1 as data: one :class:`Endpoint` per store operation, shared by the HTTP store
(which sends it) and the server (which mounts it), so a path or a type is written once.

An endpoint names its arguments and their types. Path parameters are the ``{names}`` in the path;
the other arguments travel in the query string for ``GET`` and ``DELETE`` (scalars only) and as
one JSON object, written with the wire codec, in the body otherwise. The result is decoded with
the codec from its declared type, so an entity comes back as the same frozen dataclass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from mloop.codec import dumps, to_wire
from mloop.errors import InvalidInputError

__all__ = ["API_PREFIX", "Endpoint", "HttpMethod", "Role", "query_text"]

API_PREFIX = "/api/v1"

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
# What a token needs: ``read`` reads, ``write`` changes runs, models and monitors, ``admin``
# manages tokens, webhooks (they hold secrets) and destructive maintenance.
Role = Literal["read", "write", "admin"]

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_QUERY_TYPES = (str, int, float, bool)


@dataclass(frozen=True)
class Endpoint:
    """One operation of the REST API.

    Attributes
    ----------
    name : str
        The operation id (also the OpenAPI ``operationId``), e.g. ``"create_project"``.
    method, path :
        ``path`` is relative to :data:`API_PREFIX`, e.g. ``"/projects/{project_id}"``.
    args : mapping of str to type
        Every argument and its type, in order.
    result : type or None
        The type of the answer's JSON (None: ``204 No Content``).
    role : str, optional
        The role a token needs (default ``read`` for ``GET``, ``write`` otherwise).
    project : str, optional
        The argument that names the project the call touches (for project-scoped tokens).
    summary : str
        One line for the OpenAPI document.
    """

    name: str
    method: HttpMethod
    path: str
    args: Mapping[str, Any] = field(default_factory=dict)
    result: Any = None
    role: Role | None = None
    project: str | None = None
    summary: str = ""
    decode: Callable[[Any], Any] | None = None  # the result from its JSON, when a type cannot say
    encode: Callable[[Any], Any] | None = None  # the server's side of ``decode``

    def __post_init__(self) -> None:
        missing = [p for p in self.path_params if p not in self.args]
        if missing:
            raise TypeError(f"endpoint {self.name}: path parameters {missing} have no type")
        if self.method in ("GET", "DELETE"):
            complex_args = [
                k
                for k, tp in self.args.items()
                if k not in self.path_params and not _is_query_type(tp)
            ]
            if complex_args:
                raise TypeError(
                    f"endpoint {self.name}: {self.method} carries no body; {complex_args} need one"
                )

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PARAM.findall(self.path))

    @property
    def has_body(self) -> bool:
        return self.method not in ("GET", "DELETE")

    @property
    def required_role(self) -> Role:
        return self.role or ("read" if self.method == "GET" else "write")

    def request(self, values: Mapping[str, Any]) -> tuple[str, dict[str, str], bytes | None]:
        """The URL path, query parameters and body that carry ``values``."""
        unknown = set(values) - set(self.args)
        if unknown:
            raise InvalidInputError(f"{self.name} takes no argument(s) {sorted(unknown)}.")
        path = self.full_path
        for p in self.path_params:
            path = path.replace("{" + p + "}", quote(str(values[p]), safe=""))
        rest = {k: v for k, v in values.items() if k not in self.path_params}
        if not self.has_body:
            return path, {k: query_text(v) for k, v in rest.items() if v is not None}, None
        return path, {}, dumps(to_wire(rest, what=self.name)).encode()


def _is_query_type(tp: Any) -> bool:
    import types
    import typing

    if tp in _QUERY_TYPES:
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return all(a is type(None) or a in _QUERY_TYPES for a in typing.get_args(tp))
    return origin is Literal


def query_text(value: Any) -> str:
    """A scalar as query-string text (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
