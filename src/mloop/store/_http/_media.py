"""The media index over HTTP: items travel whole in the wire codec's form and are validated
again by the server's store (role ``write`` to index, ``read`` to list; both under the run)."""

from __future__ import annotations

from typing import Any

from mloop.store._http._endpoint import Endpoint
from mloop.store._media_base import MediaItem

__all__ = ["MEDIA_ENDPOINTS", "HttpMediaMixin"]

_E = Endpoint
MEDIA_ENDPOINTS: tuple[Endpoint, ...] = (
    _E("add_media", "POST", "/runs/{run_id}/media",
       {"run_id": str, "items": list[MediaItem]}, None,
       summary="Index a run's images, figures, tables and histograms (their bytes are artifacts)"),
    _E("list_media", "GET", "/runs/{run_id}/media",
       {"run_id": str, "key": str | None, "kind": str | None}, list[MediaItem],
       summary="A run's media by key then step"),
)  # fmt: skip


class HttpMediaMixin:
    """The media index, each hook one request."""

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    def _do_add_media(self, run_id: str, items: list[MediaItem]) -> None:
        self._call("add_media", run_id=run_id, items=items)

    def _do_list_media(self, run_id: str, key: str | None, kind: str | None) -> list[MediaItem]:
        return self._call("list_media", run_id=run_id, key=key, kind=kind)
