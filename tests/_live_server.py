"""A real server on a free loopback port, in a thread of the test process: uvicorn serving an ASGI
app over a socket (so transports, streaming and dropped connections are real), stopped on exit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``with LiveServer(app) as server: httpx.get(server.url + "/api/v1/health")``."""

    def __init__(self, app: Any, *, port: int | None = None) -> None:
        import uvicorn

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port or 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._lock = threading.Lock()
        self._after: Callable[[], None] | None = None
        self._done = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(15)
        self._sock.close()

    def stop_in_background(self, then: Callable[[], None]) -> None:
        """Stop without waiting, then call ``then`` in the server's own thread once it stopped.

        uvicorn notices ``should_exit`` on its next 0.1 s tick and then waits another 0.1 s for
        connections: ~0.2 s a server. A server per store (the socket contract backend), whose
        clients are closed, need not be waited for. uvicorn closes the socket itself.
        """
        with self._lock:
            if not self._done:
                self._after = then
                then = None
        self._server.should_exit = True
        if then is not None:  # it had stopped already
            then()

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        finally:
            with self._lock:
                after, self._after, self._done = self._after, None, True
            if after is not None:
                after()
