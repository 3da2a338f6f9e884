"""A serving app on a loopback port, in a thread of this process: what a replay sends its
production traffic to (real HTTP, the real app, its own event loop)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from mloop.errors import MloopError

__all__ = ["LoopbackServer"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackServer:
    """Run ``app`` (an ASGI app) with uvicorn on ``127.0.0.1:<free port>`` until :meth:`stop`.

    Used as a context manager; ``url`` is its base URL once started.
    """

    def __init__(self, app: Any, *, ready_timeout_s: float = 60.0) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
            lifespan="on",
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="mloop-replay-serve", daemon=True
        )
        self._ready_timeout_s = ready_timeout_s

    def start(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + self._ready_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise MloopError(
                    f"the serving app did not start on {self.url} within "
                    f"{self._ready_timeout_s:.0f} s."
                )
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut down (in-flight requests finish; the app's lifespan flushes its log)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
