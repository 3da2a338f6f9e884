"""A TCP proxy that breaks connections on purpose: the first ``drops`` connections are cut after
``cut_after`` bytes have gone from the server to the client (or, with ``cut_upload``, from the
client to the server), as a dropped Wi-Fi or a restarted load balancer would. Later ones pass."""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class FlakyProxy:
    def __init__(
        self, upstream_port: int, *, drops: int, cut_after: int, cut_upload: bool = False
    ) -> None:
        self.upstream_port = upstream_port
        self.drops_left = drops
        self.cut_after = cut_after
        self.cut_upload = cut_upload
        self.connections = 0
        self.cut = 0
        self.bytes_up = 0  # client -> server, every connection
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> FlakyProxy:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                flaky = self.drops_left > 0
                if flaky:
                    self.drops_left -= 1
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            budget = [self.cut_after if flaky else -1]
            down, up = (budget, [-1]) if not self.cut_upload else ([-1], budget)
            for src, dst, limit in ((upstream, client, down), (client, upstream, up)):
                t = threading.Thread(
                    target=self._pipe, args=(src, dst, limit, client, upstream), daemon=True
                )
                t.start()

    def _pipe(
        self,
        src: socket.socket,
        dst: socket.socket,
        limit: list[int],
        client: socket.socket,
        upstream: socket.socket,
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if src is client:
                    with self._lock:
                        self.bytes_up += len(data)
                if limit[0] >= 0:
                    if len(data) >= limit[0]:
                        dst.sendall(data[: limit[0]])
                        with self._lock:
                            self.cut += 1
                        break  # cut: close both ends, mid-transfer
                    limit[0] -= len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
