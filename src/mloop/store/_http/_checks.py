"""Check reports over HTTP: a gate's report travels whole, in the wire codec's form, and is
validated again by the server's store (role ``write`` to put one, ``read`` to read)."""

from __future__ import annotations

from typing import Any

from mloop.store._check_entities import CheckReport
from mloop.store._http._endpoint import Endpoint

__all__ = ["CHECK_ENDPOINTS", "HttpChecksMixin"]

_E = Endpoint
CHECK_ENDPOINTS: tuple[Endpoint, ...] = (
    _E("put_check_report", "PUT", "/check-reports/{report_id}",
       {"report_id": str, "report": CheckReport}, CheckReport,
       summary="Store a gate's report on a model version (immutable: once per id)"),
    _E("get_check_report", "GET", "/check-reports/{report_id}", {"report_id": str},
       CheckReport, summary="One check report"),
    _E("list_check_reports", "GET", "/check-reports",
       {"model": str, "version": int | None, "kind": str | None, "status": str | None,
        "policy_hash": str | None, "limit": int | None},
       list[CheckReport], summary="A model's check reports, newest first, filtered"),
)  # fmt: skip


class HttpChecksMixin:
    """Check reports, each hook one request; the report travels whole in the codec's form."""

    def _call(self, endpoint: str, /, **values: Any) -> Any:  # provided by HttpStore
        raise NotImplementedError

    def _do_put_check_report(self, report: CheckReport, body: str) -> CheckReport:
        return self._call("put_check_report", report_id=report.id, report=report)

    def _do_get_check_report(self, report_id: str) -> CheckReport:
        return self._call("get_check_report", report_id=report_id)

    def _do_list_check_reports(
        self,
        model: str,
        version: int | None,
        kind: str | None,
        status: str | None,
        policy_hash: str | None,
        limit: int,
    ) -> list[CheckReport]:
        return self._call(
            "list_check_reports",
            model=model,
            version=version,
            kind=kind,
            status=status,
            policy_hash=policy_hash,
            limit=limit,
        )
