"""Pipelines on SQL: each run start, step and run finish written with its event, in one transaction."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mloop.errors import AlreadyExistsError, ConflictError, NotFoundError
from mloop.ids import now_ms
from mloop.store._pipeline_entities import Pipeline, PipelineRun, StepRun
from mloop.store._sql import _schema as t
from mloop.store._sql._engine import describe_uri
from mloop.store._sql._errors import classify, translate
from mloop.store._sql._log import SqlEventLogMixin

__all__ = ["SqlPipelinesMixin"]

_RUN_COLUMNS = (
    "id",
    "pipeline",
    "status",
    "trigger",
    "code_ref",
    "start_ms",
    "end_ms",
    "reason",
    "error",
    "resumed_from",
    "tracking_run_id",
    "actor",
)


# Statements of the per-step path, built once: a pipeline writes and looks up one record per step,
# and building a SQLAlchemy statement (and its cache key) costs more than running it on SQLite.
_RUN_STATE = sa.select(
    t.pipeline_runs.c.status, t.pipeline_runs.c.pipeline, t.pipeline_runs.c.actor
).where(t.pipeline_runs.c.id == sa.bindparam("rid"))
_STEP_EXISTS = sa.select(t.step_runs.c.name).where(
    t.step_runs.c.run_id == sa.bindparam("rid"), t.step_runs.c.name == sa.bindparam("sname")
)
_STEP_INSERT = t.step_runs.insert()
_CACHED_STEP = (
    sa.select(t.step_runs.c.body)
    .where(
        t.step_runs.c.cache_key == sa.bindparam("key"),
        t.step_runs.c.status.in_(("finished", "cached")),
    )
    .order_by(t.step_runs.c.event_id.desc())
    .limit(1)
)


def _encode(value: Any, *, what: str) -> str:
    from mloop.codec import dumps, fields_to_wire

    return dumps(fields_to_wire(value, what=what) if hasattr(value, "to_dict") else value)


def _run(row: Any) -> PipelineRun:
    from mloop.codec import loads

    return PipelineRun(
        **{c: getattr(row, c) for c in _RUN_COLUMNS},
        params=loads(row.params, what="stored pipeline params"),
    )


def _step(body: str) -> StepRun:
    from mloop.codec import loads

    return StepRun.from_dict(loads(body, what="stored step run"))


def _pipeline(row: Any) -> Pipeline:
    return Pipeline(row.name, row.code_ref, row.created_ms, row.updated_ms)


def _subject(pipeline: str) -> str:
    return f"pipelines/{pipeline}"


class SqlPipelinesMixin(SqlEventLogMixin):
    """Mixed into :class:`SqlStore`; ``_log_event`` appends the events."""

    def _upsert_pipeline(self, conn: Connection, name: str, code_ref: str, ts: int) -> None:
        p = t.pipelines
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            ins: Any = pg_insert(p)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            ins = sqlite_insert(p)
        conn.execute(
            ins.values(
                name=name, code_ref=code_ref, created_ms=ts, updated_ms=ts
            ).on_conflict_do_update(
                index_elements=[p.c.name],
                set_={"code_ref": code_ref, "updated_ms": ts},
                where=p.c.code_ref != code_ref,
            )
        )

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        pr = t.pipeline_runs
        row = conn.execute(sa.select(pr).where(pr.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"pipeline run {run_id} does not exist.")
        return row

    def _do_start_pipeline_run(self, run: PipelineRun) -> PipelineRun:
        pr = t.pipeline_runs
        r = run
        params = _encode(dict(r.params), what="run.params")
        try:
            with self._write() as conn:
                if conn.execute(sa.select(pr.c.id).where(pr.c.id == r.id)).first() is not None:
                    raise AlreadyExistsError(f"pipeline run {r.id} already exists.")
                if r.resumed_from is not None:
                    old = conn.execute(
                        sa.select(pr.c.pipeline).where(pr.c.id == r.resumed_from)
                    ).scalar()
                    if old != r.pipeline:
                        raise NotFoundError(
                            f"pipeline run {r.resumed_from} (to resume) is not a run of "
                            f"pipeline {r.pipeline!r}."
                        )
                self._upsert_pipeline(conn, r.pipeline, r.code_ref, now_ms())
                event = self._log_event(
                    conn,
                    "pipeline_run_started",
                    _subject(r.pipeline),
                    actor=r.actor,
                    payload={
                        "run_id": r.id,
                        "trigger": r.trigger,
                        "reason": r.reason,
                        "resumed_from": r.resumed_from,
                    },
                )
                conn.execute(
                    pr.insert().values(
                        **{c: getattr(r, c) for c in _RUN_COLUMNS},
                        params=params,
                        event_id=event.id,
                    )
                )
                return _run(self._run_row(conn, r.id))
        except IntegrityError as exc:
            if classify(exc).kind == "unique":
                raise AlreadyExistsError(f"pipeline run {r.id} already exists.") from None
            raise translate(exc, describe_uri(self.uri)) from None

    def _do_put_step_run(self, step: StepRun) -> StepRun:
        s = step
        body = _encode(s, what="step")
        exists = AlreadyExistsError(
            f"pipeline run {s.run_id} already has a step {s.name!r}; a step run is written once."
        )
        try:
            with self._write() as conn:
                row = conn.execute(_RUN_STATE, {"rid": s.run_id}).first()
                if row is None:
                    raise NotFoundError(f"pipeline run {s.run_id} does not exist.")
                if row.status != "running":
                    raise ConflictError(
                        f"pipeline run {s.run_id} is {row.status}; steps are added to running "
                        "runs only."
                    )
                found = conn.execute(_STEP_EXISTS, {"rid": s.run_id, "sname": s.name}).first()
                if found is not None:
                    raise exists
                event = self._log_event(
                    conn,
                    "step_finished",
                    _subject(row.pipeline),
                    actor=row.actor,
                    payload={
                        "run_id": s.run_id,
                        "step": s.name,
                        "status": s.status,
                        "cache_hit": s.cache_hit,
                        "attempts": s.attempts,
                        "outputs": dict(s.outputs),
                    },
                )
                conn.execute(
                    _STEP_INSERT,
                    {
                        "run_id": s.run_id,
                        "name": s.name,
                        "step": s.step,
                        "status": s.status,
                        "cache_key": s.cache_key,
                        "cache_hit": s.cache_hit,
                        "end_ms": s.end_ms,
                        "event_id": event.id,
                        "body": body,
                    },
                )
        except IntegrityError as exc:
            if classify(exc).kind == "unique":
                raise exists from None
            raise translate(exc, describe_uri(self.uri)) from None
        return _step(body)

    def _do_finish_pipeline_run(
        self, run_id: str, status: str, error: str | None, end_ms: int | None
    ) -> PipelineRun:
        pr = t.pipeline_runs
        with self._write() as conn:
            row = self._run_row(conn, run_id)
            if row.status != "running":
                raise ConflictError(f"pipeline run {run_id} is already {row.status}.")
            end = now_ms() if end_ms is None else end_ms
            changed = conn.execute(
                pr.update()
                .where(pr.c.id == run_id, pr.c.status == "running")
                .values(status=status, error=error, end_ms=end)
            ).rowcount
            if changed != 1:  # a concurrent finisher committed first
                raise ConflictError(f"pipeline run {run_id} is already finished.")
            self._log_event(
                conn,
                "pipeline_run_finished",
                _subject(row.pipeline),
                actor=row.actor,
                payload={"run_id": run_id, "status": status, "error": error},
            )
            return _run(self._run_row(conn, run_id))

    def _do_get_pipeline(self, name: str) -> Pipeline:
        p = t.pipelines
        with self._read() as conn:
            row = conn.execute(sa.select(p).where(p.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"pipeline {name!r} does not exist (it has never run).")
        return _pipeline(row)

    def _do_list_pipelines(self, limit: int) -> list[Pipeline]:
        p = t.pipelines
        with self._read() as conn:
            return [
                _pipeline(r) for r in conn.execute(sa.select(p).order_by(p.c.name).limit(limit))
            ]

    def _do_get_pipeline_run(self, run_id: str) -> PipelineRun:
        with self._read() as conn:
            return _run(self._run_row(conn, run_id))

    def _do_list_pipeline_runs(
        self, pipeline: str | None, status: str | None, limit: int
    ) -> list[PipelineRun]:
        pr = t.pipeline_runs
        q = sa.select(pr)
        if pipeline is not None:
            q = q.where(pr.c.pipeline == pipeline)
        if status is not None:
            q = q.where(pr.c.status == status)
        q = q.order_by(pr.c.start_ms.desc(), pr.c.event_id.desc()).limit(limit)
        with self._read() as conn:
            rows = conn.execute(q).all()
            if not rows and pipeline is not None:
                p = t.pipelines
                if conn.execute(sa.select(p.c.name).where(p.c.name == pipeline)).first() is None:
                    raise NotFoundError(f"pipeline {pipeline!r} does not exist (it has never run).")
        return [_run(r) for r in rows]

    def _do_list_step_runs(self, run_id: str) -> list[StepRun]:
        sr = t.step_runs
        with self._read() as conn:
            self._run_row(conn, run_id)
            bodies = conn.execute(
                sa.select(sr.c.body).where(sr.c.run_id == run_id).order_by(sr.c.event_id)
            ).scalars()
            return [_step(b) for b in bodies]

    def _do_find_cached_step(self, cache_key: str) -> StepRun | None:
        with self._read() as conn:
            body = conn.execute(_CACHED_STEP, {"key": cache_key}).scalar()
        return None if body is None else _step(body)
