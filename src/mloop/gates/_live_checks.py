"""The post-deploy check's phases and verdicts: wait for the swap, watch the traffic, and judge
it (error rate, p95 latency, prediction drift). :func:`mloop.gates._postdeploy.watch_promotion`
runs them in order and acts on the verdicts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from mloop.errors import MloopError, NotFoundError
from mloop.gates._live import LiveServer, Traffic, live_predictions, swap_failures
from mloop.gates._prometheus import histogram_quantile
from mloop.store import CheckResult

if TYPE_CHECKING:
    from mloop.registry import Registry
    from mloop.store import Deployment

__all__ = [
    "Watch",
    "alias_now",
    "drift_check",
    "error_rate_check",
    "latency_check",
    "observe",
    "result",
    "verdict",
    "wait_for_swap",
]


@dataclass
class Watch:
    """What one watch learned as it went (turned into the report at the end)."""

    name: str
    alias: str
    version: int
    label: str
    since_event_id: int
    since_ms: int
    servers: list[LiveServer]
    deployments: list[Deployment]
    notes: list[str] = field(default_factory=list)
    moved_to: int | None = None  # the alias moved again meanwhile (a concurrent promotion)
    stopped: str | None = None  # why the watch stopped early (the alias moved or was deleted)
    window_s: float = 0.0


def alias_now(registry: Registry, watch: Watch) -> None:
    """Notice a concurrent move (or deletion) of the alias: the watch then stops, and a rollback
    conditional on the alias naming the watched version will not win."""
    if watch.stopped is not None:
        return
    try:
        current = registry.store.get_alias(watch.name, watch.alias).version
    except NotFoundError:
        watch.stopped = f"{watch.name}@{watch.alias} was deleted while {watch.label} was watched."
        watch.notes.append(watch.stopped + " The watch stopped there.")
        return
    except MloopError as exc:  # the store hiccuped: noted once, the next poll asks again
        note = f"could not read {watch.name}@{watch.alias}: {exc}"
        if note not in watch.notes:
            watch.notes.append(note)
        return
    if current != watch.version:
        watch.moved_to = current
        watch.stopped = (
            f"{watch.name}@{watch.alias} moved to version {current} while {watch.label} was "
            "being watched (a concurrent promotion)"
        )
        watch.notes.append(watch.stopped + "; the watch stopped there.")


def wait_for_swap(
    watch: Watch,
    http: httpx.Client,
    registry: Registry,
    unreachable: list[str],
    timeout_s: float,
    poll_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> CheckResult:
    t0 = clock()
    compared = f"what serves models:/{watch.name}@{watch.alias} vs {watch.label}"
    label = watch.label
    if not watch.servers and not watch.deployments:
        why = (
            f"nothing serves models:/{watch.name}@{watch.alias}: no endpoint given follows it and "
            "no deployment names it."
        )
        if unreachable:
            return result("swap", "error", " ".join(unreachable), compared)
        return result("swap", "skip", why, compared)
    by_event = [d for d in watch.deployments if d.name not in {s.deployment for s in watch.servers}]
    subjects = {d.subject for d in watch.deployments} | {
        f"deployments/{s.deployment}" for s in watch.servers if s.deployment
    }
    confirmed: dict[str, float] = {}
    while True:
        failures = swap_failures(registry, watch.name, watch.alias, watch.since_event_id, subjects)
        if failures:
            error = failures[0].payload.get("error", "unknown error")
            kept = failures[0].payload.get("kept")
            where = failures[0].subject
            return result(
                "swap",
                "fail",
                f"the server could not load version {watch.version}: {error} "
                f"({where}; it kept serving {kept}).",
                compared,
                numbers={"failed_swaps": len(failures)},
                details=tuple({"subject": e.subject, **dict(e.payload)} for e in failures),
                duration_ms=(clock() - t0) * 1000,
            )
        now = clock()
        for server in watch.servers:
            if server.swapped_at is None:
                server.poll(http, watch.name)
                if server.serving == {str(watch.version)}:
                    server.swapped_at = now
                    server.start = server.last
        for dep in by_event:
            if dep.name not in confirmed and any(
                e.payload.get("to") == label
                for e in registry.store.read_events(
                    after_id=watch.since_event_id, types=["serving_swapped"], subject=dep.subject
                )
            ):
                confirmed[dep.name] = now - t0
        alias_now(registry, watch)
        done = all(s.swapped_at is not None for s in watch.servers) and len(confirmed) == len(
            by_event
        )
        if done or watch.stopped is not None or clock() - t0 >= timeout_s:
            break
        sleep(poll_s)
    details = [
        {"endpoint": s.url, "slots": list(s.slots), "serving": sorted(s.serving),
         "swapped_after_s": None if s.swapped_at is None else round(s.swapped_at - t0, 3),
         "error": s.error}
        for s in watch.servers
    ] + [
        {"deployment": d.name, "swapped_after_s": None if d.name not in confirmed else round(confirmed[d.name], 3)}
        for d in by_event
    ]  # fmt: skip
    lagging = [s for s in watch.servers if s.swapped_at is None]
    silent = [d.name for d in by_event if d.name not in confirmed]
    ms = (clock() - t0) * 1000
    if watch.stopped is not None and (lagging or silent):
        return result(
            "swap",
            "skip",
            f"not judged: {watch.stopped}, before every server served {label}.",
            compared,
            details=tuple(details),
            duration_ms=ms,
        )
    if lagging:
        names = ", ".join(
            f"{s.url} (serving {', '.join(sorted(s.serving)) or 'nothing it reports'}"
            + (f"; {s.error}" if s.error else "")
            + ")"
            for s in lagging
        )
        return result(
            "swap",
            "fail",
            f"{label} was not serving {timeout_s:g} s after the alias moved to it, on {names}; "
            "no swap failure was recorded (a slow load? raise swap_timeout_s).",
            compared,
            details=tuple(details),
            duration_ms=ms,
        )
    if silent and not watch.servers and len(silent) == len(by_event):
        return result(
            "swap",
            "skip",
            f"no server of {', '.join(silent)} reported a swap to {label} within {timeout_s:g} s "
            "(none may be running; pass `endpoints` to watch servers directly).",
            compared,
            details=tuple(details),
            duration_ms=ms,
        )
    if silent:
        watch.notes.append(f"no server of {', '.join(silent)} reported a swap to {label}.")
    watched = [s.url for s in watch.servers] + list(confirmed)
    return result(
        "swap",
        "pass",
        f"{label} serves on every server watched ({', '.join(watched)}).",
        compared,
        numbers={"servers": len(watch.servers), "deployments": len(confirmed)},
        details=tuple(details),
        duration_ms=ms,
    )


def observe(
    watch: Watch,
    http: httpx.Client,
    registry: Registry,
    window_s: float,
    max_window_s: float,
    min_requests: int,
    poll_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Traffic:
    """Watch from the swap for ``window_s``, on until ``min_requests`` arrived (at most
    ``max_window_s``), or until the alias moves on; the traffic seen in between."""
    t0 = clock()
    while True:
        remaining = window_s - (clock() - t0)
        sleep(min(poll_s, remaining) if remaining > 0 else poll_s)
        for server in watch.servers:
            server.poll(http, watch.name)
        traffic = Traffic.between(watch.servers)
        alias_now(registry, watch)
        elapsed = clock() - t0
        if watch.stopped is not None or elapsed >= max_window_s:
            break
        if elapsed >= window_s and (not watch.servers or traffic.judged >= min_requests):
            break
    watch.window_s = clock() - t0
    return traffic


# ---------------------------------------------------------------------------------- the checks
def result(
    check: str,
    status: str,
    summary: str,
    compared: str = "",
    *,
    numbers: dict[str, Any] | None = None,
    details: tuple[dict[str, Any], ...] = (),
    duration_ms: float = 0.0,
) -> CheckResult:
    return CheckResult(
        name=f"post_deploy:{check}",
        kind="post_deploy",
        status=status,
        summary=summary,
        compared=compared,
        numbers=numbers or {},
        details=details,
        duration_ms=round(duration_ms, 1),
    )


def _too_few(watch: Watch, n: int, min_requests: int, what: str = "requests") -> str:
    return (
        f"not judged: only {n} {what} reached {watch.label} in {watch.window_s:.3g} s of live "
        f"traffic; at least {min_requests} are needed for a verdict."
    )


def error_rate_check(
    watch: Watch, traffic: Traffic, min_requests: int, max_error_rate: float
) -> CheckResult:
    compared = f"server errors (5xx) among {watch.label}'s scoring requests vs {max_error_rate:.2%}"
    if not watch.servers:
        return result(
            "error_rate",
            "skip",
            "not judged: no endpoint to read /metrics from (pass the servers' base URLs as "
            "`endpoints`).",
            compared,
        )
    numbers = {
        "requests": traffic.total,
        "judged": traffic.judged,
        "server_errors": traffic.server_errors,
        "client_errors": traffic.client_errors,
        "by_code": dict(traffic.by_code),
        "max_error_rate": max_error_rate,
        "window_s": round(watch.window_s, 3),
    }
    client = (
        f"; {traffic.client_errors:g} client errors (4xx) are the callers' and do not count"
        if traffic.client_errors
        else "; client errors (4xx) would be the callers' and not count"
    )
    if traffic.judged < min_requests:
        return result(
            "error_rate", "skip", _too_few(watch, int(traffic.judged), min_requests), compared,
            numbers=numbers,
        )  # fmt: skip
    rate = traffic.server_errors / traffic.judged
    numbers["error_rate"] = rate
    ok = rate <= max_error_rate
    summary = (
        f"{rate:.2%} of {traffic.judged:g} requests to {watch.label} failed with a server error "
        f"(5xx) in {watch.window_s:.3g} s, {'within' if ok else 'above'} the "
        f"{max_error_rate:.2%} limit{client}."
    )
    return result("error_rate", "pass" if ok else "fail", summary, compared, numbers=numbers)


def latency_check(
    watch: Watch, traffic: Traffic, min_requests: int, limit_ms: float | None
) -> CheckResult:
    compared = f"p95 latency of {watch.label}'s scoring requests" + (
        f" vs {limit_ms:g} ms" if limit_ms is not None else ""
    )
    if not watch.servers:
        return result(
            "p95_latency_ms",
            "skip",
            "not judged: no endpoint to read /metrics from (pass `endpoints`).",
            compared,
        )
    observed = traffic.buckets.get(math.inf, 0.0)
    if observed < min_requests:
        return result(
            "p95_latency_ms", "skip", _too_few(watch, int(observed), min_requests), compared,
            numbers={"requests": observed},
        )  # fmt: skip
    p95_ms = histogram_quantile(0.95, traffic.buckets) * 1000
    finite = [b for b in traffic.buckets if b != math.inf]
    over = bool(finite) and p95_ms >= max(finite) * 1000
    numbers = {"p95_ms": p95_ms, "requests": observed, "max_p95_latency_ms": limit_ms}
    how = "interpolated within the histogram's bucket, as Prometheus' histogram_quantile does"
    shown = f"over {p95_ms:g}" if over else f"{p95_ms:.1f}"
    if limit_ms is None:
        return result(
            "p95_latency_ms",
            "skip",
            f"not judged (no max_p95_latency_ms): p95 {shown} ms over {observed:g} requests ({how}).",
            compared,
            numbers=numbers,
        )
    ok = p95_ms <= limit_ms and not over
    return result(
        "p95_latency_ms",
        "pass" if ok else "fail",
        f"p95 {shown} ms over {observed:g} requests to {watch.label}, "
        f"{'within' if ok else 'above'} the {limit_ms:g} ms limit ({how}).",
        compared,
        numbers=numbers,
    )


def drift_check(
    watch: Watch, registry: Registry, reference: Sequence[Any] | None, min_requests: int
) -> CheckResult:
    from mloop.monitoring import drift_report

    compared = f"{watch.label}'s live predictions vs its predictions on the evaluation data"
    if reference is None:
        return result(
            "prediction_drift",
            "skip",
            "not judged: no evaluation predictions to compare with (reference_predictions; a "
            "check report keeps a sample in extra['predictions']['sample']).",
            compared,
        )
    logs = sorted(
        {s.log_name for s in watch.servers if s.log_name} | {d.name for d in watch.deployments}
    )
    if not logs:
        return result(
            "prediction_drift",
            "skip",
            "not judged: no server watched logs its predictions (serve with --log-sample, or set "
            "log_sample in the deployment's config).",
            compared,
        )
    ref, live, problem = live_predictions(registry, logs, watch.label, watch.since_ms, reference)
    if problem is not None:
        return result("prediction_drift", "skip", f"not judged: {problem}", compared)
    n_live = len(next(iter(live.values()))) if live else 0
    if n_live < min_requests:
        return result(
            "prediction_drift", "skip", _too_few(watch, n_live, min_requests, "logged predictions"),
            compared, numbers={"live_rows": n_live, "logs": logs},
        )  # fmt: skip
    report = drift_report(ref, live, columns=list(ref), n_jobs=1)
    cols = list(report.columns.values())
    details = tuple(
        {
            "column": c.name, "method": c.method, "statistic": c.statistic, "p_value": c.p_value,
            "threshold": c.threshold, "status": c.status, "message": c.message,
        }
        for c in cols
    )  # fmt: skip
    numbers = {
        "live_rows": n_live,
        "reference_rows": report.n_reference_rows,
        "logs": logs,
    }
    first = cols[0]
    stat = (
        f"{first.method} p={first.p_value:.3g}"
        if first.p_value is not None
        else f"{first.method} {first.statistic:.3g}"
        if first.statistic is not None
        else first.method
    )
    drifted = [c.name for c in cols if c.status == "drift"]
    errors = [f"{c.name}: {c.message}" for c in cols if c.status == "error"]
    if drifted:
        return result(
            "prediction_drift", "fail",
            f"{watch.label}'s {n_live} live predictions drifted from its {report.n_reference_rows} "
            f"evaluation predictions ({', '.join(drifted)}; {stat}, threshold {first.threshold:g}).",
            compared, numbers=numbers, details=details,
        )  # fmt: skip
    if errors:
        return result(
            "prediction_drift", "error", f"the drift test could not run: {'; '.join(errors)}",
            compared, numbers=numbers, details=details,
        )  # fmt: skip
    if report.status == "insufficient_data":
        return result(
            "prediction_drift", "skip", f"not judged: {first.message or 'too few values'}",
            compared, numbers=numbers, details=details,
        )  # fmt: skip
    return result(
        "prediction_drift", "pass",
        f"{watch.label}'s {n_live} live predictions match its {report.n_reference_rows} "
        f"evaluation predictions ({stat}, threshold {first.threshold:g}: no drift).",
        compared, numbers=numbers, details=details,
    )  # fmt: skip


def verdict(results: Sequence[CheckResult]) -> str:
    """``fail`` when a check fails or errors; ``pass`` when a live check passed; else ``skip``
    (no live check had the traffic for a verdict: nothing was judged)."""
    if any(r.blocking for r in results):
        return "fail"
    live = [r for r in results if r.name != "post_deploy:swap"]
    return "pass" if any(r.status == "pass" for r in live) else "skip"
