"""API tokens on SQL: each created or revoked with its event, in one transaction."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mloop.errors import ConflictError, NotFoundError
from mloop.ids import now_ms
from mloop.store._sql import _schema as t
from mloop.store._sql._engine import describe_uri
from mloop.store._sql._errors import classify, translate
from mloop.store._sql._log import SqlEventLogMixin
from mloop.store._tokens_base import ApiToken

__all__ = ["SqlTokensMixin"]

_COLUMNS = (
    "id",
    "name",
    "role",
    "project_id",
    "created_ms",
    "expires_ms",
    "last_used_ms",
    "revoked_ms",
    "created_by",
    "rate_limit",
)
_SELECT = sa.select(*(t.api_tokens.c[c] for c in _COLUMNS))


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        role=row.role,
        project_id=None if row.project_id is None else str(row.project_id),
        created_ms=row.created_ms,
        expires_ms=row.expires_ms,
        last_used_ms=row.last_used_ms,
        revoked_ms=row.revoked_ms,
        created_by=row.created_by,
        rate_limit=row.rate_limit,
    )


def _payload(token: ApiToken) -> dict[str, Any]:
    return {
        "token_id": token.id,
        "name": token.name,
        "role": token.role,
        "project_id": token.project_id,
        "expires_ms": token.expires_ms,
    }


class SqlTokensMixin(SqlEventLogMixin):
    """Mixed into :class:`SqlStore`; ``_log_event`` writes the audit events."""

    def _do_create_token(self, token: ApiToken, secret_sha256: str) -> ApiToken:
        pid = None
        if token.project_id is not None:
            try:
                pid = int(token.project_id)
            except ValueError:
                raise NotFoundError(f"project id {token.project_id!r} does not exist.") from None
        try:
            with self._write() as conn:
                if pid is not None:
                    stage = conn.execute(
                        sa.select(t.projects.c.lifecycle_stage).where(t.projects.c.id == pid)
                    ).scalar()
                    if stage is None:
                        raise NotFoundError(f"project id {token.project_id!r} does not exist.")
                    if stage != "active":
                        raise NotFoundError(
                            f"project id {token.project_id!r} is deleted; restore it before "
                            "creating a token for it."
                        )
                conn.execute(
                    t.api_tokens.insert().values(
                        **{c: getattr(token, c) for c in _COLUMNS if c != "project_id"},
                        project_id=pid,
                        secret_sha256=secret_sha256,
                    )
                )
                self._log_event(
                    conn,
                    "token_created",
                    f"tokens/{token.id}",
                    actor=token.created_by,
                    payload=_payload(token),
                )
        except IntegrityError as exc:
            if classify(exc).kind == "unique":  # 64 random bits of id (or 256 of secret) collided
                raise ConflictError(
                    "a token with the same id was created concurrently; create it again."
                ) from None
            raise translate(exc, describe_uri(self.uri)) from None
        return token

    def _do_get_token(self, token_id: str) -> ApiToken:
        with self._read() as conn:
            row = conn.execute(_SELECT.where(t.api_tokens.c.id == token_id)).first()
        if row is None:
            raise NotFoundError(f"token {token_id} does not exist; see `mloop token list`.")
        return _token(row)

    def _do_get_token_by_hash(self, secret_sha256: str) -> ApiToken | None:
        with self._read() as conn:
            row = conn.execute(_SELECT.where(t.api_tokens.c.secret_sha256 == secret_sha256)).first()
        return None if row is None else _token(row)

    def _do_list_tokens(self, include_revoked: bool) -> list[ApiToken]:
        q = _SELECT.order_by(t.api_tokens.c.created_ms.desc(), t.api_tokens.c.id)
        if not include_revoked:
            q = q.where(t.api_tokens.c.revoked_ms.is_(None))
        with self._read() as conn:
            return [_token(r) for r in conn.execute(q)]

    def _do_revoke_token(self, token_id: str, actor: str | None) -> ApiToken:
        at = t.api_tokens
        with self._write() as conn:
            row = conn.execute(_SELECT.where(at.c.id == token_id)).first()
            if row is None:
                raise NotFoundError(f"token {token_id} does not exist; see `mloop token list`.")
            token = _token(row)
            if token.revoked:
                return token
            ts = now_ms()
            n = conn.execute(
                at.update()
                .where(at.c.id == token_id, at.c.revoked_ms.is_(None))
                .values(revoked_ms=ts)
            ).rowcount
            if n == 0:  # revoked concurrently: that revocation stands
                return _token(conn.execute(_SELECT.where(at.c.id == token_id)).one())
            self._log_event(
                conn, "token_revoked", f"tokens/{token_id}", actor=actor, payload=_payload(token)
            )
        return dataclasses.replace(token, revoked_ms=ts)

    def _do_record_token_use(self, token_id: str, at_ms: int) -> None:
        at = t.api_tokens
        with self._write() as conn:
            conn.execute(
                at.update()
                .where(
                    at.c.id == token_id,
                    sa.or_(at.c.last_used_ms.is_(None), at.c.last_used_ms < at_ms),
                )
                .values(last_used_ms=at_ms)
            )
