"""The event log, its followers' cursors and a remote follower's wake-ups over HTTP.

A follower on an HTTP store sleeps in a long-poll: ``GET /events/last-id?after_id=N&wait_s=S``
answers as soon as an event past ``N`` has committed on the server (or, after ``S`` seconds, with
the newest id, which is then not past ``N``). The server holds no database connection for it: one
watcher per store wakes every held request (see ``mloop.server._waiters``). ``GET /events`` takes
``wait_s`` too, for consumers that read the log directly (a UI's timeline, ``curl``).

The cursor stays on the server and moves only when the follower acknowledges an event it handled
(:class:`~mloop.store.Follower`), so a dropped connection or a restarted server neither loses nor
repeats a handled event. Cursor names may hold ``/``, so they travel in the query string or the
body, never in the path; event types travel comma-separated (no type holds a comma).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from mloop.errors import MloopError, StoreUnavailableError
from mloop.store._events_base import MAX_EVENT_WAIT_S, Event, EventCursor, EventListener
from mloop.store._http._endpoint import Endpoint

if TYPE_CHECKING:
    from mloop.store._http._transport import HttpTransport

__all__ = ["EVENT_ENDPOINTS", "HttpEventListener", "HttpEventsMixin", "join_types"]

_log = logging.getLogger("mloop.events")


def join_types(types: Sequence[str] | None) -> str | None:
    """Event types as one query value."""
    return None if not types else ",".join(str(t) for t in types)


_E = Endpoint
EVENT_ENDPOINTS: tuple[Endpoint, ...] = (
    _E("append_event", "POST", "/events",
       {"type": str, "subject": str, "actor": str | None, "payload": dict[str, Any] | None},
       Event, summary="Append an event that stands alone (the token's name is its actor)"),
    _E("read_events", "GET", "/events",
       {"after_id": int | None, "types": str | None, "subject": str | None,
        "until_id": int | None, "limit": int | None, "wait_s": float | None},
       list[Event],
       summary="Events after a cursor, oldest first (types comma-separated); with wait_s "
               f"(<= {MAX_EVENT_WAIT_S:.0f}), held until one arrives"),
    _E("last_event_id", "GET", "/events/last-id", {"after_id": int | None, "wait_s": float | None},
       int, summary="The newest event's id; with after_id and wait_s, held until it is past "
                    "after_id (how a remote follower sleeps)"),
    _E("list_cursors", "GET", "/event-cursors", {}, list[EventCursor],
       summary="Every follower's cursor"),
    _E("get_cursor", "GET", "/event-cursors/by-name", {"name": str}, EventCursor | None,
       summary="One follower's cursor, or null"),
    _E("set_cursor", "PUT", "/event-cursors/by-name", {"name": str, "position": int},
       EventCursor, summary="Put a follower at a position (backwards too: to replay events)"),
    _E("ack_event", "POST", "/event-cursors/ack", {"name": str, "event_id": int}, None,
       summary="A follower handled every event up to event_id (never moves it back)"),
    _E("delete_cursor", "DELETE", "/event-cursors/by-name", {"name": str}, None,
       summary="Forget a follower"),
)  # fmt: skip
_BY_NAME = {e.name: e for e in EVENT_ENDPOINTS}


class HttpEventsMixin:
    """The event-log part of the store contract, each hook one request."""

    _transport: HttpTransport  # set by HttpStore

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    def _do_append_event(
        self, type: str, subject: str, actor: str | None, payload: dict[str, Any]
    ) -> Event:
        return self._call("append_event", type=type, subject=subject, actor=actor, payload=payload)

    def _do_read_events(
        self,
        after_id: int,
        types: list[str],
        subject: str | None,
        until_id: int | None,
        limit: int,
    ) -> list[Event]:
        return self._call(
            "read_events",
            after_id=after_id,
            types=join_types(types),
            subject=subject,
            until_id=until_id,
            limit=limit,
        )

    def _do_last_event_id(self) -> int:
        return int(self._call("last_event_id"))

    def _do_get_cursor(self, name: str) -> EventCursor | None:
        return self._call("get_cursor", name=name)

    def _do_list_cursors(self) -> list[EventCursor]:
        return self._call("list_cursors")

    def _do_ack_event(self, name: str, event_id: int) -> None:
        self._call("ack_event", name=name, event_id=event_id)

    def _do_set_cursor(self, name: str, position: int) -> EventCursor:
        return self._call("set_cursor", name=name, position=position)

    def _do_delete_cursor(self, name: str) -> None:
        self._call("delete_cursor", name=name)

    def _do_event_listener(self) -> EventListener:
        return HttpEventListener(self)  # type: ignore[arg-type]  # an HttpStore

    def _wait_past(self, after_id: int, wait_s: float) -> int:
        """The newest event id, once it is past ``after_id`` or ``wait_s`` has passed."""
        return int(
            self._transport.long_poll(_BY_NAME["last_event_id"], after_id=after_id, wait_s=wait_s)
        )


class _Server(Protocol):
    def last_event_id(self) -> int: ...
    def _wait_past(self, after_id: int, wait_s: float) -> int: ...


class HttpEventListener(EventListener):
    """A remote follower's wake-up: a long-poll for an event past the newest id it has seen.

    It is opened before the follower reads the log, so an event committed between that read and
    the wait still wakes it. A wake-up may be spurious (the follower then reads nothing new);
    correctness never rests on it: the follower reads the log after every wait.
    """

    def __init__(self, store: _Server) -> None:
        self._store = store
        self._mark: int | None
        try:
            self._mark = store.last_event_id()
        except StoreUnavailableError:
            self._mark = None  # unknown: the first wait says "news", the follower then reads

    def wait(self, timeout_s: float) -> bool:
        wait_s = min(max(float(timeout_s), 0.0), MAX_EVENT_WAIT_S)
        try:
            if self._mark is None:
                self._mark = self._store.last_event_id()
                return True
            head = self._store._wait_past(self._mark, wait_s)
        except StoreUnavailableError as exc:
            # The follower's next read reports it and backs off; wait again after that.
            _log.debug("mloop: event listener: server unavailable: %s", exc)
            return False
        except MloopError as exc:  # e.g. a server without long-polls: fall back to polling
            _log.warning("mloop: event listener: cannot wait on the server (%s); polling", exc)
            time.sleep(wait_s)
            return False
        if head == self._mark:
            return False
        self._mark = head  # past it, or behind it: the server's log was replaced; read again
        return True
