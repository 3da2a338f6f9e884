"""Deployments and their revisions on SQL; each change appends its event in its transaction."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mloop.ids import now_ms
from mloop.store._deploy_base import SPEC_FIELDS, Deployment, DeploymentRevision, merge_spec
from mloop.store._sql import _schema as t
from mloop.store._sql._log import SqlEventLogMixin

__all__ = ["SqlDeploymentsMixin"]


def _spec(r: Any) -> dict[str, Any]:
    return {
        "model": r.model,
        "canary": r.canary,
        "canary_percent": float(r.canary_percent),
        "shadow": r.shadow,
        "sticky_key": r.sticky_key,
        "config": json.loads(r.config),
    }


def _deployment(r: Any) -> Deployment:
    return Deployment(
        name=r.name,
        revision=r.revision,
        created_ms=r.created_ms,
        updated_ms=r.updated_ms,
        created_by=r.created_by,
        updated_by=r.updated_by,
        **_spec(r),
    )


def _columns(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "config": json.dumps(spec["config"], sort_keys=True)}


def _missing(name: str) -> NotFoundError:
    return NotFoundError(f"deployment {name!r} does not exist.")


class SqlDeploymentsMixin(SqlEventLogMixin):
    # ------------------------------------------------------------------ helpers
    def _locked_deployment(self, conn: Connection, name: str) -> Any:
        d = t.deployments
        row = conn.execute(sa.select(d).where(d.c.name == name).with_for_update()).first()
        if row is None:
            raise _missing(name)
        return row

    def _new_revision(
        self,
        conn: Connection,
        row: Any,
        spec: dict[str, Any],
        *,
        event: str,
        actor: str | None,
        reason: str | None,
        extra: dict[str, Any],
    ) -> Deployment:
        """Write ``spec`` as the revision after ``row``'s, with its history row and its event."""
        d = t.deployments
        ts = now_ms()
        revision = row.revision + 1
        n = conn.execute(
            d.update()
            .where(d.c.name == row.name, d.c.revision == row.revision)
            .values(**_columns(spec), revision=revision, updated_ms=ts, updated_by=actor)
        ).rowcount
        if n != 1:  # a writer that did not lock the row got there first
            raise ConflictError(
                f"deployment {row.name!r} changed while this change was being made; try again."
            )
        conn.execute(
            t.deployment_revisions.insert().values(
                name=row.name,
                revision=revision,
                spec=json.dumps(spec, sort_keys=True),
                actor=actor,
                reason=reason,
                created_ms=ts,
            )
        )
        self._log_event(
            conn,
            event,
            f"deployments/{row.name}",
            actor=actor,
            payload={"name": row.name, **spec, "revision": revision, **extra, "reason": reason},
        )
        return Deployment(
            name=row.name,
            revision=revision,
            created_ms=row.created_ms,
            updated_ms=ts,
            created_by=row.created_by,
            updated_by=actor,
            **spec,
        )

    # ------------------------------------------------------------------ hooks
    def _do_create_deployment(
        self, name: str, spec: dict[str, Any], actor: str | None
    ) -> Deployment:
        ts = now_ms()
        try:
            with self._write() as conn:
                conn.execute(
                    t.deployments.insert().values(
                        name=name,
                        **_columns(spec),
                        revision=1,
                        created_ms=ts,
                        updated_ms=ts,
                        created_by=actor,
                        updated_by=actor,
                    )
                )
                conn.execute(
                    t.deployment_revisions.insert().values(
                        name=name,
                        revision=1,
                        spec=json.dumps(spec, sort_keys=True),
                        actor=actor,
                        reason=None,
                        created_ms=ts,
                    )
                )
                self._log_event(
                    conn,
                    "deployment_created",
                    f"deployments/{name}",
                    actor=actor,
                    payload={"name": name, **spec, "revision": 1},
                )
        except IntegrityError:
            raise AlreadyExistsError(f"deployment {name!r} already exists.") from None
        return Deployment(
            name=name,
            revision=1,
            created_ms=ts,
            updated_ms=ts,
            created_by=actor,
            updated_by=actor,
            **spec,
        )

    def _do_get_deployment(self, name: str) -> Deployment:
        d = t.deployments
        with self._read() as conn:
            row = conn.execute(sa.select(d).where(d.c.name == name)).first()
        if row is None:
            raise _missing(name)
        return _deployment(row)

    def _do_list_deployments(self) -> list[Deployment]:
        d = t.deployments
        with self._read() as conn:
            return [_deployment(r) for r in conn.execute(sa.select(d).order_by(d.c.name))]

    def _do_update_deployment(
        self,
        name: str,
        changes: dict[str, Any],
        actor: str | None,
        reason: str | None,
        expected_revision: int | None,
    ) -> Deployment:
        with self._write() as conn:
            row = self._locked_deployment(conn, name)
            if expected_revision is not None and row.revision != expected_revision:
                raise ConflictError(
                    f"deployment {name!r} is at revision {row.revision}, not the expected "
                    f"{expected_revision}: it changed since it was read. Read it again."
                )
            current = _spec(row)
            spec = merge_spec(current, changes)
            if spec == current:
                return _deployment(row)
            changed = [f for f in SPEC_FIELDS if spec[f] != current[f]]
            return self._new_revision(
                conn,
                row,
                spec,
                event="deployment_updated",
                actor=actor,
                reason=reason,
                extra={"previous_revision": row.revision, "changed": changed},
            )

    def _do_rollback_deployment(
        self, name: str, to_revision: int | None, actor: str | None, reason: str | None
    ) -> Deployment:
        r = t.deployment_revisions
        with self._write() as conn:
            row = self._locked_deployment(conn, name)
            target = row.revision - 1 if to_revision is None else to_revision
            if target < 1:
                raise InvalidInputError(
                    f"deployment {name!r} is at its first revision: there is nothing to roll "
                    "back to."
                )
            if target >= row.revision:
                raise InvalidInputError(
                    f"`to_revision` must be an earlier revision of deployment {name!r} "
                    f"(1 to {row.revision - 1}); got {target}."
                )
            text = conn.execute(
                sa.select(r.c.spec).where(r.c.name == name, r.c.revision == target)
            ).scalar()
            if text is None:
                raise NotFoundError(f"deployment {name!r} has no revision {target}.")
            spec = merge_spec(_spec(row), json.loads(text))
            if spec == _spec(row):
                raise InvalidInputError(
                    f"deployment {name!r} already has the spec of revision {target}: "
                    "nothing to roll back."
                )
            return self._new_revision(
                conn,
                row,
                spec,
                event="deployment_rollback",
                actor=actor,
                reason=reason,
                extra={"previous_revision": row.revision, "restored_revision": target},
            )

    def _do_list_deployment_revisions(self, name: str) -> list[DeploymentRevision]:
        r = t.deployment_revisions
        with self._read() as conn:
            rows = conn.execute(sa.select(r).where(r.c.name == name).order_by(r.c.revision)).all()
            if not rows:  # every deployment has revision 1
                raise _missing(name)
        return [
            DeploymentRevision(
                x.name, x.revision, json.loads(x.spec), x.actor, x.reason, x.created_ms
            )
            for x in rows
        ]

    def _do_delete_deployment(self, name: str, actor: str | None, reason: str | None) -> None:
        with self._write() as conn:
            row = self._locked_deployment(conn, name)
            conn.execute(
                t.deployment_revisions.delete().where(t.deployment_revisions.c.name == name)
            )
            conn.execute(t.deployments.delete().where(t.deployments.c.name == name))
            self._log_event(
                conn,
                "deployment_deleted",
                f"deployments/{name}",
                actor=actor,
                payload={"name": name, **_spec(row), "revision": row.revision, "reason": reason},
            )
