"""Alert rules over monitor results, and the sinks alerts go to (log, webhook, Python callback)."""

from __future__ import annotations

import logging
import math
import numbers
import operator
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from mloop.codec import fields_to_wire
from mloop.delivery import BackgroundDeliverer, DeliveryRequest, RetryPolicy, deliver
from mloop.errors import InvalidInputError
from mloop.monitoring._rule_metrics import parse_metric

if TYPE_CHECKING:
    import httpx

    from mloop.monitoring._monitor import WindowResult

__all__ = [
    "Alert",
    "AlertRule",
    "AlertSink",
    "CallbackSink",
    "LogSink",
    "WebhookSink",
    "resolve_metric",
]

Op = Literal[">", ">=", "<", "<=", "==", "!="]
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
# The metric holds no comparison characters, so '=>' or '>>' is reported as a bad operator rather
# than read as a metric ending in '=' or '>'.
_RULE = re.compile(r"^\s*(?P<metric>[^<>=!]*[^<>=!\s])\s*(?P<op>[<>=!]+)\s*(?P<value>\S+)\s*$")
_OPS_TEXT = ", ".join(_OPS)
_SHAPE = (
    f"expected '<metric> <op> <number>' with <op> one of {_OPS_TEXT}, e.g. 'share_drifted >= 0.5'"
)
_MISSING = object()


def resolve_metric(namespace: Mapping[str, Any], path: str) -> Any:
    """Look a dotted path up in nested mappings; keys may themselves contain dots.

    Returns the value, or ``None`` when the path does not exist.

    Examples
    --------
    >>> resolve_metric({"columns": {"a.b": {"statistic": 0.3}}}, "columns.a.b.statistic")
    0.3
    """
    if path in namespace:
        return namespace[path]
    for key in sorted(namespace, key=len, reverse=True):
        sub = namespace[key]
        if isinstance(sub, Mapping) and path.startswith(f"{key}."):
            found = resolve_metric(sub, path[len(key) + 1 :])
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class Alert:
    """One firing of a rule on one window; JSON-safe through :meth:`to_dict`."""

    rule: str
    name: str
    severity: str
    monitor: str
    window_index: int
    window_start: Any
    window_end: Any
    metric: str
    op: str
    threshold: float
    value: float
    consecutive: int
    message: str
    created_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def to_dict(self) -> dict[str, Any]:
        """The alert in wire form (strict JSON: a NaN or infinite value as "NaN"/"Infinity")."""
        return fields_to_wire(self)


class AlertRule:
    """A threshold on any metric of a window result, optionally for N consecutive windows.

    Parameters
    ----------
    metric : str
        Dotted path into :meth:`WindowResult.metrics`: ``"share_drifted"``, ``"drifted"``,
        ``"columns.age.statistic"``, ``"performance.accuracy"``, ``"estimated.roc_auc"``,
        ``"quality.n_failed"``, ``"n_rows"``, ...
    op : {">", ">=", "<", "<=", "==", "!="}
    threshold : float
    consecutive : int, default 1
        Fire only when the condition held on this many consecutive windows. A window where the
        metric is unavailable breaks the streak.
    name : str, optional
        Default: the rule's expression.
    severity : {"info", "warning", "critical"}, default "warning"
    repeat : bool, default False
        Fire on every window while the streak lasts; by default a streak fires once and re-arms
        after the condition stops holding.

    Raises
    ------
    InvalidInputError
        For a metric that is not in the namespace (with the closest known metric), an unknown
        operator, or a threshold that is not a number. A rule that could never fire is refused
        when it is made, and again by a :class:`Monitor` that never computes its metric.

    Examples
    --------
    >>> AlertRule.parse("performance.accuracy < 0.8", consecutive=3).expression
    'performance.accuracy < 0.8'
    """

    def __init__(
        self,
        metric: str,
        op: Op,
        threshold: float,
        *,
        consecutive: int = 1,
        name: str | None = None,
        severity: Literal["info", "warning", "critical"] = "warning",
        repeat: bool = False,
    ) -> None:
        if not isinstance(metric, str) or not metric.strip():
            raise InvalidInputError(
                f"`metric` must be a non-empty metric path such as 'share_drifted'; got {metric!r}."
            )
        if op not in _OPS:
            raise InvalidInputError(f"`op` must be one of {_OPS_TEXT}; got {op!r}.")
        if not isinstance(consecutive, int) or consecutive < 1:
            raise InvalidInputError(f"`consecutive` must be an int >= 1; got {consecutive!r}.")
        if severity not in ("info", "warning", "critical"):
            raise InvalidInputError(
                f"`severity` must be 'info', 'warning' or 'critical'; got {severity!r}."
            )
        # Strings are not numbers here (parse() reads rule text); NaN compares false with anything.
        if not _is_number(threshold) or math.isnan(threshold):
            raise InvalidInputError(
                f"`threshold` must be a number (not NaN); got {threshold!r}. To build a rule from "
                "text, use AlertRule.parse('share_drifted >= 0.5')."
            )
        self.threshold = float(threshold)
        self.metric = metric.strip()
        self.op: Op = op
        self.consecutive = consecutive
        self.severity = severity
        self.repeat = repeat
        self.expression = f"{self.metric} {op} {_num(self.threshold)}"
        self.target = parse_metric(self.metric, rule=self.expression)  # unknown -> error now
        self.name = name or self.expression
        self._streak = 0

    @classmethod
    def parse(cls, expression: str, **options: Any) -> AlertRule:
        """Build a rule from ``"<metric> <op> <number>"`` (``true``/``false`` count as 1/0).

        Raises
        ------
        InvalidInputError
            For text that is not ``<metric> <op> <number>``, an operator other than
            ``>, >=, <, <=, ==, !=``, a threshold that is not a number, or an unknown metric.
        """
        m = _RULE.match(expression) if isinstance(expression, str) else None
        if not m:
            raise InvalidInputError(f"Cannot parse alert rule {expression!r}; {_SHAPE}.")
        if m.group("op") not in _OPS:
            raise InvalidInputError(
                f"Alert rule {expression!r}: unknown operator {m.group('op')!r}; {_SHAPE}."
            )
        raw = m.group("value").lower()
        value: float
        if raw in ("true", "false"):
            value = 1.0 if raw == "true" else 0.0
        else:
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if math.isnan(value):
                raise InvalidInputError(
                    f"Alert rule {expression!r}: the threshold {m.group('value')!r} is not a "
                    f"number; {_SHAPE}."
                )
        return cls(m.group("metric"), m.group("op"), value, **options)  # type: ignore[arg-type]

    def reset(self) -> None:
        """Forget the current streak."""
        self._streak = 0

    def evaluate(self, metrics: Mapping[str, Any]) -> tuple[bool, float | None]:
        """Advance the streak with one window's metrics; return (fire, observed value)."""
        raw = resolve_metric(metrics, self.metric)
        value: float | None
        value = float(raw) if isinstance(raw, (bool, int, float)) else None
        if value is None or math.isnan(value) or not _OPS[self.op](value, self.threshold):
            self._streak = 0
            return False, value
        self._streak += 1
        fire = self._streak >= self.consecutive and (
            self.repeat or self._streak == self.consecutive
        )
        return fire, value

    @property
    def streak(self) -> int:
        return self._streak

    def __repr__(self) -> str:
        return f"AlertRule({self.expression!r}, consecutive={self.consecutive})"


def _is_number(x: object) -> bool:
    # ints, floats, numpy scalars, bools (true/false are 1/0); a function, so mypy keeps its types
    return isinstance(x, numbers.Real)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


# ---------------------------------------------------------------- sinks


@runtime_checkable
class AlertSink(Protocol):
    """Where alerts go. ``send`` may raise; the monitor logs the failure and carries on."""

    def send(self, alert: Alert, result: WindowResult) -> None: ...


class LogSink:
    """Log each alert through :mod:`logging` (logger ``mloop.monitoring.alerts`` by default)."""

    def __init__(self, logger: logging.Logger | str | None = None, *, level: int = logging.WARNING):
        if logger is None or isinstance(logger, str):
            logger = logging.getLogger(logger or "mloop.monitoring.alerts")
        self.logger = logger
        self.level = level

    def send(self, alert: Alert, result: WindowResult) -> None:
        self.logger.log(
            self.level,
            "[%s] %s: %s",
            alert.monitor,
            alert.severity.upper(),
            alert.message,
            extra={"mloop_alert": alert.to_dict()},
        )


class CallbackSink:
    """Call a Python function with each :class:`Alert` (and the window result if it takes two)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise InvalidInputError(f"`fn` must be callable; got {type(fn).__name__}.")
        self.fn = fn
        try:
            import inspect

            params = inspect.signature(fn).parameters.values()
            positional = [
                p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            self._two = len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
        except (TypeError, ValueError):
            self._two = False

    def send(self, alert: Alert, result: WindowResult) -> None:
        if self._two:
            self.fn(alert, result)
        else:
            self.fn(alert)


class WebhookSink:
    """HTTP POST each alert as JSON: ``{"alert": {...}, "window": {...}}``.

    By default the alert is queued and sent by a background thread (started with the first alert),
    so a slow or retrying endpoint never delays the stream that raised it; delivery failures are
    logged (logger ``mloop.delivery``). With ``background=False`` the POST happens in :meth:`send`,
    which raises :class:`~mloop.delivery.DeliveryError` when the alert could not be delivered.

    Retries follow :class:`~mloop.delivery.RetryPolicy`: connection errors, timeouts, 408, 429 and
    5xx are retried with jittered exponential backoff that honours ``Retry-After``; any other 4xx
    is final.

    Parameters
    ----------
    url : str
    headers : mapping, optional
        E.g. an ``Authorization`` header.
    timeout : float, optional
        Seconds per request (default 5.0).
    retries : int, optional
        Extra attempts after the first (default 2).
    policy : RetryPolicy, optional
        Full control of retries and timeouts; instead of ``timeout`` and ``retries``.
    secret : str, optional
        Sign each body: ``X-Mloop-Signature: sha256=<hmac>`` (check it with
        :func:`mloop.delivery.verify_signature`).
    client : httpx.Client, optional
        Reuse a client (connection pool, proxies, TLS settings).
    background : bool, default True
        Deliver on a background thread; ``False`` delivers (and retries) in :meth:`send`.
    queue_size : int, default 1000
        Alerts waiting at most in background mode; beyond it an alert is dropped and logged.

    Raises
    ------
    InvalidInputError
        For a URL that is not http(s), a negative ``retries``, a non-positive ``timeout``, or
        ``policy`` together with ``timeout``/``retries``.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        policy: RetryPolicy | None = None,
        secret: str | None = None,
        client: httpx.Client | None = None,
        background: bool = True,
        queue_size: int = 1000,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"`url` must be an http(s) URL; got {url!r}.")
        if policy is not None and (timeout is not None or retries is not None):
            raise InvalidInputError(
                "Pass either `policy` or `timeout`/`retries`, not both; "
                "set the timeout and attempts on the RetryPolicy."
            )
        if retries is not None and (
            not isinstance(retries, int) or isinstance(retries, bool) or retries < 0
        ):
            raise InvalidInputError(f"`retries` must be an int >= 0; got {retries!r}.")
        if policy is None:
            policy = RetryPolicy(
                max_attempts=(2 if retries is None else retries) + 1,
                timeout_s=5.0 if timeout is None else timeout,
                backoff_base_s=0.1,
                backoff_max_s=10.0,
                max_elapsed_s=30.0,
            )
        elif not isinstance(policy, RetryPolicy):
            raise InvalidInputError(f"`policy` must be a RetryPolicy; got {policy!r}.")
        self.url = url
        self.headers = dict(headers or {})
        self.policy = policy
        self.timeout = policy.timeout_s
        self.retries = policy.max_attempts - 1
        self.background = background
        self._secret = secret
        self._client = client
        self._deliverer = (
            BackgroundDeliverer(
                policy=policy, client=client, maxsize=queue_size, name="mloop-alert-webhook"
            )
            if background
            else None
        )

    def _request(self, alert: Alert, result: WindowResult) -> DeliveryRequest:
        return DeliveryRequest.json(
            self.url,
            {"alert": alert.to_dict(), "window": result.summary()},
            headers=self.headers,
            secret=self._secret,
            label=f"alert {alert.name!r} of monitor {alert.monitor!r}",
        )

    def send(self, alert: Alert, result: WindowResult) -> None:
        """Queue the alert (background mode) or POST it now, raising if it was not delivered."""
        request = self._request(alert, result)
        if self._deliverer is not None:
            self._deliverer.submit(request)
            return
        deliver(request, policy=self.policy, client=self._client).raise_for_error()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued alerts are delivered or given up; ``False`` if ``timeout`` ran out."""
        return True if self._deliverer is None else self._deliverer.flush(timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush for at most ``timeout`` seconds and stop the background thread."""
        return True if self._deliverer is None else self._deliverer.close(timeout)

    def __repr__(self) -> str:
        # the host only: a webhook URL's path or query often carries a token
        mode = "background" if self.background else "synchronous"
        return f"WebhookSink(host={urlsplit(self.url).hostname!r}, {mode})"


def as_sink(obj: Any) -> AlertSink:
    """A sink from a sink object, a callable, or the strings ``"log"`` / an http(s) URL."""
    if isinstance(obj, str):
        if obj == "log":
            return LogSink()
        return WebhookSink(obj)
    if isinstance(obj, AlertSink):
        return obj
    if callable(obj):
        return CallbackSink(obj)
    raise InvalidInputError(
        f"A sink must be 'log', a URL, a callable or have `send(alert, result)`; got {obj!r}."
    )
