"""What the web UI's data routes share: JSON answers, the error boundary, query arguments and
their OpenAPI description."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mloop.errors import InvalidInputError
from mloop.server._wire import JSON, error_response

__all__ = ["handler", "int_arg", "json_response", "openapi_param", "required"]


def json_response(doc: Any) -> Response:
    """``doc`` as JSON (the routes make NaN and infinities null first; numpy values serialise)."""
    return Response(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), media_type=JSON)


def handler(work: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """A route that runs ``work(request)`` in a thread and answers its result as JSON; every
    failure becomes the API's ``{error_code, message}``."""

    async def route(request: Request) -> Response:
        try:
            return json_response(await run_in_threadpool(work, request))
        except Exception as exc:  # the boundary: every failure becomes {error_code, message}
            return error_response(exc, request_id=request.headers.get("x-request-id") or "-")

    return route


def int_arg(raw: str | None, name: str, *, lo: int, hi: int, default: int | None) -> int | None:
    """The query argument ``name`` (its text ``raw``) as an int in ``[lo, hi]``; ``default``
    when it is absent or empty."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise InvalidInputError(f"`{name}` must be an int in [{lo}, {hi}]; got {raw!r}.")
    return value


def required(params: Mapping[str, str], name: str) -> str:
    """The query argument ``name``, which must be given and not empty."""
    value = params.get(name)
    if not value:
        raise InvalidInputError(f"the query parameter `{name}` is required.")
    return value


def openapi_param(
    name: str, where: str, schema: dict[str, Any], *, required: bool
) -> dict[str, Any]:
    """One OpenAPI parameter object."""
    return {"name": name, "in": where, "required": required, "schema": schema}
