"""Check reports: stored through the store's public method (which validates the whole report
again), with the report's actor taken from the token once auth is on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mloop.errors import InvalidInputError
from mloop.server._context import actor_for
from mloop.store import CheckReport, Store

__all__ = ["HANDLERS"]


def _put_check_report(s: Store, report_id: str, report: CheckReport) -> CheckReport:
    if report.id != report_id:
        raise InvalidInputError(
            f"the report's id {report.id!r} is not the one in the path, {report_id!r}."
        )
    actor = actor_for(report.actor)
    if actor != report.actor:
        report = dataclasses.replace(report, actor=actor)
    return s.put_check_report(report)


HANDLERS: dict[str, Callable[..., Any]] = {
    "put_check_report": _put_check_report,
    "get_check_report": lambda s, report_id: s.get_check_report(report_id),
    "list_check_reports": lambda s, model, limit, **kw: s.list_check_reports(
        model, limit=100 if limit is None else limit, **kw
    ),
}
