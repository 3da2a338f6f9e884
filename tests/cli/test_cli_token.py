"""``mloop token create | list | revoke`` against the store the settings point at (a server's own)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mloop.cli import get_app
from mloop.errors import UnauthenticatedError
from mloop.ids import now_ms
from mloop.store import SqlStore, hash_token_secret, is_token_secret
from mloop.store._open import clear_store_cache


@pytest.fixture
def db(mloop_home: Path) -> Iterator[str]:
    clear_store_cache()
    yield f"sqlite:///{(mloop_home / 'mloop.db').absolute()}"
    clear_store_cache()


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(get_app(), list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout, res.stderr


def test_create_prints_the_secret_alone_on_stdout_once(db: str) -> None:
    code, out, err = run("token", "create", "--name", "ci-bot", "--role", "write")
    assert code == 0, err
    secret = out.strip()
    assert out.count("\n") == 1 and is_token_secret(secret)
    assert "role write" in err and "every project" in err and "shown only this once" in err
    s = SqlStore(db)
    try:
        token = s.verify_token(secret)
        assert (token.name, token.role, token.project_id, token.expires_ms) == (
            "ci-bot",
            "write",
            None,
            None,
        )
        assert token.created_by  # who ran the command
    finally:
        s.close()


def test_create_with_a_project_an_expiry_and_a_rate(db: str) -> None:
    s = SqlStore(db)
    p = s.create_project("churn")
    s.close()
    before = now_ms()
    code, out, err = run(
        "token", "create", "--name", "team", "--role", "read", "--project", "churn",
        "--expires", "30d", "--rate-limit", "2.5", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    t = doc["token"]
    assert (t["project_id"], t["project"], t["role"], t["rate_limit"]) == (
        p.id,
        "churn",
        "read",
        2.5,
    )
    assert before + 30 * 86_400_000 <= t["expires_ms"] <= now_ms() + 30 * 86_400_000
    assert is_token_secret(doc["secret"]) and t["status"] == "active"
    code, out, _ = run("token", "create", "--name", "t2", "--role", "read", "--project", p.id)
    assert code == 0 and is_token_secret(out.strip())  # by id too


def test_a_missing_project_is_an_error_unless_asked_to_create_it(db: str) -> None:
    code, out, err = run("token", "create", "--name", "x", "--role", "read", "--project", "nope")
    assert code == 2 and out == "" and err.startswith("error: no project is named or numbered")
    assert "--create-project" in err
    code, out, err = run(
        "token", "create", "--name", "x", "--role", "read", "--project", "nope",
        "--create-project",
    )  # fmt: skip
    assert code == 0 and "created project 'nope'" in err and is_token_secret(out.strip())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "owner"], "`--role` must be one of ['read', 'write', 'admin']"),
        (["--role", "read", "--expires", "soon"], "`--expires` takes a duration"),
        (["--role", "read", "--expires", "0d"], "`--expires` takes a duration"),
        (["--role", "read", "--rate-limit", "0"], "`rate_limit` must be a finite number > 0"),
    ],
)
def test_bad_options_are_one_error_line(db: str, args: list[str], message: str) -> None:
    code, out, err = run("token", "create", "--name", "x", *args)
    assert code == 2 and out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_list_and_revoke_never_show_a_secret(db: str) -> None:
    secrets = [
        run("token", "create", "--name", name, "--role", "read")[1].strip()
        for name in ("alice", "bob")
    ]
    code, out, _ = run("token", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and [t["name"] for t in listed] in (["bob", "alice"], ["alice", "bob"])
    code, table, _ = run("token", "list")
    assert code == 0 and "alice" in table and "active" in table
    for secret in secrets:
        for text in (out, table):
            assert secret not in text and hash_token_secret(secret) not in text
    bob = next(t for t in listed if t["name"] == "bob")
    code, out, _ = run("token", "revoke", bob["id"])
    assert code == 0 and f"revoked token {bob['id']}" in out
    code, out, _ = run("token", "list", "--active", "--json")
    assert [t["name"] for t in json.loads(out)] == ["alice"]
    code, out, _ = run("token", "list", "--json")
    assert {t["name"]: t["status"] for t in json.loads(out)} == {
        "alice": "active",
        "bob": "revoked",
    }
    s = SqlStore(db)
    try:
        with pytest.raises(UnauthenticatedError, match="revoked"):
            s.verify_token(secrets[1])
        assert s.verify_token(secrets[0]).name == "alice"
    finally:
        s.close()
    code, _, err = run("token", "revoke", "fedcba9876543210")
    assert code == 2 and err.startswith("error: token fedcba9876543210 does not exist")
    code, _, err = run("token", "revoke", "nope")
    assert code == 2 and "16 lowercase hex" in err


def test_list_on_an_empty_folder_creates_nothing(mloop_home: Path) -> None:
    clear_store_cache()
    code, out, _ = run("token", "list")
    assert code == 0 and "no tokens" in out and not mloop_home.exists()


def test_pointed_at_a_server_the_commands_say_where_tokens_are_managed(
    mloop_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOOP_SERVER_URL", "http://127.0.0.1:1")  # nothing is sent there
    clear_store_cache()
    for args in (
        ["token", "create", "--name", "x", "--role", "read"],
        ["token", "list"],
        ["token", "revoke", "0123456789abcdef"],
    ):
        code, out, err = run(*args)
        assert code == 2 and out == "", args
        assert err.startswith("error: tokens are managed on the team server's own store"), err
        assert "MLOOP_STORE_URI" in err
    clear_store_cache()
