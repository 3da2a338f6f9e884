"""The store over HTTP: the REST API v1 described once (:class:`Endpoint`), the client side
(:class:`HttpStore`) and what the server needs to mount it (:data:`ENDPOINTS`)."""

from __future__ import annotations

from mloop.store._http._endpoint import API_PREFIX, Endpoint, Role
from mloop.store._http._store import ENDPOINTS, HttpStore

__all__ = ["API_PREFIX", "ENDPOINTS", "Endpoint", "HttpStore", "Role"]
