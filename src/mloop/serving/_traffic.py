"""Which model answers a request (main, canary), who watches in the shadow, and hot swap.

The :class:`Controller` holds one immutable :class:`Traffic` snapshot. A request reads the snapshot
once and finishes on the models it picked. A swap loads and verifies the new version in the
background and then replaces the snapshot in one assignment, so no request ever waits for a load or
sees a half-built state; a version that fails to load or to predict on its input example is not
swapped in, the old one keeps serving and the failure is recorded as an event.

The controller follows the event log: an alias moved (``alias_set``, ``alias_rollback``,
``alias_deleted``) on a model it serves, or its deployment changed (``deployment_*``), and it
re-resolves every URI it serves.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mloop.errors import InvalidInputError, MloopError
from mloop.registry import ModelRef, Registry, parse_model_uri
from mloop.store import Event, Follower

from ._model import ServedModel, load_served

__all__ = ["Controller", "ServeSpec", "Traffic"]

log = logging.getLogger("mloop.serving")

ALIAS_EVENTS = ("alias_set", "alias_rollback", "alias_deleted")
DEPLOYMENT_EVENTS = ("deployment_updated", "deployment_rollback", "deployment_deleted")


@dataclass(frozen=True)
class ServeSpec:
    """What to serve: the main model URI, optionally a canary share and a shadow."""

    model: str
    canary: str | None = None
    canary_percent: float = 0.0
    shadow: str | None = None
    sticky_key: str | None = None
    deployment: str | None = None
    revision: int | None = None

    def __post_init__(self) -> None:
        for uri in (self.model, self.canary, self.shadow):
            if uri is not None and not isinstance(parse_model_uri(uri), ModelRef):
                raise InvalidInputError(
                    f"serve registered models (models:/name@alias or models:/name/3); got {uri!r}."
                )
        pct = self.canary_percent
        if self.canary is not None and not 0 < pct < 100:
            raise InvalidInputError(f"a canary's share must be in (0, 100) percent; got {pct!r}.")

    @classmethod
    def from_deployment(cls, dep: Any) -> ServeSpec:
        return cls(
            model=dep.model,
            canary=dep.canary,
            canary_percent=float(dep.canary_percent or 0.0),
            shadow=dep.shadow,
            sticky_key=dep.sticky_key,
            deployment=dep.name,
            revision=dep.revision,
        )

    @property
    def models(self) -> set[str]:
        """The registered model names this spec serves."""
        out = set()
        for uri in (self.model, self.canary, self.shadow):
            if uri is not None:
                ref = parse_model_uri(uri)
                assert isinstance(ref, ModelRef)
                out.add(ref.name)
        return out

    @property
    def name(self) -> str:
        """The deployment's name, or the main model's (the inference log is filed under it)."""
        if self.deployment:
            return self.deployment
        ref = parse_model_uri(self.model)
        assert isinstance(ref, ModelRef)
        return ref.name


@dataclass(frozen=True, eq=False)
class Traffic:
    """One snapshot of what serves: never mutated, replaced whole on a swap."""

    spec: ServeSpec
    main: ServedModel
    canary: ServedModel | None = None
    shadow: ServedModel | None = None

    def pick(self, key: str | None = None, rnd: Callable[[], float] = random.random) -> ServedModel:
        """Main or canary: by the hash of ``key`` when given (sticky), else at random."""
        canary = self.canary
        if canary is None:
            return self.main
        if key is not None:
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            u = int.from_bytes(digest, "big") / 2.0**64
        else:
            u = rnd()
        return canary if u * 100.0 < self.spec.canary_percent else self.main

    def served(self) -> list[tuple[str, ServedModel]]:
        out = [("main", self.main)]
        if self.canary is not None:
            out.append(("canary", self.canary))
        if self.shadow is not None:
            out.append(("shadow", self.shadow))
        return out


class Controller:
    """Holds the traffic snapshot; loads, verifies and swaps models as the log says they moved."""

    def __init__(
        self,
        registry: Registry,
        spec: ServeSpec,
        *,
        on_swap: Callable[[str, ServedModel, ServedModel | None], None] | None = None,
        on_swap_failed: Callable[[str, str, BaseException], None] | None = None,
        poll_max_wait_s: float = 0.25,
        follow: bool = True,
        method: str | None = None,
    ) -> None:
        self.registry = registry
        self._method = method
        self.store = registry.store
        self._spec = spec
        self._lock = threading.Lock()  # one refresh at a time (the follower and manual calls)
        self._on_swap = on_swap
        self._on_swap_failed = on_swap_failed
        self._poll_max_wait_s = poll_max_wait_s
        self._follower: Follower | None = None
        self._cursor = f"serving.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self._follows = follow
        if follow:
            # The cursor is placed before the models are resolved, so that a move committed while
            # they load is replayed when following starts rather than missed.
            self.store.ack_event(self._cursor, self.store.last_event_id())
        try:
            self.traffic: Traffic = self._build(spec, None)
        except BaseException:
            if follow:
                self.store.delete_cursor(self._cursor)
            raise
        self.swaps = 0
        self.failed_swaps = 0

    # ------------------------------------------------------------------ loading
    def _load(self, uri: str | None, current: ServedModel | None, slot: str) -> ServedModel | None:
        if uri is None:
            return None
        if current is not None and current.uri == uri:
            mv = self.registry.resolve(uri)
            if mv.version == current.version.version and mv.name == current.version.name:
                return current
        return load_served(self.registry, uri, method=self._method)

    def _build(self, spec: ServeSpec, old: Traffic | None) -> Traffic:
        main = self._load(spec.model, old.main if old else None, "main")
        assert main is not None
        return Traffic(
            spec=spec,
            main=main,
            canary=self._load(spec.canary, old.canary if old else None, "canary"),
            shadow=self._load(spec.shadow, old.shadow if old else None, "shadow"),
        )

    def refresh(self, spec: ServeSpec | None = None) -> bool:
        """Re-resolve every URI (with a new spec, if given) and swap what moved; True if swapped.

        A load or smoke-test failure keeps the current traffic and is reported (and re-raised
        only to the follower's log line, never to a request).
        """
        with self._lock:
            old = self.traffic
            new_spec = spec or old.spec
            try:
                new = self._build(new_spec, old)
            except MloopError as exc:
                self.failed_swaps += 1
                log.error("mloop serve: kept %s: %s", old.main.label, exc)
                if self._on_swap_failed is not None:
                    self._on_swap_failed(new_spec.model, old.main.label, exc)
                return False
            changed = (
                new_spec != old.spec
                or any(
                    a is not b for (_, a), (_, b) in zip(new.served(), old.served(), strict=False)
                )
                or len(new.served()) != len(old.served())
            )
            if not changed:
                return False
            self.traffic = new  # the swap: one reference assignment
            self.swaps += 1
            for slot, model in new.served():
                before = getattr(old, slot)
                if before is not model and self._on_swap is not None:
                    self._on_swap(slot, model, before)
            return True

    # ------------------------------------------------------------------ following the log
    def _handle(self, event: Event) -> None:
        spec = self.traffic.spec
        if event.type in DEPLOYMENT_EVENTS:
            if spec.deployment is None or event.subject != f"deployments/{spec.deployment}":
                return
            if event.type == "deployment_deleted":
                log.warning(
                    "mloop serve: deployment %s was deleted; still serving %s",
                    spec.deployment,
                    self.traffic.main.label,
                )
                return
            dep = self.store.get_deployment(spec.deployment)
            self.refresh(ServeSpec.from_deployment(dep))
            return
        if event.subject.removeprefix("models/") in spec.models:
            self.refresh()

    def start(self) -> None:
        """Follow the log in a daemon thread, from where it ended before the models loaded."""
        if not self._follows:
            raise RuntimeError("this controller was made with follow=False")
        types = list(ALIAS_EVENTS)
        if self.traffic.spec.deployment is not None:
            types += list(DEPLOYMENT_EVENTS)
        self._follower = self.store.follow(
            self._cursor, types=types, start="end", max_wait_s=self._poll_max_wait_s
        )
        self._follower.start(self._handle)

    def stop(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.stop(timeout_s=5.0)
        if self._follows:
            try:
                self.store.delete_cursor(self._cursor)
            except MloopError as exc:  # the store went away first: the cursor is harmless
                log.debug("mloop serve: could not delete cursor %s: %s", self._cursor, exc)

    def with_spec(self, **changes: Any) -> ServeSpec:
        return replace(self.traffic.spec, **changes)
