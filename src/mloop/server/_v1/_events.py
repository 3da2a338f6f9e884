"""The event log and its followers' cursors. Each route calls the store's public method, which
validates exactly as it does in-process; an appended event's actor is the token's name once auth
is on.

``wait_s`` turns a read into a long-poll: the handler validates and reads in its worker thread as
usual, and when there is nothing to answer yet it returns a coroutine that the route awaits on the
event loop (see :mod:`mloop.server._waiters`), so a held request occupies no worker thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.concurrency import run_in_threadpool

from mloop.errors import InvalidInputError
from mloop.server._context import actor_for
from mloop.server._waiters import waiters_for
from mloop.store import MAX_EVENT_WAIT_S, Event, Store

__all__ = ["HANDLERS"]


def _wait_s(value: float | None) -> float:
    if value is None:
        return 0.0
    if not math.isfinite(value) or not 0 <= value <= MAX_EVENT_WAIT_S:
        raise InvalidInputError(
            f"`wait_s` must be a number of seconds in [0, {MAX_EVENT_WAIT_S:g}]; got {value!r}."
        )
    return float(value)


def _types(text: str | None) -> list[str] | None:
    """Comma-separated event types (an empty item is refused by the store's check)."""
    return None if text is None else [t.strip() for t in text.split(",")]


def _read_events(
    s: Store,
    after_id: int | None,
    types: str | None,
    subject: str | None,
    until_id: int | None,
    limit: int | None,
    wait_s: float | None,
) -> list[Event] | Coroutine[Any, Any, list[Event]]:
    wait = _wait_s(wait_s)
    query: dict[str, Any] = {
        "after_id": 0 if after_id is None else after_id,
        "types": _types(types),
        "subject": subject,
        "until_id": until_id,
        "limit": 1000 if limit is None else limit,
    }
    # Read the head first: every event up to it has committed, so the read below sees them all.
    head = s.last_event_id() if wait else 0
    events = s.read_events(**query)
    if events or not wait or (until_id is not None and head >= until_id):
        return events
    return _held_read(s, query, max(head, query["after_id"]), wait)


async def _held_read(s: Store, query: dict[str, Any], seen: int, wait_s: float) -> list[Event]:
    import time

    deadline = time.monotonic() + wait_s
    waiters = waiters_for(s)
    while True:
        head = await waiters.wait_past(seen, deadline - time.monotonic())
        if head is None:
            return []
        seen = head
        events: list[Event] = await run_in_threadpool(lambda: s.read_events(**query))
        if events:
            return events  # else what came did not match the filters: wait on


def _last_event_id(
    s: Store, after_id: int | None, wait_s: float | None
) -> int | Coroutine[Any, Any, int]:
    wait = _wait_s(wait_s)
    if after_id is not None and (isinstance(after_id, bool) or after_id < 0):
        raise InvalidInputError(f"`after_id` must be an int >= 0; got {after_id!r}.")
    if wait and after_id is None:
        raise InvalidInputError("`wait_s` needs `after_id`: the id to wait past.")
    head = s.last_event_id()
    if after_id is None or head > after_id or not wait:
        return head
    return _held_head(s, after_id, wait)


async def _held_head(s: Store, after_id: int, wait_s: float) -> int:
    head = await waiters_for(s).wait_past(after_id, wait_s)
    return head if head is not None else await run_in_threadpool(s.last_event_id)


HANDLERS: dict[str, Callable[..., Any]] = {
    "append_event": lambda s, type, subject, actor, payload: s.append_event(
        type, subject, actor=actor_for(actor), payload=payload
    ),
    "read_events": _read_events,
    "last_event_id": _last_event_id,
    "list_cursors": lambda s: s.list_cursors(),
    "get_cursor": lambda s, name: s.get_cursor(name),
    "set_cursor": lambda s, name, position: s.set_cursor(name, position),
    "ack_event": lambda s, name, event_id: s.ack_event(name, event_id),
    "delete_cursor": lambda s, name: s.delete_cursor(name),
}
