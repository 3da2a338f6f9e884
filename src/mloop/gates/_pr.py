"""What GitHub and GitLab report posting share: the result of a post, the upsert of one comment
found by its hidden marker, retries on server errors, and the fallbacks when there is no API to
write to.

A report is never lost: when a comment cannot be written (no token, not a pull-request build, a
read-only token on a fork's PR, an API refusal), the Markdown goes to the job's summary file or to
a file the job exposes as an artifact, and the result says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from mloop.errors import InvalidInputError

__all__ = ["PostResult", "RetryPolicy"]

Destination = Literal["comment", "step_summary", "file", "none"]
Action = Literal["created", "updated", "appended", "written", "none"]


@dataclass(frozen=True)
class PostResult:
    """Where a report's Markdown went, and why there.

    Attributes
    ----------
    destination : str
        ``"comment"`` (a PR comment or MR note), ``"step_summary"`` (``$GITHUB_STEP_SUMMARY``),
        ``"file"`` (a Markdown file for the job's artifacts) or ``"none"`` (nowhere: the caller
        should print it).
    message : str
        What happened, in a sentence (never the token).
    action : str
        ``"created"``, ``"updated"`` (the marked comment, in place), ``"appended"`` (to the
        summary), ``"written"`` (the file) or ``"none"``.
    comment_id, url :
        The comment's id and web address, when one was written.
    path :
        The summary file or Markdown file written, when one was.
    api_status :
        The HTTP status of the API answer that made the post fall back (403 on a fork's PR,
        422, a 5xx after the retries), or None.
    """

    destination: Destination
    message: str
    action: Action = "none"
    comment_id: int | None = None
    url: str | None = None
    path: str | None = None
    api_status: int | None = None

    @property
    def commented(self) -> bool:
        """True when the report is on the pull request itself."""
        return self.destination == "comment"


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for server errors (5xx) and failed connections; a 4xx is never retried.

    ``attempts`` tries in all, waiting ``backoff``, ``2*backoff``, ... (at most ``max_wait``)
    seconds between them.
    """

    attempts: int = 4
    backoff: float = 1.0
    max_wait: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise InvalidInputError(f"`attempts` must be an int >= 1; got {self.attempts!r}.")
        if not self.backoff >= 0 or not self.max_wait >= 0:
            raise InvalidInputError(
                f"`backoff` and `max_wait` must be >= 0 seconds; got {self.backoff!r} and "
                f"{self.max_wait!r}."
            )


class ApiError(Exception):
    """An API answer that ends the post: ``retryable`` for a 5xx."""

    def __init__(self, response: httpx.Response, what: str) -> None:
        self.status = response.status_code
        self.retryable = response.status_code >= 500
        self.detail = _api_message(response)
        super().__init__(
            f"{what}: HTTP {self.status}" + (f" ({self.detail})" if self.detail else "")
        )


def _api_message(response: httpx.Response) -> str:
    """The API's own explanation (GitHub's and GitLab's ``message``), shortened."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or ""
        errors = body.get("errors")
        if errors:
            msg = f"{msg}: {errors}" if msg else str(errors)
        return str(msg)[:300]
    return ""


def checked(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code >= 400:
        raise ApiError(response, what)
    return response


def pages(
    client: httpx.Client,
    url: str,
    *,
    params: dict[str, Any],
    headers: dict[str, str],
    what: str,
) -> Iterator[Any]:
    """Every item of a paginated list, following ``Link: <...>; rel="next"`` (GitHub, GitLab)
    and GitLab's ``X-Next-Page`` when there is no Link header."""
    next_url: str | None = url
    next_params: dict[str, Any] | None = params
    seen = 0
    while next_url is not None:
        response = checked(client.get(next_url, params=next_params, headers=headers), what)
        items = response.json()
        if not isinstance(items, list):
            raise ApiError(response, f"{what}: expected a list")
        yield from items
        seen += 1
        if seen > 1000:  # a server that always says "next" must not loop forever
            return
        link = response.links.get("next", {}).get("url")
        if link and not _same_origin(link, url):
            # The token goes with every request: never to a host the API did not name itself.
            raise ApiError(response, f"{what}: the next page is on another host ({link})")
        if link:
            next_url, next_params = link, None  # the link carries the query string
        elif response.headers.get("x-next-page", "").strip():
            next_url = url
            next_params = {**params, "page": response.headers["x-next-page"].strip()}
        else:
            next_url = None


def _same_origin(a: str, b: str) -> bool:
    ua, ub = httpx.URL(a), httpx.URL(b)
    return (ua.scheme, ua.host, ua.port) == (ub.scheme, ub.host, ub.port)


def with_retries(policy: RetryPolicy, attempt: Callable[[], PostResult]) -> PostResult:
    """``attempt()`` again after a 5xx or a connection failure (whole upserts are retried, so
    a POST that the server applied before failing is found by its marker, not posted twice)."""

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, httpx.TransportError) or (
            isinstance(exc, ApiError) and exc.retryable
        )

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential(multiplier=policy.backoff, max=policy.max_wait),
        retry=retry_if_exception(retryable),
        reraise=True,
    )
    return retrying(attempt)


def with_marker(body: str, marker: str) -> str:
    """``body`` with ``marker`` as its first line (unless it already holds it)."""
    if not marker.strip():
        raise InvalidInputError("`marker` must be a non-empty string (comment_marker(model)).")
    return body if marker in body else f"{marker}\n{body}"


def append_summary(path: Path, body: str, *, why: str, status: int | None) -> PostResult:
    """Append ``body`` to a job summary file (``$GITHUB_STEP_SUMMARY``)."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(body if body.endswith("\n") else body + "\n")
    return PostResult(
        "step_summary",
        f"{why}; the report was added to the job summary.",
        action="appended",
        path=str(path),
        api_status=status,
    )


def write_file(path: Path, body: str, *, why: str, status: int | None) -> PostResult:
    """Write ``body`` to a Markdown file the job can expose as an artifact."""
    path.write_text(body if body.endswith("\n") else body + "\n", encoding="utf-8")
    return PostResult(
        "file",
        f"{why}; the report was written to {path} (expose it as a job artifact).",
        action="written",
        path=str(path),
        api_status=status,
    )


_NO_WRITE_HINT = {
    "GitHub": "the token cannot write comments here: a fork's pull request gets a read-only "
    "token, and a workflow without `permissions: pull-requests: write` or a wrong repository "
    "gives the same answer",
    "GitLab": "the token cannot write notes here: it needs the `api` scope and at least the "
    "Reporter role on the project",
}


def failure_reason(exc: BaseException, *, host: str) -> tuple[str, int | None]:
    """Why a post failed, in words, and the HTTP status behind it."""
    if isinstance(exc, ApiError):
        if exc.status in (401, 403, 404):
            hint = _NO_WRITE_HINT.get(host, "the token cannot write here")
            return f"{host} answered {exc.status} ({hint}){_detail(exc)}", exc.status
        if exc.retryable:
            return f"{host} kept failing: {exc}", exc.status
        return f"{host} refused the comment: {exc}", exc.status
    return f"could not reach {host}: {type(exc).__name__}: {exc}", None


def _detail(exc: ApiError) -> str:
    return f": {exc.detail}" if exc.detail else ""


def user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"mloop/{version('mloop')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "mloop"
