"""``socket+<store URI>``: the HTTP store talking to the real server app over a real socket (uvicorn
in a thread on a free loopback port, one server per store object), so the contract suites also
cover the transport itself: connection reuse, streaming, status lines, headers."""

from __future__ import annotations

from typing import Any


def _socket_http_store(uri: str, **options: Any) -> Any:
    from _live_server import LiveServer
    from mloop.server import create_app
    from mloop.store import create_store
    from mloop.store._http import HttpStore

    backing = create_store(uri.removeprefix("socket+"), **options)
    server = LiveServer(create_app(backing)).__enter__()

    class SocketHttpStore(HttpStore):
        def close(self) -> None:
            super().close()
            server.stop_in_background(then=backing.close)

    made = SocketHttpStore(server.url)
    made.backing = backing  # type: ignore[attr-defined]  # the server's own store (see data_store)
    return made


def register_socket_backend() -> None:
    from mloop.store import register_backend

    register_backend(["socket"], _socket_http_store)
