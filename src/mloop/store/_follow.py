"""Followers: consumers of the event log with a durable, named cursor.

Delivery is at-least-once: the handler sees an event, and only when it returns is the cursor
advanced past it (one small write). A consumer that crashes before that sees the event again when
it restarts; one that crashes between two events resumes exactly after the last one it finished.
A handler that raises leaves the cursor where it was, and the event is retried after a backoff.
An acknowledgement that fails (the store or the server is unreachable) is retried before the next
event is handled, and the event it acknowledges is not handed over again by this follower.

Waiting is cheap: the follower opens the store's listener before it reads, then sleeps in it. On
PostgreSQL that listener is woken by ``NOTIFY`` when an event commits; elsewhere it polls with
exponential backoff between ``min_wait_s`` and ``max_wait_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal

from mloop.errors import InvalidInputError, StoreUnavailableError
from mloop.store._events_base import (
    Event,
    EventStoreMixin,
    PollingListener,
    validate_cursor_name,
    validate_event_types,
)

__all__ = ["Follower"]

_log = logging.getLogger("mloop.events")

Handler = Callable[[Event], object]


class Follower:
    """Follow the event log from the cursor ``name``.

    Parameters
    ----------
    store : Store
        Any store (the follower uses its event log and cursors).
    name : str
        The cursor's name, unique per consumer (``"serving-churn-api"``, ``"webhook-3"``). Two
        followers with different names each see every event; two processes with the same name
        share one position (each event is handled by whichever acknowledges it first).
    types : list of str, optional
        Only these event types reach the handler (the cursor still moves past the others).
    subject : str, optional
        Only events about this subject (``"models/churn"``, ``"monitors/prod"``).
    start : {"end", "beginning"}
        Where a new cursor starts: after the newest event, or before the first one.
    batch_size : int
        Events read per query.
    min_wait_s, max_wait_s : float
        Bounds of the backoff while the log is idle (and after a handler error).

    Examples
    --------
    >>> from mloop.store import SqlStore
    >>> store = SqlStore("sqlite://")
    >>> f = store.follow("audit", start="beginning")
    >>> _ = store.append_event("monitor_alert", "monitors/prod", payload={"name": "psi"})
    >>> f.poll(lambda e: print(e.type, e.subject))
    monitor_alert monitors/prod
    1
    >>> f.poll(print)  # nothing new
    0
    """

    def __init__(
        self,
        store: EventStoreMixin,
        name: str,
        *,
        types: Sequence[str] | None = None,
        subject: str | None = None,
        start: Literal["end", "beginning"] = "end",
        batch_size: int = 100,
        min_wait_s: float = 0.01,
        max_wait_s: float = 1.0,
    ) -> None:
        if start not in ("end", "beginning"):
            raise InvalidInputError(f"`start` must be 'end' or 'beginning'; got {start!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"`batch_size` must be an int >= 1; got {batch_size!r}.")
        if not 0 < min_wait_s <= max_wait_s:
            raise InvalidInputError(
                "`min_wait_s` and `max_wait_s` must satisfy 0 < min_wait_s <= max_wait_s; "
                f"got {min_wait_s!r} and {max_wait_s!r}."
            )
        self.store = store
        self.name = validate_cursor_name(name)
        self.types = validate_event_types(types)
        self.subject = subject
        self.batch_size = batch_size
        self.min_wait_s = float(min_wait_s)
        self.max_wait_s = float(max_wait_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unacked: int | None = None  # handled, but its acknowledgement did not get through
        cursor = store.get_cursor(self.name)
        if cursor is None:
            # ack_event creates the cursor if absent and never moves it back: two processes that
            # start the same new follower at once agree on the position.
            store.ack_event(self.name, store.last_event_id() if start == "end" else 0)
            cursor = store.get_cursor(self.name)
            assert cursor is not None
        self._position = cursor.position

    @property
    def position(self) -> int:
        """The id of the last event this follower handled (or moved past); stored as its cursor,
        unless the store could not be reached since (then it is stored at the next poll)."""
        return self._position

    def poll(self, handler: Handler, *, max_events: int | None = None) -> int:
        """Hand every event committed so far after the cursor to ``handler``, in order.

        Returns the number handled. The cursor is advanced after each handler call returns; an
        exception from the handler propagates with the cursor left before its event.
        """
        self._acknowledge_pending()
        head = self.store.last_event_id()
        # Sharing a name with another process: start from whatever it has acknowledged.
        stored = self.store.get_cursor(self.name)
        if stored is not None and stored.position > self._position:
            self._position = stored.position
        handled = 0
        while True:
            events = self.store.read_events(
                after_id=self._position,
                types=self.types or None,
                subject=self.subject,
                until_id=head,
                limit=self.batch_size,
            )
            for event in events:
                handler(event)
                # Handled: it is never handed over again by this follower, whether or not the
                # acknowledgement gets through now (if not, it is sent again before the next).
                self._position = self._unacked = event.id
                handled += 1
                self._acknowledge_pending()
                if max_events is not None and handled >= max_events:
                    return handled
            if len(events) < self.batch_size:
                break
        # Every event up to ``head`` had committed when ``head`` was read (ids are assigned in
        # commit order), so what is left below it did not match: move past it in one write.
        if head > self._position:
            self._position = self._unacked = head
            self._acknowledge_pending()
        return handled

    def _acknowledge_pending(self) -> None:
        if self._unacked is not None:
            self.store.ack_event(self.name, self._unacked)  # forward only: a repeat is harmless
            self._unacked = None

    def run(
        self,
        handler: Handler,
        *,
        stop: threading.Event | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Handle events as they come until ``stop`` is set (or ``timeout_s`` passes).

        A handler error or an unreachable store is logged and retried after a backoff; the event
        is not skipped.
        """
        stop = stop or self._stop
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        wait = self.min_wait_s
        with self.store.event_listener() as listener:
            while not stop.is_set():
                try:
                    handled = self.poll(handler)
                except StoreUnavailableError as exc:
                    _log.warning("mloop: follower %s: store unavailable (%s)", self.name, exc)
                    handled = -1
                except Exception:
                    _log.exception(
                        "mloop: follower %s: handler failed after event %s; retrying",
                        self.name,
                        self._position,
                    )
                    handled = -1
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if handled > 0:
                    wait = self.min_wait_s
                    continue
                if handled < 0:  # an error: back off without listening for news
                    stop.wait(wait)
                    wait = min(wait * 2, self.max_wait_s)
                    continue
                budget = wait if deadline is None else min(wait, deadline - time.monotonic())
                if isinstance(listener, PollingListener):
                    stop.wait(max(budget, 0.0))  # nothing to listen to: sleep, but wake on stop
                    wait = min(wait * 2, self.max_wait_s)
                elif listener.wait(max(budget, 0.0)):
                    wait = self.min_wait_s
                else:
                    wait = min(wait * 2, self.max_wait_s)

    def start(self, handler: Handler) -> Follower:
        """Run :meth:`run` in a daemon thread; :meth:`stop` ends it."""
        if self._thread is not None and self._thread.is_alive():
            raise InvalidInputError(f"follower {self.name!r} is already running.")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, args=(handler,), name=f"mloop-follow-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, *, timeout_s: float = 10.0) -> bool:
        """Stop the thread after the event it is handling; returns whether it ended in time."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
