"""The artifact index (run -> path -> blob) and dataset versions on SQL."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mloop.errors import NotFoundError
from mloop.store._entities import ArtifactEntry, DatasetVersion, RunInput
from mloop.store._sql import _schema as t
from mloop.store._sql._tx import SqlBase

_IN_CHUNK = 900


def _chunks(items: list[str], n: int = _IN_CHUNK) -> Any:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class SqlArtifactsMixin(SqlBase):
    """Mixed into :class:`SqlStore` (uses its ``_read``/``_write`` and ``_require_run``)."""

    # ------------------------------------------------------------------ artifacts index
    def _do_add_artifacts(self, run_id: str, entries: list[ArtifactEntry]) -> None:
        a = t.artifacts
        with self._write() as conn:
            self._require_run(conn, run_id)
            paths = [e.path for e in entries]
            for part in _chunks(paths):
                conn.execute(a.delete().where(a.c.run_id == run_id, a.c.path.in_(part)))
            conn.execute(
                a.insert(),
                [
                    {"run_id": run_id, "path": e.path, "size": e.size, "sha256": e.sha256}
                    for e in entries
                ],
            )

    def _do_list_artifacts(self, run_id: str, prefix: str) -> list[ArtifactEntry]:
        a = t.artifacts
        with self._read() as conn:
            q = sa.select(a.c.path, a.c.size, a.c.sha256).where(a.c.run_id == run_id)
            if prefix:
                q = q.where(
                    sa.or_(a.c.path == prefix, a.c.path.startswith(prefix + "/", autoescape=True))
                )
            found = [ArtifactEntry(p, s, h) for p, s, h in conn.execute(q.order_by(a.c.path))]
            if not found:  # a run's files name their run: ask whether it exists only when none do
                self._require_run(conn, run_id)
            return found

    def _do_get_artifact(self, run_id: str, path: str) -> ArtifactEntry:
        a = t.artifacts
        with self._read() as conn:
            row = conn.execute(
                sa.select(a.c.path, a.c.size, a.c.sha256).where(
                    a.c.run_id == run_id, a.c.path == path
                )
            ).first()
            if row is None:
                self._require_run(conn, run_id)
                raise NotFoundError(f"run {run_id} has no artifact {path!r}.")
            return ArtifactEntry(*row)

    def _do_referenced_blobs(self) -> set[str]:
        with self._read() as conn:
            shas = set(conn.execute(sa.select(t.artifacts.c.sha256).distinct()).scalars())
            for uri in conn.execute(sa.select(t.datasets.c.storage_uri)).scalars():
                shas.add(uri.rstrip("/").rsplit("/", 1)[-1].split(".")[0])
            # the inference log's Parquet chunks are blobs too: gc must not take them
            shas.update(conn.execute(sa.select(t.inference_chunks.c.sha256).distinct()).scalars())
            return shas

    # ------------------------------------------------------------------ datasets
    def _dataset_from_row(self, row: Any) -> DatasetVersion:
        return DatasetVersion(
            sha256=row.sha256,
            name=row.name,
            schema=json.loads(row.schema),
            num_rows=row.num_rows,
            source_uri=row.source_uri,
            storage_uri=row.storage_uri,
            created_ms=row.created_ms,
            profile=json.loads(row.profile) if row.profile else None,
        )

    def _do_put_dataset(self, dataset: DatasetVersion) -> DatasetVersion:
        d = t.datasets
        try:
            with self._write() as conn:
                row = conn.execute(sa.select(d).where(d.c.sha256 == dataset.sha256)).first()
                if row is not None:
                    return self._dataset_from_row(row)
                conn.execute(
                    d.insert().values(
                        sha256=dataset.sha256,
                        name=dataset.name,
                        schema=json.dumps(dict(dataset.schema)),
                        num_rows=int(dataset.num_rows),
                        source_uri=dataset.source_uri,
                        storage_uri=dataset.storage_uri,
                        created_ms=dataset.created_ms,
                        profile=json.dumps(dataset.profile)
                        if dataset.profile is not None
                        else None,
                    )
                )
                return dataset
        except IntegrityError:  # concurrent writer recorded the same content first
            return self._do_get_dataset(dataset.sha256)

    def _do_get_dataset(self, sha256: str) -> DatasetVersion:
        with self._read() as conn:
            row = conn.execute(sa.select(t.datasets).where(t.datasets.c.sha256 == sha256)).first()
            if row is None:
                raise NotFoundError(f"dataset {sha256} does not exist.")
            return self._dataset_from_row(row)

    def _do_log_input(self, run_id: str, run_input: RunInput) -> None:
        ri = t.run_inputs
        with self._write() as conn:
            self._require_run(conn, run_id)
            if (
                conn.execute(
                    sa.select(t.datasets.c.sha256).where(
                        t.datasets.c.sha256 == run_input.dataset_sha256
                    )
                ).first()
                is None
            ):
                raise NotFoundError(
                    f"dataset {run_input.dataset_sha256} does not exist; store it first."
                )
            exists = conn.execute(
                sa.select(ri.c.run_id).where(
                    ri.c.run_id == run_id,
                    ri.c.dataset_sha256 == run_input.dataset_sha256,
                    ri.c.name == run_input.name,
                )
            ).first()
            if exists is None:
                conn.execute(
                    ri.insert().values(
                        run_id=run_id,
                        dataset_sha256=run_input.dataset_sha256,
                        name=run_input.name,
                        context=run_input.context,
                    )
                )
