"""What a database error means, from the driver's codes (never from the wording of its messages).

PostgreSQL (psycopg) reports a SQLSTATE on every server error (``23505`` unique violation,
``55P03`` lock not available, ...); SQLite (Python 3.11+) reports an extended result code and its
name (``SQLITE_CONSTRAINT_UNIQUE``, ``SQLITE_BUSY``, ...). :func:`classify` reads them into a
:class:`DriverError` whose ``kind`` decides the mloop error: :func:`translate` builds it, with a
message naming the store and what to do. An error with no code (psycopg's client-side errors: a
refused connection, a NUL byte in text) is classified by its PEP 249 exception class.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Literal

from mloop.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    MloopError,
    NotFoundError,
    StoreUnavailableError,
)

__all__ = ["DriverError", "Kind", "classify", "translate"]

Kind = Literal[
    "unique",  # a unique or primary key taken
    "foreign_key",  # a row refers to one that does not exist
    "not_null",
    "check",
    "constraint",  # another integrity constraint
    "invalid_value",  # a value the backend cannot store (too long, out of range, bad characters)
    "conflict",  # a concurrent transaction won (serialization failure, deadlock)
    "locked",  # another writer held a lock past this client's wait
    "timeout",  # the statement was cancelled (statement_timeout, interrupted)
    "read_only",
    "disk_full",
    "cannot_open",
    "corrupt",  # not a database, or a damaged one
    "connection",  # the server cannot be reached, or closed the connection
    "unavailable",  # anything else: the store cannot be used as it is
]

ERROR_CLASS: dict[Kind, type[MloopError]] = {
    "unique": AlreadyExistsError,
    "foreign_key": NotFoundError,
    "not_null": InvalidInputError,
    "check": InvalidInputError,
    "constraint": ConflictError,
    "invalid_value": InvalidInputError,
    "conflict": ConflictError,
    "locked": StoreUnavailableError,
    "timeout": StoreUnavailableError,
    "read_only": StoreUnavailableError,
    "disk_full": StoreUnavailableError,
    "cannot_open": StoreUnavailableError,
    "corrupt": StoreUnavailableError,
    "connection": StoreUnavailableError,
    "unavailable": StoreUnavailableError,
}

# PostgreSQL: exact SQLSTATEs first, then their two-character class.
_PG_STATES: dict[str, Kind] = {
    "23505": "unique",  # unique_violation
    "23503": "foreign_key",  # foreign_key_violation
    "23502": "not_null",  # not_null_violation
    "23514": "check",  # check_violation
    "40001": "conflict",  # serialization_failure
    "40P01": "conflict",  # deadlock_detected
    "55P03": "locked",  # lock_not_available (lock_timeout, NOWAIT)
    "57014": "timeout",  # query_canceled (statement_timeout)
    "25006": "read_only",  # read_only_sql_transaction (a hot standby)
    "53100": "disk_full",
    "XX001": "corrupt",  # data_corrupted
    "XX002": "corrupt",  # index_corrupted
    "57P01": "connection",  # admin_shutdown
    "57P02": "connection",  # crash_shutdown
    "57P03": "connection",  # cannot_connect_now (starting up)
}
_PG_CLASSES: dict[str, Kind] = {
    "08": "connection",  # connection exception
    "22": "invalid_value",  # data exception: 22001 truncation, 22003 out of range, 22021, 22P05...
    "23": "constraint",  # integrity constraint violation
    "40": "conflict",  # transaction rollback
    "53": "unavailable",  # insufficient resources (memory, connections)
    "57": "unavailable",  # operator intervention
    "58": "unavailable",  # system error (I/O)
}

# SQLite: extended result code names, exact first, then by primary code (the part before "_").
_SQLITE_NAMES: dict[str, Kind] = {
    "SQLITE_CONSTRAINT_UNIQUE": "unique",
    "SQLITE_CONSTRAINT_PRIMARYKEY": "unique",
    "SQLITE_CONSTRAINT_ROWID": "unique",
    "SQLITE_CONSTRAINT_FOREIGNKEY": "foreign_key",
    "SQLITE_CONSTRAINT_NOTNULL": "not_null",
    "SQLITE_CONSTRAINT_CHECK": "check",
}
_SQLITE_PRIMARY: dict[str, Kind] = {
    "SQLITE_CONSTRAINT": "constraint",
    "SQLITE_BUSY": "locked",
    "SQLITE_LOCKED": "locked",
    "SQLITE_READONLY": "read_only",
    "SQLITE_FULL": "disk_full",
    "SQLITE_CANTOPEN": "cannot_open",
    "SQLITE_PERM": "cannot_open",
    "SQLITE_AUTH": "cannot_open",
    "SQLITE_NOTADB": "corrupt",
    "SQLITE_CORRUPT": "corrupt",
    "SQLITE_IOERR": "unavailable",
    "SQLITE_NOMEM": "unavailable",
    "SQLITE_TOOBIG": "invalid_value",
    "SQLITE_MISMATCH": "invalid_value",
    "SQLITE_RANGE": "invalid_value",
    "SQLITE_INTERRUPT": "timeout",
}
# Python < 3.11 has no error codes on sqlite3 errors; SQLite's own text for each code
# (sqlite3_errstr) is then the only structured information, so it is read as a code name.
_SQLITE_ERRSTR: tuple[tuple[str, str], ...] = (
    ("UNIQUE constraint failed", "SQLITE_CONSTRAINT_UNIQUE"),
    ("FOREIGN KEY constraint failed", "SQLITE_CONSTRAINT_FOREIGNKEY"),
    ("NOT NULL constraint failed", "SQLITE_CONSTRAINT_NOTNULL"),
    ("CHECK constraint failed", "SQLITE_CONSTRAINT_CHECK"),
    ("database is locked", "SQLITE_BUSY"),
    ("database table is locked", "SQLITE_LOCKED"),
    ("attempt to write a readonly database", "SQLITE_READONLY"),
    ("database or disk is full", "SQLITE_FULL"),
    ("unable to open database file", "SQLITE_CANTOPEN"),
    ("file is not a database", "SQLITE_NOTADB"),
    ("database disk image is malformed", "SQLITE_CORRUPT"),
    ("disk I/O error", "SQLITE_IOERR"),
    ("string or blob too big", "SQLITE_TOOBIG"),
    ("interrupted", "SQLITE_INTERRUPT"),
)
# PEP 249 classes, for an error that carries no code (and sqlite3's OverflowError).
_DBAPI_CLASSES: tuple[tuple[str, Kind], ...] = (
    ("IntegrityError", "constraint"),
    ("DataError", "invalid_value"),
    ("OperationalError", "connection"),
    ("InterfaceError", "connection"),
    ("OverflowError", "invalid_value"),  # sqlite3: an int beyond 64 bits
)
_SQLITE_TABLE = re.compile(r"constraint failed: ([A-Za-z_][A-Za-z0-9_]*)\.")


@dataclass(frozen=True)
class DriverError:
    """A database error, classified: its ``kind``, the driver's ``code`` (a SQLSTATE or a SQLite
    result code name), the ``table`` it names (constraint violations) and the driver's message."""

    kind: Kind
    code: str | None
    table: str | None
    message: str

    @property
    def error_class(self) -> type[MloopError]:
        return ERROR_CLASS[self.kind]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _sqlite_name(orig: sqlite3.Error) -> str | None:
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        return name
    text = str(orig)
    for prefix, code in _SQLITE_ERRSTR:  # Python < 3.11 only: see _SQLITE_ERRSTR
        if text.startswith(prefix):
            return code
    return None


def _by_class(orig: BaseException) -> Kind:
    names = {c.__name__ for c in type(orig).__mro__}
    for name, kind in _DBAPI_CLASSES:
        if name in names:
            return kind
    return "unavailable"


def classify(exc: BaseException) -> DriverError:
    """Classify a driver error: a SQLAlchemy ``DBAPIError`` (its ``orig``) or the driver's own."""
    orig = getattr(exc, "orig", None) or exc
    message = _first_line(orig)
    if isinstance(orig, sqlite3.Error):
        name = _sqlite_name(orig)
        kind = None
        if name is not None:  # SQLITE_READONLY_DBMOVED: primary code SQLITE_READONLY
            kind = _SQLITE_NAMES.get(name) or _SQLITE_PRIMARY.get("_".join(name.split("_")[:2]))
        constraint = name is not None and name.startswith("SQLITE_CONSTRAINT")
        match = _SQLITE_TABLE.search(message) if constraint else None
        return DriverError(
            kind or _by_class(orig), name, match.group(1) if match else None, message
        )
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str) and state:
        kind = _PG_STATES.get(state) or _PG_CLASSES.get(state[:2]) or _by_class(orig)
        diag = getattr(orig, "diag", None)
        table = getattr(diag, "table_name", None) if diag is not None else None
        return DriverError(kind, state, table, message)
    return DriverError(_by_class(orig), None, None, message)


def translate(exc: BaseException, where: str) -> MloopError:
    """The mloop error for driver error ``exc`` on the store ``where`` (a URI without password)."""
    e = classify(exc)
    msg = {
        "unique": f"store {where!r}: a row with this key already exists ({e.message}).",
        "foreign_key": f"store {where!r}: a row refers to one that does not exist ({e.message}).",
        "not_null": f"store {where!r} refused a value: {e.message}",
        "check": f"store {where!r} refused a value: {e.message}",
        "constraint": f"store {where!r}: the change contradicts stored state ({e.message}).",
        "invalid_value": f"store {where!r} refused a value: {e.message}",
        "conflict": (
            f"store {where!r}: a concurrent change conflicted with this one ({e.message}); retry."
        ),
        "locked": (
            f"store {where!r} stayed locked by another writer longer than this client waits "
            f"({e.message}); retry, or find the process holding it."
        ),
        "timeout": (
            f"store {where!r} did not finish the statement in the time allowed ({e.message})."
        ),
        "read_only": (
            f"store {where!r} is read-only ({e.message}); point MLOOP_STORE_URI or MLOOP_HOME "
            "at a writable store."
        ),
        "disk_full": f"store {where!r}: the disk is full ({e.message}); free some space.",
        "cannot_open": (
            f"cannot open store {where!r} ({e.message}); check that its folder exists and "
            "is readable and writable."
        ),
        "corrupt": (
            f"store {where!r} is not a valid mloop database ({e.message}); point "
            "MLOOP_STORE_URI or MLOOP_HOME elsewhere, or move the file away."
        ),
        "connection": f"cannot use store {where!r}: {e.message}",
        "unavailable": f"cannot use store {where!r}: {e.message}",
    }[e.kind]
    details = {"uri": where, "kind": e.kind}
    if e.code is not None:
        details["code"] = e.code
    return e.error_class(msg, details=details)
