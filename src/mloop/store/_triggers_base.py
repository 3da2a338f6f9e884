"""Trigger firings: one record per decision to run a pipeline, unique by an idempotency key.

A trigger (a schedule, a monitor alert, new data, a manual request) *fires* by recording a
:class:`TriggerFiring` under a key derived from what caused it (``alert:<event id>:<trigger>``,
``schedule:<trigger>:<due ms>``, ...). The key is unique in the store, so one cause fires once:
a second agent, or the same agent after a restart, that tries to record it gets
:class:`~mloop.errors.AlreadyExistsError`. The firing names the pipeline run it starts
(``run_id``, chosen before the run exists), so whoever finds a firing unfinished can tell
whether its run was started, is running, or ended.

A firing is held by one agent at a time through a lease (``owner``, ``lease_until_ms``):
:meth:`TriggerStoreMixin.claim_trigger_firing` takes it when it is free or its lease ran out,
and renews it for its holder; only the holder changes it. Recording a firing appends a
``trigger_fired`` event (subject ``pipelines/<pipeline>``) in the same transaction.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mloop.codec import WireEntity
from mloop.errors import InvalidInputError
from mloop.ids import RUN_ID_RE, now_ms
from mloop.store._checks_base import _int, _one_of, _text
from mloop.store._common import validate_max_results
from mloop.store._events_base import TRIGGER_EVENT_TYPES
from mloop.store._pipelines_base import MAX_ERROR, validate_pipeline_name

__all__ = [
    "FIRING_KINDS",
    "FIRING_STATUSES",
    "TRIGGER_EVENT_TYPES",
    "TriggerFiring",
    "TriggerStoreMixin",
    "validate_trigger_firing",
    "validate_trigger_name",
]

# What caused a firing: a cron ``schedule``, a monitor ``alert``, new ``data``, a ``manual`` request.
FIRING_KINDS: tuple[str, ...] = ("schedule", "alert", "data", "manual")
# ``pending``: recorded, its run not started yet; ``running``: its run started; then ``finished``
# or ``failed`` with the run (final).
FIRING_STATUSES: tuple[str, ...] = ("pending", "running", "finished", "failed")
_OPEN = ("pending", "running")

MAX_KEY = 255
MAX_OWNER = 255
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/=+-]*")


def validate_trigger_name(name: object, *, what: str = "trigger") -> str:
    """``name`` if it is 1 to 200 letters, digits and ``. _ -`` (a trigger is named like a
    pipeline)."""
    return validate_pipeline_name(name, what=what)


def _key(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_KEY or not _KEY.fullmatch(value):
        raise InvalidInputError(
            f"a firing's `key` must be 1 to {MAX_KEY} letters, digits and . _ : @ / = + - "
            f"(starting with a letter or digit); got {value!r}."
        )
    return value


def _owner(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_OWNER:
        raise InvalidInputError(
            f"`owner` must be a non-empty str of at most {MAX_OWNER} characters; got {value!r}."
        )
    return value


def _opt_run_id(value: object, *, what: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not RUN_ID_RE.fullmatch(value)):
        raise InvalidInputError(f"`{what}` must be 32 lowercase hex characters; got {value!r}.")
    return value


@dataclass(frozen=True)
class TriggerFiring(WireEntity):
    """One firing of a trigger: the pipeline run it starts and why.

    Attributes
    ----------
    key : str
        The idempotency key, unique in the store: what caused the firing.
    trigger : str
        The trigger's name.
    pipeline : str
        The pipeline it runs.
    kind : str
        One of :data:`FIRING_KINDS`.
    status : str
        One of :data:`FIRING_STATUSES`.
    run_id : str
        The pipeline run this firing starts (or, after a take-over, the run that resumes it).
    reason : str
        Why, in words (recorded with the pipeline run too).
    details : mapping
        Why, as JSON: the monitor, window, metric and value, columns, path, schedule time...
    created_ms, updated_ms : int
    owner : str or None
        The agent holding the firing (until ``lease_until_ms``).
    lease_until_ms : int
    resumed_from : str or None
        The run an agent that took the firing over resumed (its holder had stopped).
    error : str or None
        Why the run failed.
    actor : str or None
    """

    key: str
    trigger: str
    pipeline: str
    kind: str
    status: str
    run_id: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)
    created_ms: int = 0
    updated_ms: int = 0
    owner: str | None = None
    lease_until_ms: int = 0
    resumed_from: str | None = None
    error: str | None = None
    actor: str | None = None


def validate_trigger_firing(firing: object) -> TriggerFiring:
    """``firing`` if it is a well-formed :class:`TriggerFiring` (any status)."""
    if not isinstance(firing, TriggerFiring):
        raise InvalidInputError(f"`firing` must be a TriggerFiring; got {type(firing).__name__}.")
    f = firing
    _key(f.key)
    validate_trigger_name(f.trigger, what="firing.trigger")
    validate_pipeline_name(f.pipeline, what="firing.pipeline")
    _one_of(f.kind, FIRING_KINDS, what="firing.kind")
    _one_of(f.status, FIRING_STATUSES, what="firing.status")
    if _opt_run_id(f.run_id, what="firing.run_id") is None:
        raise InvalidInputError("`firing.run_id` must be 32 lowercase hex characters; got None.")
    _text(f.reason, what="firing.reason", limit=MAX_ERROR)
    if not isinstance(f.details, Mapping) or not all(isinstance(k, str) for k in f.details):
        raise InvalidInputError(
            f"`firing.details` must be a mapping with str keys; got {type(f.details).__name__}."
        )
    _int(f.created_ms, what="firing.created_ms", low=0)
    _int(f.updated_ms, what="firing.updated_ms", low=0)
    if f.owner is not None:
        _owner(f.owner)
    _int(f.lease_until_ms, what="firing.lease_until_ms", low=0)
    _opt_run_id(f.resumed_from, what="firing.resumed_from")
    _text(f.error, what="firing.error", limit=MAX_ERROR, optional=True)
    _text(f.actor, what="firing.actor", limit=255, optional=True)
    return f


class TriggerStoreMixin(abc.ABC):
    """Trigger firings: recorded once per key, held through a lease, announced in the event log."""

    def fire_trigger(self, firing: TriggerFiring) -> TriggerFiring:
        """Record a new ``pending`` firing (held by ``firing.owner`` until ``lease_until_ms``)
        and its ``trigger_fired`` event, in one transaction.

        Raises
        ------
        InvalidInputError
            Malformed, or not ``pending``.
        AlreadyExistsError
            A firing with this key exists: this cause has fired already (by whoever recorded it).
        """
        f = validate_trigger_firing(firing)
        if f.status != "pending" or f.error is not None or f.resumed_from is not None:
            raise InvalidInputError(
                f"a new firing must be 'pending' with no error or resumed_from; got status "
                f"{f.status!r}."
            )
        return self._do_fire_trigger(f)

    def claim_trigger_firing(
        self, key: str, *, owner: str, lease_ms: int, now_ms: int | None = None
    ) -> TriggerFiring | None:
        """Hold the unfinished firing ``key`` for ``owner`` until ``now_ms + lease_ms``.

        Succeeds when the firing has no holder, ``owner`` holds it (a renewal), or the holder's
        lease ended before ``now_ms``; returns the firing as held, or None when another holder's
        lease still runs or the firing is finished.

        Raises
        ------
        NotFoundError
            No firing has this key.
        """
        _key(key)
        _owner(owner)
        _int(lease_ms, what="lease_ms", low=1)
        now = _now(now_ms)
        return self._do_claim_trigger_firing(key, owner, now, now + lease_ms)

    def update_trigger_firing(
        self,
        key: str,
        *,
        owner: str,
        status: str,
        run_id: str | None = None,
        resumed_from: str | None = None,
        error: str | None = None,
    ) -> TriggerFiring:
        """Move a firing held by ``owner`` on: ``running`` (optionally onto a new ``run_id``
        that resumes ``resumed_from``), or to ``finished`` / ``failed`` (with ``error``), which
        also releases it.

        Raises
        ------
        NotFoundError
            No firing has this key.
        ConflictError
            ``owner`` does not hold it, or it is finished, or the move goes backwards.
        """
        _key(key)
        _owner(owner)
        _one_of(status, FIRING_STATUSES[1:], what="status")
        _opt_run_id(run_id, what="run_id")
        _opt_run_id(resumed_from, what="resumed_from")
        _text(error, what="error", limit=MAX_ERROR, optional=True)
        if (status == "failed") != (error is not None):
            raise InvalidInputError(
                f"`error` must be given exactly when `status` is 'failed'; got {error!r}."
            )
        if resumed_from is not None and run_id is None:
            raise InvalidInputError("`resumed_from` needs the `run_id` that resumes it.")
        return self._do_update_trigger_firing(key, owner, status, run_id, resumed_from, error)

    def get_trigger_firing(self, key: str) -> TriggerFiring:
        """The firing ``key`` (:class:`~mloop.errors.NotFoundError` when there is none)."""
        return self._do_get_trigger_firing(_key(key))

    def list_trigger_firings(
        self,
        *,
        trigger: str | None = None,
        status: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[TriggerFiring]:
        """Firings newest first, of one trigger or all; ``open_only``: pending or running."""
        if trigger is not None:
            validate_trigger_name(trigger)
        if status is not None:
            _one_of(status, FIRING_STATUSES, what="status")
        if not isinstance(open_only, bool):
            raise InvalidInputError(f"`open_only` must be a bool; got {open_only!r}.")
        validate_max_results(limit, name="limit")
        statuses = [status] if status is not None else list(_OPEN if open_only else ())
        if status is not None and open_only and status not in _OPEN:
            return []
        return self._do_list_trigger_firings(trigger, statuses, limit)

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _do_fire_trigger(self, firing: TriggerFiring) -> TriggerFiring: ...
    @abc.abstractmethod
    def _do_claim_trigger_firing(
        self, key: str, owner: str, now_ms: int, until_ms: int
    ) -> TriggerFiring | None: ...
    @abc.abstractmethod
    def _do_update_trigger_firing(
        self,
        key: str,
        owner: str,
        status: str,
        run_id: str | None,
        resumed_from: str | None,
        error: str | None,
    ) -> TriggerFiring: ...
    @abc.abstractmethod
    def _do_get_trigger_firing(self, key: str) -> TriggerFiring: ...
    @abc.abstractmethod
    def _do_list_trigger_firings(
        self, trigger: str | None, statuses: list[str], limit: int
    ) -> list[TriggerFiring]: ...


def _now(value: int | None) -> int:
    if value is None:
        return now_ms()
    return _int(value, what="now_ms", low=0)
