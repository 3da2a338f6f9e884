"""Trigger firings: recorded, claimed and moved on through the store's public methods (which
validate again), with a firing's actor taken from the token once auth is on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mloop.server._context import actor_for
from mloop.store import Store, TriggerFiring

__all__ = ["HANDLERS"]


def _fire(s: Store, firing: TriggerFiring) -> TriggerFiring:
    actor = actor_for(firing.actor)
    if actor != firing.actor:
        firing = dataclasses.replace(firing, actor=actor)
    return s.fire_trigger(firing)


HANDLERS: dict[str, Callable[..., Any]] = {
    "fire_trigger": _fire,
    "claim_trigger_firing": lambda s, key, owner, lease_ms, now_ms=None: s.claim_trigger_firing(
        key, owner=owner, lease_ms=lease_ms, now_ms=now_ms
    ),
    "update_trigger_firing": lambda s, key, owner, status, run_id=None, resumed_from=None, error=None: (
        s.update_trigger_firing(
            key, owner=owner, status=status, run_id=run_id, resumed_from=resumed_from, error=error
        )
    ),
    "get_trigger_firing": lambda s, key: s.get_trigger_firing(key),
    "list_trigger_firings": lambda s, trigger, status, open_only, limit: s.list_trigger_firings(
        trigger=trigger,
        status=status,
        open_only=bool(open_only),
        limit=100 if limit is None else limit,
    ),
}
