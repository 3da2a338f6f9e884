"""REST API v1: one handler per :data:`mloop.store.http.ENDPOINTS` entry, by concept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mloop.server._v1._checks import HANDLERS as _CHECKS
from mloop.server._v1._deployments import HANDLERS as _DEPLOYMENTS
from mloop.server._v1._events import HANDLERS as _EVENTS
from mloop.server._v1._media import HANDLERS as _MEDIA
from mloop.server._v1._monitoring import HANDLERS as _MONITORING
from mloop.server._v1._pipelines import HANDLERS as _PIPELINES
from mloop.server._v1._registry import HANDLERS as _REGISTRY
from mloop.server._v1._runs import HANDLERS as _RUNS
from mloop.server._v1._serving import HANDLERS as _SERVING
from mloop.server._v1._triggers import HANDLERS as _TRIGGERS
from mloop.server._v1._webhooks import HANDLERS as _WEBHOOKS

__all__ = ["HANDLERS"]

HANDLERS: dict[str, Callable[..., Any]] = {
    **_RUNS,
    **_REGISTRY,
    **_WEBHOOKS,
    **_CHECKS,
    **_EVENTS,
    **_MONITORING,
    **_DEPLOYMENTS,
    **_PIPELINES,
    **_TRIGGERS,
    **_MEDIA,
    **_SERVING,
}
