"""CI/CD gates for models: paired, significance-aware comparisons of a candidate with the champion
on the same holdout (the statistics that checks and promotion are built on)."""

from __future__ import annotations

from mloop.gates._behaviour import (
    BehaviourTest,
    behaviour_checks,
    discover_behaviour_tests,
    run_behaviour_tests,
)
from mloop.gates._budgets import budget_checks
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
from mloop.gates._pr import PostResult, RetryPolicy
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
    "PostResult",
    "RetryPolicy",
    "SignatureProblem",
    "Skip",
    "behaviour_checks",
    "budget_checks",
    "ci_workflow",
    "comment_marker",
    "delong_test",
    "discover_behaviour_tests",
    "expect_direction",
    "expect_invariance",
    "expect_min_functionality",
    "mcnemar_test",
    "paired_bootstrap",
    "post_github_comment",
    "post_gitlab_note",
    "render_json",
    "render_junit",
    "render_markdown",
    "run_behaviour_tests",
    "signature_problems",
    "skip",
]
