"""What a post-deploy check reads from the live side: the servers (``GET /serving`` and
``GET /metrics``), the deployments naming an alias, their swap events, and their inference log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import numpy as np

from mloop.errors import InvalidInputError
from mloop.gates._prometheus import Scrape, parse_metrics
from mloop.registry import ModelRef, parse_model_uri

if TYPE_CHECKING:
    from mloop.registry import Registry
    from mloop.store import Deployment, Event

__all__ = [
    "LiveServer",
    "Traffic",
    "discover_deployments",
    "discover_endpoints",
    "live_predictions",
    "names_alias",
    "swap_failures",
]

_SLOTS = (("model", "main"), ("canary", "canary"), ("shadow", "shadow"))
_MOVES = ["alias_set", "alias_rollback", "alias_deleted"]
K = TypeVar("K")


def names_alias(uri: Any, name: str, alias: str) -> bool:
    """True when ``uri`` is ``models:/{name}@{alias}``."""
    if not isinstance(uri, str):
        return False
    try:
        ref = parse_model_uri(uri)
    except InvalidInputError:
        return False
    return (
        isinstance(ref, ModelRef)
        and ref.kind == "alias"
        and (ref.name, ref.alias)
        == (
            name,
            alias,
        )
    )


@dataclass
class LiveServer:
    """One ``mloop serve`` process being watched, and what its last scrapes said."""

    url: str
    slots: tuple[str, ...]  # the slots that follow the alias (main, canary, shadow)
    deployment: str | None
    log_name: str | None  # the inference log it writes to, if it logs
    serving: set[str] = field(default_factory=set)  # versions of the model in those slots now
    swapped_at: float | None = None
    start: Scrape | None = None  # the scrape that first showed the new version
    last: Scrape | None = None  # the latest good scrape
    error: str | None = None  # why the latest scrape failed

    def poll(self, http: httpx.Client, model: str) -> None:
        """Scrape ``/metrics``; a failure is kept in ``error`` and the last good scrape stays."""
        try:
            r = http.get(f"{self.url}/metrics")
            r.raise_for_status()
            scrape = parse_metrics(r.text)
        except (httpx.HTTPError, ValueError) as exc:
            self.error = f"GET {self.url}/metrics failed: {exc}"
            return
        self.error = None
        self.last = scrape
        self.serving = scrape.served_versions(model, self.slots)


def _delta(after: Mapping[K, float], before: Mapping[K, float]) -> dict[K, float]:
    """Counters' growth from ``before`` to ``after``; a counter that went down means the server
    restarted, and then (as Prometheus' ``increase``) the values after the restart are the growth."""
    if any(v < before.get(k, 0.0) for k, v in after.items()):
        return dict(after)
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


@dataclass(frozen=True)
class Traffic:
    """Scoring requests answered between the swap and the latest scrape, summed over servers."""

    by_code: Mapping[str, float]
    buckets: Mapping[float, float]  # cumulative latency histogram (seconds -> requests)

    @property
    def total(self) -> float:
        return float(sum(self.by_code.values()))

    @property
    def client_errors(self) -> float:
        return float(sum(v for c, v in self.by_code.items() if c.startswith("4")))

    @property
    def server_errors(self) -> float:
        return float(sum(v for c, v in self.by_code.items() if c.startswith("5")))

    @property
    def judged(self) -> float:
        """Requests the version is judged on: every answer but the callers' own errors (4xx)."""
        return self.total - self.client_errors

    @classmethod
    def between(cls, servers: Sequence[LiveServer]) -> Traffic:
        by_code: dict[str, float] = {}
        buckets: dict[float, float] = {}
        for s in servers:
            if s.start is None or s.last is None:
                continue
            codes = _delta(s.last.requests_by_code(), s.start.requests_by_code())
            for code, n in codes.items():
                by_code[code] = by_code.get(code, 0.0) + n
            for le, n in _delta(s.last.latency_buckets(), s.start.latency_buckets()).items():
                buckets[le] = buckets.get(le, 0.0) + n
        return cls({c: n for c, n in by_code.items() if n}, buckets)


def discover_endpoints(
    http: httpx.Client, urls: Sequence[str], name: str, alias: str
) -> tuple[list[LiveServer], list[str], list[str]]:
    """The servers among ``urls`` that follow ``models:/{name}@{alias}``; notes on those that
    serve something else; and on those that did not answer."""
    servers: list[LiveServer] = []
    notes: list[str] = []
    unreachable: list[str] = []
    for raw in urls:
        url = str(raw).rstrip("/")
        try:
            r = http.get(f"{url}/serving")
            r.raise_for_status()
            doc = r.json()
            spec = doc["spec"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            unreachable.append(f"{url} did not answer GET /serving ({exc}); it is not watched.")
            continue
        slots = tuple(slot for key, slot in _SLOTS if names_alias(spec.get(key), name, alias))
        if not slots:
            serves = ", ".join(str(spec.get(k)) for k, _ in _SLOTS if spec.get(k))
            notes.append(
                f"{url} does not follow models:/{name}@{alias} (it serves {serves}); not watched."
            )
            continue
        logs = doc.get("name") if doc.get("logging") is not None else None
        servers.append(LiveServer(url, slots, doc.get("deployment"), logs))
    return servers, notes, unreachable


def discover_deployments(
    registry: Registry, name: str, alias: str, names: Sequence[str] | None
) -> list[Deployment]:
    """The deployments named, or every one whose model or canary follows the alias."""
    from mloop.serving import Deployments

    deployments = Deployments(registry)
    if names is None:
        return [
            d
            for d in deployments.list()
            if names_alias(d.model, name, alias) or names_alias(d.canary, name, alias)
        ]
    if isinstance(names, str):
        raise InvalidInputError(f"`deployments` must be a list of names; got the string {names!r}.")
    return [deployments.get(n) for n in names]


def swap_failures(
    registry: Registry,
    name: str,
    alias: str,
    since_id: int,
    subjects: set[str],
) -> list[Event]:
    """``serving_swap_failed`` events after the promotion (and before the alias moved again)
    from servers following the alias: their own deployment's subject, or ``models/{name}`` for
    a plain ``mloop serve`` of the alias."""
    store = registry.store
    later = store.list_events(model=name, alias=alias, types=_MOVES, after_id=since_id, limit=1)
    until = later[0].id if later else None
    out = []
    after = since_id
    while True:
        page = store.read_events(
            after_id=after, types=["serving_swap_failed"], until_id=until, limit=1000
        )
        for e in page:
            if e.subject == f"models/{name}":
                if names_alias(e.payload.get("uri"), name, alias):
                    out.append(e)
            elif e.subject in subjects:
                out.append(e)
        if len(page) < 1000:
            return out
        after = page[-1].id


def _reference_columns(reference: Any) -> dict[str, np.ndarray] | str:
    """The reference predictions as inference-log columns, or why they cannot be."""
    if isinstance(reference, Mapping):
        return {
            (k if str(k).startswith("prediction") else f"prediction_{k}"): np.asarray(v)
            for k, v in reference.items()
        }
    try:
        arr = np.asarray(reference)
    except ValueError as exc:
        return f"the reference predictions are not an array ({exc})."
    if arr.ndim == 1:
        return {"prediction": arr}
    if arr.ndim == 2 and arr.shape[1] == 1:
        return {"prediction": arr[:, 0]}
    if arr.ndim == 2:
        return {f"prediction_{k}": arr[:, k] for k in range(arr.shape[1])}
    return f"the reference predictions must be 1-D or 2-D; got shape {arr.shape}."


def live_predictions(
    registry: Registry,
    logs: Sequence[str],
    label: str,
    since_ms: int,
    reference: Any,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str | None]:
    """(reference columns, live columns of version ``label`` in ``logs`` since ``since_ms``,
    the reason there are none to compare)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from mloop.inference import read_inference_log

    ref = _reference_columns(reference)
    if isinstance(ref, str):
        return {}, {}, ref
    if not ref or any(len(v) == 0 for v in ref.values()):
        return {}, {}, "the reference predictions are empty."
    cols = list(ref)
    parts: dict[str, list[Any]] = {c: [] for c in cols}
    for log_name in logs:
        try:
            table = read_inference_log(
                log_name,
                store=registry.store,
                blobstore=registry.blobstore,
                since=since_ms,
                with_labels=False,
                columns=["model_version", *cols],
            )
        except InvalidInputError as exc:
            return {}, {}, f"the inference log {log_name!r} cannot be compared: {exc.message}"
        if table.num_rows == 0 or "model_version" not in table.column_names:
            continue
        mine = table.filter(pc.equal(table.column("model_version"), pa.scalar(label)))
        for c in cols:
            parts[c].append(mine.column(c).to_numpy(zero_copy_only=False))
    live = {c: np.concatenate(p) if p else np.array([]) for c, p in parts.items()}
    return ref, live, None
