"""Check reports on SQL: written with their ``report_attached`` event in one transaction."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mloop.errors import AlreadyExistsError, NotFoundError
from mloop.store._check_entities import CheckReport
from mloop.store._checks_base import decode_report
from mloop.store._sql import _schema as t
from mloop.store._sql._engine import describe_uri
from mloop.store._sql._errors import classify, translate
from mloop.store._sql._registry import SqlRegistryMixin

__all__ = ["SqlChecksMixin"]


def _exists(report_id: str) -> AlreadyExistsError:
    return AlreadyExistsError(
        f"check report {report_id} already exists; reports are immutable: write a new report "
        "(with a new id) for a new check."
    )


class SqlChecksMixin(SqlRegistryMixin):
    """Mixed into :class:`SqlStore` with :class:`SqlRegistryMixin` (which owns ``_event``)."""

    def _do_put_check_report(self, report: CheckReport, body: str) -> CheckReport:
        cr = t.check_reports
        r = report
        try:
            with self._write() as conn:
                self._lock_model(conn, r.model)  # reports and version deletes of a model in turn
                row = self._version_row(conn, r.model, r.version)
                if row.deleted:
                    raise NotFoundError(
                        f"model {r.model!r} version {r.version} is deleted; a report can only "
                        "be attached to a version that exists."
                    )
                if conn.execute(sa.select(cr.c.id).where(cr.c.id == r.id)).first() is not None:
                    raise _exists(r.id)
                event = self._event(
                    conn,
                    "report_attached",
                    r.model,
                    version=r.version,
                    actor=r.actor,
                    after={
                        "status": r.status,
                        "kind": r.kind,
                        "policy_hash": r.policy_hash,
                        "baseline_version": r.baseline_version,
                    },
                    report_id=r.id,
                )
                conn.execute(
                    cr.insert().values(
                        id=r.id,
                        model=r.model,
                        version=r.version,
                        kind=r.kind,
                        status=r.status,
                        policy_hash=r.policy_hash,
                        created_ms=r.created_ms,
                        actor=r.actor,
                        event_id=event.id,
                        body=body,
                    )
                )
        except IntegrityError as exc:
            e = classify(exc)
            if e.kind == "unique":  # a concurrent writer of the same id committed first
                raise _exists(r.id) from None
            raise translate(exc, describe_uri(self.uri)) from None
        return decode_report(body)

    def _do_get_check_report(self, report_id: str) -> CheckReport:
        cr = t.check_reports
        with self._read() as conn:
            body = conn.execute(sa.select(cr.c.body).where(cr.c.id == report_id)).scalar()
        if body is None:
            raise NotFoundError(f"check report {report_id} does not exist.")
        return decode_report(body)

    def _do_list_check_reports(
        self,
        model: str,
        version: int | None,
        kind: str | None,
        status: str | None,
        policy_hash: str | None,
        limit: int,
    ) -> list[CheckReport]:
        cr = t.check_reports
        where: list[Any] = [cr.c.model == model]
        for column, value in (
            (cr.c.version, version),
            (cr.c.kind, kind),
            (cr.c.status, status),
            (cr.c.policy_hash, policy_hash),
        ):
            if value is not None:
                where.append(column == value)
        q = (
            sa.select(cr.c.body)
            .where(*where)
            .order_by(cr.c.created_ms.desc(), cr.c.event_id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            bodies = conn.execute(q).scalars().all()
            if not bodies and self._model_missing(conn, model):
                raise NotFoundError(f"registered model {model!r} does not exist.")
        return [decode_report(b) for b in bodies]

    @staticmethod
    def _model_missing(conn: Connection, model: str) -> bool:
        rm = t.registered_models
        return conn.execute(sa.select(rm.c.name).where(rm.c.name == model)).first() is None
