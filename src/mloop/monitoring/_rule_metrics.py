"""The metrics an alert rule can read: the namespace :meth:`WindowResult.metrics` builds, as a schema.

A rule on a metric that does not exist never fires, and nothing would say so. So a rule's metric is
checked twice: against this schema when the rule is made (:func:`parse_metric`: a typo is an error
with a close match), and against what one monitor computes when the monitor is made
(:func:`check_available`: a column it does not watch, performance without labels, drift with
``drift=False``...). A test keeps the schema and ``WindowResult.metrics`` in step.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mloop.errors import InvalidInputError
from mloop.monitoring._cbpe import ESTIMATED_METRICS
from mloop.monitoring._columns import unknown_columns_error
from mloop.monitoring._performance import CLASSIFICATION_METRICS, REGRESSION_METRICS

__all__ = ["Metric", "RuleContext", "check_available", "parse_metric"]

WINDOW = ("n_rows", "index")
DRIFT = ("drifted", "share_drifted", "n_drifted")
#: Per drift column: ``columns.<column>.<field>``.
COLUMN_FIELDS = ("statistic", "p_value", "threshold", "drifted", "n_current")
QUALITY = ("passed", "n_failed", "n_warnings")
#: Per quality column: ``quality.columns.<column>.<check>`` (checks with a numeric value).
QUALITY_CHECKS = (
    "column_missing",
    "empty",
    "constant",
    "missing_share",
    "non_finite",
    "out_of_range",
    "unseen_categories",
    "extra_column",
)
PERFORMANCE = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS, "n")

Group = Literal[
    "window", "drift", "column", "quality", "quality_column", "performance", "estimated"
]


def _one_of(names: Sequence[str]) -> str:
    return ", ".join(names)


KNOWN = (
    f"{_one_of(WINDOW)}; drift: {_one_of(DRIFT)}, columns.<column>.<field> with <field> one of "
    f"{_one_of(COLUMN_FIELDS)}; quality: {_one_of([f'quality.{q}' for q in QUALITY])}, "
    f"quality.columns.<column>.<check> with <check> one of {_one_of(QUALITY_CHECKS)}; "
    f"performance (needs labels): performance.n, performance.<metric> with <metric> one of "
    f"{_one_of(CLASSIFICATION_METRICS)} (classification) or {_one_of(REGRESSION_METRICS)} "
    f"(regression); estimated (CBPE, without labels): estimated.<metric> with <metric> one of "
    f"{_one_of(ESTIMATED_METRICS)}"
)


@dataclass(frozen=True)
class Metric:
    """Where a rule's metric path points: its group, name and (per-column metrics) column."""

    path: str
    group: Group
    name: str
    column: str | None = None


def _candidates(columns: Sequence[str]) -> list[str]:
    out = [*WINDOW, *DRIFT, *(f"quality.{q}" for q in QUALITY)]
    out += [f"performance.{m}" for m in PERFORMANCE]
    out += [f"estimated.{m}" for m in ESTIMATED_METRICS]
    for c in columns:
        out += [f"columns.{c}.{f}" for f in COLUMN_FIELDS]
        out += [f"quality.columns.{c}.{k}" for k in QUALITY_CHECKS]
    return out


def _unknown(path: str, rule: str, columns: Sequence[str] = ()) -> InvalidInputError:
    # Per-column paths are matched with their own column name (a typo is in the field, usually).
    for prefix in ("quality.columns.", "columns."):
        if path.startswith(prefix):
            col = path[len(prefix) :].rpartition(".")[0]
            columns = [*columns, col] if col else columns
            break
    close = difflib.get_close_matches(path, _candidates(columns), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return InvalidInputError(
        f"unknown metric {path!r} in alert rule {rule!r}; a rule on it would never fire.{hint} "
        f"Known metrics: {KNOWN}.",
        details={"metric": path, "rule": rule, "suggestion": close[0] if close else None},
    )


def _per_column(rest: str, leaves: Sequence[str]) -> tuple[str, str] | None:
    col, _, leaf = rest.rpartition(".")  # column names may hold dots; the leaf never does
    return (col, leaf) if col and leaf in leaves else None


def parse_metric(path: str, *, rule: str) -> Metric:
    """Locate ``path`` in the metrics namespace; :class:`InvalidInputError` if it is not there."""
    if path in WINDOW:
        return Metric(path, "window", path)
    if path in DRIFT:
        return Metric(path, "drift", path)
    head, _, rest = path.partition(".")
    if head == "columns" and (found := _per_column(rest, COLUMN_FIELDS)):
        return Metric(path, "column", found[1], found[0])
    if head == "quality":
        if rest in QUALITY:
            return Metric(path, "quality", rest)
        sub, _, cols = rest.partition(".")
        if sub == "columns" and (found := _per_column(cols, QUALITY_CHECKS)):
            return Metric(path, "quality_column", found[1], found[0])
    if head == "performance" and rest in PERFORMANCE:
        return Metric(path, "performance", rest)
    if head == "estimated" and rest in ESTIMATED_METRICS:
        return Metric(path, "estimated", rest)
    raise _unknown(path, rule)


@dataclass(frozen=True)
class RuleContext:
    """What one monitor computes per window; a ``why_no_*`` field is None when it does compute it."""

    drift_columns: Sequence[str]
    quality_columns: Sequence[str]
    task: str
    why_no_drift: str | None = None
    why_no_quality: str | None = None
    why_no_performance: str | None = None
    why_no_estimate: str | None = None


def check_available(metric: Metric, rule: str, ctx: RuleContext) -> None:
    """:class:`InvalidInputError` if a monitor with context ``ctx`` never computes ``metric``."""
    where = f"alert rule {rule!r} reads {metric.path!r}"
    never = "so it would never fire"
    if metric.group in ("drift", "column") and ctx.why_no_drift:
        raise InvalidInputError(
            f"{where}, a drift metric, but this monitor computes no drift ({ctx.why_no_drift}); "
            f"{never}. Remove the rule or enable drift."
        )
    if metric.group in ("quality", "quality_column") and ctx.why_no_quality:
        raise InvalidInputError(
            f"{where}, a quality metric, but this monitor runs no quality checks "
            f"({ctx.why_no_quality}); {never}. Remove the rule or enable quality."
        )
    if metric.column is not None:
        cols = ctx.drift_columns if metric.group == "column" else ctx.quality_columns
        if metric.column not in cols:
            raise unknown_columns_error(
                [metric.column],
                cols,
                what=f"alert rule {rule!r}",
                where="monitored",
                listing="monitored columns",
            )
    if metric.group == "performance":
        if ctx.why_no_performance:
            raise InvalidInputError(
                f"{where}, but this monitor never computes performance ({ctx.why_no_performance}); "
                f"{never}."
            )
        regression = ctx.task == "regression"
        own = (*REGRESSION_METRICS, "n") if regression else (*CLASSIFICATION_METRICS, "n")
        if metric.name not in own:
            kind = "classification" if regression else "regression"
            raise InvalidInputError(
                f"{where}: {metric.name!r} is a {kind} metric, but this monitor's task is "
                f"{ctx.task!r} (its metrics: {_one_of(own)}); {never}."
            )
    if metric.group == "estimated" and ctx.why_no_estimate:
        raise InvalidInputError(
            f"{where}, but this monitor never estimates performance ({ctx.why_no_estimate}); "
            f"{never}."
        )
