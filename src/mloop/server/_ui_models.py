"""The web UI's Models and Deployments pages: the reads that would otherwise take one REST call per
version, and the two actions an admin takes from the model page.

Reads (role ``read``):

- ``GET /api/v1/ui/models``: every registered model with its latest version, aliases and last
  change;
- ``GET /api/v1/ui/models/{name}``: the model, its versions with each one's newest check report
  (status, under the server's current policy or not), its aliases and their audit trail;
- ``GET /api/v1/ui/models/{name}/versions/{version}/lineage``: the registry's lineage;
- ``GET /api/v1/ui/models/{name}/diff?a=&b=``: the registry's diff of two versions;
- ``GET /api/v1/ui/deployments/{name}``: a deployment, what its URIs resolve to now, its
  revisions, its events in the log and the requests it served per time bucket (from the
  inference log's chunk index).

Actions (role ``admin``, as the issue asks: moving a production alias from a browser is an
operator's act, not a CI bot's):

- ``POST /api/v1/ui/models/{name}/promote`` ``{version, alias, reason}``: the gated promotion of
  ``mloop promote`` (:func:`mloop.gates.promote`) under the server's current policy
  (``./mloop.yaml`` where the server runs, else the default one): refused (409
  ``PROMOTION_REFUSED``, with the gate's reason) without a passing report. Live traffic is not
  watched here (a request does not wait for a post-deploy window): ``mloop promote --watch`` does.
- ``POST /api/v1/ui/models/{name}/aliases/{alias}/rollback`` ``{reason}``: the alias back to its
  previous target (:meth:`mloop.registry.Registry.rollback`).

Both record the token's principal as the actor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mloop.errors import InvalidInputError
from mloop.server._context import actor_for
from mloop.server._openapi import error_responses
from mloop.server._scopes import route_policy
from mloop.server._ui_common import int_arg, json_response, openapi_param, required
from mloop.server._wire import JSON, error_response
from mloop.store import API_PREFIX, MAX_RESULTS_LIMIT, Store

__all__ = ["MODEL_OPERATIONS", "mount_model_routes"]

UI_API = f"{API_PREFIX}/ui"
MAX_REASON = 2000
MAX_TRAFFIC_HOURS = 24 * 30
TRAFFIC_BUCKETS = 120


def _all_pages(search: Callable[[str | None], Any]) -> list[Any]:
    items: list[Any] = []
    token = None
    while True:
        page = search(token)
        items.extend(page.items)
        token = page.next_page_token
        if token is None:
            return items


def models_overview(store: Store) -> dict[str, Any]:
    """Every registered model: name, latest version, aliases, last change (newest first)."""
    models = _all_pages(
        lambda t: store.search_registered_models(
            order_by=["updated DESC"], max_results=1000, page_token=t
        )
    )
    return {
        "models": [
            {
                "name": m.name,
                "description": m.description,
                "latest_version": m.latest_version,
                "aliases": dict(m.aliases),
                "updated_ms": m.updated_ms,
                "created_ms": m.created_ms,
                "tags": dict(m.tags),
            }
            for m in models
        ]
    }


def current_policy_hash() -> str:
    """The hash of the policy a promotion from the UI is gated under."""
    from mloop.gates import load_policy, policy_hash  # scipy: loaded when a page asks

    pol, _src = load_policy(None)
    return policy_hash(pol)


def model_page(store: Store, name: str) -> dict[str, Any]:
    """A model, its versions (newest first) with each one's newest check report, its aliases and
    their audit trail (newest first)."""
    model = store.get_registered_model(name)
    versions = _all_pages(
        lambda t: store.search_model_versions(
            name=name,
            order_by=["version DESC"],
            max_results=1000,
            page_token=t,
            include_deleted=True,
        )
    )
    reports = store.list_check_reports(name, kind="check", limit=MAX_RESULTS_LIMIT)
    newest: dict[int, Any] = {}
    for r in reports:  # newest first: keep the first one of each version
        newest.setdefault(r.version, r)
    current = current_policy_hash()
    events = store.list_events(model=name, limit=MAX_RESULTS_LIMIT, newest_first=True)
    return {
        "model": model.to_dict(),
        "policy_hash": current,
        "versions": [
            {
                "version": v.version,
                "source_run_id": v.source_run_id,
                "flavor": v.flavor,
                "created_ms": v.created_ms,
                "created_by": v.created_by,
                "metrics": {k: _finite(x) for k, x in v.metrics.items()},
                "aliases": list(v.aliases),
                "deleted": v.deleted,
                "check": _check_summary(newest.get(v.version), current),
            }
            for v in versions
        ],
        "aliases": [a.to_dict() for a in store.list_aliases(name)],
        "events": [e.to_dict() for e in events],
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _check_summary(report: Any, current: str) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "report_id": report.id,
        "status": report.status,
        "current_policy": report.policy_hash == current,
        "baseline_version": report.baseline_version,
        "created_ms": report.created_ms,
        "failing": [c.name for c in report.checks if c.blocking],
    }


def _version_arg(raw: object, name: str = "version") -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise InvalidInputError(
            f"`{name}` must be a version number (an int in [1, 2**63 - 1]); got {raw!r}."
        )
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value < 2**63:
        raise InvalidInputError(
            f"`{name}` must be a version number (an int in [1, 2**63 - 1]); got {raw!r}."
        )
    return value


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError(
            "`reason` must be a non-empty str: it is recorded in the alias's audit trail."
        )
    if len(reason) > MAX_REASON:
        raise InvalidInputError(
            f"`reason` must be at most {MAX_REASON} characters; got {len(reason)}."
        )
    return reason.strip()


def promote_from_ui(store: Store, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The gated promotion (see the module's docstring); the refusal is the gate's error."""
    from mloop.gates import promote
    from mloop.registry import Registry

    alias = body.get("alias", "champion")
    if not isinstance(alias, str) or not alias:
        raise InvalidInputError(f"`alias` must name an alias; got {alias!r}.")
    registry = Registry(store=store, actor=actor_for(None) or "ui")
    result = promote(
        name,
        _version_arg(body.get("version")),
        to=alias,
        registry=registry,
        reason=_reason(body),
        watch=False,
    )
    return {
        "model": result.model,
        "alias": result.alias,
        "version": result.version,
        "previous_version": result.previous_version,
        "report_id": None if result.report is None else result.report.id,
    }


def rollback_from_ui(store: Store, name: str, alias: str, body: dict[str, Any]) -> dict[str, Any]:
    from mloop.registry import Registry

    registry = Registry(store=store, actor=actor_for(None) or "ui")
    before = store.get_alias(name, alias).version
    moved = registry.rollback(name, alias, reason=_reason(body))
    return {"model": name, "alias": alias, "version": moved.version, "previous_version": before}


def deployment_page(store: Store, name: str, *, hours: int) -> dict[str, Any]:
    """A deployment, what its URIs resolve to now, its revisions and events, and its traffic."""
    from mloop.registry import Registry
    from mloop.serving import Deployments

    status = Deployments(Registry(store=store)).status(name, last_events=0)
    dep = status.deployment
    events: list[Any] = []
    after = 0
    while True:
        page = store.read_events(after_id=after, subject=dep.subject, limit=1000)
        events.extend(page)
        if len(page) < 1000:
            break
        after = page[-1].id
    return {
        "deployment": dep.to_dict(),
        "resolved": [r.to_dict() for r in status.resolved],
        "revisions": [r.to_dict() for r in store.list_deployment_revisions(name)],
        "events": [e.to_dict() for e in events[-500:]][::-1],
        "traffic": traffic(store, name, hours=hours),
        "serving": serving_over_time(store, name, hours=hours),
    }


def traffic(
    store: Store, deployment: str, *, hours: int, now_ms: int | None = None
) -> dict[str, Any]:
    """Requests logged per time bucket over the last ``hours``, in total and per model version.

    From the inference log's chunk index (no chunk is read): a chunk's rows are spread evenly over
    the buckets its request times span, so a bucket's count is exact when chunks are shorter than a
    bucket (the serving default flushes every few seconds) and an even share otherwise.
    """
    start, end, bucket = _window(hours, now_ms)
    total = [0.0] * TRAFFIC_BUCKETS
    by_version: dict[str, list[float]] = {}
    after = 0
    while True:
        chunks = store.list_inference_chunks(
            deployment, after_id=after, since_ms=start, until_ms=end, limit=1000
        )
        for c in chunks:
            lo = max(c.first_ts_ms, start)
            hi = min(c.last_ts_ms, end - 1)
            if hi < lo:
                continue
            first, last = (lo - start) // bucket, (hi - start) // bucket
            span = max(1, c.last_ts_ms - c.first_ts_ms + 1)
            for b in range(first, last + 1):
                b_lo, b_hi = start + b * bucket, start + (b + 1) * bucket
                share = (min(b_hi, c.last_ts_ms + 1) - max(b_lo, c.first_ts_ms)) / span
                total[b] += c.n_rows * share
                for key, n in c.model_versions.items():
                    by_version.setdefault(key, [0.0] * TRAFFIC_BUCKETS)[b] += n * share
        if len(chunks) < 1000:
            break
        after = chunks[-1].id
    return {
        "start_ms": start,
        "bucket_ms": bucket,
        "t": [start + i * bucket for i in range(TRAFFIC_BUCKETS)],
        "requests": [round(x, 3) for x in total],
        "by_version": {k: [round(x, 3) for x in v] for k, v in sorted(by_version.items())},
    }


def _window(hours: int, now_ms: int | None) -> tuple[int, int, int]:
    """(start, end, bucket) of the last ``hours`` in :data:`TRAFFIC_BUCKETS` whole-minute buckets."""
    end = int(time.time() * 1000) if now_ms is None else now_ms
    bucket = max(60_000, -(-(hours * 3_600_000) // TRAFFIC_BUCKETS // 60_000) * 60_000)
    return end - bucket * TRAFFIC_BUCKETS, end, bucket


def serving_over_time(
    store: Store, deployment: str, *, hours: int, now_ms: int | None = None
) -> dict[str, Any]:
    """Latency percentiles, requests and errors per time bucket over the last ``hours``, from the
    per-minute aggregates the deployment's servers record (all replicas merged: their latency
    histograms add up, and percentiles are read from the merged one)."""
    from mloop.store import LATENCY_BOUNDS_MS, latency_quantile

    start, end, bucket = _window(hours, now_ms)
    n = TRAFFIC_BUCKETS
    requests, errors = [0] * n, [0] * n
    total_ms, top = [0.0] * n, [0.0] * n
    counts = [[0] * (len(LATENCY_BOUNDS_MS) + 1) for _ in range(n)]
    replicas: set[str] = set()
    minute_floor = start // 60_000 * 60_000
    for m in store.list_serving_minutes(
        deployment, since_ms=minute_floor, until_ms=end, limit=MAX_RESULTS_LIMIT
    ):
        b = (m.minute_ms - start) // bucket
        if not 0 <= b < n:
            continue
        replicas.add(m.replica)
        requests[b] += m.requests
        errors[b] += m.errors
        total_ms[b] += m.latency_sum_ms
        top[b] = max(top[b], m.latency_max_ms)
        counts[b] = [x + y for x, y in zip(counts[b], m.latency_counts, strict=True)]

    def q(p: float) -> list[float | None]:
        return [latency_quantile(c, p) for c in counts]

    return {
        "start_ms": start,
        "bucket_ms": bucket,
        "t": [start + i * bucket for i in range(n)],
        "requests": requests,
        "errors": errors,
        "error_rate": [e / r if r else None for e, r in zip(errors, requests, strict=True)],
        "latency_mean_ms": [t / r if r else None for t, r in zip(total_ms, requests, strict=True)],
        "latency_max_ms": [x if r else None for x, r in zip(top, requests, strict=True)],
        "latency_p50_ms": q(0.5),
        "latency_p95_ms": q(0.95),
        "latency_p99_ms": q(0.99),
        "replicas": sorted(replicas),
    }


# ---------------------------------------------------------------------------------------- routes
_STR = {"type": "string"}
_INT = {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1}
_NAME = openapi_param("name", "path", _STR, required=True)
_BODY = {
    "ui_promote": {
        "version": _INT,
        "alias": {**_STR, "default": "champion"},
        "reason": _STR,
    },
    "ui_rollback": {"reason": _STR},
}
_PARAMS: dict[str, list[dict[str, Any]]] = {
    "ui_models": [],
    "ui_model": [_NAME],
    "ui_model_lineage": [_NAME, openapi_param("version", "path", _INT, required=True)],
    "ui_model_diff": [
        _NAME,
        openapi_param("a", "query", _INT, required=True),
        openapi_param("b", "query", _INT, required=True),
    ],
    "ui_deployment": [
        _NAME,
        openapi_param("hours", "query", {**_INT, "maximum": MAX_TRAFFIC_HOURS}, required=False),
    ],
    "ui_promote": [_NAME],
    "ui_rollback": [_NAME, openapi_param("alias", "path", _STR, required=True)],
}
MODEL_OPERATIONS = frozenset(_PARAMS)


def _openapi(op: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "parameters": _PARAMS[op],
        "responses": {
            "200": {
                "description": "The answer (a JSON object; NaN and infinities are null).",
                "content": {JSON: {"schema": {"type": "object"}}},
            },
            **error_responses(with_body=op in _BODY),
        },
    }
    if op in _BODY:
        doc["requestBody"] = {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "properties": _BODY[op],
                        "required": ["reason", *(["version"] if op == "ui_promote" else [])],
                        "additionalProperties": False,
                    }
                }
            },
        }
    return doc


def _handler(work: Callable[[Request, Any], Any], *, body: bool) -> Callable[[Request], Any]:
    async def route(request: Request) -> Response:
        try:
            doc: Any = None
            if body:
                try:
                    doc = orjson.loads(await request.body())
                except orjson.JSONDecodeError as exc:
                    raise InvalidInputError(f"the body must be a JSON object: {exc}") from None
                if not isinstance(doc, dict):
                    raise InvalidInputError(
                        f"the body must be a JSON object; got {type(doc).__name__}."
                    )
            return json_response(await run_in_threadpool(work, request, doc))
        except Exception as exc:  # the boundary: every failure becomes {error_code, message}
            return error_response(exc, request_id=request.headers.get("x-request-id") or "-")

    return route


def _query_int(request: Request, name: str, *, default: int | None, hi: int) -> int:
    raw = request.query_params.get(name)
    if default is None:
        raw = required(request.query_params, name)
    value = int_arg(raw, name, lo=1, hi=hi, default=default)
    assert value is not None  # given, or its default
    return value


def mount_model_routes(app: FastAPI, store: Store) -> None:
    """Add the Models and Deployments pages' routes (see the module's docstring)."""
    read = route_policy("read")
    admin = route_policy("admin")

    from mloop.registry import Registry

    def lineage(r: Request, _: Any) -> Any:
        name, version = r.path_params["name"], _version_arg(r.path_params["version"])
        return Registry(store=store).lineage(name, version).to_dict()

    def diff(r: Request, _: Any) -> Any:
        a = _query_int(r, "a", default=None, hi=2**62)
        b = _query_int(r, "b", default=None, hi=2**62)
        return Registry(store=store).diff(r.path_params["name"], a, b).to_dict()

    def deployment(r: Request, _: Any) -> Any:
        hours = _query_int(r, "hours", default=24, hi=MAX_TRAFFIC_HOURS)
        return deployment_page(store, r.path_params["name"], hours=hours)

    routes = [
        ("GET", "/models", lambda r, _: models_overview(store), read, "ui_models",
         "Every registered model with its latest version and aliases"),
        ("GET", "/models/{name}", lambda r, _: model_page(store, r.path_params["name"]), read,
         "ui_model", "A model's versions with their checks, its aliases and their audit trail"),
        ("GET", "/models/{name}/versions/{version}/lineage", lineage, read, "ui_model_lineage",
         "A version's lineage: source run, datasets, pipeline step, code"),
        ("GET", "/models/{name}/diff", diff, read, "ui_model_diff",
         "Two versions side by side: params, metrics, datasets, signature"),
        ("GET", "/deployments/{name}", deployment, read, "ui_deployment",
         "A deployment: resolved versions, revisions, events, requests over time"),
        ("POST", "/models/{name}/promote",
         lambda r, b: promote_from_ui(store, r.path_params["name"], b), admin, "ui_promote",
         "Gated promotion of a version (a passing check report under the current policy)"),
        ("POST", "/models/{name}/aliases/{alias}/rollback",
         lambda r, b: rollback_from_ui(store, r.path_params["name"], r.path_params["alias"], b),
         admin, "ui_rollback", "Move an alias back to its previous target"),
    ]  # fmt: skip
    for method, path, work, guard, op, summary in routes:
        app.add_api_route(
            UI_API + path,
            guard(_handler(work, body=method == "POST")),
            methods=[method],
            operation_id=op,
            name=op,
            summary=summary,
            response_class=Response,
            tags=["ui"],
            openapi_extra=_openapi(op),
        )
