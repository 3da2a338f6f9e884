"""The registry on SQL: versions numbered atomically, aliases moved with compare-and-set, every change
appended to the ordered event log in the same transaction."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mloop.errors import AlreadyExistsError, ConflictError, NotFoundError
from mloop.ids import now_ms
from mloop.store._filter import Comparison, OrderKey
from mloop.store._registry_base import VersionFields
from mloop.store._registry_entities import (
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
)
from mloop.store._sql import _schema as t
from mloop.store._sql import _search
from mloop.store._sql._log import SqlEventLogMixin


def _dumps(v: Any) -> str | None:
    return None if v is None else json.dumps(v, default=str, allow_nan=False)


def _loads(v: str | None) -> Any:
    return None if v is None else json.loads(v)


class SqlRegistryMixin(SqlEventLogMixin):
    """Mixed into :class:`SqlStore`; uses its ``_read``/``_write`` transactions."""

    # ------------------------------------------------------------------ helpers
    def _event(
        self,
        conn: Connection,
        type: str,
        model: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        actor: str | None = None,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
        report_id: str | None = None,
    ) -> RegistryEvent:
        # The registry's audit row shares its id with the event-log entry, written in the same
        # transaction: registry event ids and event-log ids are one sequence.
        logged = self._log_event(
            conn,
            type,
            f"models/{model}",
            actor=actor,
            payload={
                "model": model,
                "version": version,
                "alias": alias,
                "before": before,
                "after": after,
                "reason": reason,
                "report_id": report_id,
            },
        )
        ts = logged.ts_ms
        eid = conn.execute(
            t.registry_events.insert().values(
                id=logged.id,
                ts_ms=ts,
                type=type,
                model=model,
                version=version,
                alias=alias,
                actor=actor,
                before=_dumps(before),
                after=_dumps(after),
                reason=reason,
                report_id=report_id,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        return RegistryEvent(
            eid, ts, type, model, version, alias, actor, before, after, reason, report_id
        )

    def _lock_model(self, conn: Connection, name: str) -> Any:
        """The model row, locked for this transaction (PostgreSQL); SQLite's BEGIN IMMEDIATE already is."""
        row = conn.execute(
            sa.select(t.registered_models)
            .where(t.registered_models.c.name == name)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(f"registered model {name!r} does not exist.")
        return row

    def _model(self, conn: Connection, row: Any) -> RegisteredModel:
        name = row.name
        tags = dict(
            conn.execute(
                sa.select(t.registered_model_tags.c.key, t.registered_model_tags.c.value).where(
                    t.registered_model_tags.c.name == name
                )
            ).all()
        )
        aliases = dict(
            conn.execute(
                sa.select(t.model_aliases.c.alias, t.model_aliases.c.version).where(
                    t.model_aliases.c.name == name
                )
            ).all()
        )
        mv = t.model_versions
        latest = conn.execute(
            sa.select(sa.func.max(mv.c.version)).where(
                mv.c.name == name, mv.c.deleted == sa.false()
            )
        ).scalar()
        return RegisteredModel(
            name=name,
            description=row.description,
            created_ms=row.created_ms,
            updated_ms=row.updated_ms,
            created_by=row.created_by,
            tags=tags,
            aliases=dict(sorted(aliases.items())),
            latest_version=latest,
        )

    def _versions(self, conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
        if not rows:
            return []
        tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        metrics: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
        aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
        keys = sorted({(r.name, r.version) for r in rows})
        vt, vm, al = t.model_version_tags, t.model_version_metrics, t.model_aliases

        def only(table: sa.Table) -> Any:
            # Exactly the requested versions (a model may have thousands): one indexed lookup each.
            if len(keys) == 1:
                return sa.and_(table.c.name == keys[0][0], table.c.version == keys[0][1])
            if len(keys) <= 500:
                return sa.tuple_(table.c.name, table.c.version).in_(keys)
            return table.c.name.in_(sorted({n for n, _ in keys}))  # big pages: filtered below

        wanted = set(keys)

        for n, v, k, val in conn.execute(
            sa.select(vt.c.name, vt.c.version, vt.c.key, vt.c.value).where(only(vt))
        ):
            if (n, v) in wanted:
                tags[(n, v)][k] = val
        for n, v, k, val in conn.execute(
            sa.select(vm.c.name, vm.c.version, vm.c.key, vm.c.value).where(only(vm))
        ):
            if (n, v) in wanted:
                metrics[(n, v)][k] = math.nan if val is None else float(val)
        for n, a, v in conn.execute(sa.select(al.c.name, al.c.alias, al.c.version).where(only(al))):
            aliases[(n, v)].append(a)
        return [
            self._version_entity(
                r,
                tags[(r.name, r.version)],
                metrics[(r.name, r.version)],
                aliases[(r.name, r.version)],
            )
            for r in rows
        ]

    @staticmethod
    def _version_entity(
        r: Any, tags: dict[str, str], metrics: dict[str, float], aliases: Sequence[str]
    ) -> ModelVersion:
        """A ``model_versions`` row (attribute access) with its tags, metrics and alias names."""
        return ModelVersion(
            name=r.name,
            version=r.version,
            artifact_uri=r.artifact_uri,
            flavor=r.flavor,
            source_run_id=r.source_run_id,
            created_ms=r.created_ms,
            updated_ms=r.updated_ms,
            created_by=r.created_by,
            description=r.description,
            signature=_loads(r.signature),
            manifest=_loads(r.manifest) or {},
            metrics=dict(sorted(metrics.items())),
            params=_loads(r.params) or {},
            datasets=tuple(_loads(r.datasets) or ()),
            git_commit=r.git_commit,
            tags=tags,
            aliases=tuple(sorted(aliases)),
            deleted=bool(r.deleted),
        )

    def _version_row(self, conn: Connection, name: str, version: int) -> Any:
        mv = t.model_versions
        row = conn.execute(sa.select(mv).where(mv.c.name == name, mv.c.version == version)).first()
        if row is None:
            raise self._missing(conn, name, f"version {version}")
        return row

    @staticmethod
    def _missing(conn: Connection, name: str, what: str) -> NotFoundError:
        """The error for something of model ``name`` not found: it, or the model itself, is missing."""
        model = conn.execute(
            sa.select(t.registered_models.c.name).where(t.registered_models.c.name == name)
        ).first()
        if model is None:
            return NotFoundError(f"registered model {name!r} does not exist.")
        return NotFoundError(f"model {name!r} has no {what}.")

    # ------------------------------------------------------------------ models
    def _insert_model(
        self, conn: Connection, name: str, description: str, tags: dict[str, str], actor: str | None
    ) -> None:
        ts = now_ms()
        conn.execute(
            t.registered_models.insert().values(
                name=name, description=description, created_ms=ts, updated_ms=ts, created_by=actor
            )
        )
        if tags:
            conn.execute(
                t.registered_model_tags.insert(),
                [{"name": name, "key": k, "value": v} for k, v in tags.items()],
            )
        self._event(
            conn,
            "model_created",
            name,
            actor=actor,
            after={"description": description, "tags": tags},
        )

    def _do_create_registered_model(
        self, name: str, description: str, tags: dict[str, str], actor: str | None
    ) -> RegisteredModel:
        try:
            with self._write() as conn:
                if conn.execute(
                    sa.select(t.registered_models.c.name).where(t.registered_models.c.name == name)
                ).first():
                    raise AlreadyExistsError(f"registered model {name!r} already exists.")
                self._insert_model(conn, name, description, tags, actor)
        except IntegrityError:
            raise AlreadyExistsError(f"registered model {name!r} already exists.") from None
        return self._do_get_registered_model(name)

    def _do_get_registered_model(self, name: str) -> RegisteredModel:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.registered_models).where(t.registered_models.c.name == name)
            ).first()
            if row is None:
                raise NotFoundError(f"registered model {name!r} does not exist.")
            return self._model(conn, row)

    def _do_search_registered_models(
        self, ast: list[Comparison], order: list[OrderKey], limit: int, offset: int
    ) -> tuple[list[RegisteredModel], bool]:
        q = _search.models_query(ast, order, limit=limit, offset=offset)
        with self._read() as conn:
            rows = conn.execute(q).all()
            return [self._model(conn, r) for r in rows[:limit]], len(rows) > limit

    def _do_update_registered_model(
        self, name: str, description: str, actor: str | None
    ) -> RegisteredModel:
        with self._write() as conn:
            row = self._lock_model(conn, name)
            conn.execute(
                t.registered_models.update()
                .where(t.registered_models.c.name == name)
                .values(description=description, updated_ms=now_ms())
            )
            self._event(
                conn,
                "model_updated",
                name,
                actor=actor,
                before={"description": row.description},
                after={"description": description},
            )
        return self._do_get_registered_model(name)

    def _do_set_model_tags(
        self, name: str, version: int | None, tags: dict[str, str], actor: str | None
    ) -> None:
        with self._write() as conn:
            if version is None:
                self._lock_model(conn, name)
                table, where = t.registered_model_tags, [t.registered_model_tags.c.name == name]
                base: dict[str, Any] = {"name": name}
            else:
                self._version_row(conn, name, version)
                table = t.model_version_tags
                where = [table.c.name == name, table.c.version == version]
                base = {"name": name, "version": version}
            before = dict(
                conn.execute(
                    sa.select(table.c.key, table.c.value).where(*where, table.c.key.in_(list(tags)))
                ).all()
            )
            conn.execute(table.delete().where(*where, table.c.key.in_(list(tags))))
            conn.execute(table.insert(), [{**base, "key": k, "value": v} for k, v in tags.items()])
            self._event(
                conn,
                "tag_set",
                name,
                version=version,
                actor=actor,
                before=before or None,
                after=tags,
            )

    def _do_delete_model_tag(
        self, name: str, version: int | None, key: str, actor: str | None
    ) -> None:
        with self._write() as conn:
            if version is None:
                table, where = t.registered_model_tags, [t.registered_model_tags.c.name == name]
            else:
                table = t.model_version_tags
                where = [table.c.name == name, table.c.version == version]
            old = conn.execute(sa.select(table.c.value).where(*where, table.c.key == key)).scalar()
            if old is None:
                what = f"model {name!r}" + (f" version {version}" if version else "")
                raise NotFoundError(f"{what} has no tag {key!r}.")
            conn.execute(table.delete().where(*where, table.c.key == key))
            self._event(conn, "tag_deleted", name, version=version, actor=actor, before={key: old})

    # ------------------------------------------------------------------ versions
    def _do_create_model_version(self, name: str, f: VersionFields) -> ModelVersion:
        for attempt in range(3):
            try:
                with self._write() as conn:
                    exists = conn.execute(
                        sa.select(t.registered_models.c.name)
                        .where(t.registered_models.c.name == name)
                        .with_for_update()
                    ).first()
                    if exists is None:
                        self._insert_model(conn, name, "", {}, f["actor"])
                    if (
                        f["source_run_id"] is not None
                        and conn.execute(
                            sa.select(t.runs.c.id).where(t.runs.c.id == f["source_run_id"])
                        ).first()
                        is None
                    ):
                        raise NotFoundError(
                            f"run {f['source_run_id']} does not exist; cannot register a model from it."
                        )
                    mv = t.model_versions
                    version = (
                        conn.execute(
                            sa.select(sa.func.max(mv.c.version)).where(mv.c.name == name)
                        ).scalar()
                        or 0
                    ) + 1
                    ts = now_ms()
                    conn.execute(
                        mv.insert().values(
                            name=name,
                            version=version,
                            artifact_uri=f["artifact_uri"],
                            flavor=f["flavor"],
                            source_run_id=f["source_run_id"],
                            created_ms=ts,
                            updated_ms=ts,
                            created_by=f["actor"],
                            description=f["description"],
                            signature=_dumps(f["signature"]),
                            manifest=_dumps(f["manifest"]),
                            params=_dumps(f["params"]),
                            datasets=_dumps(f["datasets"]),
                            git_commit=f["git_commit"],
                            deleted=False,
                        )
                    )
                    if f["metrics"]:
                        conn.execute(
                            t.model_version_metrics.insert(),
                            [
                                {
                                    "name": name,
                                    "version": version,
                                    "key": k,
                                    "value": None if math.isnan(v) else v,
                                }
                                for k, v in f["metrics"].items()
                            ],
                        )
                    if f["tags"]:
                        conn.execute(
                            t.model_version_tags.insert(),
                            [
                                {"name": name, "version": version, "key": k, "value": v}
                                for k, v in f["tags"].items()
                            ],
                        )
                    self._event(
                        conn,
                        "version_registered",
                        name,
                        version=version,
                        actor=f["actor"],
                        after={
                            "artifact_uri": f["artifact_uri"],
                            "flavor": f["flavor"],
                            "source_run_id": f["source_run_id"],
                        },
                    )
                return self._do_get_model_version(name, version)
            except IntegrityError:
                # A concurrent registration took this number (or created the model) first: retry.
                if attempt == 2:
                    raise ConflictError(
                        f"could not register a new version of {name!r} under contention; retry."
                    ) from None
        raise AssertionError("unreachable")

    def _do_get_model_version(self, name: str, version: int) -> ModelVersion:
        with self._read() as conn:
            return self._versions(conn, [self._version_row(conn, name, version)])[0]

    def _do_get_latest_version(self, name: str) -> ModelVersion:
        mv = t.model_versions
        with self._read() as conn:
            row = conn.execute(
                sa.select(mv)
                .where(mv.c.name == name, mv.c.deleted == sa.false())
                .order_by(mv.c.version.desc())
                .limit(1)
            ).first()
            if row is None:
                raise self._missing(conn, name, "versions")
            return self._versions(conn, [row])[0]

    def _do_search_model_versions(
        self,
        ast: list[Comparison],
        order: list[OrderKey],
        limit: int,
        offset: int,
        include_deleted: bool,
    ) -> tuple[list[ModelVersion], bool]:
        q = _search.versions_query(
            ast, order, include_deleted=include_deleted, limit=limit, offset=offset
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
            return self._versions(conn, rows[:limit]), len(rows) > limit

    def _do_update_model_version(
        self, name: str, version: int, description: str, actor: str | None
    ) -> ModelVersion:
        mv = t.model_versions
        with self._write() as conn:
            row = self._version_row(conn, name, version)
            conn.execute(
                mv.update()
                .where(mv.c.name == name, mv.c.version == version)
                .values(description=description, updated_ms=now_ms())
            )
            self._event(
                conn,
                "version_updated",
                name,
                version=version,
                actor=actor,
                before={"description": row.description},
                after={"description": description},
            )
        return self._do_get_model_version(name, version)

    def _do_delete_model_version(
        self, name: str, version: int, actor: str | None, reason: str | None
    ) -> ModelVersion:
        mv, al = t.model_versions, t.model_aliases
        with self._write() as conn:
            self._lock_model(conn, name)
            row = self._version_row(conn, name, version)
            if row.deleted:
                raise NotFoundError(f"model {name!r} version {version} is already deleted.")
            pointing = sorted(
                conn.execute(
                    sa.select(al.c.alias).where(al.c.name == name, al.c.version == version)
                ).scalars()
            )
            if pointing:
                raise ConflictError(
                    f"model {name!r} version {version} is the target of alias(es) {pointing}; move or delete "
                    "them first (`mloop models alias set|delete`)."
                )
            conn.execute(
                mv.update()
                .where(mv.c.name == name, mv.c.version == version)
                .values(deleted=True, updated_ms=now_ms())
            )
            self._event(conn, "version_deleted", name, version=version, actor=actor, reason=reason)
        return self._do_get_model_version(name, version)
