"""Who is calling: set per request by the auth middleware (from the bearer token when auth is on)
and read by handlers that record an actor, so a client cannot write events in someone else's name."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mloop.store import ApiToken

__all__ = ["AUTHENTICATED", "TOKEN", "actor_for"]

# The token's principal for the request being handled; None when the server runs without auth.
AUTHENTICATED: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mloop_server_actor", default=None
)
# The verified token itself (role, project scope); None when the server runs without auth.
TOKEN: contextvars.ContextVar[ApiToken | None] = contextvars.ContextVar(
    "mloop_server_token", default=None
)


def actor_for(claimed: str | None) -> str | None:
    """The actor to record: the token's principal when auth is on, else what the client claims."""
    principal = AUTHENTICATED.get()
    return principal if principal is not None else claimed
