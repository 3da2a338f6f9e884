"""CI/CD gates for models: check a candidate against the champion on one holdout under a policy
(paired, significance-aware comparisons, data and signature checks, budgets, behavioural tests),
store the report, promote only on a passing one, and report to pull requests.

Examples
--------
>>> from mloop.gates import check_model, promote                              # doctest: +SKIP
>>> report = check_model("models:/churn/7", data="holdout.parquet")           # doctest: +SKIP
>>> report.passed, [c.name for c in report.checks if c.blocking]              # doctest: +SKIP
(True, [])
>>> promote("churn", 7, to="champion")                                        # doctest: +SKIP
"""

from __future__ import annotations

from mloop.gates._behaviour import (
    BehaviourTest,
    behaviour_checks,
    discover_behaviour_tests,
    run_behaviour_tests,
)
from mloop.gates._budgets import budget_checks
from mloop.gates._engine import check_model
from mloop.gates._expectations import (
    ExpectationFailed,
    ExpectationResult,
    Skip,
    expect_direction,
    expect_invariance,
    expect_min_functionality,
    skip,
)
from mloop.gates._github import GitHubContext, post_github_comment
from mloop.gates._gitlab import GitLabContext, post_gitlab_note
from mloop.gates._model_under_test import ModelUnderTest
from mloop.gates._policy import Policy, PolicyError, load_policy, parse_policy, policy_hash
from mloop.gates._postdeploy import watch_promotion
from mloop.gates._pr import PostResult, RetryPolicy
from mloop.gates._promote import Promotion, PromotionRefusedError, find_gate_report, promote
from mloop.gates._render import (
    GITHUB_COMMENT_LIMIT,
    comment_marker,
    render_json,
    render_junit,
    render_markdown,
)
from mloop.gates._signature import SignatureProblem, signature_problems
from mloop.gates._stats import PairedComparison, delong_test, mcnemar_test, paired_bootstrap
from mloop.gates._workflows import WORKFLOW_PATHS, ci_workflow

__all__ = [
    "GITHUB_COMMENT_LIMIT",
    "WORKFLOW_PATHS",
    "BehaviourTest",
    "ExpectationFailed",
    "ExpectationResult",
    "GitHubContext",
    "GitLabContext",
    "ModelUnderTest",
    "PairedComparison",
    "Policy",
    "PolicyError",
    "PostResult",
    "Promotion",
    "PromotionRefusedError",
    "RetryPolicy",
    "SignatureProblem",
    "Skip",
    "behaviour_checks",
    "budget_checks",
    "check_model",
    "ci_workflow",
    "comment_marker",
    "delong_test",
    "discover_behaviour_tests",
    "expect_direction",
    "expect_invariance",
    "expect_min_functionality",
    "find_gate_report",
    "load_policy",
    "mcnemar_test",
    "paired_bootstrap",
    "parse_policy",
    "policy_hash",
    "post_github_comment",
    "post_gitlab_note",
    "promote",
    "render_json",
    "render_junit",
    "render_markdown",
    "run_behaviour_tests",
    "signature_problems",
    "skip",
    "watch_promotion",
]
