"""Trigger firings over HTTP: a firing travels whole in the wire codec's form and is validated
again by the server's store, which holds the unique key and the lease (role ``write`` to fire,
claim or update, ``read`` to read)."""

from __future__ import annotations

from typing import Any

from mloop.store._http._endpoint import Endpoint
from mloop.store._triggers_base import TriggerFiring

__all__ = ["TRIGGER_ENDPOINTS", "HttpTriggersMixin"]

_E = Endpoint
TRIGGER_ENDPOINTS: tuple[Endpoint, ...] = (
    _E("fire_trigger", "POST", "/trigger-firings", {"firing": TriggerFiring}, TriggerFiring,
       summary="Record a new firing of a trigger (once per key) and its trigger_fired event"),
    _E("claim_trigger_firing", "POST", "/trigger-firings/claim",
       {"key": str, "owner": str, "lease_ms": int, "now_ms": int | None}, TriggerFiring | None,
       summary="Hold an unfinished firing for a while (free, own, or its lease ran out)"),
    _E("update_trigger_firing", "POST", "/trigger-firings/update",
       {"key": str, "owner": str, "status": str, "run_id": str | None,
        "resumed_from": str | None, "error": str | None}, TriggerFiring,
       summary="Move a held firing on (running, finished, failed)"),
    _E("get_trigger_firing", "GET", "/trigger-firings/by-key", {"key": str}, TriggerFiring,
       summary="One firing"),
    _E("list_trigger_firings", "GET", "/trigger-firings",
       {"trigger": str | None, "status": str | None, "open_only": bool | None,
        "limit": int | None}, list[TriggerFiring],
       summary="Firings, newest first"),
)  # fmt: skip


class HttpTriggersMixin:
    """Trigger firings, each hook one request."""

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    def _do_fire_trigger(self, firing: TriggerFiring) -> TriggerFiring:
        return self._call("fire_trigger", firing=firing)

    def _do_claim_trigger_firing(
        self, key: str, owner: str, now_ms: int, until_ms: int
    ) -> TriggerFiring | None:
        return self._call(
            "claim_trigger_firing", key=key, owner=owner, lease_ms=until_ms - now_ms, now_ms=now_ms
        )

    def _do_update_trigger_firing(
        self,
        key: str,
        owner: str,
        status: str,
        run_id: str | None,
        resumed_from: str | None,
        error: str | None,
    ) -> TriggerFiring:
        return self._call(
            "update_trigger_firing", key=key, owner=owner, status=status, run_id=run_id,
            resumed_from=resumed_from, error=error,
        )  # fmt: skip

    def _do_get_trigger_firing(self, key: str) -> TriggerFiring:
        return self._call("get_trigger_firing", key=key)

    def _do_list_trigger_firings(
        self, trigger: str | None, statuses: list[str], limit: int
    ) -> list[TriggerFiring]:
        # The public method turned (status, open_only) into a list; it goes back the same way.
        if len(statuses) == 1:
            return self._call("list_trigger_firings", trigger=trigger, status=statuses[0],
                              open_only=None, limit=limit)  # fmt: skip
        return self._call("list_trigger_firings", trigger=trigger, status=None,
                          open_only=bool(statuses), limit=limit)  # fmt: skip
