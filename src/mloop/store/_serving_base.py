"""Serving's per-minute aggregates: what a deployment answered, how fast and how often it failed,
kept in the store so latency and errors can be read over time (Prometheus ``/metrics`` lives in
each serving process and is gone with it).

Each serving process (a *replica*) records, per deployment and wall-clock minute, its request
count, error answers, the sum and maximum of request latency and a latency histogram over fixed
bounds (:data:`LATENCY_BOUNDS_MS`), so replicas merge by adding and percentiles are read from the
merged histogram. A replica writes a minute again while it lasts (and once after): the row keyed
by (deployment, replica, minute) is replaced, never added to, so a retried write is harmless.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass

from mloop.codec import WireEntity
from mloop.errors import InvalidInputError
from mloop.store._common import validate_max_results
from mloop.store._deploy_base import validate_deployment_name

__all__ = [
    "LATENCY_BOUNDS_MS",
    "ServingMinute",
    "ServingStoreMixin",
    "latency_quantile",
    "validate_serving_minute",
]

#: Upper bounds (ms) of the latency histogram's buckets; a last bucket counts what is slower.
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip
MINUTE_MS = 60_000
_MAX_MINUTES = 10_000


@dataclass(frozen=True)
class ServingMinute(WireEntity):
    """One replica's answers for one deployment in one wall-clock minute.

    Attributes
    ----------
    deployment : str
    replica : str
        The serving process (e.g. ``host:pid``): 1 to 128 printable characters.
    minute_ms : int
        The minute's start (ms since the epoch, a multiple of 60,000).
    requests : int
        Scoring requests answered (errors included).
    errors : int
        Error answers (status >= 400) among them.
    latency_sum_ms, latency_max_ms : float
        Sum and maximum of their latency.
    latency_counts : tuple of int
        Requests per bucket of :data:`LATENCY_BOUNDS_MS` (one more: slower than the last bound);
        they add up to ``requests``.
    """

    deployment: str
    replica: str
    minute_ms: int
    requests: int
    errors: int
    latency_sum_ms: float
    latency_max_ms: float
    latency_counts: tuple[int, ...]


def _count(value: object, *, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidInputError(f"`{what}` must be an int >= 0; got {value!r}.")
    return value


def _ms(value: object, *, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidInputError(f"`{what}` must be a finite number >= 0; got {value!r}.")
    return float(value)


def validate_serving_minute(m: object) -> ServingMinute:
    """``m`` checked field by field (the error names the field and what it got)."""
    if not isinstance(m, ServingMinute):
        raise InvalidInputError(
            f"a serving minute must be a ServingMinute; got {type(m).__name__}."
        )
    validate_deployment_name(m.deployment)
    if (
        not isinstance(m.replica, str)
        or not 1 <= len(m.replica) <= 128
        or not m.replica.isprintable()
    ):
        raise InvalidInputError(
            f"`replica` must be 1 to 128 printable characters; got {m.replica!r}."
        )
    minute = _count(m.minute_ms, what="minute_ms")
    if minute % MINUTE_MS:
        raise InvalidInputError(
            f"`minute_ms` must be the start of a minute (a multiple of 60000); got {minute}."
        )
    requests = _count(m.requests, what="requests")
    errors = _count(m.errors, what="errors")
    if errors > requests:
        raise InvalidInputError(f"`errors` ({errors}) cannot exceed `requests` ({requests}).")
    total = _ms(m.latency_sum_ms, what="latency_sum_ms")
    top = _ms(m.latency_max_ms, what="latency_max_ms")
    counts = m.latency_counts
    n = len(LATENCY_BOUNDS_MS) + 1
    if not isinstance(counts, (tuple, list)) or len(counts) != n:
        raise InvalidInputError(
            f"`latency_counts` must hold {n} counts (one per bucket of LATENCY_BOUNDS_MS and one "
            f"slower); got {counts!r}."
        )
    checked = tuple(_count(c, what="latency_counts[i]") for c in counts)
    if sum(checked) != requests:
        raise InvalidInputError(
            f"`latency_counts` must add up to `requests` ({requests}); they add up to "
            f"{sum(checked)}."
        )
    return ServingMinute(m.deployment, m.replica, minute, requests, errors, total, top, checked)


def latency_quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0 < q < 1) of a latency histogram, interpolated inside its bucket
    (None without requests; the upper bound of the slowest finite bucket beyond it)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0.0
    for i, c in enumerate(counts):
        if c and seen + c >= rank:
            lo = 0.0 if i == 0 else LATENCY_BOUNDS_MS[i - 1]
            if i >= len(LATENCY_BOUNDS_MS):
                return float(LATENCY_BOUNDS_MS[-1])
            hi = LATENCY_BOUNDS_MS[i]
            return lo + (hi - lo) * (rank - seen) / c
        seen += c
    return float(LATENCY_BOUNDS_MS[-1])


class ServingStoreMixin(abc.ABC):
    """Serving's per-minute aggregates (see the module's docstring)."""

    def record_serving_minutes(self, minutes: Sequence[ServingMinute]) -> None:
        """Store each minute, replacing the row of its (deployment, replica, minute)."""
        if isinstance(minutes, (str, bytes)) or not isinstance(minutes, Sequence):
            raise InvalidInputError(
                f"`minutes` must be a list of ServingMinute; got {type(minutes).__name__}."
            )
        if len(minutes) > _MAX_MINUTES:
            raise InvalidInputError(
                f"`minutes` holds at most {_MAX_MINUTES} items per call; got {len(minutes)}."
            )
        checked = [validate_serving_minute(m) for m in minutes]
        if checked:
            self._do_record_serving_minutes(checked)

    def list_serving_minutes(
        self,
        deployment: str,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 10_000,
    ) -> list[ServingMinute]:
        """The minutes with ``since_ms <= minute_ms < until_ms``, by minute then replica, at most
        ``limit``."""
        validate_deployment_name(deployment)
        validate_max_results(limit, name="limit")
        since = None if since_ms is None else _count(since_ms, what="since_ms")
        until = None if until_ms is None else _count(until_ms, what="until_ms")
        return self._do_list_serving_minutes(deployment, since, until, limit)

    @abc.abstractmethod
    def _do_record_serving_minutes(self, minutes: list[ServingMinute]) -> None: ...

    @abc.abstractmethod
    def _do_list_serving_minutes(
        self, deployment: str, since_ms: int | None, until_ms: int | None, limit: int
    ) -> list[ServingMinute]: ...
