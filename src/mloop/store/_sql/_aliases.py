"""Aliases on SQL: compare-and-set moves under the model's row lock, each appended to the event log."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.ids import now_ms
from mloop.store._registry_base import _Unset
from mloop.store._registry_entities import ModelAlias, ModelVersion
from mloop.store._sql import _schema as t
from mloop.store._sql._raw import Cursor
from mloop.store._sql._registry import SqlRegistryMixin

_VERSION_COLUMNS = tuple(c.name for c in t.model_versions.columns)
_VERSION_BY_ALIAS = (
    "SELECT "
    + ", ".join(f'v."{c}"' for c in _VERSION_COLUMNS)
    + ' FROM "model_aliases" a JOIN "model_versions" v'
    + ' ON v."name" = a."name" AND v."version" = a."version"'
    + ' WHERE a."name" = ? AND a."alias" = ?'
)
_VERSION_TAGS = 'SELECT "key", "value" FROM "model_version_tags" WHERE "name" = ? AND "version" = ?'
_VERSION_METRICS = (
    'SELECT "key", "value" FROM "model_version_metrics" WHERE "name" = ? AND "version" = ?'
)
_VERSION_ALIASES = 'SELECT "alias" FROM "model_aliases" WHERE "name" = ? AND "version" = ?'


class SqlAliasesMixin(SqlRegistryMixin):
    """Mixed into :class:`SqlStore` with :class:`SqlRegistryMixin` (``_event``, ``_lock_model``...)."""

    # ------------------------------------------------------------------ aliases
    def _alias_row(self, conn: Connection, name: str, alias: str, *, lock: bool = False) -> Any:
        al = t.model_aliases
        q = sa.select(al).where(al.c.name == name, al.c.alias == alias)
        return conn.execute(q.with_for_update() if lock else q).first()

    def _locked_alias(self, conn: Connection, name: str, alias: str) -> Any:
        """The alias row, with its model locked for this transaction; NotFoundError if absent."""
        self._lock_model(conn, name)
        row = self._alias_row(conn, name, alias, lock=True)
        if row is None:
            raise NotFoundError(f"model {name!r} has no alias {alias!r}.")
        return row

    @staticmethod
    def _check_expected(name: str, alias: str, current: int | None, expected: Any) -> None:
        if type(expected).__name__ == "_Unset":
            return
        if current != expected:
            now = f"version {current}" if current is not None else "nothing"
            want = f"version {expected}" if expected is not None else "nothing (a new alias)"
            raise ConflictError(
                f"alias {name}@{alias} points at {now}, not {want}: another change won. Re-read and retry.",
                details={"current_version": current, "expected_version": expected},
            )

    def _do_set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None,
        reason: str | None,
        expected_version: int | _Unset | None,
        report_id: str | None,
        event_type: Literal["alias_set", "alias_rollback"],
    ) -> ModelAlias:
        al = t.model_aliases
        try:
            with self._write() as conn:
                self._lock_model(conn, name)
                target = self._version_row(conn, name, version)
                if target.deleted:
                    raise InvalidInputError(
                        f"model {name!r} version {version} is deleted; an alias cannot point at it."
                    )
                row = self._alias_row(conn, name, alias, lock=True)
                current = row.version if row is not None else None
                self._check_expected(name, alias, current, expected_version)
                if row is not None and row.protected and not reason:
                    raise InvalidInputError(
                        f"alias {name}@{alias} is protected: moving it requires a `reason`."
                    )
                ts = now_ms()
                if row is None:
                    conn.execute(
                        al.insert().values(
                            name=name,
                            alias=alias,
                            version=version,
                            protected=False,
                            updated_ms=ts,
                            updated_by=actor,
                        )
                    )
                else:
                    conn.execute(
                        al.update()
                        .where(al.c.name == name, al.c.alias == alias)
                        .values(version=version, updated_ms=ts, updated_by=actor)
                    )
                self._event(
                    conn,
                    event_type,
                    name,
                    version=version,
                    alias=alias,
                    actor=actor,
                    before=current,
                    after=version,
                    reason=reason,
                    report_id=report_id,
                )
                return ModelAlias(
                    name,
                    alias,
                    version,
                    bool(row.protected) if row is not None else False,
                    ts,
                    actor,
                )
        except IntegrityError:
            # Two creators of the same new alias: the loser sees the winner's row.
            raise ConflictError(
                f"alias {name}@{alias} was created concurrently by another change; re-read and retry."
            ) from None

    def _do_delete_alias(
        self,
        name: str,
        alias: str,
        *,
        actor: str | None,
        reason: str | None,
        expected_version: int | _Unset | None,
    ) -> None:
        al = t.model_aliases
        with self._write() as conn:
            row = self._locked_alias(conn, name, alias)
            self._check_expected(name, alias, row.version, expected_version)
            if row.protected and not reason:
                raise InvalidInputError(
                    f"alias {name}@{alias} is protected: deleting it requires a `reason`."
                )
            conn.execute(al.delete().where(al.c.name == name, al.c.alias == alias))
            self._event(
                conn,
                "alias_deleted",
                name,
                version=row.version,
                alias=alias,
                actor=actor,
                before=row.version,
                reason=reason,
            )

    def _do_get_alias(self, name: str, alias: str) -> ModelAlias:
        with self._read() as conn:
            row = self._alias_row(conn, name, alias)
            if row is None:
                raise self._missing(conn, name, f"alias {alias!r}")
            return ModelAlias(
                row.name,
                row.alias,
                row.version,
                bool(row.protected),
                row.updated_ms,
                row.updated_by,
            )

    def _do_get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        # What every load of models:/name@alias asks: plain SQL on the transaction's connection
        # (four tiny statements; through SQLAlchemy Core building them cost more than running them).
        with self._read() as conn:
            cur = Cursor(conn)
            try:
                row = cur.execute(_VERSION_BY_ALIAS, (name, alias)).fetchone()
                if row is None:
                    raise self._missing(conn, name, f"alias {alias!r}")
                version = SimpleNamespace(**dict(zip(_VERSION_COLUMNS, row, strict=True)))
                key = (name, version.version)
                tags = dict(cur.execute(_VERSION_TAGS, key).fetchall())
                metrics = {
                    k: math.nan if v is None else float(v)
                    for k, v in cur.execute(_VERSION_METRICS, key).fetchall()
                }
                aliases = [a for (a,) in cur.execute(_VERSION_ALIASES, key).fetchall()]
            finally:
                cur.close()
            return self._version_entity(version, tags, metrics, aliases)

    def _do_list_aliases(self, name: str) -> list[ModelAlias]:
        al = t.model_aliases
        with self._read() as conn:
            rows = conn.execute(sa.select(al).where(al.c.name == name).order_by(al.c.alias)).all()
            return [
                ModelAlias(
                    r.name, r.alias, r.version, bool(r.protected), r.updated_ms, r.updated_by
                )
                for r in rows
            ]

    def _do_set_alias_protected(
        self, name: str, alias: str, protected: bool, actor: str | None, reason: str | None
    ) -> ModelAlias:
        al = t.model_aliases
        with self._write() as conn:
            row = self._locked_alias(conn, name, alias)
            ts = now_ms()
            conn.execute(
                al.update()
                .where(al.c.name == name, al.c.alias == alias)
                .values(protected=protected, updated_ms=ts)
            )
            self._event(
                conn,
                "alias_protected",
                name,
                version=row.version,
                alias=alias,
                actor=actor,
                before=bool(row.protected),
                after=protected,
                reason=reason,
            )
            return ModelAlias(name, alias, row.version, protected, ts, row.updated_by)
