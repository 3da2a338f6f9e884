"""Tokens are not served over HTTP: a token would otherwise be able to mint or revoke tokens, and a
secret would cross the network. They are managed on the server's own store, on the server host."""

from __future__ import annotations

from mloop.errors import MloopError
from mloop.store._tokens_base import ApiToken

__all__ = ["HttpTokensMixin"]


def _local_only() -> MloopError:
    return MloopError(
        "tokens are managed on the team server's own store, not over HTTP: run `mloop token` on "
        "the server host with MLOOP_STORE_URI set to the server's database (not to its URL)."
    )


class HttpTokensMixin:
    """The token hooks of :class:`HttpStore`: each says where tokens are managed instead."""

    def _do_create_token(self, token: ApiToken, secret_sha256: str) -> ApiToken:
        raise _local_only()

    def _do_get_token(self, token_id: str) -> ApiToken:
        raise _local_only()

    def _do_get_token_by_hash(self, secret_sha256: str) -> ApiToken | None:
        raise _local_only()

    def _do_list_tokens(self, include_revoked: bool) -> list[ApiToken]:
        raise _local_only()

    def _do_revoke_token(self, token_id: str, actor: str | None) -> ApiToken:
        raise _local_only()

    def _do_record_token_use(self, token_id: str, at_ms: int) -> None:
        raise _local_only()
