"""API tokens: one contract on SQLite and PostgreSQL (tokens are never served over HTTP)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from mloop.errors import (
    InvalidInputError,
    MloopError,
    NotFoundError,
    UnauthenticatedError,
)
from mloop.ids import now_ms
from mloop.store import (
    EVENT_TYPES,
    TOKEN_ROLES,
    ApiToken,
    NewToken,
    SqlStore,
    hash_token_secret,
    is_token_secret,
)


@pytest.fixture
def open_sql(sql_store_uri: str) -> Iterator[Callable[[], SqlStore]]:
    made: list[SqlStore] = []

    def make() -> SqlStore:
        made.append(SqlStore(sql_store_uri))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def store(open_sql: Callable[[], SqlStore]) -> SqlStore:
    return open_sql()


def raw_rows(store: SqlStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM api_tokens"))]


# ---------------------------------------------------------------------------------------- secrets


def test_a_token_is_created_with_its_secret_once_and_stored_as_a_hash(store: SqlStore) -> None:
    new = store.create_token("ci-bot", role="write", actor="alice")
    assert isinstance(new, NewToken) and isinstance(new.token, ApiToken)
    assert is_token_secret(new.secret) and new.secret.startswith("mlp_") and len(new.secret) == 53
    assert new.secret not in repr(new) and new.secret not in str(new.token.to_dict())
    t = new.token
    assert (t.name, t.role, t.project_id, t.created_by) == ("ci-bot", "write", None, "alice")
    assert t.status() == "active" and not t.revoked and t.allows("write")
    assert not t.allows("admin") and t.allows("read")
    (row,) = raw_rows(store)
    assert row["secret_sha256"] == hash_token_secret(new.secret)
    assert new.secret not in repr(row)  # nowhere in the row, in any column
    assert store.get_token(t.id) == t and store.list_tokens() == [t]


def test_secrets_are_random_unique_and_carry_a_check(store: SqlStore) -> None:
    secrets = {store.create_token("same-name", role="read").secret for _ in range(20)}
    assert len(secrets) == 20 and all(is_token_secret(s) for s in secrets)
    s = next(iter(secrets))
    typo = s[:10] + ("A" if s[10] != "A" else "B") + s[11:]
    assert not is_token_secret(typo)  # the CRC-32 catches a one-letter change
    assert not is_token_secret(s[:-1]) and not is_token_secret("mlp_" + "x" * 10)
    assert not is_token_secret(None) and not is_token_secret(s.replace("mlp_", "mlq_"))
    assert len({t.id for t in store.list_tokens()}) == 20  # one principal, many tokens


def test_verify_returns_the_active_token_and_refuses_the_rest(store: SqlStore) -> None:
    new = store.create_token("alice", role="admin")
    assert store.verify_token(new.secret) == new.token
    unknown = store.create_token("x", role="read")
    store.revoke_token(unknown.token.id)
    for bad, why in (
        ("", "not an mloop token"),
        ("Bearer " + new.secret, "not an mloop token"),
        (new.secret[:-1], "not an mloop token"),
        ("mlp_" + "0" * 49, "not an mloop token"),  # shaped like one, with a wrong check
        (unknown.secret, "revoked"),
    ):
        with pytest.raises(UnauthenticatedError, match=why) as info:
            store.verify_token(bad)
        assert new.secret not in info.value.message and unknown.secret not in info.value.message
    other = _well_formed_unknown_secret()
    with pytest.raises(UnauthenticatedError, match="unknown to this server"):
        store.verify_token(other)


def _well_formed_unknown_secret() -> str:
    from mloop.store._tokens_base import new_token_secret

    return new_token_secret()


def test_an_expired_token_is_refused_and_expiry_must_be_in_the_future(store: SqlStore) -> None:
    soon = now_ms() + 60_000
    new = store.create_token("ci", role="read", expires_ms=soon)
    assert new.token.expires_ms == soon
    assert store.verify_token(new.secret, at_ms=soon - 1) == new.token
    with pytest.raises(UnauthenticatedError, match="expired") as info:
        store.verify_token(new.secret, at_ms=soon)
    assert info.value.details == {"token_id": new.token.id, "expires_ms": soon}
    assert new.token.status(soon) == "expired" and new.token.status(soon - 1) == "active"
    with pytest.raises(InvalidInputError, match="must be in the future"):
        store.create_token("ci", role="read", expires_ms=now_ms() - 1)


# ---------------------------------------------------------------------------------------- revocation


def test_revoking_is_final_idempotent_and_recorded(store: SqlStore) -> None:
    new = store.create_token("ci", role="write")
    keep = store.create_token("ci", role="write")
    revoked = store.revoke_token(new.token.id, actor="admin")
    assert revoked.revoked and revoked.status() == "revoked" and revoked.revoked_ms is not None
    assert store.get_token(new.token.id) == revoked
    again = store.revoke_token(new.token.id, actor="someone-else")
    assert again == revoked  # the first revocation's time stands
    with pytest.raises(UnauthenticatedError, match="revoked"):
        store.verify_token(new.secret)
    assert store.verify_token(keep.secret) == keep.token  # the other token of the principal lives
    assert store.list_tokens(include_revoked=False) == [keep.token]
    assert {t.id for t in store.list_tokens()} == {new.token.id, keep.token.id}
    events = store.read_events(types=["token_created", "token_revoked"])
    assert [e.type for e in events] == ["token_created", "token_created", "token_revoked"]
    assert events[-1].actor == "admin" and events[-1].subject == f"tokens/{new.token.id}"
    assert events[-1].payload == {
        "token_id": new.token.id,
        "name": "ci",
        "role": "write",
        "project_id": None,
        "expires_ms": None,
    }
    for e in events:
        assert new.secret not in repr(e) and hash_token_secret(new.secret) not in repr(e)
    assert {"token_created", "token_revoked"} <= set(EVENT_TYPES)


def test_unknown_and_malformed_ids(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="mloop token list"):
        store.revoke_token("0" * 16)
    with pytest.raises(NotFoundError):
        store.get_token("0" * 16)
    for bad in ("", "0" * 15, "G" * 16, 12, None, "0" * 32):
        with pytest.raises(InvalidInputError, match="16 lowercase hex"):
            store.revoke_token(bad)  # type: ignore[arg-type]


def test_concurrent_revocations_record_one_event(open_sql: Callable[[], SqlStore]) -> None:
    first = open_sql()
    token = first.create_token("ci", role="write").token
    stores = [open_sql() for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    results: list[ApiToken] = []

    def revoke(s: SqlStore) -> None:
        barrier.wait()
        results.append(s.revoke_token(token.id, actor="admin"))

    threads = [threading.Thread(target=revoke, args=(s,)) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len({r.revoked_ms for r in results}) == 1
    assert len(first.read_events(types=["token_revoked"])) == 1


# ---------------------------------------------------------------------------------------- scope, validation


def test_a_project_scope_must_name_a_live_project(store: SqlStore) -> None:
    p = store.create_project("churn")
    scoped = store.create_token("team-churn", role="write", project_id=p.id).token
    assert scoped.project_id == p.id and store.get_token(scoped.id).project_id == p.id
    with pytest.raises(NotFoundError, match="does not exist"):
        store.create_token("x", role="read", project_id="424242")
    with pytest.raises(NotFoundError, match="does not exist"):
        store.create_token("x", role="read", project_id="churn")  # a name is not an id
    gone = store.create_project("gone")
    store.delete_project(gone.id)
    with pytest.raises(NotFoundError, match="is deleted"):
        store.create_token("x", role="read", project_id=gone.id)
    assert [t.name for t in store.list_tokens()] == ["team-churn"]  # nothing half-made


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "", "role": "read"}, "token `name`"),
        ({"name": "   ", "role": "read"}, "token `name`"),
        ({"name": "x" * 256, "role": "read"}, "at most"),
        ({"name": "a\x00b", "role": "read"}, "name"),
        ({"name": 3, "role": "read"}, "token `name`"),
        ({"name": "ci", "role": "owner"}, r"`role` must be one of \['read', 'write', 'admin'\]"),
        ({"name": "ci", "role": None}, "`role`"),
        ({"name": "ci", "role": "read", "project_id": ""}, "project_id"),
        ({"name": "ci", "role": "read", "project_id": 3}, "project_id"),
        ({"name": "ci", "role": "read", "expires_ms": -5}, "expires_ms"),
        ({"name": "ci", "role": "read", "expires_ms": 1.5}, "expires_ms"),
        ({"name": "ci", "role": "read", "expires_ms": True}, "expires_ms"),
        ({"name": "ci", "role": "read", "rate_limit": 0}, "rate_limit"),
        ({"name": "ci", "role": "read", "rate_limit": -1.0}, "rate_limit"),
        ({"name": "ci", "role": "read", "rate_limit": math.nan}, "rate_limit"),
        ({"name": "ci", "role": "read", "rate_limit": math.inf}, "rate_limit"),
        ({"name": "ci", "role": "read", "rate_limit": True}, "rate_limit"),
        ({"name": "ci", "role": "read", "actor": "a" * 300}, "actor"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    store: SqlStore, kwargs: dict[str, Any], match: str
) -> None:
    rest = dict(kwargs)
    name = rest.pop("name")
    with pytest.raises(InvalidInputError, match=match):
        store.create_token(name, **rest)
    assert store.list_tokens() == [] and raw_rows(store) == []


def test_roles_and_rate_limits_round_trip(open_sql: Callable[[], SqlStore]) -> None:
    store = open_sql()
    made = [
        store.create_token(f"t-{role}", role=role, rate_limit=2.5).token for role in TOKEN_ROLES
    ]
    assert [t.rate_limit for t in made] == [2.5, 2.5, 2.5]
    other = open_sql()  # another client reads the same tokens, newest first
    listed = other.list_tokens()
    assert {t.id for t in listed} == {t.id for t in made}
    assert [t.created_ms for t in listed] == sorted((t.created_ms for t in listed), reverse=True)
    assert {other.get_token(t.id) for t in made} == set(made)


def test_last_use_only_moves_forward(store: SqlStore) -> None:
    token = store.create_token("ci", role="read").token
    assert token.last_used_ms is None
    store.record_token_use(token.id, at_ms=2_000)
    store.record_token_use(token.id, at_ms=1_000)  # a late report of an older use
    assert store.get_token(token.id).last_used_ms == 2_000
    store.record_token_use(token.id, at_ms=3_000)
    assert store.get_token(token.id).last_used_ms == 3_000
    with pytest.raises(InvalidInputError, match="at_ms"):
        store.record_token_use(token.id, at_ms=-1)


def test_the_http_store_refuses_to_manage_tokens_and_says_where() -> None:
    from mloop.store import HttpStore

    s = HttpStore("http://127.0.0.1:1")  # nothing listens there: no request may be sent
    try:
        for call in (
            lambda: s.create_token("ci", role="read"),
            lambda: s.list_tokens(),
            lambda: s.revoke_token("0" * 16),
            lambda: s.verify_token(_well_formed_unknown_secret()),
        ):
            with pytest.raises(MloopError, match="on the server host") as info:
                call()
            assert type(info.value) is MloopError
        with pytest.raises(InvalidInputError, match="`role`"):  # validated first, as everywhere
            s.create_token("ci", role="root")
    finally:
        s.close()


# ---------------------------------------------------------------------------------------- migration


def test_migration_from_0007_adds_api_tokens_to_a_store_with_runs(sql_store_uri: str) -> None:
    from alembic import command

    from mloop.store._sql._engine import HEAD_REVISION, _alembic_config

    engine = sa.create_engine(sql_store_uri)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0007")
        assert not sa.inspect(conn).has_table("api_tokens")
        conn.execute(
            sa.text(
                "INSERT INTO projects (name, created_ms, updated_ms, lifecycle_stage) "
                "VALUES ('churn', 1, 1, 'active')"
            )
        )
    s = SqlStore(sql_store_uri)  # upgrades on open
    try:
        with s.engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        assert version == HEAD_REVISION
        p = s.get_project_by_name("churn")
        assert p is not None
        new = s.create_token("team", role="write", project_id=p.id)
        assert s.verify_token(new.secret).project_id == p.id
    finally:
        s.close()
    with engine.begin() as conn:  # and back: the table goes, the projects stay
        command.downgrade(_alembic_config(conn), "0007")
        assert not sa.inspect(conn).has_table("api_tokens")
        assert conn.execute(sa.text("SELECT count(*) FROM projects")).scalar() == 1
    engine.dispose()
