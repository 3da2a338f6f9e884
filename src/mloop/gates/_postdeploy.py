"""The post-deploy check: after a promotion moved an alias that servers follow, watch the new
version on live traffic and move the alias back when it misbehaves.

Four checks, each a :class:`~mloop.store.CheckResult` of kind ``post_deploy``:

``post_deploy:swap``
    Every server following the alias serves the new version (its ``mloop_model_version`` gauge),
    within ``swap_timeout_s``. A ``serving_swap_failed`` event (the server could not load or
    smoke-test the version, and kept the old one) fails it at once.
``post_deploy:error_rate``
    Server errors (5xx) among the scoring requests (``/invocations`` and OIP ``infer``) answered
    in the window, from the deltas of ``mloop_requests_total`` between the swap and the end.
    Client errors (4xx) are the callers' (a bad payload, a wrong column) and neither count as
    errors nor as requests judged; they are reported.
``post_deploy:p95_latency_ms``
    The 95th percentile of the window's latency, from the deltas of the latency histogram's
    buckets, interpolated within a bucket as Prometheus' ``histogram_quantile`` does (over every
    scoring request: the histogram does not split answers by status).
``post_deploy:prediction_drift``
    The new version's live predictions (the inference log since the promotion, rows of that
    version only) against the predictions it made on the evaluation data, through
    :func:`mloop.monitoring.drift_report`: a drift verdict fails.

Too little traffic is not a verdict: a check that saw fewer than ``min_requests`` requests (or
logged rows) is ``skip``, and a report whose live checks all skipped has the verdict ``skip``
(``report.extra["verdict"]``; its ``status`` is ``pass``, as nothing failed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx

from mloop.errors import ConflictError, InvalidInputError, MloopError
from mloop.gates._live import discover_deployments, discover_endpoints
from mloop.gates._live_checks import (
    Watch,
    alias_now,
    drift_check,
    error_rate_check,
    latency_check,
    observe,
    result,
    verdict,
    wait_for_swap,
)
from mloop.ids import new_id, now_ms
from mloop.store import CheckReport, CheckResult

if TYPE_CHECKING:
    from mloop.registry import Registry

__all__ = ["watch_promotion"]

log = logging.getLogger("mloop.gates")

_CHECKS = ("swap", "error_rate", "p95_latency_ms", "prediction_drift")


def _check_args(
    name: Any,
    alias: Any,
    version: Any,
    previous_version: Any,
    window_s: Any,
    max_window_s: Any,
    min_requests: Any,
    swap_timeout_s: Any,
    max_error_rate: Any,
    max_p95_latency_ms: Any,
    poll_s: Any,
) -> None:
    for key, v in (("name", name), ("alias", alias)):
        if not isinstance(v, str) or not v:
            raise InvalidInputError(f"`{key}` must be a non-empty str; got {v!r}.")
    for key, v, none_ok in (
        ("version", version, False),
        ("previous_version", previous_version, True),
    ):
        if v is None and none_ok:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidInputError(f"`{key}` must be an int >= 1; got {v!r}.")
    if previous_version == version:
        raise InvalidInputError(
            f"`previous_version` must differ from `version`; both are {version}."
        )

    def positive(key: str, v: Any, none_ok: bool = False) -> None:
        if v is None and none_ok:
            return
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        if not ok:
            raise InvalidInputError(f"`{key}` must be a number > 0; got {v!r}.")

    positive("window_s", window_s)
    positive("max_window_s", max_window_s, none_ok=True)
    positive("swap_timeout_s", swap_timeout_s)
    positive("max_p95_latency_ms", max_p95_latency_ms, none_ok=True)
    positive("poll_s", poll_s)
    if max_window_s is not None and max_window_s < window_s:
        raise InvalidInputError(
            f"`max_window_s` must be >= `window_s` ({window_s}); got {max_window_s!r}."
        )
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
        raise InvalidInputError(f"`min_requests` must be an int >= 1; got {min_requests!r}.")
    if (
        isinstance(max_error_rate, bool)
        or not isinstance(max_error_rate, int | float)
        or not 0.0 <= max_error_rate <= 1.0
    ):
        raise InvalidInputError(
            f"`max_error_rate` must be a number in [0, 1]; got {max_error_rate!r}."
        )


def watch_promotion(
    registry: Registry,
    *,
    name: str,
    alias: str,
    version: int,
    previous_version: int | None,
    endpoints: Sequence[str] = (),
    deployments: Sequence[str] | None = None,
    window_s: float = 60.0,
    max_window_s: float | None = None,
    min_requests: int = 50,
    swap_timeout_s: float = 60.0,
    max_error_rate: float = 0.01,
    max_p95_latency_ms: float | None = None,
    prediction_drift: bool = True,
    reference_predictions: Sequence[Any] | None = None,
    rollback: bool = True,
    gate_report_id: str | None = None,
    actor: str | None = None,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckReport:
    """Watch a promoted version on live traffic; roll the alias back if it fails.

    Call it right after ``registry.set_alias(name, alias, version, expected_version=previous)``.

    Parameters
    ----------
    registry : Registry
        Whose store holds the alias, the event log, the deployments and the inference log.
    name, alias, version :
        The promotion: ``models:/{name}@{alias}`` now names ``version``.
    previous_version : int or None
        What the alias named before, the rollback's target. None for a first promotion: a failed
        check then leaves the alias where it is (there is nothing to go back to) and says so.
    endpoints : sequence of str
        Base URLs of ``mloop serve`` processes (``http://10.0.0.5:8080``). Their ``/serving``
        tells which slot follows the alias; their ``/metrics`` give errors and latency.
    deployments : sequence of str, optional
        Deployment names to watch. Default: every deployment whose model or canary URI is
        ``models:/{name}@{alias}``. A deployment's swaps are seen in the event log and its
        predictions in its inference log; its errors and latency only through ``endpoints``.
    window_s : float, default 60
        How long to watch after the swap (at least).
    max_window_s : float, optional
        Watch on past ``window_s`` until ``min_requests`` requests arrived, up to this long
        (default ``4 * window_s``).
    min_requests : int, default 50
        Requests (and logged prediction rows) below which a check gives no verdict (``skip``).
    swap_timeout_s : float, default 60
        How long the servers may take to load and verify the new version.
    max_error_rate : float, default 0.01
        The largest share of server errors (5xx) among the scoring requests that passes.
    max_p95_latency_ms : float, optional
        The p95 latency limit; without one the p95 is reported and not judged (``skip``).
    prediction_drift : bool, default True
        Compare live predictions with ``reference_predictions``.
    reference_predictions : sequence, optional
        The candidate's predictions on its evaluation data (the sample a check report keeps in
        ``report.extra["predictions"]["sample"]``): 1-D, compared with the log's
        ``prediction`` column; 2-D, column k with ``prediction_<k>``; or a mapping of output
        name to values, compared with ``prediction_<name>``.
    rollback : bool, default True
        Move the alias back to ``previous_version`` when a check fails. The move is conditional
        on the alias still naming ``version``: if another promotion moved it meanwhile, nothing
        is rolled back and the report says so.
    gate_report_id : str, optional
        The pre-deploy check report that allowed the promotion (kept in the report's ``extra``).
    actor : str, optional
        Recorded on the report and the rollback (default: the registry's actor).
    poll_s : float, default 0.5
        How often servers and the log are polled.
    clock, sleep : callables
        Monotonic seconds and a sleep (injectable for tests).

    Returns
    -------
    CheckReport
        Kind ``post_deploy``, stored with ``store.put_check_report`` (which announces it with a
        ``report_attached`` event). ``status`` is ``fail`` when a check failed or errored, else
        ``pass``; ``extra["verdict"]`` tells a pass from ``skip``, where no live check had the
        traffic for a verdict (nothing was judged). ``extra["rolled_back"]`` is True when the
        alias went back, and ``extra["rollback"]["status"]`` says what happened to it:
        ``rolled_back``, ``conflict`` (another move won meanwhile), ``no_previous_version``,
        ``disabled``, ``not_needed`` or ``error``.

    Raises
    ------
    InvalidInputError
        For bad arguments.
    NotFoundError
        For a named deployment that does not exist.

    Notes
    -----
    Only a ``fail`` rolls back; an ``error`` (the check itself could not run, e.g. an endpoint
    did not answer) makes the report fail without touching the alias. The rollback happens
    before the report is stored (so a store that cannot take the report never keeps a bad
    version serving); its ``alias_rollback`` event carries the report's id and the reason.
    """
    t_start = clock()
    _check_args(
        name,
        alias,
        version,
        previous_version,
        window_s,
        max_window_s,
        min_requests,
        swap_timeout_s,
        max_error_rate,
        max_p95_latency_ms,
        poll_s,
    )
    if isinstance(endpoints, str):
        raise InvalidInputError(
            f"`endpoints` must be a list of base URLs; got the string {endpoints!r}."
        )
    who = actor if actor is not None else registry.actor
    label = f"{name}/{version}"
    since_id, since_ms = _promotion_event(registry, name, alias, version)
    checks: dict[str, CheckResult] = {}
    with httpx.Client(timeout=10.0) as http:
        servers, endpoint_notes, unreachable = discover_endpoints(http, endpoints, name, alias)
        watch = Watch(
            name=name,
            alias=alias,
            version=version,
            label=label,
            since_event_id=since_id,
            since_ms=since_ms,
            servers=servers,
            deployments=discover_deployments(registry, name, alias, deployments),
            notes=endpoint_notes + unreachable,
        )
        alias_now(registry, watch)  # moved already? then nothing is rolled back
        swap = wait_for_swap(
            watch, http, registry, unreachable, swap_timeout_s, poll_s, clock, sleep
        )
        checks["swap"] = swap
        if swap.status != "pass":
            why = f"not judged: {label} never served ({swap.status} of post_deploy:swap)."
            for check in _CHECKS[1:]:
                checks[check] = result(check, "skip", why)
        else:
            traffic = observe(
                watch, http, registry, window_s, max_window_s or 4 * window_s, min_requests,
                poll_s, clock, sleep,
            )  # fmt: skip
            checks["error_rate"] = error_rate_check(watch, traffic, min_requests, max_error_rate)
            checks["p95_latency_ms"] = latency_check(
                watch, traffic, min_requests, max_p95_latency_ms
            )
            checks["prediction_drift"] = (
                drift_check(watch, registry, reference_predictions, min_requests)
                if prediction_drift
                else result("prediction_drift", "skip", "not asked for (prediction_drift=False).")
            )
    results = tuple(checks[k] for k in _CHECKS)
    outcome_of_checks = verdict(results)
    report_id = new_id()
    outcome = _maybe_rollback(registry, watch, results, rollback, previous_version, report_id, who)
    policy = {
        "window_s": window_s,
        "max_window_s": max_window_s or 4 * window_s,
        "min_requests": min_requests,
        "swap_timeout_s": swap_timeout_s,
        "max_error_rate": max_error_rate,
        "max_p95_latency_ms": max_p95_latency_ms,
        "prediction_drift": prediction_drift,
        "rollback": rollback,
    }
    report = CheckReport(
        id=report_id,
        model=name,
        version=version,
        kind="post_deploy",
        status="fail" if outcome_of_checks == "fail" else "pass",  # a report passes or fails
        candidate_uri=f"models:/{name}/{version}",
        baseline_uri=None if previous_version is None else f"models:/{name}/{previous_version}",
        baseline_version=previous_version,
        policy_hash=hashlib.sha256(
            json.dumps(policy, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest(),
        policy=policy,
        data={
            "alias": alias,
            "endpoints": [s.url for s in watch.servers],
            "deployments": [d.name for d in watch.deployments],
            "window_s": round(watch.window_s, 3),
            "since_event_id": watch.since_event_id,
        },
        checks=results,
        created_ms=now_ms(),
        duration_ms=round((clock() - t_start) * 1000, 1),
        actor=who,
        extra={
            "verdict": outcome_of_checks,
            "rolled_back": outcome["status"] == "rolled_back",
            "gate_report_id": gate_report_id,
            "rollback": outcome,
            "alias_moved_to": watch.moved_to,
            "notes": list(watch.notes),
        },
    )
    return _store_report(registry, report)


# ---------------------------------------------------------------------------------- the phases
def _promotion_event(registry: Registry, name: str, alias: str, version: int) -> tuple[int, int]:
    """(event id, ms) of the move that pointed the alias at ``version``: swaps and failures are
    looked for after it, predictions since it. Without one (moved by hand, log pruned): now."""
    events = registry.store.list_events(
        model=name, alias=alias, types=["alias_set", "alias_rollback"], newest_first=True, limit=20
    )
    for e in events:
        if e.after == version:
            return e.id, e.ts_ms
    return registry.store.last_event_id(), now_ms()


# ---------------------------------------------------------------------------------- rollback
def _maybe_rollback(
    registry: Registry,
    watch: Watch,
    results: Sequence[CheckResult],
    rollback: bool,
    previous: int | None,
    report_id: str,
    actor: str | None,
) -> dict[str, Any]:
    failed = [r for r in results if r.status == "fail"]
    if not failed:
        return {"status": "not_needed"}
    reason = (f"post-deploy check of {watch.label} failed: " + " ".join(r.summary for r in failed))[
        :8000
    ]
    if not rollback:
        return {"status": "disabled", "reason": reason}
    if previous is None:
        return {
            "status": "no_previous_version",
            "reason": reason,
            "message": f"{watch.name}@{watch.alias} had no version before {watch.version} (a "
            "first promotion): nothing to roll back to; the alias stays.",
        }
    try:
        registry.store.set_alias(
            watch.name,
            watch.alias,
            previous,
            actor=actor,
            reason=reason,
            expected_version=watch.version,
            report_id=report_id,
            event_type="alias_rollback",
        )
    except ConflictError as exc:
        return {
            "status": "conflict",
            "reason": reason,
            "message": f"not rolled back: {watch.name}@{watch.alias} no longer names "
            f"{watch.version} (a concurrent move won; it is not undone): {exc.message}",
        }
    except MloopError as exc:  # the store refused or is down: the report still says so
        log.error("post-deploy rollback of %s@%s failed: %s", watch.name, watch.alias, exc)
        return {"status": "error", "reason": reason, "message": f"{type(exc).__name__}: {exc}"}
    log.warning(
        "post-deploy check: %s@%s rolled back from %s to %s",
        watch.name,
        watch.alias,
        watch.version,
        previous,
    )
    return {"status": "rolled_back", "to_version": previous, "reason": reason}


def _store_report(registry: Registry, report: CheckReport) -> CheckReport:
    """The report as stored; if the store refuses it, the report as made, saying so in
    ``extra["stored"]`` (the rollback, if any, has happened already)."""
    try:
        return registry.store.put_check_report(report)
    except MloopError as exc:
        log.error("could not store post-deploy report %s: %s", report.id, exc)
        return replace(report, extra={**report.extra, "stored": f"not stored: {exc}"})
