"""The agent: follows the event log, runs monitors on their windows, fires triggers, runs pipelines.

One pass (:meth:`Agent.run_once`):

1. each monitor evaluates the windows of its deployment's inference log complete by ``now``
   (results and alerts go to the store, alerts as ``monitor_alert`` events);
2. new events are read through the agent's durable cursor ``agent-<name>``: alerts that match an
   :class:`~mloop.pipelines.OnAlert` and manual requests (``trigger_requested``) fire triggers;
3. schedules due since the last pass and new data fire theirs;
4. every unfinished firing of the agent's triggers is run.

Idempotency. A firing is recorded (:meth:`Store.fire_trigger`) under a key that only its cause
determines — ``alert:<trigger>:<monitor>:w<window start ms>``, ``schedule:<trigger>:<due ms>``,
``data:<trigger>:<files digest>``, ``manual:<trigger>:<event id>`` — *before* the event cursor
moves and before the run starts, and it names the pipeline run it will start. The key is unique in
the store, so a second agent, or the same one restarted, cannot fire that cause again. A firing is
run by whoever holds its lease (renewed while the run lasts): a restarted agent finds the firings
its predecessor left unfinished once their lease runs out and finishes them — it starts the run if
it never started, resumes it (:func:`mloop.pipelines.resume`: finished steps are reused) if it was
cut off midway, or only records the outcome if the run ended.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from mloop.config import Settings
from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from mloop.ids import new_id
from mloop.loop._reasons import _to_ms, alert_details, data_details, schedule_details
from mloop.monitoring import InferenceMonitor
from mloop.pipelines import (
    OnAlert,
    OnNewData,
    OnSchedule,
    PipelineFailedError,
    Trigger,
    resume,
    run,
)
from mloop.pipelines import snapshot_key as _snapshot_key
from mloop.store import Event, Store, TriggerFiring

__all__ = ["Agent"]

_log = logging.getLogger("mloop.loop")
_LOST = "the agent running it stopped before it ended (its lease ran out)"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


class Agent:
    """Closes the loop: monitors → alerts → triggers → pipeline runs, each firing recorded once.

    Parameters
    ----------
    monitors : sequence of InferenceMonitor
        Polled at each pass up to ``now`` (each keeps its own position in the store).
    triggers : sequence of Trigger
        What to run, and when (names unique).
    store, blobstore : optional
        Where records and artifacts go (default: the environment's, as ``settings`` says).
    name : str, default "agent"
        Names the agent's event cursor (``agent-<name>``) and schedule cursors. Agents with
        different names each see every event; firings stay unique across them all.
    lease_s : float, default 60
        How long a firing stays held without a renewal; the holder renews it every third of
        that while its run lasts. A restarted agent takes over its predecessor's unfinished
        firings once their lease has run out.
    clock : callable, default time.time
        The wall clock (seconds) for leases. ``run_once(now_ms=...)`` sets the *loop's* time
        (windows, schedules), which a replay drives; leases always use this clock.
    settings, actor, track :
        Passed to :func:`mloop.pipelines.run` (``track``: a tracking run per pipeline run).

    Examples
    --------
    >>> from mloop.loop import Agent                                          # doctest: +SKIP
    >>> from mloop.pipelines import OnAlert, Trigger
    >>> agent = Agent(monitors=[mon], triggers=[Trigger("retrain",
    ...     on=OnAlert(monitor="churn", kinds=("data_drift", "performance")),
    ...     pipeline=retrain, params={"model": "churn"})], store=store, blobstore=blobs)
    >>> for f in agent.run_once():                                            # doctest: +SKIP
    ...     print(f.trigger, f.status, f.run_id, f.reason)
    """

    def __init__(
        self,
        *,
        monitors: Sequence[InferenceMonitor] = (),
        triggers: Sequence[Trigger],
        store: Store | None = None,
        blobstore: Any = None,
        name: str = "agent",
        lease_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        settings: Settings | None = None,
        actor: str | None = None,
        track: bool = True,
    ) -> None:
        from mloop.store import validate_trigger_name

        for m in monitors:
            if not isinstance(m, InferenceMonitor):
                raise InvalidInputError(
                    f"`monitors` must be InferenceMonitor instances; got {type(m).__name__}."
                )
        if isinstance(triggers, Trigger) or not all(isinstance(t, Trigger) for t in triggers):
            raise InvalidInputError(f"`triggers` must be a list of Trigger; got {triggers!r}.")
        by_name: dict[str, Trigger] = {}
        for t in triggers:
            if t.name in by_name:
                raise InvalidInputError(f"two triggers are named {t.name!r}; names are unique.")
            by_name[t.name] = t
        if isinstance(lease_s, bool) or not isinstance(lease_s, (int, float)) or lease_s <= 0:
            raise InvalidInputError(f"`lease_s` must be a number of seconds > 0; got {lease_s!r}.")
        self.name = validate_trigger_name(name, what="agent name")
        self.settings = settings or Settings.from_env()
        if store is None:
            from mloop.store import open_store

            store = open_store(self.settings)
        if blobstore is None:
            from mloop.artifacts import BlobStore

            blobstore = BlobStore(self.settings.artifact_uri, token=self.settings.token)
        self.store = store
        self.blobstore = blobstore
        self.monitors = list(monitors)
        self.triggers = by_name
        self.lease_ms = max(1, int(lease_s * 1000))
        self.clock = clock
        self.actor = actor or f"agent:{self.name}"
        self.track = track
        self.owner = f"{self.name}/{new_id()[:12]}"  # this process; a restart is another owner
        self.cursor_name = f"agent-{self.name}"
        # The cursor is written by the first pass, at the log's head as of now: making an agent
        # writes nothing (and `mloop agent run` has its signal handlers in place before the
        # cursor appears), and an event appended after this line is still seen.
        self._follower: Any = None
        self._start_id = store.last_event_id()
        self._stop = threading.Event()
        # Called after a firing is recorded and before its run starts (tests make an agent die
        # exactly there); None in normal use.
        self._after_firing: Callable[[TriggerFiring], None] | None = None

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, triggers={list(self.triggers)})"

    # ------------------------------------------------------------------ one pass
    def run_once(self, now_ms: int | None = None) -> list[TriggerFiring]:
        """One pass of the loop at ``now_ms`` (default: now); returns the firings it recorded or
        ran, as they ended (``finished`` or ``failed``; ``pending``/``running`` when another
        agent holds them)."""
        now = self._now_ms() if now_ms is None else _ms(now_ms)
        for mon in self.monitors:
            mon.poll(until=now - mon.lateness_ms)
        touched: dict[str, TriggerFiring] = {}
        if self._follower is None:
            if self.store.get_cursor(self.cursor_name) is None:  # a new agent: from its start
                self.store.ack_event(self.cursor_name, self._start_id)
            self._follower = self.store.follow(
                self.cursor_name, types=["monitor_alert", "trigger_requested"], start="end"
            )
        self._follower.poll(lambda e: self._on_event(e, touched))
        for t in self.triggers.values():
            if isinstance(t.on, OnSchedule):
                self._check_schedule(t, t.on, now, touched)
            elif isinstance(t.on, OnNewData):
                self._check_data(t, t.on, touched)
        for f in self.store.list_trigger_firings(open_only=True, limit=1000)[::-1]:
            if f.trigger in self.triggers:
                touched[f.key] = self._execute(f)
        return list(touched.values())

    def fire(
        self, trigger: str, *, reason: str | None = None, run_now: bool = True
    ) -> TriggerFiring:
        """Fire ``trigger`` by hand (a new firing each call) and, with ``run_now``, run it."""
        t = self._trigger(trigger)
        key = f"manual:{t.name}:{new_id()}"
        f = self._record(t, key, reason or "manual request", {"kind": "manual"})
        if f is None:  # a fresh key cannot exist
            raise AlreadyExistsError(f"trigger firing {key!r} already exists.")
        return self._execute(f) if run_now else f

    def request(self, trigger: str, *, reason: str | None = None) -> Event:
        """Ask the agent(s) to fire ``trigger`` at their next pass (a ``trigger_requested``
        event; what ``mloop agent trigger`` does)."""
        return request_trigger(self.store, trigger, reason=reason, actor=self.actor)

    # ------------------------------------------------------------------ running for good
    def run_forever(self, interval_s: float = 30.0, *, max_passes: int | None = None) -> int:
        """Run a pass every ``interval_s`` seconds until SIGTERM or SIGINT (or :meth:`stop`).

        A signal lets the pass under way finish (its pipeline runs end and are recorded), then
        returns. A pass that fails is logged and the next one comes at its time. Returns the
        number of passes made.
        """
        if (
            isinstance(interval_s, bool)
            or not isinstance(interval_s, (int, float))
            or interval_s <= 0
        ):
            raise InvalidInputError(
                f"`interval_s` must be a number of seconds > 0; got {interval_s!r}."
            )
        self._stop.clear()
        passes = 0
        with self._signals():
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    self.run_once()
                except Exception:
                    _log.exception(
                        "mloop agent %s: a pass failed; the next one runs at its time", self.name
                    )
                passes += 1
                if max_passes is not None and passes >= max_passes:
                    break
                self._stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
        return passes

    def stop(self) -> None:
        """Make :meth:`run_forever` return after the pass under way."""
        self._stop.set()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            _log.info("mloop agent %s: signal %s, stopping after this pass", self.name, signum)
            self._stop.set()

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def status(self) -> dict[str, Any]:
        """The agent's cursor position, the log's head, its monitors' positions and its
        triggers' latest firings (what ``mloop agent status`` shows)."""
        return agent_status(
            self.store, self.name, triggers=list(self.triggers), monitors=self.monitors
        )

    # ------------------------------------------------------------------ causes -> firings
    def _on_event(self, event: Event, touched: dict[str, TriggerFiring]) -> None:
        if event.type == "trigger_requested":
            name = event.subject.partition("/")[2]
            t = self.triggers.get(name)
            if t is not None:
                reason = str(event.payload.get("reason") or "manual request")
                details = {"kind": "manual", "event_id": event.id, "requested_by": event.actor}
                f = self._record(t, f"manual:{t.name}:{event.id}", reason, details)
                if f is not None:
                    touched[f.key] = f
            return
        payload = event.payload
        for t in self.triggers.values():
            if not isinstance(t.on, OnAlert) or not t.on.matches(payload):
                continue
            key = alert_key(t.name, payload)
            with contextlib.suppress(NotFoundError):
                if self.store.get_trigger_firing(key) is not None:
                    continue  # the window's other alerts were part of this firing
            reason, details = alert_details(self.store, event, t.on)
            f = self._record(t, key, reason, details)
            if f is not None:
                touched[f.key] = f

    def _check_schedule(
        self, t: Trigger, on: OnSchedule, now: int, touched: dict[str, TriggerFiring]
    ) -> None:
        cursor = f"agent-{self.name}-schedule-{t.name}"
        stored = self.store.get_cursor(cursor)
        if stored is None:  # a new schedule starts now: nothing is due from the past
            self.store.ack_event(cursor, now)
            return
        due = on.latest_due(stored.position, now)
        if due is not None:
            reason, details = schedule_details(on, due)
            f = self._record(t, f"schedule:{t.name}:{due}", reason, details)
            if f is not None:
                touched[f.key] = f
        if now > stored.position:
            self.store.ack_event(cursor, now)

    def _check_data(self, t: Trigger, on: OnNewData, touched: dict[str, TriggerFiring]) -> None:
        files = on.snapshot()
        seen: Mapping[str, str] = {}
        for f in self.store.list_trigger_firings(trigger=t.name, limit=100):
            if f.kind == "data":
                seen = f.details.get("files") or {}
                break
        if not any(seen.get(path) != fp for path, fp in files.items()):
            return  # nothing appeared or changed (a file removed fires nothing)
        reason, details = data_details(on, files, seen)
        fired = self._record(t, _snapshot_key(t.name, files), reason, details)
        if fired is not None:
            touched[fired.key] = fired

    def _record(
        self, t: Trigger, key: str, reason: str, details: dict[str, Any]
    ) -> TriggerFiring | None:
        """Record a firing held by this agent; None when the cause has fired already."""
        firing = TriggerFiring(
            key=key, trigger=t.name, pipeline=t.pipeline_name, kind=t.kind, status="pending",
            run_id=new_id(), reason=reason[:8000], details=details, owner=self.owner,
            lease_until_ms=self._now_ms() + self.lease_ms, actor=self.actor,
        )  # fmt: skip
        try:
            recorded = self.store.fire_trigger(firing)
        except AlreadyExistsError:
            return None
        _log.info("mloop agent %s: fired %s (%s): %s", self.name, t.name, key, reason)
        return recorded

    # ------------------------------------------------------------------ firings -> runs
    def _execute(self, f: TriggerFiring) -> TriggerFiring:
        held = self.store.claim_trigger_firing(
            f.key, owner=self.owner, lease_ms=self.lease_ms, now_ms=self._now_ms()
        )
        if held is None:  # another agent holds it (or it just ended)
            return self.store.get_trigger_firing(f.key)
        with self._heartbeat(held.key):
            return self._advance(held)

    def _advance(self, f: TriggerFiring) -> TriggerFiring:
        t = self.triggers[f.trigger]
        if self._after_firing is not None:
            self._after_firing(f)
        try:
            prior = self.store.get_pipeline_run(f.run_id)
        except NotFoundError:
            prior = None
        if prior is not None and prior.status != "running":
            error = None if prior.status == "finished" else (prior.error or "the run failed")
            return self._end(f, prior.status, error)
        resumed_from = f.resumed_from
        run_id = f.run_id
        if prior is not None:  # cut off midway: its holder stopped; resume it under a new id
            resumed_from, run_id = prior.id, new_id()
            f = self.store.update_trigger_firing(
                f.key, owner=self.owner, status="running", run_id=run_id, resumed_from=resumed_from
            )
        elif f.status == "pending":
            f = self.store.update_trigger_firing(f.key, owner=self.owner, status="running")
        pdef = t.load()
        options: dict[str, Any] = {
            "store": self.store, "blobs": self.blobstore, "settings": self.settings,
            "executor": t.executor, "actor": self.actor, "track": self.track, "run_id": run_id,
        }  # fmt: skip
        try:
            if resumed_from is not None:
                self._close_lost(resumed_from)
                resume(resumed_from, pipeline=pdef, reason=f.reason, **options)
            else:
                params = dict(t.params)
                if "trigger" in pdef.signature.parameters:
                    params["trigger"] = describe_firing(f)
                run(pdef, params=params, trigger=f.kind, reason=f.reason, **options)
        except PipelineFailedError as exc:
            return self._end(f, "failed", str(exc))
        return self._end(f, "finished", None)

    def _close_lost(self, run_id: str) -> None:
        """Mark a run whose agent died under it ``failed``, and its tracking run ``killed`` (it
        would otherwise stay ``running`` for good)."""
        try:
            old = self.store.get_pipeline_run(run_id)
        except NotFoundError:
            return
        if old.status == "running":
            self.store.finish_pipeline_run(run_id, status="failed", error=_LOST)
        if old.tracking_run_id is not None:
            with contextlib.suppress(NotFoundError):  # the run died before its first flush
                if self.store.get_run(old.tracking_run_id).status == "running":
                    self.store.update_run(
                        old.tracking_run_id, status="killed", end_ms=int(time.time() * 1000)
                    )

    def _end(self, f: TriggerFiring, status: str, error: str | None) -> TriggerFiring:
        return self.store.update_trigger_firing(
            f.key, owner=self.owner, status=status, error=None if error is None else error[:8000]
        )

    @contextlib.contextmanager
    def _heartbeat(self, key: str) -> Iterator[None]:
        """Renew the lease on ``key`` every third of it while the body runs."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.lease_ms / 3000):
                try:
                    if (
                        self.store.claim_trigger_firing(
                            key, owner=self.owner, lease_ms=self.lease_ms, now_ms=self._now_ms()
                        )
                        is None
                    ):
                        _log.warning("mloop agent %s: lost the lease on %s", self.name, key)
                        return
                except Exception:
                    _log.exception(
                        "mloop agent %s: renewing the lease on %s failed", self.name, key
                    )

        thread = threading.Thread(target=renew, name=f"mloop-agent-lease-{key}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def _trigger(self, name: str) -> Trigger:
        if name not in self.triggers:
            raise NotFoundError(
                f"the agent has no trigger {name!r}; it has {sorted(self.triggers)}."
            )
        return self.triggers[name]

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)


def alert_key(trigger: str, payload: Mapping[str, Any]) -> str:
    """The firing key of an alert: the trigger, the monitor and the window's start (ms).

    The window, not the stored result, is the cause: two agents running the same monitor each
    record a result (and alerts) for a window, and both must arrive at one key. A payload without
    a readable window start falls back to its result id.
    """
    start = _to_ms(payload.get("window_start"))
    where = f"w{start}" if start is not None else f"r{payload.get('result_id')}"
    return f"alert:{trigger}:{payload.get('monitor')}:{where}"


def describe_firing(f: TriggerFiring) -> dict[str, Any]:
    """What a pipeline's ``trigger`` parameter receives: the firing as a JSON dict."""
    return {
        **dict(f.details),
        "kind": f.kind,
        "trigger": f.trigger,
        "key": f.key,
        "reason": f.reason,
        "event_id": f.details.get("event_id"),
    }


def request_trigger(
    store: Store, trigger: str, *, reason: str | None = None, actor: str | None = None
) -> Event:
    """Append a ``trigger_requested`` event for ``trigger``: the next pass of every agent that
    has a trigger of that name fires it once."""
    from mloop.store import validate_trigger_name

    validate_trigger_name(trigger)
    if reason is not None and not isinstance(reason, str):
        raise InvalidInputError(f"`reason` must be a str; got {reason!r}.")
    return store.append_event(
        "trigger_requested", f"triggers/{trigger}", actor=actor, payload={"reason": reason}
    )


def agent_status(
    store: Store,
    name: str = "agent",
    *,
    triggers: Sequence[str] | None = None,
    monitors: Sequence[InferenceMonitor] = (),
    limit: int = 10,
) -> dict[str, Any]:
    """An agent's cursor position against the log's head, its monitors' positions, and the
    latest firings (of ``triggers``, or all)."""
    cursor = store.get_cursor(f"agent-{name}")
    firings = store.list_trigger_firings(limit=1000 if triggers else limit)
    if triggers is not None:
        firings = [f for f in firings if f.trigger in triggers][:limit]
    return {
        "agent": name,
        "cursor": None if cursor is None else cursor.position,
        "cursor_updated_ms": None if cursor is None else cursor.updated_ms,
        "head": store.last_event_id(),
        "monitors": {
            m.name: None if m.position_ms is None else _iso(m.position_ms) for m in monitors
        },
        "open_firings": len(store.list_trigger_firings(open_only=True, limit=1000)),
        "firings": [f.to_dict() for f in firings],
    }


def _ms(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(
            f"`now_ms` must be an int >= 0 (ms since the epoch); got {value!r}."
        )
    return value
