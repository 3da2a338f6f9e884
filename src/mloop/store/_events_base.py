"""The event log: one ordered stream of everything that happens, followed with durable cursors.

Every change the loop reacts to is appended here in the same transaction as the change itself:
registry changes (a version registered, an alias moved, a rollback, a report attached), monitor
windows and alerts, and, as later layers add them, check reports, deployments and pipeline runs.
An event's ``id`` is monotonic *in commit order*: a reader that has seen event ``n`` will never later
see a new event with an id below ``n``. That is what lets a cursor be a single integer.

Consumers follow the log through ``Store.follow`` (see :mod:`mloop.store._follow`):
a named cursor stored in the store, advanced only after the handler returns.
"""

from __future__ import annotations

import abc
import contextlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mloop.codec import WireEntity
from mloop.errors import InvalidInputError
from mloop.store._registry_entities import EVENT_TYPES as REGISTRY_EVENT_TYPES
from mloop.store._validation import validate_text

__all__ = [
    "EVENT_TYPES",
    "MAX_EVENT_WAIT_S",
    "Event",
    "EventCursor",
    "EventListener",
    "EventStoreMixin",
    "PollingListener",
]

# One type per thing that happens. The registry's types keep their names (webhooks subscribe to
# them); a new layer adds its types here, in the one list every backend and consumer validates with.
MONITOR_EVENT_TYPES: tuple[str, ...] = ("monitor_result", "monitor_alert")
# Subject ``deployments/<name>`` (``models/<name>`` for the serving_* events of a plain
# ``mloop serve URI``): a deployment's changes, and a server's model swaps.
DEPLOYMENT_EVENT_TYPES: tuple[str, ...] = (
    "deployment_created",
    "deployment_updated",
    "deployment_rollback",
    "deployment_deleted",
    "serving_swapped",
    "serving_swap_failed",
)
# Subject ``tokens/<id>``: the team server's API tokens (an audit trail; never the secret).
TOKEN_EVENT_TYPES: tuple[str, ...] = ("token_created", "token_revoked")
# Subject ``pipelines/<name>``: a run started, each step done (executed, cached, failed, skipped),
# the run finished.
PIPELINE_EVENT_TYPES: tuple[str, ...] = (
    "pipeline_run_started",
    "step_finished",
    "pipeline_run_finished",
)
# ``trigger_fired`` (subject ``pipelines/<name>``): a trigger fired, with its reason and the run it
# starts; ``trigger_requested`` (subject ``triggers/<name>``): a manual request an agent picks up.
TRIGGER_EVENT_TYPES: tuple[str, ...] = ("trigger_fired", "trigger_requested")
# Subject ``models/<name>``: the retraining loop's decisions that no other layer records (a check
# report, a version and an alias move already have theirs): training refused because the data
# failed its quality checks, and a candidate not promoted because its check failed.
LOOP_EVENT_TYPES: tuple[str, ...] = ("training_blocked", "promotion_refused")
EVENT_TYPES: tuple[str, ...] = (
    REGISTRY_EVENT_TYPES
    + MONITOR_EVENT_TYPES
    + DEPLOYMENT_EVENT_TYPES
    + TOKEN_EVENT_TYPES
    + PIPELINE_EVENT_TYPES
    + TRIGGER_EVENT_TYPES
    + LOOP_EVENT_TYPES
)

MAX_SUBJECT = 600
# The longest a server holds a request that waits for events (a remote follower's long-poll):
# well below the idle timeout of common proxies (60 s).
MAX_EVENT_WAIT_S = 30.0
MAX_CURSOR_NAME = 255
_CURSOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]*")


@dataclass(frozen=True)
class Event(WireEntity):
    """One entry of the event log.

    ``subject`` names what the event is about, as a path: ``models/<name>``,
    ``monitors/<name>``, ``deployments/<name>``. ``payload`` holds the event's facts (JSON values).
    """

    id: int
    ts_ms: int
    type: str
    subject: str
    actor: str | None
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class EventCursor(WireEntity):
    """A named consumer's position: every event with ``id <= position`` has been handled."""

    name: str
    position: int
    updated_ms: int


class EventListener(abc.ABC):
    """Waits for new events: woken by the backend when it can (PostgreSQL ``NOTIFY``), else polls.

    Open it *before* reading the log, so an event committed between the read and the wait still
    wakes it.
    """

    @abc.abstractmethod
    def wait(self, timeout_s: float) -> bool:
        """Block until an event may have been appended, or ``timeout_s`` passed.

        Returns True when woken by a notification (there is news), False on timeout.
        """

    def close(self) -> None:  # noqa: B027 - a listener without resources need not override it
        """Release the listener's connection, if it has one."""

    def __enter__(self) -> EventListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PollingListener(EventListener):
    """The listener of a backend that cannot notify: the caller's backoff is the only wake-up."""

    def wait(self, timeout_s: float) -> bool:
        time.sleep(max(timeout_s, 0.0))
        return False


def validate_event_types(types: Sequence[str] | None, *, allow_any: bool = False) -> list[str]:
    """``types`` as a list of known event types (``"*"`` too when ``allow_any``)."""
    if types is None:
        return []
    if isinstance(types, str):
        raise InvalidInputError(f"`types` must be a list of event types; got the string {types!r}.")
    out = []
    for t in types:
        if t == "*" and allow_any:
            out.append(t)
        elif t not in EVENT_TYPES:
            raise InvalidInputError(
                f"unknown event type {t!r}; known: {list(EVENT_TYPES)}"
                + (" or '*'." if allow_any else ".")
            )
        else:
            out.append(t)
    return out


def validate_cursor_name(name: object) -> str:
    if not isinstance(name, str) or len(name) > MAX_CURSOR_NAME or not _CURSOR_NAME.fullmatch(name):
        raise InvalidInputError(
            "a follower's name must be 1 to 255 characters of letters, digits and . _ : @ / - "
            f"(starting with a letter or digit); got {name!r}."
        )
    return name


def _validate_subject(subject: object) -> str:
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT:
        raise InvalidInputError(
            f"an event's subject must be a non-empty string of at most {MAX_SUBJECT} characters; "
            f"got {subject!r}."
        )
    return validate_text(subject, what="event subject")


def _validate_position(value: object, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"`{name}` must be an int >= 0; got {value!r}.")
    return value


class EventStoreMixin(abc.ABC):
    """The event-log part of the Store contract: append, read, cursors, wake-ups."""

    def append_event(
        self,
        type: str,
        subject: str,
        *,
        actor: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> Event:
        """Append one event (in its own transaction). Layers that change state append theirs in
        the transaction of the change; this is for events that stand alone."""
        validate_event_types([type])
        if actor is not None:
            actor = validate_text(str(actor), what="actor")[:255]
        if payload is not None and not isinstance(payload, Mapping):
            raise InvalidInputError(
                f"`payload` must be a mapping; got {payload.__class__.__name__}."
            )
        return self._do_append_event(type, _validate_subject(subject), actor, dict(payload or {}))

    def read_events(
        self,
        *,
        after_id: int = 0,
        types: Sequence[str] | None = None,
        subject: str | None = None,
        until_id: int | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """Events with ``after_id < id (<= until_id)``, oldest first, at most ``limit``."""
        from mloop.store._common import validate_max_results

        validate_max_results(limit, name="limit")
        return self._do_read_events(
            _validate_position(after_id, name="after_id"),
            validate_event_types(types),
            None if subject is None else _validate_subject(subject),
            None if until_id is None else _validate_position(until_id, name="until_id"),
            limit,
        )

    def last_event_id(self) -> int:
        """The id of the newest committed event (0 for an empty log)."""
        return self._do_last_event_id()

    # ------------------------------------------------------------------ cursors
    def get_cursor(self, name: str) -> EventCursor | None:
        return self._do_get_cursor(validate_cursor_name(name))

    def list_cursors(self) -> list[EventCursor]:
        return self._do_list_cursors()

    def ack_event(self, name: str, event_id: int) -> None:
        """Record that consumer ``name`` handled every event up to ``event_id``.

        Only moves the cursor forward: a late, duplicate acknowledgement never rewinds it.
        """
        self._do_ack_event(
            validate_cursor_name(name), _validate_position(event_id, name="event_id")
        )

    def set_cursor(self, name: str, position: int) -> EventCursor:
        """Put consumer ``name`` at ``position`` (backwards too: to replay events)."""
        return self._do_set_cursor(
            validate_cursor_name(name), _validate_position(position, name="position")
        )

    def delete_cursor(self, name: str) -> None:
        self._do_delete_cursor(validate_cursor_name(name))

    @contextlib.contextmanager
    def event_listener(self) -> Iterator[EventListener]:
        """A listener for new events (see :class:`EventListener`); close it when done."""
        listener = self._do_event_listener()
        try:
            yield listener
        finally:
            listener.close()

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _do_append_event(
        self, type: str, subject: str, actor: str | None, payload: dict[str, Any]
    ) -> Event: ...
    @abc.abstractmethod
    def _do_read_events(
        self,
        after_id: int,
        types: list[str],
        subject: str | None,
        until_id: int | None,
        limit: int,
    ) -> list[Event]: ...
    @abc.abstractmethod
    def _do_last_event_id(self) -> int: ...
    @abc.abstractmethod
    def _do_get_cursor(self, name: str) -> EventCursor | None: ...
    @abc.abstractmethod
    def _do_list_cursors(self) -> list[EventCursor]: ...
    @abc.abstractmethod
    def _do_ack_event(self, name: str, event_id: int) -> None: ...
    @abc.abstractmethod
    def _do_set_cursor(self, name: str, position: int) -> EventCursor: ...
    @abc.abstractmethod
    def _do_delete_cursor(self, name: str) -> None: ...

    def _do_event_listener(self) -> EventListener:
        return PollingListener()
