"""``SqlStore``: the Store contract on SQLite (default) and PostgreSQL, via SQLAlchemy Core."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mloop._lazy import LazyModule
from mloop.errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
)
from mloop.ids import now_ms
from mloop.store._base import Store
from mloop.store._entities import (
    MetricSeries,
    Project,
    Run,
)
from mloop.store._filter import Comparison, OrderKey
from mloop.store._runs_base import NewRun, RunFields
from mloop.store._sql import _metrics, _search
from mloop.store._sql import _schema as t
from mloop.store._sql._aliases import SqlAliasesMixin
from mloop.store._sql._artifacts import SqlArtifactsMixin
from mloop.store._sql._checks import SqlChecksMixin
from mloop.store._sql._deployments import SqlDeploymentsMixin
from mloop.store._sql._engine import (
    describe_uri,
)
from mloop.store._sql._errors import classify, translate
from mloop.store._sql._events import SqlEventsMixin
from mloop.store._sql._inference import SqlInferenceMixin
from mloop.store._sql._load import PageContexts, load_runs
from mloop.store._sql._log import SqlEventLogMixin
from mloop.store._sql._media import SqlMediaMixin
from mloop.store._sql._monitors import SqlMonitorsMixin
from mloop.store._sql._pipelines import SqlPipelinesMixin
from mloop.store._sql._raw import Cursor, payload_bytes
from mloop.store._sql._registry import SqlRegistryMixin
from mloop.store._sql._serving import SqlServingMixin
from mloop.store._sql._tokens import SqlTokensMixin
from mloop.store._sql._triggers import SqlTriggersMixin

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy", globals(), "np")


__all__ = ["SqlStore"]

_RUN_EXISTS = sa.select(t.runs.c.id).where(t.runs.c.id == sa.bindparam("rid"))
# Hot paths (creating runs, writing batches) run plain SQL on the driver cursor: see ``_raw``.
_INSERT_RUN = (
    'INSERT INTO runs (id, project_id, name, status, start_ms, heartbeat_ms, parent_run_id, "user", '
    "host, git_commit, git_dirty, lifecycle_stage, context) "
    "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, 'active', ?)"
)


class _AlreadyApplied(Exception):
    """A replayed batch: roll its transaction back."""


class SqlStore(
    SqlArtifactsMixin,
    SqlMonitorsMixin,
    SqlInferenceMixin,
    SqlDeploymentsMixin,
    SqlChecksMixin,
    SqlPipelinesMixin,
    SqlTriggersMixin,
    SqlMediaMixin,
    SqlServingMixin,
    SqlTokensMixin,
    SqlEventsMixin,
    SqlAliasesMixin,
    SqlRegistryMixin,
    SqlEventLogMixin,
    Store,
):
    """The metadata store on SQLite or PostgreSQL.

    Parameters
    ----------
    uri : str
        ``sqlite:///path/to/mloop.db`` or ``postgresql+psycopg://user:pw@host:port/db``.
    heartbeat_timeout_s : float
        A ``running`` run whose last heartbeat is older than this reads as ``killed``.
    upgrade : bool
        Bring the schema to the newest migration on open (safe under concurrent openers).
    """

    # ------------------------------------------------------------------ projects
    def _project_from_row(self, conn: Connection, row: Any) -> Project:
        tags = dict(
            conn.execute(
                sa.select(t.project_tags.c.key, t.project_tags.c.value).where(
                    t.project_tags.c.project_id == row.id
                )
            ).all()
        )
        return Project(
            id=str(row.id),
            name=row.name,
            created_ms=row.created_ms,
            updated_ms=row.updated_ms,
            lifecycle_stage=row.lifecycle_stage,
            tags=tags,
        )

    def _insert_project(self, conn: Connection, name: str, tags: Mapping[str, str]) -> Project:
        ts = now_ms()
        pid = conn.execute(
            t.projects.insert().values(
                name=name, created_ms=ts, updated_ms=ts, lifecycle_stage="active"
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        if tags:
            conn.execute(
                t.project_tags.insert(),
                [{"project_id": pid, "key": k, "value": v} for k, v in tags.items()],
            )
        return Project(str(pid), name, ts, ts, "active", dict(tags))

    def _do_create_project(self, name: str, tags: dict[str, str]) -> Project:
        try:
            with self._write() as conn:
                return self._insert_project(conn, name, tags)
        except IntegrityError:
            raise AlreadyExistsError(f"project {name!r} already exists.") from None

    def _do_get_or_create_project(self, name: str) -> Project:
        try:
            with self._write() as conn:
                row = conn.execute(sa.select(t.projects).where(t.projects.c.name == name)).first()
                if row is not None:
                    return self._project_from_row(conn, row)
                return self._insert_project(conn, name, {})
        except IntegrityError:  # a concurrent creator won on PostgreSQL: read theirs
            found = self._do_get_project_by_name(name)
            assert found is not None
            return found

    def _project_id(self, project_id: str) -> int:
        try:
            pid = int(project_id)
        except ValueError:
            raise NotFoundError(f"project id {project_id!r} does not exist.") from None
        if not -(2**63) <= pid < 2**63:  # ids are int64: a bigger number names no project
            raise NotFoundError(f"project id {project_id!r} does not exist.")
        return pid

    def _do_get_project(self, project_id: str) -> Project:
        pid = self._project_id(project_id)
        with self._read() as conn:
            row = conn.execute(sa.select(t.projects).where(t.projects.c.id == pid)).first()
            if row is None:
                raise NotFoundError(f"project id {project_id!r} does not exist.")
            return self._project_from_row(conn, row)

    def _do_get_project_by_name(self, name: str) -> Project | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.projects).where(t.projects.c.name == name)).first()
            return None if row is None else self._project_from_row(conn, row)

    def _do_list_projects(self, include_deleted: bool) -> list[Project]:
        with self._read() as conn:
            q = sa.select(t.projects).order_by(t.projects.c.id)
            if not include_deleted:
                q = q.where(t.projects.c.lifecycle_stage == "active")
            return [self._project_from_row(conn, r) for r in conn.execute(q).all()]

    def _do_set_project_lifecycle(self, project_id: str, stage: str) -> None:
        pid = self._project_id(project_id)
        with self._write() as conn:
            n = conn.execute(
                t.projects.update()
                .where(t.projects.c.id == pid)
                .values(lifecycle_stage=stage, updated_ms=now_ms())
            ).rowcount
            if n == 0:
                raise NotFoundError(f"project id {project_id!r} does not exist.")

    def _do_set_project_tags(self, project_id: str, tags: dict[str, str]) -> None:
        pid = self._project_id(project_id)
        pt = t.project_tags
        with self._write() as conn:
            n = conn.execute(
                t.projects.update().where(t.projects.c.id == pid).values(updated_ms=now_ms())
            ).rowcount
            if n == 0:
                raise NotFoundError(f"project id {project_id!r} does not exist.")
            conn.execute(pt.delete().where(pt.c.project_id == pid, pt.c.key.in_(list(tags))))
            conn.execute(
                pt.insert(), [{"project_id": pid, "key": k, "value": v} for k, v in tags.items()]
            )

    def _do_delete_project_tag(self, project_id: str, key: str) -> None:
        pid = self._project_id(project_id)
        pt = t.project_tags
        with self._write() as conn:
            n = conn.execute(pt.delete().where(pt.c.project_id == pid, pt.c.key == key)).rowcount
            if n == 0:
                self._do_get_project(project_id)  # NotFoundError for the project first
                raise NotFoundError(f"project {project_id} has no tag {key!r}.")
            conn.execute(
                t.projects.update().where(t.projects.c.id == pid).values(updated_ms=now_ms())
            )

    def _do_rename_project(self, project_id: str, name: str) -> Project:
        pid = self._project_id(project_id)
        try:
            with self._write() as conn:
                n = conn.execute(
                    t.projects.update()
                    .where(t.projects.c.id == pid)
                    .values(name=name, updated_ms=now_ms())
                ).rowcount
                if n == 0:
                    raise NotFoundError(f"project id {project_id!r} does not exist.")
        except IntegrityError:
            raise AlreadyExistsError(f"project {name!r} already exists.") from None
        return self._do_get_project(project_id)

    # ------------------------------------------------------------------ runs
    def _insert_run(self, cur: Cursor, project_id: str, f: Mapping[str, Any]) -> None:
        """Queue the rows of a new run (its params and tags too) in the transaction of ``cur``."""
        pid = self._project_id(project_id)
        rid = f["run_id"]
        context = json.dumps(f["context"], default=str) if f["context"] else None
        cur.execute(
            _INSERT_RUN,
            (rid, pid, f["name"], f["start_ms"], f["start_ms"], f["parent_run_id"], f["user"],
             f["host"], f["git_commit"], f["git_dirty"], context),
        )  # fmt: skip
        if f["params"]:  # a new run has no params yet: insert without reading first
            _metrics.insert_params(cur, rid, f["params"])
        if f["tags"]:
            _metrics.write_tags(cur, rid, f["tags"])

    def _create_error(self, exc: IntegrityError, project_id: str, run_id: str) -> Exception:
        """The error a failed run insert means: a missing project or a taken run id."""
        e = classify(exc)
        if e.kind == "foreign_key":  # no existence query first: it would be a round trip
            return NotFoundError(f"project id {project_id!r} does not exist.")
        if e.kind == "unique" and e.table == "runs":
            return AlreadyExistsError(f"run {run_id} already exists.")
        return translate(exc, describe_uri(self.uri))

    def _do_create_run(self, project_id: str, f: RunFields) -> Run:
        pid = self._project_id(project_id)
        try:
            with self._write_cursor(payload_bytes(f["params"], f["tags"], f["context"])) as cur:
                self._insert_run(cur, project_id, f)
        except IntegrityError as exc:
            raise self._create_error(exc, project_id, f["run_id"]) from None
        # Built from what was written: reading it back would cost a second transaction per run.
        return Run(
            id=f["run_id"],
            project_id=str(pid),
            name=f["name"],
            status="running",
            start_ms=f["start_ms"],
            end_ms=None,
            heartbeat_ms=f["start_ms"],
            parent_run_id=f["parent_run_id"],
            user=f["user"],
            host=f["host"],
            git_commit=f["git_commit"],
            git_dirty=f["git_dirty"],
            params=dict(f["params"]),
            tags=dict(f["tags"]),
            context=dict(f["context"]),
        )

    def _cutoff(self) -> int:
        return now_ms() - self.heartbeat_timeout_ms

    def _do_get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.runs, _search.STATUS.label("effective_status")).where(
                    t.runs.c.id == run_id
                ),
                {"cutoff_ms": self._cutoff()},
            ).first()
            if row is None:
                raise NotFoundError(f"run {run_id} does not exist.")
            return load_runs(conn, [row])[0]

    @staticmethod
    def _status_values(status: str, end_ms: int | None) -> dict[str, Any]:
        if status == "running":
            return {"status": status, "heartbeat_ms": now_ms(), "end_ms": None}
        return {"status": status, "end_ms": int(end_ms) if end_ms is not None else now_ms()}

    def _do_update_run(
        self, run_id: str, *, status: str | None, end_ms: int | None, name: str | None
    ) -> None:
        values: dict[str, Any] = {}
        if status is not None:
            values.update(self._status_values(status, end_ms))
        elif end_ms is not None:
            values["end_ms"] = int(end_ms)
        if name is not None:
            values["name"] = name
        with self._write() as conn:
            if values:
                n = conn.execute(
                    t.runs.update().where(t.runs.c.id == run_id).values(**values)
                ).rowcount
            else:
                n = 1
                self._require_run(conn, run_id)
            if n == 0:
                raise NotFoundError(f"run {run_id} does not exist.")

    def _do_heartbeat(self, run_id: str, ts_ms: int) -> None:
        with self._write() as conn:
            n = conn.execute(
                t.runs.update().where(t.runs.c.id == run_id).values(heartbeat_ms=ts_ms)
            ).rowcount
            if n == 0:
                raise NotFoundError(f"run {run_id} does not exist.")

    def _do_set_run_lifecycle(self, run_id: str, stage: str) -> None:
        with self._write() as conn:
            n = conn.execute(
                t.runs.update().where(t.runs.c.id == run_id).values(lifecycle_stage=stage)
            ).rowcount
            if n == 0:
                raise NotFoundError(f"run {run_id} does not exist.")

    def _do_delete_run_tag(self, run_id: str, key: str) -> None:
        with self._write() as conn:
            n = conn.execute(t.tags.delete().where(t.tags.c.run_id == run_id, t.tags.c.key == key))
            if n.rowcount == 0:
                self._require_run(conn, run_id)
                raise NotFoundError(f"run {run_id} has no tag {key!r}.")

    def _do_log_batch(
        self,
        run_id: str,
        *,
        metrics: Mapping[str, MetricSeries],
        params: Mapping[str, str],
        tags: Mapping[str, str],
        batch_id: str | None,
        status: str | None = None,
        end_ms: int | None = None,
        new_run: NewRun | None = None,
    ) -> bool:
        size = payload_bytes(params, tags, points=sum(len(s) for s in metrics.values()))
        if new_run is not None:
            f = new_run.fields
            size += payload_bytes(f["params"], f["tags"], f["context"])
        try:
            with self._write_cursor(size) as cur:
                # Everything is sent first and checked after one sync (one round trip on PG).
                if new_run is not None:
                    self._insert_run(cur, new_run.project_id, new_run.fields)
                if status is not None:  # idempotent, so applied even to a replayed batch
                    found = self._queue_status(cur, run_id, status, end_ms)
                else:
                    found = cur.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,))
                claimed = _metrics.claim_batch(cur, run_id, batch_id) if batch_id else None
                if params:
                    _metrics.write_params(cur, run_id, params)
                if tags:
                    _metrics.write_tags(cur, run_id, tags)
                if metrics:
                    _metrics.write_metrics(cur, run_id, metrics)
                cur.sync()
                missing = found.rowcount == 0 if status is not None else found.fetchone() is None
                if missing:
                    raise NotFoundError(f"run {run_id} does not exist.")
                if claimed is not None and claimed.fetchone() is None:
                    raise _AlreadyApplied  # rolls the transaction back
                return True
        except _AlreadyApplied:
            if status is not None:  # the status of a replayed batch still applies
                with self._write_cursor() as cur:
                    self._queue_status(cur, run_id, status, end_ms)
            return False
        except IntegrityError as exc:
            e = classify(exc)
            if e.kind == "unique" and e.table == "batches" and batch_id is not None:
                return False  # a concurrent replayer applied the same batch first
            if new_run is not None:
                raise self._create_error(exc, new_run.project_id, run_id) from None
            if e.kind == "foreign_key":  # rows of a run that does not exist
                raise NotFoundError(f"run {run_id} does not exist.") from None
            raise translate(exc, describe_uri(self.uri)) from None

    @staticmethod
    def _queue_status(cur: Cursor, run_id: str, status: str, end_ms: int | None) -> Any:
        if status == "running":
            return cur.execute(
                "UPDATE runs SET status = ?, heartbeat_ms = ?, end_ms = NULL WHERE id = ?",
                (status, now_ms(), run_id),
            )
        end = int(end_ms) if end_ms is not None else now_ms()
        return cur.execute(
            "UPDATE runs SET status = ?, end_ms = ? WHERE id = ?", (status, end, run_id)
        )

    def _do_get_metric_history(
        self, run_id: str, key: str, min_step: int | None, max_step: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._read() as conn:
            self._require_run(conn, run_id)
            return _metrics.read_history(conn, run_id, key, min_step=min_step, max_step=max_step)

    def _do_search_run_ids(
        self, project_ids: list[str], *, ast: list[Comparison], limit: int, include_deleted: bool
    ) -> list[str]:
        q = _search.ids_query(
            _numeric_ids(project_ids), ast, include_deleted=include_deleted, limit=limit
        )
        with self._read() as conn:
            return [r[0] for r in conn.execute(q, {"cutoff_ms": self._cutoff()})]

    def _do_search_runs(
        self,
        project_ids: list[str],
        *,
        ast: list[Comparison],
        order: list[OrderKey],
        limit: int,
        offset: int,
        include_deleted: bool,
    ) -> tuple[list[Run], bool]:
        q = _search.build_query(
            _numeric_ids(project_ids),
            ast,
            order,
            include_deleted=include_deleted,
            limit=limit,
            offset=offset,
        )
        with self._read() as conn:
            rows = conn.execute(q, {"cutoff_ms": self._cutoff()}).all()
            more = len(rows) > limit
            page = PageContexts(self.engine, [r[0] for r in rows[:limit]])
            return load_runs(conn, rows[:limit], page=page), more


def _numeric_ids(project_ids: list[str]) -> list[int]:
    pids = []
    for p in project_ids:
        try:
            pids.append(int(p))
        except ValueError:
            raise InvalidInputError(f"project id must be a numeric string; got {p!r}.") from None
    return pids
