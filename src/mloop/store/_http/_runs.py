"""Projects, runs, metrics, the artifact index and datasets over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mloop.errors import MloopError
from mloop.store._common import MAX_RESULTS_LIMIT, LazyMapping, validate_max_results
from mloop.store._entities import (
    ArtifactEntry,
    DatasetVersion,
    MetricHistory,
    MetricSeries,
    Page,
    Project,
    Run,
    RunInput,
    RunStatus,
)
from mloop.store._filter import Comparison, OrderKey
from mloop.store._http._endpoint import Endpoint
from mloop.store._runs_base import NewRun, RunFields, check_history_args, check_step_range
from mloop.store._validation import validate_run_id

__all__ = ["RUN_ENDPOINTS", "HttpRunsMixin", "NewRunWire"]

# ``NewRun`` on the wire: the project and the run's fields (the server validates them again).
NewRunWire = Mapping[str, Any]
# What a lifecycle request sets a project or run to (delete or restore).
Lifecycle = Literal["deleted", "active"]


def _page_of_runs(data: Any) -> Page[Run]:
    return Page.from_dict(data, item=Run.from_dict)


def _blob_set(data: Any) -> set[str]:
    return {str(x) for x in data}


class _PageContexts:
    """The captured contexts of one page of search results, fetched together on first use."""

    def __init__(self, store: HttpRunsMixin, project_ids: list[str], run_ids: list[str]) -> None:
        self._store = store
        self._project_ids = project_ids
        self._run_ids = run_ids
        self._lock = threading.Lock()
        self._contexts: dict[str, Mapping[str, Any]] | None = None

    def get(self, run_id: str) -> Mapping[str, Any]:
        with self._lock:
            if self._contexts is None:
                # Run ids are hex (validated by every store), so they quote safely.
                listed = ", ".join(f"'{i}'" for i in self._run_ids)
                page = self._store._call(
                    "search_runs",
                    project_ids=self._project_ids,
                    filter=f"attributes.run_id IN ({listed})",
                    order_by=None,
                    max_results=max(len(self._run_ids), 1),
                    page_token=None,
                    include_deleted=True,  # a run deleted since the search still has one
                    include_context=True,
                )
                self._contexts = {r.id: r.context for r in page.items}
            return self._contexts.get(run_id, {})


class _LazyContext(LazyMapping):
    """A search result's context: its page's contexts are fetched when one is first read."""

    __slots__ = ("_page", "_run_id")

    def __init__(self, page: _PageContexts, run_id: str) -> None:
        super().__init__()
        self._page = page
        self._run_id = run_id

    def _load(self) -> Mapping[str, Any]:
        return self._page.get(self._run_id)


_E = Endpoint
RUN_ENDPOINTS: tuple[Endpoint, ...] = (
    _E("create_project", "POST", "/projects", {"name": str, "tags": dict[str, str]}, Project,
       summary="Create a project (an MLflow experiment)"),
    _E("list_projects", "GET", "/projects", {"include_deleted": bool}, list[Project],
       summary="Every project"),
    _E("get_project_by_name", "GET", "/project-by-name", {"name": str}, Project | None,
       summary="The project with this name, or null"),
    _E("get_or_create_project", "POST", "/projects/get-or-create", {"name": str}, Project,
       summary="The project with this name, created if missing"),
    _E("get_project", "GET", "/projects/{project_id}", {"project_id": str}, Project,
       project="project_id", summary="One project"),
    _E("set_project_lifecycle", "POST", "/projects/{project_id}/lifecycle",
       {"project_id": str, "stage": Lifecycle}, None, project="project_id",
       summary="Delete (stage 'deleted') or restore (stage 'active') a project"),
    _E("set_project_tags", "POST", "/projects/{project_id}/tags",
       {"project_id": str, "tags": dict[str, str]}, None, project="project_id",
       summary="Set tags of a project (overwriting those with the same keys)"),
    _E("delete_project_tag", "DELETE", "/projects/{project_id}/tags",
       {"project_id": str, "key": str}, None, project="project_id",
       summary="Remove one tag of a project"),
    _E("rename_project", "PATCH", "/projects/{project_id}",
       {"project_id": str, "name": str}, Project, project="project_id",
       summary="Give a project a new (unique) name"),
    _E("create_run", "POST", "/projects/{project_id}/runs",
       {"project_id": str, "fields": RunFields}, Run, project="project_id",
       summary="Create a run"),
    _E("search_runs", "POST", "/runs/search",
       {"project_ids": list[str], "filter": str | None, "order_by": list[str] | None,
        "max_results": int, "page_token": str | None, "include_deleted": bool,
        "include_context": bool},
       Page[Run], decode=_page_of_runs, role="read",
       summary="Runs matching a filter (MLflow's grammar), ordered, one page; each run's "
       "captured context (its installed packages, ~3 KB) only with include_context"),
    _E("search_run_ids", "POST", "/runs/search-ids",
       {"project_ids": list[str], "filter": str | None, "max_results": int,
        "include_deleted": bool},
       list[str], role="read",
       summary="The ids of the runs a filter matches (newest first), without the runs"),
    _E("get_run", "GET", "/runs/{run_id}", {"run_id": str}, Run, summary="One run"),
    _E("update_run", "PATCH", "/runs/{run_id}",
       {"run_id": str, "status": RunStatus | None, "end_ms": int | None, "name": str | None},
       None, summary="Change a run's status, end time or name"),
    _E("heartbeat", "POST", "/runs/{run_id}/heartbeat", {"run_id": str, "ts_ms": int}, None,
       summary="A live run says it is alive"),
    _E("set_run_lifecycle", "POST", "/runs/{run_id}/lifecycle",
       {"run_id": str, "stage": Lifecycle}, None,
       summary="Delete (stage 'deleted') or restore (stage 'active') a run"),
    _E("delete_run_tag", "DELETE", "/runs/{run_id}/tags", {"run_id": str, "key": str}, None,
       summary="Remove one tag of a run"),
    _E("log_batch", "POST", "/runs/{run_id}/batches",
       {"run_id": str, "metrics": dict[str, MetricSeries], "params": dict[str, str],
        "tags": dict[str, str], "batch_id": str | None, "status": RunStatus | None,
        "end_ms": int | None, "new_run": dict[str, Any] | None},
       bool, summary="Metrics, params and tags in one transaction (idempotent with batch_id)"),
    _E("get_metric_history", "GET", "/runs/{run_id}/metric-history",
       {"run_id": str, "key": str, "max_points": int | None, "min_step": int | None,
        "max_step": int | None}, MetricHistory,
       summary="A metric's history (within [min_step, max_step] when given), downsampled on "
       "the server with max_points"),
    _E("add_artifacts", "POST", "/runs/{run_id}/artifacts",
       {"run_id": str, "entries": list[ArtifactEntry]}, None,
       summary="Index artifact files (their blobs are uploaded separately)"),
    _E("list_artifacts", "GET", "/runs/{run_id}/artifacts", {"run_id": str, "prefix": str},
       list[ArtifactEntry], summary="A run's artifact index under a prefix"),
    _E("get_artifact", "GET", "/runs/{run_id}/artifact", {"run_id": str, "path": str},
       ArtifactEntry, summary="One artifact's index entry"),
    _E("log_input", "POST", "/runs/{run_id}/inputs", {"run_id": str, "run_input": RunInput},
       None, summary="Record a dataset version as a run's input"),
    _E("put_dataset", "PUT", "/datasets/{sha256}", {"sha256": str, "dataset": DatasetVersion},
       DatasetVersion, summary="Record a dataset version (idempotent)"),
    _E("get_dataset", "GET", "/datasets/{sha256}", {"sha256": str}, DatasetVersion,
       summary="One dataset version"),
    _E("referenced_blobs", "GET", "/referenced-blobs", {}, list[str], role="admin",
       decode=_blob_set, summary="Every blob the index points at (for garbage collection)"),
)  # fmt: skip
_BY_NAME = {e.name: e for e in RUN_ENDPOINTS}


class HttpRunsMixin:
    """The runs part of the store contract, each hook one request."""

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    if TYPE_CHECKING:

        def before_run_access(self, run_id: str | None) -> None: ...  # the Store contract's

    def _do_create_project(self, name: str, tags: dict[str, str]) -> Project:
        return self._call("create_project", name=name, tags=tags)

    def _do_get_project(self, project_id: str) -> Project:
        return self._call("get_project", project_id=project_id)

    def _do_get_project_by_name(self, name: str) -> Project | None:
        return self._call("get_project_by_name", name=name)

    def _do_get_or_create_project(self, name: str) -> Project:
        return self._call("get_or_create_project", name=name)

    def _do_list_projects(self, include_deleted: bool) -> list[Project]:
        return self._call("list_projects", include_deleted=include_deleted)

    def _do_set_project_lifecycle(self, project_id: str, stage: str) -> None:
        self._call("set_project_lifecycle", project_id=project_id, stage=stage)

    def _do_set_project_tags(self, project_id: str, tags: dict[str, str]) -> None:
        self._call("set_project_tags", project_id=project_id, tags=tags)

    def _do_delete_project_tag(self, project_id: str, key: str) -> None:
        self._call("delete_project_tag", project_id=project_id, key=key)

    def _do_rename_project(self, project_id: str, name: str) -> Project:
        return self._call("rename_project", project_id=project_id, name=name)

    def _do_delete_run_tag(self, run_id: str, key: str) -> None:
        self._call("delete_run_tag", run_id=run_id, key=key)

    def _do_create_run(self, project_id: str, fields: RunFields) -> Run:
        return self._call("create_run", project_id=project_id, fields=fields)

    def _do_get_run(self, run_id: str) -> Run:
        return self._call("get_run", run_id=run_id)

    def _do_update_run(
        self, run_id: str, *, status: str | None, end_ms: int | None, name: str | None
    ) -> None:
        self._call("update_run", run_id=run_id, status=status, end_ms=end_ms, name=name)

    def _do_heartbeat(self, run_id: str, ts_ms: int) -> None:
        self._call("heartbeat", run_id=run_id, ts_ms=ts_ms)

    def _do_set_run_lifecycle(self, run_id: str, stage: str) -> None:
        self._call("set_run_lifecycle", run_id=run_id, stage=stage)

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
        wire_run = (
            None
            if new_run is None
            else {"project_id": new_run.project_id, "fields": dict(new_run.fields)}
        )
        return bool(
            self._call(
                "log_batch",
                run_id=run_id,
                metrics=dict(metrics),
                params=dict(params),
                tags=dict(tags),
                batch_id=batch_id,
                status=status,
                end_ms=end_ms,
                new_run=wire_run,
            )
        )

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        *,
        max_points: int | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> MetricHistory:
        """Validated here, cut and downsampled on the server: only the points asked for travel."""
        validate_run_id(run_id)
        check_history_args(key, max_points)  # as every backend (the server checks them again)
        check_step_range(min_step, max_step)
        return self._call(
            "get_metric_history",
            run_id=run_id,
            key=key,
            max_points=max_points,
            min_step=min_step,
            max_step=max_step,
        )

    def _do_get_metric_history(
        self, run_id: str, key: str, min_step: int | None, max_step: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h = self.get_metric_history(run_id, key, min_step=min_step, max_step=max_step)
        return h.step, h.timestamp, h.value

    def search_run_ids(
        self,
        project_ids: Sequence[str] | str,
        *,
        filter: str | None = None,
        max_results: int = MAX_RESULTS_LIMIT,
        include_deleted: bool = False,
    ) -> list[str]:
        """The filter is parsed on the server (its errors come back with their positions)."""
        ids = [project_ids] if isinstance(project_ids, str) else [str(p) for p in project_ids]
        validate_max_results(max_results)  # as every backend (the server checks it again)
        self.before_run_access(None)
        return self._call(
            "search_run_ids",
            project_ids=ids,
            filter=filter,
            max_results=max_results,
            include_deleted=include_deleted,
        )

    def _do_search_run_ids(
        self, project_ids: list[str], *, ast: list[Comparison], limit: int, include_deleted: bool
    ) -> list[str]:
        raise MloopError("the HTTP store searches on the server: call search_run_ids")

    def search_runs(
        self,
        project_ids: Sequence[str] | str,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> Page[Run]:
        """The filter is parsed on the server (its errors come back with their positions).

        The runs' captured contexts (~3 KB a run, most of a page's bytes) stay on the server
        until one is read: then the whole page's come in one more request, as the SQL store
        loads them from its database.
        """
        ids = [project_ids] if isinstance(project_ids, str) else [str(p) for p in project_ids]
        validate_max_results(max_results)  # as every backend (the server checks it again)
        self.before_run_access(None)
        page: Page[Run] = self._call(
            "search_runs",
            project_ids=ids,
            filter=filter,
            order_by=None if order_by is None else list(order_by),
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
            include_context=False,
        )
        if not page.items:
            return page
        contexts = _PageContexts(self, ids, [r.id for r in page.items])
        for r in page.items:  # runs just decoded, seen by no one yet: set, not copied
            object.__setattr__(r, "context", _LazyContext(contexts, r.id))
        return page

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
        raise MloopError("the HTTP store searches on the server: call search_runs")

    def _do_add_artifacts(self, run_id: str, entries: list[ArtifactEntry]) -> None:
        self._call("add_artifacts", run_id=run_id, entries=list(entries))

    def _do_list_artifacts(self, run_id: str, prefix: str) -> list[ArtifactEntry]:
        return self._call("list_artifacts", run_id=run_id, prefix=prefix)

    def _do_get_artifact(self, run_id: str, path: str) -> ArtifactEntry:
        return self._call("get_artifact", run_id=run_id, path=path)

    def _do_referenced_blobs(self) -> set[str]:
        return self._call("referenced_blobs")

    def _do_put_dataset(self, dataset: DatasetVersion) -> DatasetVersion:
        return self._call("put_dataset", sha256=dataset.sha256, dataset=dataset)

    def _do_get_dataset(self, sha256: str) -> DatasetVersion:
        return self._call("get_dataset", sha256=sha256)

    def _do_log_input(self, run_id: str, run_input: RunInput) -> None:
        self._call("log_input", run_id=run_id, run_input=run_input)
