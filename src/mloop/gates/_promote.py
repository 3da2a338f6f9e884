"""Gated promotion: an alias moves to a version only on a passing check report under the current
policy (or with a recorded override), atomically, and, where a server follows the alias, stays
there only if live traffic agrees."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.gates._policy import Policy, load_policy, policy_hash
from mloop.registry import Registry
from mloop.store import UNSET, CheckReport

__all__ = ["Promotion", "PromotionRefusedError", "find_gate_report", "promote"]


class PromotionRefusedError(ConflictError):
    """The gate said no: no passing check report for this version under the current policy."""

    error_code = "PROMOTION_REFUSED"

    def __init__(self, message: str, *, report_id: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.report_id = report_id


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` did.

    ``report``: the check report the move rests on (None when forced without one).
    ``post_deploy``: the post-deploy report when live traffic was watched; ``rolled_back`` is True
    when it failed and the alias went back to ``previous_version``.
    """

    model: str
    alias: str
    version: int
    previous_version: int | None
    report: CheckReport | None
    forced: bool
    reason: str | None
    post_deploy: CheckReport | None = None

    @property
    def rolled_back(self) -> bool:
        return (
            self.post_deploy is not None
            and not self.post_deploy.passed
            and bool(self.post_deploy.extra.get("rolled_back"))
        )


def find_gate_report(
    registry: Registry, name: str, version: int, *, policy_hash: str
) -> CheckReport | None:
    """The newest ``check`` report of ``name``/``version`` under the policy with this hash."""
    reports = registry.store.list_check_reports(
        name, version=version, kind="check", policy_hash=policy_hash, limit=1
    )
    return reports[0] if reports else None


def _current(registry: Registry, name: str, alias: str) -> int | None:
    try:
        return registry.store.get_alias(name, alias).version
    except NotFoundError:
        return None


def promote(
    name: str,
    version: int,
    *,
    to: str = "champion",
    policy: Policy | str | os.PathLike[str] | None = None,
    registry: Registry | None = None,
    force: bool = False,
    reason: str | None = None,
    expected_version: Any = UNSET,
    watch: bool | None = None,
    watch_options: dict[str, Any] | None = None,
) -> Promotion:
    """Move ``name@to`` to ``version`` if its check report passed under the current policy.

    Parameters
    ----------
    name, version :
        The registered version to promote.
    to : str, default "champion"
        The alias to move.
    policy : Policy, path, or None
        The current policy (default: ``./mloop.yaml`` when it exists, else the default policy).
        Only a report written under this exact policy (same hash) counts.
    force, reason :
        Promote without a passing report. ``reason`` is required and recorded, with a
        ``promotion_overridden`` event naming the report that failed (or that none existed).
    expected_version : int or None, optional
        Move only if the alias points at this version now (None: only if it does not exist yet).
        Default: the version it points at when the check is read, so a concurrent promotion makes
        this one fail rather than be overwritten.
    watch : bool, optional
        Run the policy's post-deploy check after the move (default: when the policy has a
        ``post_deploy`` section). A failing post-deploy check rolls the alias back.
    watch_options : dict, optional
        Overrides for the post-deploy check (e.g. ``endpoints``, ``window_s``).

    Raises
    ------
    PromotionRefusedError
        No passing report under the current policy (the message says what failed and how to
        override).
    ConflictError
        The alias moved since ``expected_version`` (nothing changed).
    """
    registry = registry or Registry()
    if not isinstance(to, str) or not to:
        raise InvalidInputError(f"`to` must name an alias; got {to!r}.")
    target = registry.get_version(name, version)
    version = target.version
    if target.deleted:
        raise InvalidInputError(f"{target.uri} was deleted; it cannot be promoted.")
    if force and not (isinstance(reason, str) and reason.strip()):
        raise InvalidInputError(
            "a forced promotion needs a `reason`; it is recorded in the audit trail."
        )
    pol, _src = (policy, None) if isinstance(policy, Policy) else load_policy(policy)
    h = policy_hash(pol)
    previous = _current(registry, name, to)
    report = find_gate_report(registry, name, version, policy_hash=h)
    problem = _why_not(report, name, version, to, previous, h)
    if problem is not None and not force:
        raise PromotionRefusedError(
            f"{problem} Run `mloop check --candidate models:/{name}/{version}` under the current "
            "policy, or promote with --force --reason '...' (recorded).",
            report_id=None if report is None else report.id,
            details={"model": name, "version": version, "alias": to, "policy_hash": h},
        )
    if problem is not None:
        registry.store.add_event(
            "promotion_overridden",
            name,
            version=version,
            alias=to,
            actor=registry.actor,
            reason=reason,
            report_id=None if report is None else report.id,
            before=previous,
            after={"version": version, "why_refused": problem, "policy_hash": h},
        )
    expected = previous if expected_version is UNSET else expected_version
    if previous == version and expected == previous:
        return Promotion(name, to, version, previous, report, problem is not None, reason)
    registry.set_alias(
        name,
        to,
        version,
        reason=reason or (f"check report {report.id} passed" if report is not None else None),
        expected_version=expected,
        report_id=None if report is None else report.id,
    )
    promotion = Promotion(name, to, version, previous, report, problem is not None, reason)
    post = pol.post_deploy
    if watch is False or (watch is None and (post is None or not post.enabled)):
        return promotion
    return _watch(registry, promotion, pol, watch_options or {})


def _why_not(
    report: CheckReport | None,
    name: str,
    version: int,
    alias: str,
    current: int | None,
    h: str,
) -> str | None:
    if report is None:
        return (
            f"models:/{name}/{version} has no check report under the current policy "
            f"(hash {h[:12]})."
        )
    if not report.passed:
        failing = [c for c in report.checks if c.blocking]
        said = "; ".join(f"{c.name}: {c.summary}" for c in failing[:3])
        return f"The latest check report of models:/{name}/{version} ({report.id}) failed: {said}"
    if current is not None and current != version and report.baseline_version != current:
        was = (
            "no baseline"
            if report.baseline_version is None
            else f"version {report.baseline_version}"
        )
        return (
            f"The check report {report.id} compared with {was}, but {name}@{alias} is now "
            f"version {current}: the check is stale."
        )
    return None


def _watch(
    registry: Registry, promotion: Promotion, pol: Policy, options: dict[str, Any]
) -> Promotion:
    from mloop.gates._postdeploy import watch_promotion

    post = pol.post_deploy.model_dump() if pol.post_deploy is not None else {}
    post.pop("enabled", None)
    post.update(options)
    reference = None
    if promotion.report is not None:
        reference = (promotion.report.extra.get("predictions") or {}).get("sample")
    result = watch_promotion(
        registry,
        name=promotion.model,
        alias=promotion.alias,
        version=promotion.version,
        previous_version=promotion.previous_version,
        reference_predictions=reference,
        gate_report_id=None if promotion.report is None else promotion.report.id,
        actor=registry.actor,
        **post,
    )
    return Promotion(
        promotion.model,
        promotion.alias,
        promotion.version,
        promotion.previous_version,
        promotion.report,
        promotion.forced,
        promotion.reason,
        post_deploy=result,
    )
