"""``mloop server`` as a real process on a loopback port: started, waited for, stopped or killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from _live_server import free_port


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any MLOOP_* variable (tests add what they mean to set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    env.update(extra)
    return env


class ServerProcess:
    """``mloop server`` over ``store_uri`` and ``artifact_uri``; the same port across restarts."""

    def __init__(
        self,
        workdir: Path,
        *,
        store_uri: str,
        artifact_uri: str,
        port: int | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.store_uri = store_uri
        self.artifact_uri = artifact_uri
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"server-{self.port}.log"

    def start(self, timeout_s: float = 60.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mloop",
                    "server",
                    "--port",
                    str(self.port),
                    "--store-uri",
                    self.store_uri,
                    "--artifact-uri",
                    self.artifact_uri,
                    "--log-level",
                    "warning",
                    *self.args,
                ],
                env=clean_env(MLOOP_HOME=str(self.workdir / "server-home")),
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (
                f"mloop server did not start:\n{self.log.read_text()}"
            )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, connections drop mid-request."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
