"""HTTP delivery against a real local server that answers scripted sequences (no mocked transport)."""

from __future__ import annotations

import email.utils
import itertools
import json
import random
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import mloop.delivery as delivery
from mloop.delivery import (
    SIGNATURE_HEADER,
    Attempt,
    BackgroundDeliverer,
    DeliveryError,
    DeliveryRequest,
    RetryPolicy,
    deliver,
    parse_retry_after,
    verify_signature,
)
from mloop.errors import InvalidInputError

FAST = RetryPolicy(max_attempts=5, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5.0)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Scripted:
    """A loopback HTTP server answering each request with the next scripted reply (then 200)."""

    def __init__(self, port: int = 0) -> None:
        self.script: list[Reply] = []
        self.received: list[Received] = []
        self.arrived = threading.Event()
        self.gate: threading.Event | None = None  # when set up, each request waits for it
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.received.append(
                    Received(at, self.command, self.path, dict(self.headers), body)
                )
                owner.arrived.set()
                if owner.gate is not None:
                    owner.gate.wait(30)
                reply = owner.script.pop(0) if owner.script else Reply()
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def gaps(self) -> list[float]:
        times = [r.at for r in self.received]
        return [b - a for a, b in itertools.pairwise(times)]

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[Scripted]:
    s = Scripted()
    try:
        yield s
    finally:
        s.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, payload: object = None, **kwargs: object) -> DeliveryRequest:
    return DeliveryRequest.json(url, {"n": 1} if payload is None else payload, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- synchronous delivery


def test_public_api() -> None:
    assert set(delivery.__all__) == {
        "SIGNATURE_HEADER",
        "Attempt",
        "BackgroundDeliverer",
        "DeliveryError",
        "DeliveryRequest",
        "DeliveryResult",
        "RetryPolicy",
        "deliver",
        "parse_retry_after",
        "sign",
        "verify_signature",
    }
    assert all(hasattr(delivery, name) for name in delivery.__all__)


def test_5xx_is_retried_until_delivered(server: Scripted) -> None:
    server.script += [Reply(503), Reply(500), Reply(502)]
    result = deliver(post(server.url, {"alert": "drift"}), policy=FAST)
    assert result.ok and result.status == 200 and result.attempts == 4 and result.error is None
    assert len(server.received) == 4
    assert {r.body for r in server.received} == {b'{"alert":"drift"}'}
    assert server.received[0].headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_is_never_retried(server: Scripted, status: int) -> None:
    server.script.append(Reply(status))
    result = deliver(post(server.url), policy=FAST)
    assert not result.ok and result.status == status and result.attempts == 1
    assert result.error is not None and result.error.startswith(f"HTTP {status}")
    assert len(server.received) == 1


def test_408_and_429_are_retried(server: Scripted) -> None:
    server.script += [Reply(408), Reply(429)]
    result = deliver(post(server.url), policy=FAST)
    assert result.ok and result.attempts == 3


def test_gives_up_after_max_attempts_with_the_last_answer(server: Scripted) -> None:
    server.script += [Reply(503)] * 10
    seen: list[Attempt] = []
    policy = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)
    result = deliver(post(server.url), policy=policy, on_attempt=seen.append)
    assert not result.ok and result.attempts == 3 and result.status == 503
    assert len(server.received) == 3
    assert [a.number for a in seen] == [1, 2, 3] and [a.status for a in seen] == [503] * 3
    assert all(a.duration_s >= 0 and not a.ok for a in seen)
    with pytest.raises(DeliveryError, match=r"after 3 attempt\(s\).*HTTP 503"):
        result.raise_for_error()


def test_retry_after_seconds_is_honoured(server: Scripted) -> None:
    server.script.append(Reply(429, {"Retry-After": "1"}))
    seen: list[Attempt] = []
    policy = RetryPolicy(backoff_base_s=0.01, backoff_max_s=5.0)
    result = deliver(post(server.url), policy=policy, on_attempt=seen.append)
    assert result.ok and result.attempts == 2
    assert seen[0].retry_after_s == 1.0
    (gap,) = server.gaps()
    assert 1.0 <= gap < 10.0


def test_retry_after_http_date_is_honoured(server: Scripted) -> None:
    # whole seconds: a date 3 s ahead is more than 2 s away when the first request leaves
    server.script.append(
        Reply(503, {"Retry-After": email.utils.formatdate(time.time() + 3, usegmt=True)})
    )
    result = deliver(post(server.url), policy=RetryPolicy(backoff_base_s=0.01, backoff_max_s=5.0))
    assert result.ok and result.attempts == 2
    (gap,) = server.gaps()
    assert 1.5 <= gap < 10.0


def test_retry_after_is_capped_by_the_policy(server: Scripted) -> None:
    server.script.append(Reply(503, {"Retry-After": "3600"}))
    policy = RetryPolicy(backoff_base_s=0.01, backoff_max_s=0.3, jitter=0.0)
    result = deliver(post(server.url), policy=policy)
    assert result.ok and result.attempts == 2
    (gap,) = server.gaps()
    assert 0.3 <= gap < 5.0


def test_no_attempt_starts_after_max_elapsed(server: Scripted) -> None:
    server.script += [Reply(503, {"Retry-After": "1"})] * 5
    policy = RetryPolicy(max_attempts=5, max_elapsed_s=1.5, backoff_base_s=0.01, backoff_max_s=5)
    t0 = time.monotonic()
    result = deliver(post(server.url), policy=policy)
    # attempt 1 at 0 s, attempt 2 after >= 1 s; a third would start after >= 2 s > 1.5 s
    assert not result.ok and result.attempts == 2 and result.status == 503
    assert time.monotonic() - t0 < 1.5 + 5.0


def test_backoff_with_jitter_stays_within_the_policy(server: Scripted) -> None:
    server.script += [Reply(503)] * 4
    policy = RetryPolicy(backoff_base_s=0.1, backoff_max_s=0.4, jitter=0.5)
    result = deliver(post(server.url), policy=policy)
    assert result.ok and result.attempts == 5
    full = [0.1, 0.2, 0.4, 0.4]
    for gap, d in zip(server.gaps(), full, strict=True):
        assert d * 0.5 <= gap < d + 3.0, (gap, d)


def test_wait_is_drawn_inside_the_jitter_band() -> None:
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=4.0, jitter=0.3)
    rng = random.Random(7)
    for retry, d in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        waits = [policy.wait_s(retry, u=rng.random()) for _ in range(2000)]
        assert all(d * 0.7 <= w <= d for w in waits), retry
        assert min(waits) < d * 0.72 and max(waits) > d * 0.98  # the band is used, not one point
    exact = RetryPolicy(backoff_base_s=0.5, jitter=0.0)
    assert {exact.wait_s(2, u=rng.random()) for _ in range(100)} == {1.0}
    # the server's Retry-After is a floor, the policy's maximum a ceiling
    assert policy.wait_s(1, retry_after=3.0, u=0.9) == 3.0
    assert policy.wait_s(1, retry_after=99.0) == 4.0
    with pytest.raises(InvalidInputError, match="`retry` must be an int >= 1"):
        policy.wait_s(0)


def test_connection_refused_is_retried_then_given_up() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    seen: list[Attempt] = []
    result = deliver(post(url), policy=replace_attempts(FAST, 3), on_attempt=seen.append)
    assert not result.ok and result.status is None and result.attempts == 3
    assert result.error is not None and "ConnectError" in result.error
    assert all(a.status is None and "ConnectError" in (a.error or "") for a in seen)


def test_connection_refused_then_the_server_comes_up() -> None:
    port = free_port()
    started: list[Scripted] = []

    def start_later() -> None:
        time.sleep(0.3)
        started.append(Scripted(port))

    starter = threading.Thread(target=start_later)
    starter.start()
    policy = RetryPolicy(max_attempts=20, backoff_base_s=0.1, backoff_max_s=0.2, jitter=0.0)
    try:
        result = deliver(post(f"http://127.0.0.1:{port}/hook"), policy=policy)
    finally:
        starter.join()
        for s in started:
            s.close()
    assert result.ok and result.attempts >= 2
    assert len(started[0].received) == 1


def test_a_timeout_is_retried(server: Scripted) -> None:
    server.script += [Reply(200, delay=1.0), Reply(200)]
    policy = RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01, timeout_s=0.2)
    result = deliver(post(server.url), policy=policy)
    assert result.ok and result.attempts == 2


def test_signed_requests_verify_against_the_raw_body(server: Scripted) -> None:
    request = post(server.url, {"event": "é", "n": [1, 2]}, secret="s3cret", headers={"X-A": "b"})
    assert deliver(request, policy=FAST).ok
    (got,) = server.received
    assert got.body == '{"event":"é","n":[1,2]}'.encode()
    assert got.headers["X-A"] == "b"
    assert verify_signature("s3cret", got.body, got.headers[SIGNATURE_HEADER])
    assert not verify_signature("other", got.body, got.headers[SIGNATURE_HEADER])
    assert not verify_signature("s3cret", got.body + b" ", got.headers[SIGNATURE_HEADER])
    assert not verify_signature("s3cret", got.body, None)


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("0") == 0.0 and parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    for bad in (None, "", "-1", "1.5", "later", "Mon, 99 Foo 2024"):
        assert parse_retry_after(bad, now=now) is None, bad


def test_bad_input_gets_clear_errors() -> None:
    with pytest.raises(InvalidInputError, match=r"`max_attempts` must be an int >= 1; got 0"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(InvalidInputError, match=r"`jitter` must be in \[0, 1\]; got 1.5"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(InvalidInputError, match="`backoff_max_s` must be >= `backoff_base_s`"):
        RetryPolicy(backoff_base_s=2.0, backoff_max_s=1.0)
    with pytest.raises(InvalidInputError, match="`timeout_s` must be a finite number > 0"):
        RetryPolicy(timeout_s=float("inf"))
    with pytest.raises(InvalidInputError, match="http"):
        DeliveryRequest("ftp://example.com/x")
    with pytest.raises(InvalidInputError, match="`body` must be bytes"):
        DeliveryRequest("http://example.com/x", "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="JSON-serialisable"):
        DeliveryRequest.json("http://example.com/x", {"v": float("nan")})
    with pytest.raises(InvalidInputError, match="`maxsize` must be an int >= 1"):
        BackgroundDeliverer(maxsize=0)
    with pytest.raises(InvalidInputError, match="must be a DeliveryRequest"):
        BackgroundDeliverer().submit({"url": "http://x"})  # type: ignore[arg-type]


def test_error_messages_leave_out_credentials_and_query() -> None:
    url = f"http://user:pw@127.0.0.1:{free_port()}/hook?token=abc"
    result = deliver(post(url), policy=replace_attempts(FAST, 1))
    with pytest.raises(DeliveryError) as info:
        result.raise_for_error()
    assert "pw" not in str(info.value) and "abc" not in str(info.value)
    assert "/hook" in str(info.value)


def replace_attempts(policy: RetryPolicy, n: int) -> RetryPolicy:
    from dataclasses import replace

    return replace(policy, max_attempts=n)


# ---------------------------------------------------------------- background delivery


def test_background_delivery_does_not_block_the_caller(server: Scripted) -> None:
    server.script += [Reply(503, {"Retry-After": "1"}, delay=0.5), Reply(200, delay=0.5)]
    deliverer = BackgroundDeliverer(policy=RetryPolicy(backoff_base_s=0.01, backoff_max_s=5))
    assert not deliverer.running  # started lazily
    t0 = time.monotonic()
    future = deliverer.submit(post(server.url))
    submitted = time.monotonic() - t0
    try:
        result = future.result(timeout=30)
    finally:
        deliverer.close()
    took = time.monotonic() - t0
    assert result.ok and result.attempts == 2
    assert took >= 2.0  # two slow answers and a Retry-After of 1 s ...
    assert submitted < took / 4  # ... none of which the caller waited for


def test_close_flushes_what_was_queued(server: Scripted) -> None:
    server.script += [Reply(200, delay=0.05)] * 5 + [Reply(503)]
    results: list[tuple[DeliveryRequest, object]] = []
    deliverer = BackgroundDeliverer(
        policy=FAST, on_result=lambda request, result: results.append((request, result))
    )
    futures = [deliverer.submit(post(server.url, {"i": i})) for i in range(7)]
    assert deliverer.close(timeout=30) is True
    assert not deliverer.running and deliverer.pending == 0
    assert all(f.done() and f.result().ok for f in futures)
    # in submission order, on one thread
    assert [json.loads(r.body)["i"] for r in server.received] == [0, 1, 2, 3, 4, 5, 5, 6]
    assert len(results) == 7


def test_flush_waits_with_a_timeout(server: Scripted) -> None:
    server.gate = threading.Event()
    deliverer = BackgroundDeliverer(policy=FAST)
    try:
        deliverer.submit(post(server.url))
        assert deliverer.flush(timeout=0.2) is False and deliverer.pending == 1
        server.gate.set()
        assert deliverer.flush(timeout=30) is True and deliverer.pending == 0
    finally:
        deliverer.close()


def test_close_with_a_timeout_cuts_retry_waits_short(server: Scripted) -> None:
    server.script += [Reply(503, {"Retry-After": "30"})] * 3
    deliverer = BackgroundDeliverer(policy=RetryPolicy(backoff_max_s=30, max_elapsed_s=120))
    first = deliverer.submit(post(server.url, {"i": 0}))
    second = deliverer.submit(post(server.url, {"i": 1}))
    assert server.arrived.wait(10)
    t0 = time.monotonic()
    assert deliverer.close(timeout=0.3) is False
    assert time.monotonic() - t0 < 10.0  # not the 30 s the server asked for
    one, two = first.result(timeout=10), second.result(timeout=10)
    assert not one.ok and one.attempts == 1 and "cancelled" in (one.error or "")
    assert not two.ok and two.attempts == 0 and "closed" in (two.error or "")
    assert len(server.received) == 1


def test_a_full_queue_drops_instead_of_blocking(server: Scripted) -> None:
    server.gate = threading.Event()
    deliverer = BackgroundDeliverer(policy=FAST, maxsize=1)
    try:
        first = deliverer.submit(post(server.url, {"i": 0}))
        assert server.arrived.wait(10)  # the worker holds the first request
        second = deliverer.submit(post(server.url, {"i": 1}))  # waits in the queue
        t0 = time.monotonic()
        third = deliverer.submit(post(server.url, {"i": 2}))  # no room: dropped at once
        assert time.monotonic() - t0 < 1.0
        dropped = third.result(timeout=0)
        assert not dropped.ok and dropped.attempts == 0 and "queue is full" in (dropped.error or "")
        assert deliverer.dropped == 1
        server.gate.set()
        assert first.result(timeout=30).ok and second.result(timeout=30).ok
    finally:
        deliverer.close()
    assert sorted(json.loads(r.body)["i"] for r in server.received) == [0, 1]


def test_a_closed_deliverer_starts_again_on_submit(server: Scripted) -> None:
    deliverer = BackgroundDeliverer(policy=FAST)
    assert deliverer.submit(post(server.url)).result(timeout=30).ok
    assert deliverer.close() is True and not deliverer.running
    assert deliverer.submit(post(server.url)).result(timeout=30).ok
    assert deliverer.close() is True
    assert len(server.received) == 2


def test_failures_are_logged_without_secrets(
    server: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.append(Reply(400))
    deliverer = BackgroundDeliverer(policy=FAST)
    result = deliverer.submit(post(server.url + "?token=abc", label="alert 'x'")).result(30)
    deliverer.close()
    assert result.status == 400 and result.attempts == 1
    (record,) = [r for r in caplog.records if r.name == "mloop.delivery"]
    assert "alert 'x'" in record.getMessage() and "HTTP 400" in record.getMessage()
    assert "abc" not in record.getMessage()


def _run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.no_mutation
def test_no_thread_until_the_first_request() -> None:
    proc = _run_child(
        """
        import threading
        import mloop.delivery as d
        b = d.BackgroundDeliverer()
        assert threading.active_count() == 1, threading.enumerate()
        """
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.no_mutation
def test_interpreter_exit_flushes_queued_requests(server: Scripted) -> None:
    server.script += [Reply(503), Reply(200, delay=0.3)]
    proc = _run_child(
        f"""
        import mloop.delivery as d
        b = d.BackgroundDeliverer(policy=d.RetryPolicy(backoff_base_s=0.2))
        b.submit(d.DeliveryRequest.json({server.url!r}, {{"bye": True}}))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert [r.body for r in server.received] == [b'{"bye":true}'] * 2
