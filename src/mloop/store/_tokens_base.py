"""API tokens: who may call a team server (``mloop server --auth``), with what role, in which project.

A token is created on the server's own store by an admin (``mloop token create``) and its secret is
shown once. The store keeps the SHA-256 of the secret, never the secret. Why a plain SHA-256 and not
a salted, slow password hash (bcrypt, scrypt, argon2): a secret is 256 random bits, not something a
person chose, so there is no dictionary to precompute and nothing a salt or a work factor would
protect: recovering a secret from its hash is a 2**256 search either way. A fast, deterministic
hash is what makes verifying a request one indexed lookup instead of ~100 ms of key stretching, and
it is what GitHub and PyPI do with their API tokens. The hash is compared inside the database
index, so a caller's timing learns at most something about the hashes of its own guesses.

A secret reads ``mlp_`` + 43 base62 characters (256 random bits) + a 6-character CRC-32 check, so
a truncated or mistyped token is refused without a lookup and secret scanners can recognise one.

A token's *name* is its principal: the actor the server records in events for every request made
with it (several tokens may share a name: rotating one means creating the next, then revoking the
old). Its *role* is ``read`` (reads), ``write`` (also changes runs, models, monitors) or ``admin``
(also webhooks, which hold secrets, and destructive maintenance). A *project scope* limits it to one
project's runs, metrics, artifacts and search results.
"""

from __future__ import annotations

import abc
import hashlib
import math
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Literal

from mloop.codec import WireEntity
from mloop.errors import InvalidInputError, UnauthenticatedError
from mloop.ids import now_ms
from mloop.store._validation import validate_name, validate_text

__all__ = [
    "TOKEN_PREFIX",
    "TOKEN_ROLES",
    "ApiToken",
    "NewToken",
    "TokenRole",
    "TokenStoreMixin",
    "hash_token_secret",
    "is_token_secret",
    "new_token_secret",
    "role_allows",
]

TokenRole = Literal["read", "write", "admin"]
TOKEN_ROLES: tuple[str, ...] = TokenRole.__args__  # type: ignore[attr-defined]
_RANK = {role: i for i, role in enumerate(TOKEN_ROLES)}

TOKEN_PREFIX = "mlp_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_CHARS = 43  # 43 * log2(62) = 256.1 bits
_CHECK_CHARS = 6  # 62**6 > 2**32: a CRC-32 fits
_SECRET = re.compile(rf"^{TOKEN_PREFIX}[0-9A-Za-z]{{{_BODY_CHARS + _CHECK_CHARS}}}$")
_TOKEN_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_PRINCIPAL = 255  # the events' actor column


def _base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def _check(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), _CHECK_CHARS)


def new_token_secret() -> str:
    """A fresh secret: ``mlp_``, 256 random bits in base62, and a CRC-32 check."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_BODY_CHARS))
    return f"{TOKEN_PREFIX}{body}{_check(body)}"


def is_token_secret(text: object) -> bool:
    """Whether ``text`` is shaped like a secret :func:`new_token_secret` made (its check matches)."""
    if not isinstance(text, str) or not _SECRET.fullmatch(text):
        return False
    body = text[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + _BODY_CHARS]
    return secrets.compare_digest(_check(body), text[-_CHECK_CHARS:])


def hash_token_secret(secret: str) -> str:
    """The hex SHA-256 of a secret: what the store keeps, and what the server's cache is keyed by."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def role_allows(role: str, required: str) -> bool:
    """Whether a token with ``role`` may call what ``required`` (read < write < admin) guards."""
    return _RANK[role] >= _RANK[required]


@dataclass(frozen=True)
class ApiToken(WireEntity):
    """A token as the store describes it: everything but its secret.

    Attributes
    ----------
    id : str
        16 lowercase hex characters (``mloop token revoke ID``).
    name : str
        The principal: recorded as the actor of what is done with the token.
    role : {"read", "write", "admin"}
    project_id : str or None
        The one project the token reaches; None: every project.
    created_ms, expires_ms, last_used_ms, revoked_ms : int or None
        Epoch milliseconds. ``last_used_ms`` is updated at most once a minute per token.
    created_by : str or None
        Who created it (the actor given to :meth:`TokenStoreMixin.create_token`).
    rate_limit : float or None
        This token's requests per second; None: the server's default.
    """

    id: str
    name: str
    role: TokenRole
    project_id: str | None
    created_ms: int
    expires_ms: int | None = None
    last_used_ms: int | None = None
    revoked_ms: int | None = None
    created_by: str | None = None
    rate_limit: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_ms is not None

    def expired(self, at_ms: int | None = None) -> bool:
        """Whether the token is past its expiry at ``at_ms`` (default now)."""
        return self.expires_ms is not None and (now_ms() if at_ms is None else at_ms) >= (
            self.expires_ms
        )

    def status(self, at_ms: int | None = None) -> Literal["active", "expired", "revoked"]:
        if self.revoked:
            return "revoked"
        return "expired" if self.expired(at_ms) else "active"

    def allows(self, required: str) -> bool:
        """Whether this token's role is at least ``required``."""
        return role_allows(self.role, required)


@dataclass(frozen=True)
class NewToken:
    """A token just created, with its secret: the only time the secret exists outside its holder.

    The ``repr`` leaves the secret out, so logging a ``NewToken`` does not leak it.
    """

    token: ApiToken
    secret: str

    def __repr__(self) -> str:
        return f"NewToken(token={self.token!r}, secret='{TOKEN_PREFIX}...')"


def _validate_token_id(token_id: object) -> str:
    if not isinstance(token_id, str) or not _TOKEN_ID.fullmatch(token_id):
        raise InvalidInputError(
            f"`token_id` must be 16 lowercase hex characters (see `mloop token list`); "
            f"got {token_id!r}."
        )
    return token_id


def _validate_actor(actor: object) -> str | None:
    if actor is None:
        return None
    if not isinstance(actor, str) or len(actor) > MAX_PRINCIPAL:
        raise InvalidInputError(
            f"`actor` must be a str of at most {MAX_PRINCIPAL} characters; got {actor!r}."
        )
    return validate_text(actor, what="`actor`")


def _validate_ms(value: object, *, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidInputError(f"`{what}` must be an int >= 0 (epoch ms); got {value!r}.")
    return value


class TokenStoreMixin(abc.ABC):
    """Tokens of a team server, kept on its own store (they are never served over HTTP)."""

    def create_token(
        self,
        name: str,
        *,
        role: str,
        project_id: str | None = None,
        expires_ms: int | None = None,
        rate_limit: float | None = None,
        actor: str | None = None,
    ) -> NewToken:
        """Create a token and return it with its secret (shown once; the store keeps its hash).

        Parameters
        ----------
        name : str
            The principal (``"alice"``, ``"ci-bot"``): recorded as the actor of its requests.
        role : {"read", "write", "admin"}
        project_id : str, optional
            Limit the token to this project (it must exist and not be deleted).
        expires_ms : int, optional
            Epoch ms after which the token is refused; must be in the future.
        rate_limit : float, optional
            Requests per second for this token (the server's default otherwise).
        actor : str, optional
            Who creates it, recorded in the ``token_created`` event.

        Raises
        ------
        InvalidInputError
            A bad name, role, expiry or rate.
        NotFoundError
            ``project_id`` names no project, or a deleted one.

        Examples
        --------
        >>> from mloop.store import SqlStore
        >>> store = SqlStore("sqlite://")
        >>> new = store.create_token("ci-bot", role="write")
        >>> new.secret.startswith("mlp_") and store.verify_token(new.secret).name
        'ci-bot'
        """
        name = validate_name(name, what="token `name`")
        if len(name) > MAX_PRINCIPAL:
            raise InvalidInputError(
                f"token `name` must be at most {MAX_PRINCIPAL} characters; got {len(name)}."
            )
        if role not in TOKEN_ROLES:
            raise InvalidInputError(f"`role` must be one of {list(TOKEN_ROLES)}; got {role!r}.")
        if project_id is not None and (not isinstance(project_id, str) or not project_id):
            raise InvalidInputError(f"`project_id` must be a non-empty str; got {project_id!r}.")
        created = now_ms()
        if expires_ms is not None:
            _validate_ms(expires_ms, what="expires_ms")
            if expires_ms <= created:
                raise InvalidInputError(
                    f"`expires_ms` must be in the future; got {expires_ms} (now is {created})."
                )
        if rate_limit is not None and (
            isinstance(rate_limit, bool)
            or not isinstance(rate_limit, (int, float))
            or not math.isfinite(rate_limit)
            or rate_limit <= 0
        ):
            raise InvalidInputError(
                f"`rate_limit` must be a finite number > 0 (requests per second); "
                f"got {rate_limit!r}."
            )
        token = ApiToken(
            id=secrets.token_hex(8),
            name=name,
            role=role,  # type: ignore[arg-type]
            project_id=project_id,
            created_ms=created,
            expires_ms=expires_ms,
            created_by=_validate_actor(actor),
            rate_limit=None if rate_limit is None else float(rate_limit),
        )
        secret = new_token_secret()
        return NewToken(self._do_create_token(token, hash_token_secret(secret)), secret)

    def get_token(self, token_id: str) -> ApiToken:
        """The token ``token_id`` (:class:`~mloop.errors.NotFoundError` when there is none)."""
        return self._do_get_token(_validate_token_id(token_id))

    def list_tokens(self, *, include_revoked: bool = True) -> list[ApiToken]:
        """Every token, newest first (revoked ones too unless ``include_revoked=False``)."""
        return self._do_list_tokens(bool(include_revoked))

    def revoke_token(self, token_id: str, *, actor: str | None = None) -> ApiToken:
        """Revoke a token for good; revoking a revoked token changes nothing.

        A server that verified the token shortly before keeps accepting it for at most its cache
        lifetime (5 s by default; see ``mloop.server.create_app``).
        """
        return self._do_revoke_token(_validate_token_id(token_id), _validate_actor(actor))

    def verify_token(self, secret: str, *, at_ms: int | None = None) -> ApiToken:
        """The active token whose secret this is.

        Raises
        ------
        UnauthenticatedError
            ``secret`` is not an mloop token, is unknown, revoked, or expired at ``at_ms``
            (default now). The message never repeats the secret.
        """
        if not is_token_secret(secret):
            raise UnauthenticatedError(
                f"the bearer token is not an mloop token (they read '{TOKEN_PREFIX}' and 53 more "
                "letters and digits); check MLOOP_TOKEN."
            )
        token = self._do_get_token_by_hash(hash_token_secret(secret))
        if token is None:
            raise UnauthenticatedError(
                "the bearer token is unknown to this server; ask its admin for one "
                "(`mloop token create` on the server host)."
            )
        if token.revoked:
            raise UnauthenticatedError(
                f"token {token.id} ({token.name!r}) was revoked; ask the server's admin for "
                "a new one.",
                details={"token_id": token.id},
            )
        if token.expired(at_ms):
            raise UnauthenticatedError(
                f"token {token.id} ({token.name!r}) expired; ask the server's admin for a new one.",
                details={"token_id": token.id, "expires_ms": token.expires_ms},
            )
        return token

    def record_token_use(self, token_id: str, *, at_ms: int) -> None:
        """Note that the token was used at ``at_ms`` (``last_used_ms`` only moves forward)."""
        self._do_record_token_use(_validate_token_id(token_id), _validate_ms(at_ms, what="at_ms"))

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _do_create_token(self, token: ApiToken, secret_sha256: str) -> ApiToken:
        """Insert ``token`` with its secret's hash and its ``token_created`` event."""

    @abc.abstractmethod
    def _do_get_token(self, token_id: str) -> ApiToken: ...
    @abc.abstractmethod
    def _do_get_token_by_hash(self, secret_sha256: str) -> ApiToken | None: ...
    @abc.abstractmethod
    def _do_list_tokens(self, include_revoked: bool) -> list[ApiToken]: ...
    @abc.abstractmethod
    def _do_revoke_token(self, token_id: str, actor: str | None) -> ApiToken: ...
    @abc.abstractmethod
    def _do_record_token_use(self, token_id: str, at_ms: int) -> None: ...
