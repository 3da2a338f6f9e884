"""Check reports: what a gate compared, the numbers, and why each check passed or failed.

A :class:`CheckReport` is written once (by ``mloop check`` or a post-deploy check), linked to the
candidate's model version, and announced as a ``report_attached`` event; promotion refers to it by
``id``. Reports are immutable: a new check writes a new report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop.codec import WireEntity

__all__ = [
    "CHECK_KINDS",
    "CHECK_STATUSES",
    "REPORT_KINDS",
    "CheckKind",
    "CheckReport",
    "CheckResult",
    "CheckStatus",
]

CheckStatus = Literal["pass", "fail", "warn", "skip", "error"]
CHECK_STATUSES: tuple[str, ...] = CheckStatus.__args__  # type: ignore[attr-defined]

CheckKind = Literal[
    "threshold",
    "non_regression",
    "slice",
    "data",
    "signature",
    "budget",
    "behaviour",
    "post_deploy",
]
CHECK_KINDS: tuple[str, ...] = CheckKind.__args__  # type: ignore[attr-defined]

# "check": a candidate against a baseline on a holdout (``mloop check``); "post_deploy": live
# traffic after a promotion moved an alias that a server follows.
REPORT_KINDS: tuple[str, ...] = ("check", "post_deploy")


@dataclass(frozen=True)
class CheckResult(WireEntity):
    """One check's verdict.

    Attributes
    ----------
    name : str
        Stable identifier, e.g. ``"non_regression:roc_auc"``, ``"slice:plan=basic:accuracy"``.
    kind : str
        One of :data:`CHECK_KINDS`.
    status : str
        ``"pass"``, ``"fail"`` (blocks promotion), ``"warn"`` (reported, does not block),
        ``"skip"`` (could not apply, with the reason in ``summary``) or ``"error"`` (the check
        itself broke; blocks promotion).
    summary : str
        One sentence a reviewer understands: what was compared, the result and why it passed or
        failed.
    compared : str
        What was compared with what (e.g. ``"models:/churn/7 vs models:/churn/6 on 5,000 rows"``).
    numbers : mapping
        The numbers behind the verdict (candidate, baseline, delta, ci_low, ci_high, p_value,
        threshold, ...), JSON-safe.
    details : tuple of mappings
        Per-column or per-test detail rows (drifted columns, failing behavioural cases, ...).
    duration_ms : float
        How long the check took.
    """

    name: str
    kind: str
    status: str
    summary: str
    compared: str = ""
    numbers: Mapping[str, Any] = field(default_factory=dict)
    details: tuple[Mapping[str, Any], ...] = ()
    duration_ms: float = 0.0

    @property
    def blocking(self) -> bool:
        """True when this result stops a promotion (``fail`` or ``error``)."""
        return self.status in ("fail", "error")


@dataclass(frozen=True)
class CheckReport(WireEntity):
    """A gate's report on one candidate model version.

    Attributes
    ----------
    id : str
        32 hex characters; what promotions and events refer to.
    model, version :
        The candidate's registered model and version (the report is linked to it).
    kind : str
        ``"check"`` or ``"post_deploy"`` (:data:`REPORT_KINDS`).
    status : str
        ``"pass"`` when no check is ``fail`` or ``error``, else ``"fail"``.
    candidate_uri, baseline_uri, baseline_version :
        What was checked and what it was compared with (``baseline_*`` None when there was no
        baseline, e.g. the first version of a model).
    policy_hash : str
        sha256 of the resolved policy in canonical JSON: promotion requires a passing report under
        the *current* policy's hash.
    policy : mapping
        The resolved policy itself (so the report explains itself).
    data : mapping
        The evaluation data: ``uri``, ``rows``, ``sha256`` (content digest), ``target``.
    checks : tuple of CheckResult
    created_ms, duration_ms, actor :
        When, how long, who.
    extra : mapping
        Anything later steps need, e.g. ``predictions``: a summary of the candidate's predictions on
        the holdout that the post-deploy check compares live traffic with.
    """

    id: str
    model: str
    version: int
    kind: str
    status: str
    candidate_uri: str
    baseline_uri: str | None
    baseline_version: int | None
    policy_hash: str
    policy: Mapping[str, Any]
    data: Mapping[str, Any]
    checks: tuple[CheckResult, ...]
    created_ms: int
    duration_ms: float
    actor: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def check(self, name: str) -> CheckResult:
        """The result named ``name`` (KeyError when the report has none)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)
