"""``SqlStore``: the Store contract on SQLite (default) and PostgreSQL, via SQLAlchemy Core."""

from __future__ import annotations

import contextlib
import json
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from mloop.ids import now_ms
from mloop.store._base import Store
from mloop.store._entities import (
    MetricSeries,
    MetricSummary,
    Project,
    Run,
    RunInput,
)
from mloop.store._filter import Comparison, OrderKey
from mloop.store._sql import _metrics, _search
from mloop.store._sql import _schema as t
from mloop.store._sql._aliases import SqlAliasesMixin
from mloop.store._sql._artifacts import SqlArtifactsMixin, _chunks
from mloop.store._sql._engine import create_store_engine, store_error, upgrade_schema
from mloop.store._sql._events import SqlEventsMixin
from mloop.store._sql._monitors import SqlMonitorsMixin
from mloop.store._sql._registry import SqlRegistryMixin

__all__ = ["SqlStore"]

# Hot-path statements, built once (SQLAlchemy then reuses their compiled form).
_PROJECT_EXISTS = sa.select(t.projects.c.id).where(t.projects.c.id == sa.bindparam("pid"))
_RUN_EXISTS = sa.select(t.runs.c.id).where(t.runs.c.id == sa.bindparam("rid"))
_INSERT_RUN = t.runs.insert()
_FINISH_RUN = (
    t.runs.update()
    .where(t.runs.c.id == sa.bindparam("rid"))
    .values(status=sa.bindparam("st"), end_ms=sa.bindparam("end"))
)


class _PageContexts:
    """Loads the captured contexts of one page of search results in one query, on first use.

    A run's context (installed packages, ~3 KB) is rarely read from search results, and fetching it
    doubled the cost of the search query itself.
    """

    def __init__(self, engine: Any, ids: list[str]) -> None:
        self._engine = engine
        self._ids = ids
        self._raw: dict[str, str | None] | None = None

    def raw(self, run_id: str) -> str | None:
        if self._raw is None:
            raw: dict[str, str | None] = {}
            with self._engine.connect() as conn:
                for part in _chunks(self._ids):
                    q = sa.select(t.runs.c.id, t.runs.c.context).where(t.runs.c.id.in_(part))
                    raw.update(conn.execute(q).all())
            self._raw = raw
        return self._raw.get(run_id)


class _LazyJson(Mapping[str, Any]):
    """A run's captured context, read and parsed on first access."""

    __slots__ = ("_data", "_page", "_raw", "_run_id")

    def __init__(
        self, raw: str | None = None, *, page: _PageContexts | None = None, run_id: str = ""
    ) -> None:
        self._raw = raw
        self._page = page
        self._run_id = run_id
        self._data: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any]:
        if self._data is None:
            raw = self._raw if self._page is None else self._page.raw(self._run_id)
            self._data = json.loads(raw) if raw else {}
            self._raw = self._page = None
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())


class SqlStore(
    SqlArtifactsMixin, SqlMonitorsMixin, SqlEventsMixin, SqlAliasesMixin, SqlRegistryMixin, Store
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

    def __init__(
        self, uri: str, *, heartbeat_timeout_s: float = 90.0, upgrade: bool = True
    ) -> None:
        self.uri = uri
        self.heartbeat_timeout_ms = int(heartbeat_timeout_s * 1000)
        self.engine = create_store_engine(uri)
        self.dialect = self.engine.dialect.name
        if upgrade:
            upgrade_schema(self.engine, uri_for_messages=uri)

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        from mloop.store._sql._engine import describe_uri

        return f"SqlStore({describe_uri(self.uri)!r})"

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except (OperationalError, DatabaseError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise store_error(exc, self.uri) from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(mloop_write=True)
                with conn.begin():
                    yield conn
        except (OperationalError, DatabaseError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise store_error(exc, self.uri) from exc

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
            return int(project_id)
        except ValueError:
            raise NotFoundError(f"project id {project_id!r} does not exist.") from None

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

    # ------------------------------------------------------------------ runs
    def _do_create_run(self, project_id: str, **f: Any) -> Run:
        pid = self._project_id(project_id)
        with self._write() as conn:
            if conn.execute(_PROJECT_EXISTS, {"pid": pid}).first() is None:
                raise NotFoundError(f"project id {project_id!r} does not exist.")
            try:
                conn.execute(
                    _INSERT_RUN,  # prebuilt: building statements per run costs more than running them
                    {
                        "id": f["run_id"],
                        "project_id": pid,
                        "name": f["name"],
                        "status": "running",
                        "start_ms": f["start_ms"],
                        "heartbeat_ms": f["start_ms"],
                        "parent_run_id": f["parent_run_id"],
                        "user": f["user"],
                        "host": f["host"],
                        "git_commit": f["git_commit"],
                        "git_dirty": f["git_dirty"],
                        "lifecycle_stage": "active",
                        "context": json.dumps(f["context"], default=str) if f["context"] else None,
                    },
                )
            except IntegrityError:
                raise AlreadyExistsError(f"run {f['run_id']} already exists.") from None
            if f["params"]:  # a new run has no params yet: insert without reading first
                conn.execute(
                    t.params.insert(),
                    [{"run_id": f["run_id"], "key": k, "value": v} for k, v in f["params"].items()],
                )
            if f["tags"]:
                _metrics.write_tags(conn, f["run_id"], f["tags"])
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

    def _load_runs(
        self, conn: Connection, rows: Sequence[Any], *, page: _PageContexts | None = None
    ) -> list[Run]:
        ids = [r[0] for r in rows]  # runs.id is the first column
        params: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        metrics: dict[str, dict[str, MetricSummary]] = defaultdict(dict)
        inputs: dict[str, list[RunInput]] = defaultdict(list)
        # Params and tags come back as one JSON object per run (the database aggregates), not one
        # row per key: on searches returning thousands of runs, fetching rows dominated.
        agg = sa.func.json_object_agg if self.dialect == "postgresql" else sa.func.json_group_object
        for part in _chunks(ids):
            for table, into in ((t.params, params), (t.tags, tags)):
                grouped = (
                    sa.select(table.c.run_id, sa.cast(agg(table.c.key, table.c.value), sa.Text))
                    .where(table.c.run_id.in_(part))
                    .group_by(table.c.run_id)
                )
                for rid, blob in conn.execute(grouped).all():
                    into[rid] = json.loads(blob)
            ms = t.metric_summary
            summary_cols = (
                ms.c.run_id,
                ms.c.key,
                ms.c.value,
                ms.c.is_nan,
                ms.c.step,
                ms.c.timestamp,
            )
            for rid, key, value, is_nan, step, ts, lo, hi, count in conn.execute(
                sa.select(*summary_cols, ms.c.min_value, ms.c.max_value, ms.c["count"]).where(
                    ms.c.run_id.in_(part)
                )
            ).all():
                metrics[rid][key] = MetricSummary(
                    key, math.nan if is_nan else float(value), step, ts, lo, hi, count
                )
            for i in conn.execute(sa.select(t.run_inputs).where(t.run_inputs.c.run_id.in_(part))):
                inputs[i.run_id].append(RunInput(i.dataset_sha256, i.name, i.context))
        out: list[Run] = []
        if not rows:
            return out
        pos = {name: i for i, name in enumerate(rows[0]._fields)}
        (i_id, i_pid, i_name, i_status, i_eff, i_start, i_end, i_hb, i_parent, i_user, i_host, i_git,
         i_dirty, i_stage) = (pos[k] for k in (
            "id", "project_id", "name", "status", "effective_status", "start_ms", "end_ms",
            "heartbeat_ms", "parent_run_id", "user", "host", "git_commit", "git_dirty",
            "lifecycle_stage"))  # fmt: skip
        i_ctx = pos.get("context")
        new_run = object.__new__
        for r in rows:
            rid, eff, end = r[i_id], r[i_eff], r[i_end]
            if end is None and eff == "killed" and r[i_status] == "running":
                end = r[i_hb]  # a lapsed run ended, as far as anyone knows, at its last heartbeat
            run = new_run(Run)
            # Frozen-dataclass __init__ costs ~10 us a run; searches build thousands of runs.
            run.__dict__.update(
                id=rid,
                project_id=str(r[i_pid]),
                name=r[i_name],
                status=eff,
                start_ms=r[i_start],
                end_ms=end,
                heartbeat_ms=r[i_hb],
                parent_run_id=r[i_parent],
                user=r[i_user],
                host=r[i_host],
                git_commit=r[i_git],
                git_dirty=r[i_dirty],
                lifecycle_stage=r[i_stage],
                params=params.get(rid) or {},
                tags=tags.get(rid) or {},
                metrics=dict(sorted(metrics[rid].items())) if rid in metrics else {},
                context=_LazyJson(r[i_ctx])
                if i_ctx is not None
                else _LazyJson(page=page, run_id=rid),
                inputs=tuple(sorted(inputs[rid], key=lambda x: (x.name, x.dataset_sha256)))
                if rid in inputs
                else (),
            )
            out.append(run)
        return out

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
            return self._load_runs(conn, [row])[0]

    def _require_run(self, conn: Connection, run_id: str) -> None:
        if conn.execute(_RUN_EXISTS, {"rid": run_id}).first() is None:
            raise NotFoundError(f"run {run_id} does not exist.")

    @staticmethod
    def _status_values(status: str, end_ms: int | None) -> dict[str, Any]:
        if status == "running":
            return {"status": status, "heartbeat_ms": now_ms(), "end_ms": None}
        return {"status": status, "end_ms": int(end_ms) if end_ms is not None else now_ms()}

    def _set_status(self, conn: Connection, run_id: str, status: str, end_ms: int | None) -> bool:
        stmt = (
            t.runs.update()
            .where(t.runs.c.id == run_id)
            .values(**self._status_values(status, end_ms))
        )
        return conn.execute(stmt).rowcount > 0

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
    ) -> bool:
        try:
            with self._write() as conn:
                if status is not None:  # idempotent, so applied even to a replayed batch
                    if not self._set_status(conn, run_id, status, end_ms):
                        raise NotFoundError(f"run {run_id} does not exist.")
                else:
                    self._require_run(conn, run_id)
                if batch_id is not None and not _metrics.claim_batch(conn, run_id, batch_id):
                    return False
                if params:
                    _metrics.write_params(conn, run_id, params)
                if tags:
                    _metrics.write_tags(conn, run_id, tags)
                if metrics:
                    _metrics.write_metrics(conn, run_id, metrics)
                return True
        except IntegrityError as exc:
            if batch_id is not None and "batches" in str(exc):
                return False  # a concurrent replayer applied the same batch first
            raise

    def _do_get_metric_history(
        self, run_id: str, key: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._read() as conn:
            self._require_run(conn, run_id)
            return _metrics.read_history(conn, run_id, key)

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
        pids = []
        for p in project_ids:
            try:
                pids.append(int(p))
            except ValueError:
                raise InvalidInputError(
                    f"project id must be a numeric string; got {p!r}."
                ) from None
        q = _search.build_query(
            pids,
            ast,
            order,
            include_deleted=include_deleted,
            limit=limit,
            offset=offset,
        )
        with self._read() as conn:
            rows = conn.execute(q, {"cutoff_ms": self._cutoff()}).all()
            more = len(rows) > limit
            page = _PageContexts(self.engine, [r[0] for r in rows[:limit]])
            return self._load_runs(conn, rows[:limit], page=page), more
