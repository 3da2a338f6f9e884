"""What a token may reach: its role against what a route needs, its project scope against the
project a call touches.

A project-scoped token reaches its project's runs, metrics, artifacts and search results, and
nothing else that names projects or runs. Every endpoint of the REST API is classified here:

- ``Endpoint.project`` names the argument that holds the project id: it must be the token's;
- a path under ``/runs/{run_id}`` touches that run's project (looked up once, then cached: a run
  never changes project);
- a few endpoints are checked by name (search, the project list and lookups by name, batches that
  create their run);
- datasets are content-addressed and shared by every project: a scoped token may record and read
  them (reading one needs its sha256);
- everything else (the registry, webhooks, monitors, the event log, what later work adds) is
  refused to a scoped token, so a new endpoint is closed to scoped tokens until it is classified.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mloop.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from mloop.server._context import TOKEN
from mloop.store import ApiToken, Endpoint, Store

__all__ = ["RoutePolicy", "Scopes", "deny_role", "route_policy"]

_GLOBAL_FOR_SCOPED = frozenset({"put_dataset", "get_dataset"})
_RUN_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class RoutePolicy:
    """How a route that is not an :class:`~mloop.store.Endpoint` is guarded.

    Attributes
    ----------
    role : {"read", "write", "admin"}
        The least role a token needs.
    scoped : {"deny", "any", "project", "run"}
        A project-scoped token is refused (``deny``, the default), allowed whatever it touches
        (``any``: the route names no project's data), or allowed when the path parameter
        ``param`` is its project's id (``project``) or a run of its project (``run``).
    param : str, optional
        The path parameter for ``project`` and ``run``.
    """

    role: Literal["read", "write", "admin"]
    scoped: Literal["deny", "any", "project", "run"] = "deny"
    param: str | None = None


def route_policy(
    role: Literal["read", "write", "admin"],
    *,
    scoped: Literal["deny", "any", "project", "run"] = "deny",
    param: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare how a hand-written route (not an endpoint of the table) is guarded under auth.

    A route without a declaration needs ``read`` for ``GET``/``HEAD`` and ``write`` otherwise,
    and refuses project-scoped tokens.

    Examples
    --------
    >>> @route_policy("read", scoped="run", param="run_id")
    ... async def download(request): ...
    >>> download.__mloop_auth__.scoped
    'run'
    """
    if scoped in ("project", "run") and not param:
        raise TypeError(f"route_policy(scoped={scoped!r}) needs the path parameter `param`")
    policy = RoutePolicy(role, scoped, param)

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__mloop_auth__ = policy  # type: ignore[attr-defined]
        return fn

    return mark


def deny_role(token: ApiToken, required: str, what: str) -> PermissionDeniedError | None:
    """The error for a token whose role is below ``required`` (None when it may)."""
    if token.allows(required):
        return None
    return PermissionDeniedError(
        f"token {token.id} ({token.name!r}) has role {token.role!r}; {what} needs {required!r}. "
        "Ask the server's admin for a token with that role.",
        details={"token_id": token.id, "role": token.role, "required_role": required},
    )


def _outside(token: ApiToken, what: str, project_id: object) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"token {token.id} ({token.name!r}) is limited to project {token.project_id}; "
        f"{what} is in project {project_id}.",
        details={"token_id": token.id, "project_id": token.project_id},
    )


def _unscoped_only(token: ApiToken, what: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"token {token.id} ({token.name!r}) is limited to project {token.project_id}; {what} "
        "is not about one project's runs and needs a token without a project scope.",
        details={"token_id": token.id, "project_id": token.project_id},
    )


class Scopes:
    """The project checks of one app over its store, with the run -> project cache they share."""

    def __init__(self, store: Store, *, cache_size: int = _RUN_CACHE_SIZE) -> None:
        self._store = store
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()  # checks run in worker threads
        self._size = cache_size

    def run_project(self, run_id: str) -> str | None:
        """The project of run ``run_id`` (None when there is no such run)."""
        with self._lock:
            hit = self._runs.get(run_id)
            if hit is not None:
                self._runs.move_to_end(run_id)
                return hit
        try:
            project = self._store.get_run(run_id).project_id
        except NotFoundError:
            return None
        with self._lock:
            self._runs[run_id] = project
            if len(self._runs) > self._size:
                self._runs.popitem(last=False)
        return project

    def _require_run(self, token: ApiToken, run_id: object) -> None:
        """A run of another project is refused; a missing run is left to the handler (404)."""
        if not isinstance(run_id, str):
            return
        try:
            project = self.run_project(run_id)
        except InvalidInputError:  # a malformed id: the handler raises the store's own error
            return
        if project is not None and project != token.project_id:
            raise _outside(token, f"run {run_id}", project)

    def _require_project(self, token: ApiToken, project_id: object, what: str) -> None:
        if project_id != token.project_id:
            raise _outside(token, what, project_id)

    # ------------------------------------------------------------------ endpoints of the table
    def guard(self, endpoint: Endpoint, handler: Callable[..., Any]) -> Callable[..., Any]:
        """``handler`` checked against the request's token scope (run in the handler's thread)."""
        special = _BY_NAME.get(endpoint.name)
        by_run = "run_id" in endpoint.path_params
        project_arg = endpoint.project
        scopes = self

        def guarded(store: Store, **args: Any) -> Any:
            token = TOKEN.get()
            if token is None or token.project_id is None:
                return handler(store, **args)
            if special is not None:
                return special(scopes, token, handler, store, args)
            if project_arg is not None:
                scopes._require_project(token, args.get(project_arg), f"{endpoint.name}'s project")
            elif by_run:
                scopes._require_run(token, args.get("run_id"))
            elif endpoint.name not in _GLOBAL_FOR_SCOPED:
                raise _unscoped_only(token, endpoint.name)
            return handler(store, **args)

        guarded.__name__ = getattr(handler, "__name__", endpoint.name)
        return guarded

    # ------------------------------------------------------------------ hand-written routes
    def check_route(
        self, token: ApiToken, policy: RoutePolicy, path_params: Mapping[str, Any], what: str
    ) -> None:
        """The scope part of a :class:`RoutePolicy` (the role is checked before)."""
        if token.project_id is None or policy.scoped == "any":
            return
        if policy.scoped == "deny" or policy.param is None:
            raise _unscoped_only(token, what)
        value = path_params.get(policy.param)
        if policy.scoped == "project":
            self._require_project(token, None if value is None else str(value), what)
        else:
            self._require_run(token, None if value is None else str(value))


# ---------------------------------------------------------------------------------------- by name
_Special = Callable[[Scopes, ApiToken, Callable[..., Any], Store, dict[str, Any]], Any]


def _list_projects(s: Scopes, tok: ApiToken, h: Callable[..., Any], st: Store, a: Any) -> Any:
    return [p for p in h(st, **a) if p.id == tok.project_id]


def _get_project_by_name(s: Scopes, tok: ApiToken, h: Callable[..., Any], st: Store, a: Any) -> Any:
    found = h(st, **a)  # a read: check what it found
    if found is not None and found.id != tok.project_id:
        raise _outside(tok, f"project {found.name!r}", found.id)
    return found


def _get_or_create_project(
    s: Scopes, tok: ApiToken, h: Callable[..., Any], st: Store, a: Any
) -> Any:
    found = st.get_project_by_name(a["name"])  # it may create: check before
    if found is None:
        raise _unscoped_only(tok, f"creating project {a['name']!r}")
    if found.id != tok.project_id:
        raise _outside(tok, f"project {a['name']!r}", found.id)
    return h(st, **a)


def _search_runs(s: Scopes, tok: ApiToken, h: Callable[..., Any], st: Store, a: Any) -> Any:
    others = [p for p in a.get("project_ids") or [] if p != tok.project_id]
    if others:
        raise _outside(tok, "the search", others if len(others) > 1 else others[0])
    return h(st, **a)


def _log_batch(s: Scopes, tok: ApiToken, h: Callable[..., Any], st: Store, a: Any) -> Any:
    run_id = a.get("run_id")
    if isinstance(run_id, str) and s.run_project(run_id) is None:
        new_run = a.get("new_run")
        if isinstance(new_run, Mapping) and "project_id" in new_run:
            s._require_project(tok, str(new_run["project_id"]), f"new run {run_id}")
    else:
        s._require_run(tok, run_id)
    return h(st, **a)


def _deny(s: Scopes, tok: ApiToken, h: Callable[..., Any], st: Store, a: Any) -> Any:
    raise _unscoped_only(tok, "creating a project")


_BY_NAME: dict[str, _Special] = {
    "list_projects": _list_projects,
    "get_project_by_name": _get_project_by_name,
    "get_or_create_project": _get_or_create_project,
    "create_project": _deny,
    "search_runs": _search_runs,
    "search_run_ids": _search_runs,
    "log_batch": _log_batch,
}
