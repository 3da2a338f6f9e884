"""Projects, runs, metrics, the artifact index and datasets: each route calls the store's public
method, which validates exactly as it does in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mloop.errors import InvalidInputError
from mloop.server._context import actor_for
from mloop.store import MAX_RESULTS_LIMIT, Page, Run, Store

__all__ = ["HANDLERS"]


def _lifecycle(
    stage: str, delete: Callable[[str], None], restore: Callable[[str], None], key: str
) -> None:
    if stage == "deleted":
        delete(key)
    elif stage == "active":
        restore(key)
    else:
        raise InvalidInputError(f"`stage` must be 'deleted' or 'active'; got {stage!r}.")


def _log_batch(s: Store, run_id: str, new_run: dict[str, Any] | None, **kw: Any) -> bool:
    made = None
    if new_run is not None:
        if not isinstance(new_run.get("fields"), dict) or "project_id" not in new_run:
            raise InvalidInputError("`new_run` must be {project_id, fields}.")
        made = s.new_run(str(new_run["project_id"]), **_as_caller(new_run["fields"]))
    return s.log_batch(run_id, new_run=made, **kw)


def _as_caller(fields: dict[str, Any]) -> dict[str, Any]:
    """A new run's fields with its ``user`` the token's principal when auth is on."""
    return {**fields, "user": actor_for(fields.get("user"))}


def _put_dataset(s: Store, sha256: str, dataset: Any) -> Any:
    if dataset.sha256 != sha256:
        raise InvalidInputError(
            f"the dataset's sha256 {dataset.sha256!r} is not the one in the path, {sha256!r}."
        )
    return s.put_dataset(dataset)


def _search_runs(
    s: Store, project_ids: list[str], max_results: int | None, include_context: bool, **kw: Any
) -> Page[Run]:
    page = s.search_runs(
        project_ids, max_results=1000 if max_results is None else max_results, **kw
    )
    if include_context:
        return page
    # Left out, unread: the SQL store loads a page's contexts only when one is first read. The
    # runs are this request's own (built by the search), so they are changed, not copied.
    for r in page.items:
        object.__setattr__(r, "context", {})
    return page


HANDLERS: dict[str, Callable[..., Any]] = {
    "create_project": lambda s, name, tags: s.create_project(name, tags=tags),
    "list_projects": lambda s, include_deleted: s.list_projects(include_deleted=include_deleted),
    "get_project_by_name": lambda s, name: s.get_project_by_name(name),
    "get_or_create_project": lambda s, name: s.get_or_create_project(name),
    "get_project": lambda s, project_id: s.get_project(project_id),
    "set_project_lifecycle": lambda s, project_id, stage: _lifecycle(
        stage, s.delete_project, s.restore_project, project_id
    ),
    "set_project_tags": lambda s, project_id, tags: s.set_project_tags(project_id, tags),
    "delete_project_tag": lambda s, project_id, key: s.delete_project_tag(project_id, key),
    "rename_project": lambda s, project_id, name: s.rename_project(project_id, name),
    "delete_run_tag": lambda s, run_id, key: s.delete_run_tag(run_id, key),
    "create_run": lambda s, project_id, fields: s.create_run(project_id, **_as_caller(fields)),
    "search_runs": _search_runs,
    "get_run": lambda s, run_id: s.get_run(run_id),
    "update_run": lambda s, run_id, **kw: s.update_run(run_id, **kw),
    "heartbeat": lambda s, run_id, ts_ms: s.heartbeat(run_id, ts_ms=ts_ms),
    "set_run_lifecycle": lambda s, run_id, stage: _lifecycle(
        stage, s.delete_run, s.restore_run, run_id
    ),
    "log_batch": _log_batch,
    "get_metric_history": lambda s, run_id, key, **kw: s.get_metric_history(run_id, key, **kw),
    "search_run_ids": lambda s, project_ids, max_results, **kw: s.search_run_ids(
        project_ids, max_results=MAX_RESULTS_LIMIT if max_results is None else max_results, **kw
    ),
    "add_artifacts": lambda s, run_id, entries: s.add_artifacts(run_id, entries),
    "list_artifacts": lambda s, run_id, prefix: s.list_artifacts(run_id, prefix=prefix or ""),
    "get_artifact": lambda s, run_id, path: s.get_artifact(run_id, path),
    "log_input": lambda s, run_id, run_input: s.log_input(run_id, run_input),
    "put_dataset": _put_dataset,
    "get_dataset": lambda s, sha256: s.get_dataset(sha256),
    "referenced_blobs": lambda s: sorted(s.referenced_blobs()),
}
