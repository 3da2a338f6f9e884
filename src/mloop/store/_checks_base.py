"""Check reports as records: a gate's verdict on one model version, written once, read by promotion.

A :class:`~mloop.store.CheckReport` is validated here as a whole (its ``status`` must agree with
its checks), then stored with its whole body in the wire codec's JSON and announced by a
``report_attached`` event of the registry log, appended in the transaction that writes it.
Reports are immutable: putting a second report with the same ``id`` is refused, and a new check
writes a new report.

A report is linked to an existing model version: a report for a missing or deleted version is
refused. Deleting a version (a soft delete) keeps its reports, as it keeps its tags and metrics.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence

from mloop.errors import InvalidInputError
from mloop.ids import RUN_ID_RE
from mloop.store._check_entities import (
    CHECK_KINDS,
    CHECK_STATUSES,
    REPORT_KINDS,
    CheckReport,
    CheckResult,
)
from mloop.store._common import validate_max_results
from mloop.store._registry_base import validate_model_name, validate_version
from mloop.store._validation import MAX_KEY_LENGTH, validate_sha256, validate_text

__all__ = [
    "MAX_REPORT_BYTES",
    "REPORT_STATUSES",
    "CheckStoreMixin",
    "decode_report",
    "encode_report",
    "validate_check_report",
]

# A report's own status: a check may also warn, skip or error, a report passes or fails.
REPORT_STATUSES: tuple[str, ...] = ("pass", "fail")
# The body as JSON: generous for per-column details and prediction summaries, bounded so that
# one runaway report cannot fill a row that every listing reads.
MAX_REPORT_BYTES = 16 * 2**20
MAX_URI = 1000
MAX_TEXT = 8000


# ---------------------------------------------------------------------------------------- validation


def _text(value: object, *, what: str, limit: int, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        shown = repr(value) if not isinstance(value, str) else f"{len(value)} characters"
        raise InvalidInputError(
            f"`{what}` must be a str of at most {limit} characters"
            + (" or None" if optional else "")
            + f"; got {shown}."
        )
    return validate_text(value, what=f"`{what}`")


def _non_empty(value: object, *, what: str, limit: int) -> str:
    text = _text(value, what=what, limit=limit)
    if not text:
        raise InvalidInputError(f"`{what}` must be a non-empty str; got ''.")
    return text


def _one_of(value: object, allowed: Sequence[str], *, what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInputError(f"`{what}` must be one of {list(allowed)}; got {value!r}.")
    return value


def _int(value: object, *, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**63:
        raise InvalidInputError(f"`{what}` must be an int >= {low}; got {value!r}.")
    return value


def _duration(value: object, *, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidInputError(f"`{what}` must be a finite number >= 0 (ms); got {value!r}.")
    return float(value)


def _mapping(value: object, *, what: str) -> None:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"`{what}` must be a mapping; got {type(value).__name__}.")


def _validate_check(c: object, *, what: str) -> CheckResult:
    if not isinstance(c, CheckResult):
        raise InvalidInputError(f"`{what}` must be a CheckResult; got {type(c).__name__}.")
    _non_empty(c.name, what=f"{what}.name", limit=MAX_KEY_LENGTH)
    _one_of(c.kind, CHECK_KINDS, what=f"{what}.kind")
    _one_of(c.status, CHECK_STATUSES, what=f"{what}.status")
    _text(c.summary, what=f"{what}.summary", limit=MAX_TEXT)
    _text(c.compared, what=f"{what}.compared", limit=MAX_TEXT)
    _mapping(c.numbers, what=f"{what}.numbers")
    if not isinstance(c.details, (tuple, list)):
        raise InvalidInputError(
            f"`{what}.details` must be a tuple of mappings; got {type(c.details).__name__}."
        )
    for i, row in enumerate(c.details):
        _mapping(row, what=f"{what}.details[{i}]")
    _duration(c.duration_ms, what=f"{what}.duration_ms")
    return c


def validate_check_report(report: object) -> CheckReport:
    """``report`` if it is a complete, self-consistent :class:`CheckReport`.

    Parameters
    ----------
    report : CheckReport

    Returns
    -------
    CheckReport
        ``report`` itself.

    Raises
    ------
    InvalidInputError
        Naming the first field that is wrong (``report.checks[1].kind``, ...): an ``id`` that is
        not 32 lowercase hex characters, an unknown kind or status, a ``status`` that disagrees
        with the checks (``"fail"`` exactly when a check has status ``fail`` or ``error``), two
        checks with one name, a ``policy_hash`` that is not a sha256, text too long.

    Examples
    --------
    >>> from mloop.store import CheckReport
    >>> r = CheckReport(
    ...     id="0" * 32, model="churn", version=2, kind="check", status="fail",
    ...     candidate_uri="models:/churn/2", baseline_uri=None, baseline_version=None,
    ...     policy_hash="a" * 64, policy={}, data={}, checks=(), created_ms=0, duration_ms=1.0,
    ... )
    >>> validate_check_report(r)
    Traceback (most recent call last):
    ...
    mloop.errors.InvalidInputError: `report.status` must be 'pass' when no check has status 'fail' or 'error'; got 'fail'.
    """
    if not isinstance(report, CheckReport):
        raise InvalidInputError(f"`report` must be a CheckReport; got {type(report).__name__}.")
    r = report
    if not isinstance(r.id, str) or not RUN_ID_RE.fullmatch(r.id):
        raise InvalidInputError(f"`report.id` must be 32 lowercase hex characters; got {r.id!r}.")
    validate_model_name(r.model)
    validate_version(r.version)
    _one_of(r.kind, REPORT_KINDS, what="report.kind")
    _one_of(r.status, REPORT_STATUSES, what="report.status")
    _non_empty(r.candidate_uri, what="report.candidate_uri", limit=MAX_URI)
    _text(r.baseline_uri, what="report.baseline_uri", limit=MAX_URI, optional=True)
    if r.baseline_version is not None:
        _int(r.baseline_version, what="report.baseline_version", low=1)
    validate_sha256(r.policy_hash, name="report.policy_hash")
    for name in ("policy", "data", "extra"):
        _mapping(getattr(r, name), what=f"report.{name}")
    if not isinstance(r.checks, (tuple, list)):
        raise InvalidInputError(
            f"`report.checks` must be a tuple of CheckResult; got {type(r.checks).__name__}."
        )
    seen: set[str] = set()
    for i, c in enumerate(r.checks):
        _validate_check(c, what=f"report.checks[{i}]")
        if c.name in seen:
            raise InvalidInputError(
                f"`report.checks[{i}].name` must be unique in the report; got {c.name!r} twice."
            )
        seen.add(c.name)
    blocking = [c.name for c in r.checks if c.blocking]
    if blocking and r.status != "fail":
        raise InvalidInputError(
            f"`report.status` must be 'fail' when a check fails or errors ({blocking}); "
            f"got {r.status!r}."
        )
    if not blocking and r.status != "pass":
        raise InvalidInputError(
            "`report.status` must be 'pass' when no check has status 'fail' or 'error'; "
            f"got {r.status!r}."
        )
    _int(r.created_ms, what="report.created_ms", low=0)
    _duration(r.duration_ms, what="report.duration_ms")
    _text(r.actor, what="report.actor", limit=255, optional=True)
    return r


def encode_report(report: CheckReport) -> str:
    """The report's body as stored: the wire codec's JSON of ``report.to_dict()``."""
    from mloop.codec import dumps, fields_to_wire

    # ``to_dict()`` itself, with errors naming the field as ``report.checks[0].numbers[...]``.
    body = dumps(fields_to_wire(report, what="report"))
    if len(body) > MAX_REPORT_BYTES:  # ASCII text: characters are bytes
        raise InvalidInputError(
            f"`report` must be at most {MAX_REPORT_BYTES} bytes as JSON; got {len(body)}. "
            "Keep large detail (per-row predictions, ...) in artifacts and refer to them."
        )
    return body


def decode_report(body: str) -> CheckReport:
    """The report a stored body holds (:meth:`CheckReport.from_dict` of the codec's JSON)."""
    from mloop.codec import loads

    return CheckReport.from_dict(loads(body, what="stored check report"))


# ---------------------------------------------------------------------------------------- contract


class CheckStoreMixin(abc.ABC):
    """Check reports, linked to model versions and announced in the registry log."""

    def put_check_report(self, report: CheckReport) -> CheckReport:
        """Store ``report`` and append its ``report_attached`` event, in one transaction.

        Parameters
        ----------
        report : CheckReport
            Validated as a whole by :func:`validate_check_report`; its ``model`` and
            ``version`` must name an existing version that is not deleted.

        Returns
        -------
        CheckReport
            The report as stored, equal to what :meth:`get_check_report` returns: the wire
            codec's reading of it (tuples for sequences; a non-finite float in a free-form
            mapping such as ``numbers`` reads back as its wire spelling, ``"NaN"``,
            ``"Infinity"`` or ``"-Infinity"``).

        Raises
        ------
        InvalidInputError
            The report is malformed or inconsistent (see :func:`validate_check_report`), or
            its body is larger than ``MAX_REPORT_BYTES`` as JSON.
        NotFoundError
            The model, or the version, does not exist, or the version is deleted.
        AlreadyExistsError
            A report with this ``id`` exists: reports are immutable.
        """
        r = validate_check_report(report)
        body = encode_report(r)
        return self._do_put_check_report(r, body)

    def get_check_report(self, report_id: str) -> CheckReport:
        """The report ``report_id`` (:class:`~mloop.errors.NotFoundError` when there is none)."""
        if not isinstance(report_id, str) or not RUN_ID_RE.fullmatch(report_id):
            raise InvalidInputError(
                f"`report_id` must be 32 lowercase hex characters; got {report_id!r}."
            )
        return self._do_get_check_report(report_id)

    def list_check_reports(
        self,
        model: str,
        *,
        version: int | None = None,
        kind: str | None = None,
        status: str | None = None,
        policy_hash: str | None = None,
        limit: int = 100,
    ) -> list[CheckReport]:
        """The reports on ``model``'s versions, newest first.

        Newest is the latest ``created_ms``; reports created in the same millisecond come in
        reverse order of writing. Reports of deleted versions are listed too.

        Parameters
        ----------
        model : str
            A registered model (:class:`~mloop.errors.NotFoundError` if it does not exist).
        version, kind, status, policy_hash : optional
            Keep only the reports on this version, of this kind (:data:`REPORT_KINDS`), with
            this status (``"pass"`` or ``"fail"``), under this policy.
        limit : int, default 100
            At most this many reports, in [1, 50000].
        """
        validate_model_name(model)
        if version is not None:
            validate_version(version)
        if kind is not None:
            _one_of(kind, REPORT_KINDS, what="kind")
        if status is not None:
            _one_of(status, REPORT_STATUSES, what="status")
        if policy_hash is not None:
            validate_sha256(policy_hash, name="policy_hash")
        validate_max_results(limit, name="limit")
        return self._do_list_check_reports(model, version, kind, status, policy_hash, limit)

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _do_put_check_report(self, report: CheckReport, body: str) -> CheckReport:
        """Write ``report`` (``body`` is its encoded form) and its event in one transaction."""

    @abc.abstractmethod
    def _do_get_check_report(self, report_id: str) -> CheckReport: ...
    @abc.abstractmethod
    def _do_list_check_reports(
        self,
        model: str,
        version: int | None,
        kind: str | None,
        status: str | None,
        policy_hash: str | None,
        limit: int,
    ) -> list[CheckReport]: ...
