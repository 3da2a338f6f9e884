"""A check report on a GitHub pull request: one comment per model, updated in place.

The comment is found by its hidden marker (:func:`~mloop.gates.comment_marker`) among the PR's
issue comments (every page), then edited; when there is none it is created. Without a token, on
a build that is not a pull request, or when GitHub refuses the write (a fork's PR runs with a
read-only token), the Markdown is appended to the job summary (``$GITHUB_STEP_SUMMARY``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from mloop.errors import InvalidInputError
from mloop.gates._pr import (
    ApiError,
    PostResult,
    RetryPolicy,
    append_summary,
    checked,
    failure_reason,
    pages,
    user_agent,
    with_marker,
    with_retries,
)

__all__ = ["GitHubContext", "post_github_comment"]

DEFAULT_API_URL = "https://api.github.com"
_REPO_RE = re.compile(r"^[\w.-]+/[\w.-]+$")
_PR_REF_RE = re.compile(r"^refs/pull/(\d+)/")


@dataclass(frozen=True)
class GitHubContext:
    """Where a GitHub Actions job would comment.

    Attributes
    ----------
    repository : str or None
        ``owner/name`` (``GITHUB_REPOSITORY``).
    pr_number : int or None
        The pull request (``--pr``, else the event's ``pull_request.number``), None when the
        build is not for a pull request.
    token : str or None
        ``GITHUB_TOKEN`` or ``GH_TOKEN``; never printed (``repr`` hides it).
    api_url : str
        ``GITHUB_API_URL`` (GitHub Enterprise Server has its own), default
        ``https://api.github.com``.
    step_summary : Path or None
        ``GITHUB_STEP_SUMMARY``: the file whose Markdown the run's summary page shows.
    """

    repository: str | None
    pr_number: int | None
    token: str | None = None
    api_url: str = DEFAULT_API_URL
    step_summary: Path | None = None

    def __repr__(self) -> str:
        token = "***" if self.token else None
        return (
            f"GitHubContext(repository={self.repository!r}, pr_number={self.pr_number!r}, "
            f"token={token!r}, api_url={self.api_url!r}, step_summary={self.step_summary!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, pr: int | None = None) -> GitHubContext:
        """The context of a GitHub Actions job from its environment variables.

        Parameters
        ----------
        env : mapping
            The job's environment (the CLI passes ``os.environ``).
        pr : int, optional
            The pull request number, overriding what the event says.

        Raises
        ------
        InvalidInputError
            ``pr`` is not a positive int, or ``GITHUB_REPOSITORY`` is not ``owner/name``.
        """
        if pr is not None and (isinstance(pr, bool) or not isinstance(pr, int) or pr < 1):
            raise InvalidInputError(f"`pr` must be a positive int (a PR number); got {pr!r}.")
        repository = env.get("GITHUB_REPOSITORY", "").strip() or None
        if repository is not None and not _REPO_RE.match(repository):
            raise InvalidInputError(f"GITHUB_REPOSITORY must be 'owner/name'; got {repository!r}.")
        token = (env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or "").strip() or None
        summary = env.get("GITHUB_STEP_SUMMARY", "").strip()
        return cls(
            repository=repository,
            pr_number=pr if pr is not None else _pr_from_env(env),
            token=token,
            api_url=(env.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/"),
            step_summary=Path(summary) if summary else None,
        )


def _pr_from_env(env: Mapping[str, str]) -> int | None:
    """The PR number of a ``pull_request``/``pull_request_target`` event (its payload file), else
    of a ``refs/pull/N/merge`` ref; None on a push or a schedule."""
    path = env.get("GITHUB_EVENT_PATH", "").strip()
    if path:
        try:
            event = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            event = None
        if isinstance(event, dict):
            number = _int(_get(event, "pull_request", "number"))
            issue = event.get("issue")
            if number is None and isinstance(issue, dict) and "pull_request" in issue:
                number = _int(issue.get("number"))  # an issue_comment event on a PR
            if number is not None:
                return number
    match = _PR_REF_RE.match(env.get("GITHUB_REF", ""))
    return int(match.group(1)) if match else None


def _get(obj: dict[str, Any], *keys: str) -> Any:
    cur: Any = obj
    for k in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _fallback(ctx: GitHubContext, body: str, why: str, status: int | None = None) -> PostResult:
    if ctx.step_summary is not None:
        return append_summary(ctx.step_summary, body, why=why, status=status)
    return PostResult("none", f"{why}; GITHUB_STEP_SUMMARY is not set either.", api_status=status)


def post_github_comment(
    body: str,
    *,
    marker: str,
    context: GitHubContext,
    retry: RetryPolicy | None = None,
    client: httpx.Client | None = None,
    timeout: float = 30.0,
) -> PostResult:
    """Create or update the pull request's comment that holds ``marker``.

    Parameters
    ----------
    body : str
        The comment's Markdown (:func:`~mloop.gates.render_markdown`); ``marker`` is put first
        when it does not hold it already.
    marker : str
        The hidden line that identifies the comment (:func:`~mloop.gates.comment_marker`).
    context : GitHubContext
        Repository, PR, token, API address and summary file (``GitHubContext.from_env``).
    retry : RetryPolicy, optional
        Retries on 5xx answers and failed connections (4 attempts, 1 s backoff by default); a
        4xx is never retried.
    client : httpx.Client, optional
        The HTTP client to use (one is made, and closed, otherwise).

    Returns
    -------
    PostResult
        ``destination="comment"`` with the comment's id and URL, or where the report went
        instead (the job summary) and why.
    """
    body = with_marker(body, marker)
    ctx = context
    if not ctx.token:
        return _fallback(ctx, body, "no GitHub token (set GITHUB_TOKEN or GH_TOKEN)")
    if ctx.repository is None:
        return _fallback(ctx, body, "GITHUB_REPOSITORY is not set, so there is no repository")
    if ctx.pr_number is None:
        return _fallback(ctx, body, "this build is not for a pull request (pass --pr N)")

    own = client is None
    http = client or httpx.Client(timeout=timeout)
    headers = {
        "Authorization": f"Bearer {ctx.token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": user_agent(),
    }
    base = f"{ctx.api_url}/repos/{ctx.repository}"

    def attempt() -> PostResult:
        comments = pages(
            http,
            f"{base}/issues/{ctx.pr_number}/comments",
            params={"per_page": 100},
            headers=headers,
            what="listing the pull request's comments",
        )
        found = next(
            (c for c in comments if isinstance(c, dict) and marker in (c.get("body") or "")),
            None,
        )
        if found is not None:
            response = checked(
                http.patch(
                    f"{base}/issues/comments/{found['id']}", json={"body": body}, headers=headers
                ),
                "updating the report comment",
            )
            action: Literal["created", "updated"] = "updated"
        else:
            response = checked(
                http.post(
                    f"{base}/issues/{ctx.pr_number}/comments", json={"body": body}, headers=headers
                ),
                "creating the report comment",
            )
            action = "created"
        data = response.json()
        return PostResult(
            "comment",
            f"{action} comment {data.get('id')} on pull request #{ctx.pr_number} of "
            f"{ctx.repository}",
            action=action,
            comment_id=data.get("id"),
            url=data.get("html_url"),
        )

    try:
        return with_retries(retry or RetryPolicy(), attempt)
    except (ApiError, httpx.HTTPError, ValueError) as exc:  # ValueError: a body that is not JSON
        why, status = failure_reason(exc, host="GitHub")
        return _fallback(ctx, body, why, status)
    finally:
        if own:
            http.close()
