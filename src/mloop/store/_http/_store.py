"""``HttpStore``: the Store contract over a team server's REST API (``mloop server``).

Every public method validates its arguments here exactly as on SQL backends (so bad input fails
identically, without a round trip), then its hook sends one request; the server validates again
and calls the same method on its own store. Errors come back as the same exception classes.
"""

from __future__ import annotations

import abc
import contextlib
from typing import Any

import httpx

from mloop.errors import MloopError
from mloop.store._base import Store
from mloop.store._http._checks import CHECK_ENDPOINTS, HttpChecksMixin
from mloop.store._http._deployments import DEPLOYMENT_ENDPOINTS, HttpDeploymentsMixin
from mloop.store._http._endpoint import Endpoint
from mloop.store._http._events import EVENT_ENDPOINTS, HttpEventsMixin
from mloop.store._http._media import MEDIA_ENDPOINTS, HttpMediaMixin
from mloop.store._http._monitoring import MONITORING_ENDPOINTS, HttpMonitoringMixin
from mloop.store._http._pipelines import PIPELINE_ENDPOINTS, HttpPipelinesMixin
from mloop.store._http._registry import REGISTRY_ENDPOINTS, HttpRegistryMixin
from mloop.store._http._runs import RUN_ENDPOINTS, HttpRunsMixin
from mloop.store._http._serving import SERVING_ENDPOINTS, HttpServingMixin
from mloop.store._http._tokens import HttpTokensMixin
from mloop.store._http._transport import HttpTransport
from mloop.store._http._triggers import TRIGGER_ENDPOINTS, HttpTriggersMixin
from mloop.store._http._webhooks import WEBHOOK_ENDPOINTS, HttpWebhooksMixin

__all__ = ["ENDPOINTS", "HttpStore"]

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        *RUN_ENDPOINTS,
        *REGISTRY_ENDPOINTS,
        *WEBHOOK_ENDPOINTS,
        *CHECK_ENDPOINTS,
        *EVENT_ENDPOINTS,
        *MONITORING_ENDPOINTS,
        *DEPLOYMENT_ENDPOINTS,
        *PIPELINE_ENDPOINTS,
        *TRIGGER_ENDPOINTS,
        *MEDIA_ENDPOINTS,
        *SERVING_ENDPOINTS,
    )
}


def _unported(name: str) -> Any:
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise MloopError(f"{name} is not served over HTTP yet.")

    hook.__name__ = name
    return hook


class _Unported:
    """Hooks no concept module implements yet (filled below; empty once every concept is served)."""


class HttpStore(
    HttpRunsMixin,
    HttpRegistryMixin,
    HttpWebhooksMixin,
    HttpChecksMixin,
    HttpEventsMixin,
    HttpMonitoringMixin,
    HttpDeploymentsMixin,
    HttpPipelinesMixin,
    HttpTriggersMixin,
    HttpMediaMixin,
    HttpServingMixin,
    HttpTokensMixin,
    _Unported,
    Store,
):
    """A store behind ``mloop server``: ``MLOOP_STORE_URI=http://host:5000``.

    Parameters
    ----------
    uri : str
        The server's base URL (``http://`` or ``https://``).
    token : str, optional
        Bearer token for a server started with ``--auth``.
    client : httpx.Client, optional
        Send requests through this client (tests bind one to the app in-process).
    timeout_s : float, default 30
    """

    def __init__(
        self,
        uri: str,
        *,
        token: str | None = None,
        client: httpx.Client | None = None,
        timeout_s: float = 30.0,
        **_options: Any,
    ) -> None:
        self._transport = HttpTransport(uri, token=token, client=client, timeout_s=timeout_s)
        self.uri = self._transport.base_url

    def _call(self, endpoint: str, /, **values: Any) -> Any:
        return self._transport.call(ENDPOINTS[endpoint], **values)

    def write_deadline(self, deadline: float | None) -> contextlib.AbstractContextManager[None]:
        """Within the block, this thread's requests are answered by ``deadline`` or raise
        :class:`~mloop.errors.StoreUnavailableError` (a write then may still land on the server:
        the tracking writer spools it under its batch id, so it is applied once)."""
        return self._transport.deadline(deadline)

    def close(self) -> None:
        self._transport.close()

    def __repr__(self) -> str:
        return f"HttpStore({self.uri!r})"


for _name in sorted(getattr(HttpStore, "__abstractmethods__", ())):
    setattr(_Unported, _name, _unported(_name))
abc.update_abstractmethods(HttpStore)
UNPORTED: frozenset[str] = (
    frozenset(vars(_Unported))
    - set(vars(object))
    - {"__dict__", "__weakref__", "__module__", "__doc__"}
)
