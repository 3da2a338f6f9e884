"""The team server with ``auth=True``: real HTTP into the app in-process (and once over a socket):
401 without a valid token, 403 for a role or a project scope that does not allow the call, 429
past a token's rate, the token's name as the actor whatever the client claims, and no secret in
any answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from _asgi import in_process_client
from mloop.errors import (
    MloopError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UnauthenticatedError,
)
from mloop.ids import new_id, now_ms
from mloop.server import create_app
from mloop.server._auth import RateLimit, TokenBuckets
from mloop.server._v1 import HANDLERS
from mloop.store import (
    API_PREFIX,
    ENDPOINTS,
    ApiToken,
    HttpStore,
    MetricSeries,
    NewToken,
    Project,
    Run,
    SqlStore,
    hash_token_secret,
)

WEBHOOK_SECRET = "whsec-very-secret-value-42"


@dataclass
class Server:
    store: SqlStore
    client: httpx.Client
    tokens: dict[str, NewToken]
    a: Project
    b: Project
    run_a: Run
    run_b: Run
    app: Any = None

    def as_(self, who: str | None) -> HttpStore:
        """An HTTP store that sends ``who``'s token (no token for None)."""
        secret = None if who is None else self.tokens[who].secret
        return HttpStore("http://mloop.test", client=self.client, token=secret)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who].secret}"}


def _server(tmp_path: Path, **app_options: Any) -> Iterator[Server]:
    store = SqlStore(f"sqlite:///{tmp_path / 'server.db'}")
    a, b = store.create_project("alpha"), store.create_project("beta")
    run_a, run_b = store.create_run(a.id, name="ra"), store.create_run(b.id, name="rb")
    for run in (run_a, run_b):
        store.log_batch(
            run.id,
            metrics={"loss": _series([0.5, 0.4])},
            params={"lr": "0.1"},
            tags={},
            batch_id=None,
        )
    tokens = {
        "admin": store.create_token("root", role="admin"),
        "writer": store.create_token("ci-bot", role="write"),
        "reader": store.create_token("dashboard", role="read"),
        "alpha-writer": store.create_token("alpha-team", role="write", project_id=a.id),
        "alpha-reader": store.create_token("alpha-viewer", role="read", project_id=a.id),
    }
    options: dict[str, Any] = {"auth": True, "rate_limit": None, **app_options}
    app = create_app(store, **options)
    client = in_process_client(app)
    try:
        yield Server(store, client, tokens, a, b, run_a, run_b, app)
    finally:
        client.close()
        store.close()


def _series(values: list[float]) -> MetricSeries:
    n = len(values)
    return MetricSeries(
        np.arange(n, dtype=np.int64), np.full(n, now_ms(), dtype=np.int64), np.array(values)
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from _server(tmp_path)


def _dummy(tp: Any) -> str:
    return "1" if tp is int else "x"


MOUNTED = sorted(name for name in ENDPOINTS if name in HANDLERS)


# ---------------------------------------------------------------------------------------- 401


def test_every_endpoint_needs_a_token_and_health_does_not(server: Server) -> None:
    c = server.client
    assert c.get(f"{API_PREFIX}/health").status_code == 200
    for name in MOUNTED:
        e = ENDPOINTS[name]
        path = e.full_path
        for p in e.path_params:
            path = path.replace("{" + p + "}", _dummy(e.args[p]))
        r = c.request(e.method, path, content=b"{}" if e.has_body else None)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json()["error_code"] == "UNAUTHENTICATED"
        assert r.headers["www-authenticate"] == 'Bearer realm="mloop"'
    for path in (f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs", f"{API_PREFIX}/nowhere"):
        assert c.get(path).status_code == 401, path
    scoped = server.headers("alpha-reader")
    assert c.get(f"{API_PREFIX}/openapi.json", headers=scoped).status_code == 200
    assert c.get(f"{API_PREFIX}/nowhere", headers=scoped).status_code == 404


def test_bad_tokens_are_401_and_the_client_raises_unauthenticated(server: Server) -> None:
    c = server.client
    good = server.tokens["reader"].secret
    for header, why in (
        (None, "requires a token"),
        ("", "requires a token"),
        ("Token " + good, "must be 'Bearer <token>'"),
        ("Bearer", "must be 'Bearer <token>'"),
        ("Bearer mlp_nope", "not an mloop token"),
        ("Bearer " + good[:-1] + ("A" if good[-1] != "A" else "B"), "not an mloop token"),
        ("Bearer " + _unknown_secret(), "unknown to this server"),
        ("Basic !!!", "not base64"),
    ):
        headers = {} if header is None else {"Authorization": header}
        r = c.get(f"{API_PREFIX}/projects", headers=headers)
        assert r.status_code == 401 and why in r.json()["message"], (header, r.text)
        assert good not in r.text
        if header:
            assert r.headers["www-authenticate"].endswith('error="invalid_token"')
    with pytest.raises(UnauthenticatedError, match="requires a token"):
        server.as_(None).list_projects()
    bad = HttpStore("http://mloop.test", client=c, token=_unknown_secret())
    with pytest.raises(UnauthenticatedError, match="unknown to this server"):
        bad.get_run(server.run_a.id)


def _unknown_secret() -> str:
    from mloop.store._tokens_base import new_token_secret

    return new_token_secret()


def test_basic_auth_with_the_token_as_password(server: Server) -> None:
    secret = server.tokens["reader"].secret
    r = server.client.get(f"{API_PREFIX}/projects", auth=("anyone", secret))
    assert r.status_code == 200 and {p["name"] for p in r.json()} == {"alpha", "beta"}


def test_a_revoked_token_stops_working_within_the_cache_bound(tmp_path: Path) -> None:
    for s in _server(tmp_path, token_cache_s=0.5):
        store = s.as_("writer")
        assert store.get_run(s.run_a.id).id == s.run_a.id  # verified, now cached
        s.store.revoke_token(s.tokens["writer"].token.id)
        revoked_at = time.monotonic()
        while True:
            try:
                store.get_run(s.run_a.id)
            except UnauthenticatedError as exc:
                assert "was revoked" in exc.message
                break
            assert time.monotonic() - revoked_at < 0.5 + 0.3, "accepted past the cache bound"
            time.sleep(0.02)
        assert time.monotonic() - revoked_at >= 0.3  # the cache did serve it meanwhile


def test_revocation_is_immediate_without_a_cache_and_expiry_always(tmp_path: Path) -> None:
    for s in _server(tmp_path, token_cache_s=0):
        s.store.revoke_token(s.tokens["reader"].token.id)
        with pytest.raises(UnauthenticatedError, match="was revoked"):
            s.as_("reader").list_projects()
        soon = s.store.create_token("temp", role="read", expires_ms=now_ms() + 300)
        s.tokens["temp"] = soon
        assert s.as_("temp").list_projects()
        time.sleep(0.35)
        with pytest.raises(UnauthenticatedError, match="expired"):
            s.as_("temp").list_projects()


def test_expiry_is_checked_on_cached_tokens_too(tmp_path: Path) -> None:
    for s in _server(tmp_path, token_cache_s=60):
        s.tokens["temp"] = s.store.create_token("temp", role="read", expires_ms=now_ms() + 300)
        assert s.as_("temp").list_projects()  # cached for a minute
        time.sleep(0.35)
        with pytest.raises(UnauthenticatedError, match="expired"):
            s.as_("temp").list_projects()


def test_last_use_is_recorded(server: Server) -> None:
    token = server.tokens["reader"].token
    assert server.store.get_token(token.id).last_used_ms is None
    before = now_ms()
    server.as_("reader").list_projects()
    deadline = time.monotonic() + 10  # noted off the request path, by one bookkeeping thread
    while server.store.get_token(token.id).last_used_ms is None:
        assert time.monotonic() < deadline, "the use was never recorded"
        time.sleep(0.02)
    used = server.store.get_token(token.id).last_used_ms
    assert used is not None and used >= before


def test_the_bookkeeping_thread_ends_with_the_app(tmp_path: Path) -> None:
    import asyncio

    store = SqlStore(f"sqlite:///{tmp_path / 'life.db'}")
    new = store.create_token("t", role="read")
    app = create_app(store, auth=True)
    h = {"Authorization": f"Bearer {new.secret}"}

    async def serve_one() -> int:
        async with app.router.lifespan_context(app):  # as uvicorn runs it
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                status = (await c.get(f"{API_PREFIX}/projects", headers=h)).status_code
            assert app.state.auth._executor is not None
        return status

    try:
        assert asyncio.run(serve_one()) == 200
        assert app.state.auth._executor is None  # shut down at the end, its note written
        assert store.get_token(new.token.id).last_used_ms is not None
    finally:
        store.close()


# ---------------------------------------------------------------------------------------- roles


def test_a_read_token_reads_and_may_not_write(server: Server) -> None:
    reader = server.as_("reader")
    assert reader.get_run(server.run_b.id).name == "rb"
    assert reader.search_runs([server.a.id, server.b.id]).items  # a search is a read
    assert reader.get_metric_history(server.run_a.id, "loss").value.tolist() == [0.5, 0.4]
    for write in (
        lambda: reader.create_run(server.a.id, name="nope"),
        lambda: reader.log_batch(
            server.run_a.id, metrics={"x": _series([1.0])}, params={}, tags={}, batch_id=None
        ),
        lambda: reader.create_project("gamma"),
        lambda: reader.delete_run(server.run_a.id),
    ):
        with pytest.raises(PermissionDeniedError, match=r"has role 'read'.*needs 'write'"):
            write()
    assert server.store.get_project_by_name("gamma") is None
    assert server.store.get_metric_history(server.run_a.id, "x").value.size == 0


def test_the_role_is_checked_before_the_body_is_read(server: Server) -> None:
    big = b"{" + b" " * (65 * 2**20) + b"}"  # over the 64 MiB limit: would be 413
    r = server.client.post(f"{API_PREFIX}/projects", content=big, headers=server.headers("reader"))
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"


def test_every_read_endpoint_needs_only_read() -> None:
    reads = [
        n
        for n in ENDPOINTS
        if n.startswith(("get_", "list_", "search_")) and n != "get_or_create_project"
    ]
    needs_more = {
        n: ENDPOINTS[n].required_role
        for n in reads
        if ENDPOINTS[n].required_role != "read" and ENDPOINTS[n].role is None
    }
    assert needs_more == {}, "a POST that only reads must declare role='read'"


def test_a_write_token_may_not_manage_webhooks_and_admin_may(server: Server) -> None:
    writer, admin = server.as_("writer"), server.as_("admin")
    with pytest.raises(PermissionDeniedError, match="needs 'admin'"):
        writer.create_webhook("http://127.0.0.1:9/hook", secret=WEBHOOK_SECRET)
    with pytest.raises(PermissionDeniedError, match="needs 'admin'"):
        writer.list_webhooks()
    hook = admin.create_webhook("http://127.0.0.1:9/hook", secret=WEBHOOK_SECRET)
    assert [h.id for h in admin.list_webhooks()] == [hook.id]
    with pytest.raises(PermissionDeniedError, match="needs 'admin'"):
        writer.delete_webhook(hook.id)
    with pytest.raises(PermissionDeniedError, match="needs 'admin'"):
        server.as_("reader").referenced_blobs()
    assert admin.referenced_blobs() == set()


# ---------------------------------------------------------------------------------------- scopes


def test_a_scoped_token_works_in_its_project(server: Server) -> None:
    s = server.as_("alpha-writer")
    run = s.create_run(server.a.id, name="mine")
    s.log_batch(run.id, metrics={"acc": _series([0.9])}, params={}, tags={}, batch_id=None)
    assert s.get_metric_history(run.id, "acc").value.tolist() == [0.9]
    assert {r.id for r in s.search_runs([server.a.id]).items} == {run.id, server.run_a.id}
    assert [p.name for p in s.list_projects()] == ["alpha"]  # the others are not listed
    assert s.get_project(server.a.id).name == "alpha"
    assert s.get_project_by_name("alpha") == s.get_project(server.a.id)
    assert s.get_or_create_project("alpha").id == server.a.id
    # a new run written with its first batch (how start_run writes), in its own project
    fresh = new_id()
    created = s.new_run(server.a.id, run_id=fresh, name="deferred")
    s.log_batch(fresh, metrics={}, params={"k": "v"}, tags={}, batch_id=None, new_run=created)
    assert server.store.get_run(fresh).project_id == server.a.id


def test_a_scoped_token_cannot_reach_another_projects_runs(server: Server) -> None:
    rb, b = server.run_b.id, server.b.id
    for who in ("alpha-reader", "alpha-writer"):
        s = server.as_(who)
        for read in (
            lambda s=s: s.get_run(rb),
            lambda s=s: s.get_metric_history(rb, "loss"),
            lambda s=s: s.list_artifacts(rb),
            lambda s=s: s.search_runs([b]),
            lambda s=s: s.search_runs([server.a.id, b]),
            lambda s=s: s.get_project(b),
            lambda s=s: s.get_project_by_name("beta"),
        ):
            with pytest.raises(PermissionDeniedError, match="limited to project"):
                read()
    w = server.as_("alpha-writer")
    for write in (
        lambda: w.log_batch(rb, metrics={"x": _series([1.0])}, params={}, tags={}, batch_id=None),
        lambda: w.update_run(rb, status="killed"),
        lambda: w.create_run(b, name="intruder"),
        lambda: w.delete_run(rb),
        lambda: w.delete_project(b),
        lambda: w.get_or_create_project("gamma"),
        lambda: w.create_project("gamma"),
    ):
        with pytest.raises(PermissionDeniedError, match="limited to project"):
            write()
    # a batch that would create its run in another project
    fresh = new_id()
    intruder = w.new_run(b, run_id=fresh, name="intruder")
    with pytest.raises(PermissionDeniedError, match="limited to project"):
        w.log_batch(fresh, metrics={}, params={}, tags={}, batch_id=None, new_run=intruder)
    # ... or that names its own project for a run that is another's
    mine = w.new_run(server.a.id, run_id=rb, name="hijack")
    with pytest.raises(PermissionDeniedError, match="limited to project"):
        w.log_batch(rb, metrics={}, params={"p": "1"}, tags={}, batch_id=None, new_run=mine)
    with pytest.raises(NotFoundError):
        server.store.get_run(fresh)
    assert server.store.get_project_by_name("gamma") is None
    assert (
        server.store.get_run(rb).status == "running" and "p" not in server.store.get_run(rb).params
    )
    assert server.store.get_metric_history(rb, "x").value.size == 0


def test_a_missing_run_is_404_for_a_scoped_token_too(server: Server) -> None:
    with pytest.raises(NotFoundError):
        server.as_("alpha-reader").get_run("0" * 32)


def test_a_scoped_token_reaches_nothing_outside_runs(server: Server) -> None:
    admin = server.as_("admin")
    admin.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    scoped = server.as_("alpha-writer")
    for call in (
        lambda: scoped.get_registered_model("churn"),
        lambda: scoped.search_registered_models(),
        lambda: scoped.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn"),
        lambda: scoped.list_events(),
    ):
        with pytest.raises(PermissionDeniedError, match="needs a token without a project scope"):
            call()


# ---------------------------------------------------------------------------------------- actors


def test_the_actor_is_the_tokens_name_whatever_the_client_claims(server: Server) -> None:
    writer = server.as_("writer")  # named "ci-bot"
    writer.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn", actor="eve")
    writer.set_alias("churn", "champion", 1, actor="eve", reason="looks good")
    writer.set_registered_model_tags("churn", {"team": "x"}, actor="eve")
    events = server.store.list_events(model="churn")
    assert events and {e.actor for e in events} == {"ci-bot"}
    run = writer.create_run(server.a.id, name="r", user="eve")
    assert run.user == "ci-bot" and server.store.get_run(run.id).user == "ci-bot"


def test_without_auth_the_claimed_actor_is_recorded(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'open.db'}")
    client = in_process_client(create_app(store))
    try:
        s = HttpStore("http://mloop.test", client=client)
        s.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn", actor="eve")
        assert {e.actor for e in store.list_events(model="churn")} == {"eve"}
        p = s.create_project("p")
        assert s.create_run(p.id, name="r", user="eve").user == "eve"
    finally:
        client.close()
        store.close()


# ---------------------------------------------------------------------------------------- secrets


def test_no_answer_carries_a_secret(server: Server) -> None:
    admin = server.as_("admin")
    admin.create_webhook("http://127.0.0.1:9/hook", secret=WEBHOOK_SECRET)
    admin.create_model_version("churn", artifact_uri="file:///m", flavor="sklearn")
    secrets = [WEBHOOK_SECRET, *(t.secret for t in server.tokens.values())]
    answers = []
    for name in MOUNTED:  # every GET the server answers, with the admin's token
        e = ENDPOINTS[name]
        if e.method != "GET" or (e.path_params and not set(e.path_params) <= {"run_id", "name"}):
            continue
        path = e.full_path.replace("{run_id}", server.run_a.id).replace("{name}", "churn")
        answers.append(server.client.get(path, headers=server.headers("admin")).text)
    answers.append(
        server.client.get(f"{API_PREFIX}/openapi.json", headers=server.headers("admin")).text
    )
    body = "\n".join(answers)
    assert "churn" in body and "hook" in body  # the listings were answered
    for secret in secrets:
        assert secret not in body
    for t in server.tokens.values():
        assert hash_token_secret(t.secret) not in body


def test_tokens_are_not_served_over_http(server: Server) -> None:
    assert not [e for e in ENDPOINTS if "token" in e]
    admin = server.as_("admin")
    with pytest.raises(MloopError, match="on the server host"):
        admin.list_tokens()


# ---------------------------------------------------------------------------------------- rate limits


def test_past_its_rate_a_token_gets_429_with_retry_after(tmp_path: Path) -> None:
    for s in _server(tmp_path, rate_limit=RateLimit(2.0, burst=3)):
        now = [1000.0]  # the buckets' clock, so a slow machine does not refill them mid-test
        s.app.state.auth.buckets._clock = lambda n=now: n[0]
        c, h = s.client, s.headers("reader")
        codes = [c.get(f"{API_PREFIX}/projects", headers=h).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get(f"{API_PREFIX}/projects", headers=h)
        assert r.status_code == 429 and r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert int(r.headers["retry-after"]) >= 1
        assert "rate limit of 2 requests/s" in r.json()["message"]
        # another token has its own bucket
        assert c.get(f"{API_PREFIX}/projects", headers=s.headers("writer")).status_code == 200
        now[0] += 0.6  # refilled by 1.2 requests
        assert c.get(f"{API_PREFIX}/projects", headers=h).status_code == 200
        assert c.get(f"{API_PREFIX}/projects", headers=h).status_code == 429


def test_a_tokens_own_rate_wins_and_the_http_store_waits_for_retry_after(tmp_path: Path) -> None:
    for s in _server(tmp_path):  # no default rate: only tokens with their own are limited
        s.tokens["slow"] = s.store.create_token("slow", role="read", rate_limit=1.0)
        c, h = s.client, s.headers("slow")
        codes = [c.get(f"{API_PREFIX}/projects", headers=h).status_code for _ in range(3)]
        assert codes == [200, 200, 429]  # a bucket of two seconds' worth
        t0 = time.monotonic()
        assert s.as_("slow").list_projects()  # waits Retry-After, then succeeds
        assert time.monotonic() - t0 >= 0.9
        assert all(
            c.get(f"{API_PREFIX}/projects", headers=s.headers("reader")).status_code == 200
            for _ in range(20)
        )


def test_a_429_that_asks_too_long_raises_rate_limited(tmp_path: Path) -> None:
    for s in _server(tmp_path):
        s.tokens["glacial"] = s.store.create_token("glacial", role="read", rate_limit=0.01)
        store = s.as_("glacial")
        store.list_projects()
        with pytest.raises(RateLimitedError, match="over its rate limit") as info:
            for _ in range(3):
                store.list_projects()
        assert info.value.details["retry_after_s"] > 10


def test_token_buckets_refill_at_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(RateLimit(10.0, burst=5), clock=lambda: now[0])
    token = ApiToken("0" * 16, "t", "read", None, 0)
    assert [buckets.take(token) for _ in range(5)] == [0.0] * 5
    assert buckets.take(token) == pytest.approx(0.1)
    now[0] += 0.25  # 2.5 requests' worth
    assert [buckets.take(token) == 0.0 for _ in range(3)] == [True, True, False]
    now[0] += 100  # full again, never above the burst
    assert sum(buckets.take(token) == 0.0 for _ in range(10)) == 5


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("100/s", 100.0), ("6000/min", 100.0), ("36/h", 0.01), ("2.5/s", 2.5), ("7", 7.0)],
)
def test_rate_limits_parse(text: str, per_second: float) -> None:
    assert RateLimit.parse(text).per_second == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["", "0/s", "0", "-1/s", "1/day", "fast", "/s"])
def test_bad_rate_limits_are_refused(text: str) -> None:
    from mloop.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="rate limit reads like"):
        RateLimit.parse(text)


# ---------------------------------------------------------------------------------------- real socket


def test_mloop_server_auth_as_a_process(tmp_path: Path) -> None:
    """``mloop server --auth`` over a real socket, with its rate and cache flags."""
    from _server_process import ServerProcess
    from mloop.config import Settings
    from mloop.store import open_store
    from mloop.store._open import clear_store_cache

    db = f"sqlite:///{tmp_path / 'server.db'}"
    args = ("--auth", "--rate-limit", "120/min", "--burst", "3", "--token-cache-s", "0")
    with ServerProcess(tmp_path, store_uri=db, artifact_uri=str(tmp_path / "a"), args=args) as srv:
        assert "no active token" in srv.log.read_text()  # said at start, with how to make one
        api = f"{srv.url}{API_PREFIX}"
        r = httpx.get(f"{api}/projects")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        store = SqlStore(db)
        try:
            p = store.create_project("alpha")
            writer = store.create_token("ci-bot", role="write", project_id=p.id)
            reader = store.create_token("dashboard", role="read")
            clear_store_cache()
            remote = open_store(
                Settings(home=tmp_path / "h", server_url=srv.url, token=writer.secret)
            )
            run = remote.create_run(p.id, name="over-tcp", user="eve")
            remote.log_batch(
                run.id, metrics={"m": _series([1.0, 2.0])}, params={}, tags={}, batch_id=None
            )
            assert store.get_run(run.id).user == "ci-bot"
            clear_store_cache()
            h = {"Authorization": f"Bearer {reader.secret}"}
            codes = [httpx.get(f"{api}/runs/{run.id}", headers=h).status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]  # a burst of 3 at 2 requests/s
            r = httpx.get(f"{api}/runs/{run.id}", headers=h)
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            store.revoke_token(reader.token.id)  # no cache: refused at once
            time.sleep(1.0)
            r = httpx.get(f"{api}/runs/{run.id}", headers=h)
            assert r.status_code == 401 and "revoked" in r.json()["message"]
        finally:
            store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-limit", "fast"], "a rate limit reads like"),
        (["--rate-limit", "off", "--burst", "3"], "--burst needs a --rate-limit"),
        (["--burst", "0"], "`burst` must be an int >= 1"),
        (["--token-cache-s", "-1"], "`token_cache_s` must be in [0, 3600]"),
    ],
)
def test_bad_server_auth_flags_are_one_error_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    from typer.testing import CliRunner

    from mloop.cli import get_app

    res = CliRunner().invoke(
        get_app(),
        ["server", "--auth", "--store-uri", f"sqlite:///{tmp_path / 'x.db'}", *args],
    )
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and message in lines[0], res.stderr


# ---------------------------------------------------------------------------------------- other routes


def test_hand_written_routes_follow_their_policy_and_fail_closed(tmp_path: Path) -> None:
    from starlette.responses import PlainTextResponse

    from mloop.server._scopes import route_policy

    store = SqlStore(f"sqlite:///{tmp_path / 'routes.db'}")
    a, b = store.create_project("alpha"), store.create_project("beta")
    ra, rb = store.create_run(a.id, name="ra"), store.create_run(b.id, name="rb")
    tokens = {
        "reader": store.create_token("r", role="read"),
        "writer": store.create_token("w", role="write"),
        "scoped": store.create_token("s", role="write", project_id=a.id),
    }
    app = create_app(store, auth=True)

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hi")

    @route_policy("read", scoped="run", param="run_id")
    async def run_file(request: Any) -> PlainTextResponse:
        return PlainTextResponse("file")

    @route_policy("admin", scoped="project", param="pid")
    async def manage(request: Any) -> PlainTextResponse:
        return PlainTextResponse("done")

    app.add_route("/x/plain", hello, methods=["GET", "POST"])
    app.add_route("/x/runs/{run_id}/file", run_file, methods=["GET"])
    app.add_route("/x/projects/{pid}", manage, methods=["POST"])
    client = in_process_client(app)

    def status(method: str, path: str, who: str) -> int:
        h = {"Authorization": f"Bearer {tokens[who].secret}"}
        return client.request(method, path, headers=h).status_code

    try:
        assert status("GET", "/x/plain", "reader") == 200
        assert status("POST", "/x/plain", "reader") == 403  # undeclared: write for a POST
        assert status("POST", "/x/plain", "writer") == 200
        assert status("GET", "/x/plain", "scoped") == 403  # undeclared: no scoped tokens
        assert status("GET", f"/x/runs/{ra.id}/file", "scoped") == 200
        assert status("GET", f"/x/runs/{rb.id}/file", "scoped") == 403
        assert status("POST", f"/x/projects/{a.id}", "writer") == 403  # needs admin
        assert status("HEAD", f"/x/runs/{ra.id}/file", "scoped") == 200  # HEAD as its GET
        assert status("HEAD", f"/x/runs/{rb.id}/file", "scoped") == 403
    finally:
        client.close()
        store.close()


def test_a_token_from_the_cli_in_a_subprocess_opens_the_server(tmp_path: Path) -> None:
    """What an admin does on the server host: create a token in a shell, hand it to a client."""
    db = tmp_path / "server.db"
    env = {**os.environ, "MLOOP_STORE_URI": f"sqlite:///{db}", "MLOOP_HOME": str(tmp_path / "h")}
    proc = subprocess.run(
        [sys.executable, "-m", "mloop", "token", "create", "--name", "laptop", "--role", "write"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    secret = proc.stdout.strip()
    store = SqlStore(f"sqlite:///{db}")
    client = in_process_client(create_app(store, auth=True))
    try:
        remote = HttpStore("http://mloop.test", client=client, token=secret)
        p = remote.get_or_create_project("from-the-laptop")
        assert remote.create_run(p.id, name="r").user == "laptop"
    finally:
        client.close()
        store.close()
