"""Deployments: named endpoints over registered models, created and changed through the registry.

The store keeps a deployment's spec, its revisions and the events of every change (see
:class:`mloop.store.Deployment`); this service adds what needs the registry: each model URI must
resolve to a registered version when it is set (an alias stays an alias: the server resolves it
and follows it as it moves), URIs are written in canonical form (``models:/churn/v3`` ->
``models:/churn/3``), a canary can be given as ``URI:10%``, and serve options in ``config`` are
checked against what ``mloop serve`` understands.
"""

from __future__ import annotations

import builtins
import collections
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mloop.codec import WireEntity
from mloop.errors import InvalidInputError, MloopError, NotFoundError
from mloop.registry import ModelRef, Registry, parse_model_uri
from mloop.store import (
    UNSET,
    Deployment,
    DeploymentRevision,
    Event,
    Store,
    validate_deployment_name,
)

__all__ = [
    "CONFIG_KEYS",
    "DeploymentStatus",
    "Deployments",
    "ResolvedModel",
    "parse_canary",
]

SERVING_EVENTS = ("serving_swapped", "serving_swap_failed")
_CANARY = re.compile(r"(?P<uri>.+):(?P<percent>[0-9]+(?:\.[0-9]+)?)%?")


def _number(name: str, *, low: float, high: float = math.inf, closed: bool = True) -> Any:
    def check(v: Any) -> float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if ok and (low <= v <= high if closed else low < v <= high):
            return v
        bounds = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g}]"
        raise InvalidInputError(f"config `{name}` must be a number in {bounds}; got {v!r}.")

    return check


def _count(name: str) -> Callable[[Any], Any]:
    def check(v: Any) -> int | None:
        if v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            return v
        raise InvalidInputError(f"config `{name}` must be an int >= 1 (or null); got {v!r}.")

    return check


def _flag(name: str) -> Callable[[Any], Any]:
    def check(v: Any) -> bool:
        if isinstance(v, bool):
            return v
        raise InvalidInputError(f"config `{name}` must be true or false; got {v!r}.")

    return check


# The serve options a deployment's ``config`` may set: the fields of ``ServeOptions`` that belong
# to a deployment rather than to one server process (a test keeps the two in step).
CONFIG_KEYS: dict[str, Callable[[Any], Any]] = {
    "log_sample": _number("log_sample", low=0.0, high=1.0),
    "max_batch_size": _count("max_batch_size"),
    "max_wait_ms": _number("max_wait_ms", low=0.0),
    "max_queue_rows": _count("max_queue_rows"),
    "timeout_s": _number("timeout_s", low=0.0, closed=False),
    "max_body_bytes": _count("max_body_bytes"),
    "log_flush_rows": _count("log_flush_rows"),
    "log_flush_interval_s": _number("log_flush_interval_s", low=0.0, closed=False),
    "shadow_queue": _count("shadow_queue"),
    "verify": _flag("verify"),
}


def parse_canary(spec: str) -> tuple[str, float]:
    """Split a canary given as ``URI:PERCENT%`` (``models:/churn@challenger:10%``).

    Examples
    --------
    >>> parse_canary("models:/churn@challenger:10%")
    ('models:/churn@challenger', 10.0)
    >>> parse_canary("models:/churn/4:2.5")
    ('models:/churn/4', 2.5)
    """
    m = _CANARY.fullmatch(spec) if isinstance(spec, str) else None
    if m is None or not m.group("uri").startswith("models:/"):
        raise InvalidInputError(
            "a canary is a model URI and its share of the traffic, URI:PERCENT% "
            f"(e.g. models:/churn@challenger:10%); got {spec!r}."
        )
    percent = float(m.group("percent"))
    if not 0 < percent < 100:
        raise InvalidInputError(
            f"a canary's share must be in (0, 100) percent; got {m.group('percent')}% in {spec!r}."
        )
    return m.group("uri"), percent


@dataclass(frozen=True)
class ResolvedModel(WireEntity):
    """What one URI of a deployment names now: a version, or why it does not resolve."""

    slot: str
    uri: str
    version: int | None
    error: str | None = None


@dataclass(frozen=True)
class DeploymentStatus(WireEntity):
    """A deployment, the versions its URIs resolve to now, and the last swaps servers reported."""

    deployment: Deployment
    resolved: tuple[ResolvedModel, ...]
    events: tuple[Event, ...]


class Deployments:
    """Create, change, roll back and inspect deployments.

    Parameters
    ----------
    registry : Registry, optional
        Where model URIs are resolved (and whose store holds the deployments); its ``actor`` is
        recorded as the author of every change. Default: ``Registry()`` from the environment.

    Examples
    --------
    >>> deployments = Deployments()                                            # doctest: +SKIP
    >>> deployments.create("churn-api", model="models:/churn@champion",
    ...                    canary="models:/churn@challenger:10%")              # doctest: +SKIP
    >>> deployments.set("churn-api", canary=None, reason="challenger promoted")  # doctest: +SKIP
    """

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry()

    @property
    def store(self) -> Store:
        return self.registry.store

    # ------------------------------------------------------------------ checks
    def _uri(self, uri: Any, *, slot: str) -> str:
        """``uri`` in canonical form, after checking that it names a registered version now."""
        if not isinstance(uri, str):
            raise InvalidInputError(f"the {slot} model URI must be a str; got {uri!r}.")
        ref = parse_model_uri(uri)
        if not isinstance(ref, ModelRef):
            raise InvalidInputError(
                f"a deployment serves registered models (models:/NAME@ALIAS, models:/NAME/3 or "
                f"models:/NAME/latest); the {slot} model is a run artifact: {uri!r}. Register it "
                "first (mloop.register_model)."
            )
        canonical = str(ref)
        try:
            self.registry.resolve(canonical)
        except NotFoundError as exc:
            raise NotFoundError(
                f"the {slot} model {canonical} does not resolve to a registered version: "
                f"{exc.message}"
            ) from None
        return canonical

    def _canary(self, canary: Any, canary_percent: Any) -> tuple[str | None, float | None]:
        """(URI, percent) from ``URI:P%`` or from a URI and ``canary_percent``."""
        if canary is None:
            if canary_percent not in (None, 0, 0.0):
                raise InvalidInputError(
                    f"`canary_percent` needs a canary; got {canary_percent!r} without one."
                )
            return None, None
        if isinstance(canary, str) and _CANARY.fullmatch(canary) and canary.count(":") > 1:
            uri, percent = parse_canary(canary)
            if canary_percent is not None and float(canary_percent) != percent:
                raise InvalidInputError(
                    f"the canary's share is given twice: {canary!r} and canary_percent="
                    f"{canary_percent!r}. Give it once."
                )
            return self._uri(uri, slot="canary"), percent
        return self._uri(canary, slot="canary"), canary_percent

    @staticmethod
    def check_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
        """``config`` with every key a known serve option and every value of its type."""
        if config is None:
            return {}
        if not isinstance(config, Mapping):
            raise InvalidInputError(
                f"`config` must be a mapping of serve options; got {type(config).__name__}."
            )
        out = {}
        for key, value in config.items():
            check = CONFIG_KEYS.get(key)
            if check is None:
                raise InvalidInputError(
                    f"unknown serve option {key!r} in `config`; known: {sorted(CONFIG_KEYS)}."
                )
            out[key] = check(value)
        return out

    # ------------------------------------------------------------------ changes
    def create(
        self,
        name: str,
        *,
        model: str,
        canary: str | None = None,
        canary_percent: float | None = None,
        shadow: str | None = None,
        sticky_key: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Create deployment ``name``; every URI must resolve now.

        ``canary`` is ``URI:PERCENT%`` or a URI with ``canary_percent``.
        """
        validate_deployment_name(name)
        main = self._uri(model, slot="main")
        canary_uri, percent = self._canary(canary, canary_percent)
        if canary_uri is not None and percent is None:
            raise InvalidInputError(
                f"the canary {canary_uri} needs its share of the traffic: URI:PERCENT% "
                "(e.g. models:/churn@challenger:10%) or canary_percent."
            )
        return self.store.create_deployment(
            name,
            model=main,
            canary=canary_uri,
            canary_percent=0.0 if percent is None else percent,
            shadow=None if shadow is None else self._uri(shadow, slot="shadow"),
            sticky_key=sticky_key,
            config=self.check_config(config),
            actor=self.registry.actor,
        )

    def set(
        self,
        name: str,
        *,
        model: Any = UNSET,
        canary: Any = UNSET,
        canary_percent: Any = UNSET,
        shadow: Any = UNSET,
        sticky_key: Any = UNSET,
        config: Any = UNSET,
        reason: str | None = None,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Change the given fields as one new revision (``None`` removes a canary or shadow).

        ``config`` entries are merged into the current ones (a ``None`` value removes a key).
        """
        validate_deployment_name(name)
        changes: dict[str, Any] = {}
        if model is not UNSET:
            changes["model"] = self._uri(model, slot="main")
        if canary is not UNSET:
            uri, percent = self._canary(canary, None if canary_percent is UNSET else canary_percent)
            changes["canary"] = uri
            if percent is not None:
                changes["canary_percent"] = percent
        elif canary_percent is not UNSET:
            changes["canary_percent"] = canary_percent
        if shadow is not UNSET:
            changes["shadow"] = None if shadow is None else self._uri(shadow, slot="shadow")
        if sticky_key is not UNSET:
            changes["sticky_key"] = sticky_key
        if config is not UNSET:
            if config is not None and not isinstance(config, Mapping):
                raise InvalidInputError(
                    f"`config` must be a mapping of serve options; got {type(config).__name__}."
                )
            current = dict(self.store.get_deployment(name).config)
            for key, value in (config or {}).items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
            changes["config"] = self.check_config(current)
        return self.store.update_deployment(
            name,
            **changes,
            actor=self.registry.actor,
            reason=reason,
            expected_revision=expected_revision,
        )

    def rollback(
        self, name: str, *, to_revision: int | None = None, reason: str | None = None
    ) -> Deployment:
        """Restore the spec of ``to_revision`` (default: the previous one) as a new revision."""
        return self.store.rollback_deployment(
            name, to_revision=to_revision, actor=self.registry.actor, reason=reason
        )

    def delete(self, name: str, *, reason: str | None = None) -> None:
        self.store.delete_deployment(name, actor=self.registry.actor, reason=reason)

    # ------------------------------------------------------------------ reading
    def get(self, name: str) -> Deployment:
        return self.store.get_deployment(name)

    def list(self) -> builtins.list[Deployment]:
        return self.store.list_deployments()

    def revisions(self, name: str) -> builtins.list[DeploymentRevision]:
        return self.store.list_deployment_revisions(name)

    def resolve(self, deployment: Deployment) -> tuple[ResolvedModel, ...]:
        """The version each URI of ``deployment`` names now (or why it names none)."""
        out = []
        for slot, uri in (
            ("main", deployment.model),
            ("canary", deployment.canary),
            ("shadow", deployment.shadow),
        ):
            if uri is None:
                continue
            try:
                mv = self.registry.resolve(uri)
            except MloopError as exc:
                out.append(ResolvedModel(slot, uri, None, exc.message))
            else:
                out.append(ResolvedModel(slot, uri, mv.version))
        return tuple(out)

    def status(self, name: str, *, last_events: int = 10) -> DeploymentStatus:
        """The deployment, what its URIs resolve to now, and the last ``last_events`` swaps
        (``serving_swapped``/``serving_swap_failed``) its servers recorded."""
        if isinstance(last_events, bool) or not isinstance(last_events, int) or last_events < 0:
            raise InvalidInputError(f"`last_events` must be an int >= 0; got {last_events!r}.")
        dep = self.store.get_deployment(name)
        events: collections.deque[Event] = collections.deque(maxlen=max(last_events, 1))
        after = 0
        while last_events:
            page = self.store.read_events(
                after_id=after, types=SERVING_EVENTS, subject=dep.subject, limit=1000
            )
            events.extend(page)
            if len(page) < 1000:
                break
            after = page[-1].id
        return DeploymentStatus(
            deployment=dep,
            resolved=self.resolve(dep),
            events=tuple(events) if last_events else (),
        )
