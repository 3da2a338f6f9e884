"""Serving's per-minute aggregates over HTTP: minutes travel whole in the wire codec's form and
are validated again by the server's store (role ``write`` to record, ``read`` to list)."""

from __future__ import annotations

from typing import Any

from mloop.store._http._endpoint import Endpoint
from mloop.store._serving_base import ServingMinute

__all__ = ["SERVING_ENDPOINTS", "HttpServingMixin"]

_E = Endpoint
SERVING_ENDPOINTS: tuple[Endpoint, ...] = (
    _E("record_serving_minutes", "POST", "/serving-minutes",
       {"minutes": list[ServingMinute]}, None,
       summary="Record serving replicas' per-minute requests, errors and latency histograms"),
    _E("list_serving_minutes", "GET", "/serving-minutes",
       {"deployment": str, "since_ms": int | None, "until_ms": int | None, "limit": int | None},
       list[ServingMinute], summary="A deployment's per-minute serving aggregates, by minute"),
)  # fmt: skip


class HttpServingMixin:
    """Serving's per-minute aggregates, each hook one request."""

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    def _do_record_serving_minutes(self, minutes: list[ServingMinute]) -> None:
        self._call("record_serving_minutes", minutes=minutes)

    def _do_list_serving_minutes(
        self, deployment: str, since_ms: int | None, until_ms: int | None, limit: int
    ) -> list[ServingMinute]:
        return self._call(
            "list_serving_minutes",
            deployment=deployment,
            since_ms=since_ms,
            until_ms=until_ms,
            limit=limit,
        )
