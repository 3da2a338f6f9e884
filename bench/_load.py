"""HTTP load for the serving benchmark: server processes, and one load generator for all of them.

The load generator is ``wrk`` (Debian's package) with a Lua script that POSTs one body and writes
a JSON summary when done; without ``wrk``, a small asyncio HTTP/1.1 client with keep-alive
connections. Either way every server is driven by the same client, the same way.
Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# The end of every wrk script: the summary as JSON in the file {out}.
WRK_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  local out = assert(io.open("{out}", "w"))
  out:write(string.format(
    '{{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}}',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  out:close()
end
"""
WRK_SCRIPT = (
    """
local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""
    + WRK_DONE
)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk_version() -> str | None:
    if not have_wrk():
        return None
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).split("[")[0].strip() or None


def _summary(raw: dict[str, Any]) -> dict[str, Any]:
    seconds = raw["duration_us"] / 1e6
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "seconds": seconds,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1e3,
        "p90_ms": raw["p90_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "max_ms": raw["max_us"] / 1e3,
        "non_2xx": raw["status"],
        "socket_errors": socket_errors,
        "errors": raw["status"] + socket_errors,
    }


def wrk_load(
    url: str, body: Path, *, connections: int, seconds: float, timeout_s: int = 30
) -> dict[str, Any]:
    """``wrk`` POSTing ``body`` to ``url`` over ``connections`` keep-alive connections."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        out = Path(tmp) / "summary.json"
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT.format(body=body, out=out))
        cmd = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(script),
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
        return _summary(json.loads(out.read_text()))


async def _aio(
    host: str, port: int, path: str, body: bytes, connections: int, seconds: float, timeout_s: float
) -> dict[str, Any]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    counts = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    start = loop.time()
    stop = start + seconds

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        writer.write(request)
        status = int((await reader.readline()).split()[1])
        length, chunked = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            while size := int((await reader.readline()).strip(), 16):
                await reader.readexactly(size + 2)
            await reader.readline()
        else:
            await reader.readexactly(length)
        return status

    async def connection() -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            counts["connect"] += 1
            return
        try:
            while loop.time() < stop:
                t0 = time.perf_counter()
                try:
                    status = await asyncio.wait_for(one(reader, writer), timeout_s)
                except asyncio.TimeoutError:
                    counts["timeout"] += 1
                    return
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    counts["read"] += 1
                    return
                latencies.append(time.perf_counter() - t0)
                if not 200 <= status < 300:
                    counts["status"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = loop.time() - start
    latencies.sort()

    def pct(p: float) -> int:
        return (
            int(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6)
            if latencies
            else 0
        )

    return _summary(
        {
            "requests": len(latencies),
            "duration_us": int(elapsed * 1e6),
            **counts,
            "p50_us": pct(50),
            "p90_us": pct(90),
            "p99_us": pct(99),
            "max_us": int(latencies[-1] * 1e6) if latencies else 0,
        }
    )


def asyncio_load(
    url: str, body: Path, *, connections: int, seconds: float, timeout_s: int = 30
) -> dict[str, Any]:
    """The same measurement as :func:`wrk_load`, with an asyncio client (when wrk is missing)."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return asyncio.run(
        _aio(host, int(port), "/" + path, body.read_bytes(), connections, seconds, timeout_s)
    )


# ---------------------------------------------------------------------------------------------- servers
class Server:
    """A server process (and its children: uvicorn workers) in its own process group."""

    def __init__(
        self, name: str, cmd: Sequence[str], env: dict[str, str], port: int, log: Path
    ) -> None:
        self.name, self.port, self.log = name, port, log
        self.url = f"http://127.0.0.1:{port}"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                list(cmd), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        """Seconds until ``GET /ping`` answers 200."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    conn.close()
                    return time.monotonic() - t0
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready after {timeout_s:.0f} s:\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@contextlib.contextmanager
def running(
    name: str, cmd: Sequence[str], env: dict[str, str], port: int, log: Path
) -> Iterator[Server]:
    server = Server(name, cmd, env, port, log)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def post(
    port: int, body: bytes, *, conn: http.client.HTTPConnection | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One POST /invocations: (status, headers, body)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    data = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    if conn is None:
        c.close()
    return resp.status, headers, data
