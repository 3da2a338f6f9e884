"""A check report on a GitLab merge request: one note per model, updated in place.

The note is found by its hidden marker among the merge request's notes (every page), then
edited; when there is none it is created. Without a token, outside a merge-request pipeline, or
when GitLab refuses the write, the Markdown is written to a file (``mloop-check-report.md``) that
the job exposes as an artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import httpx

from mloop.errors import InvalidInputError
from mloop.gates._pr import (
    ApiError,
    PostResult,
    RetryPolicy,
    checked,
    failure_reason,
    pages,
    user_agent,
    with_marker,
    with_retries,
    write_file,
)

__all__ = ["DEFAULT_REPORT_FILE", "GitLabContext", "post_gitlab_note"]

DEFAULT_REPORT_FILE = "mloop-check-report.md"


@dataclass(frozen=True)
class GitLabContext:
    """Where a GitLab CI job would write a merge-request note.

    Attributes
    ----------
    api_url : str or None
        ``CI_API_V4_URL`` (e.g. ``https://gitlab.com/api/v4``).
    project_id : str or None
        ``CI_PROJECT_ID`` (a number, or a ``group/project`` path).
    mr_iid : int or None
        ``CI_MERGE_REQUEST_IID`` (or an explicit ``--pr``); None outside merge-request pipelines.
    token : str or None
        ``MLOOP_GITLAB_TOKEN`` or ``GITLAB_TOKEN`` (a project or personal access token with the
        ``api`` scope; ``CI_JOB_TOKEN`` cannot write notes). Never printed.
    """

    api_url: str | None
    project_id: str | None
    mr_iid: int | None
    token: str | None = None

    def __repr__(self) -> str:
        token = "***" if self.token else None
        return (
            f"GitLabContext(api_url={self.api_url!r}, project_id={self.project_id!r}, "
            f"mr_iid={self.mr_iid!r}, token={token!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, mr: int | None = None) -> GitLabContext:
        """The context of a GitLab CI job from its environment (the CLI passes ``os.environ``).

        Raises
        ------
        InvalidInputError
            ``mr`` or ``CI_MERGE_REQUEST_IID`` is not a positive integer.
        """
        if mr is not None and (isinstance(mr, bool) or not isinstance(mr, int) or mr < 1):
            raise InvalidInputError(f"`mr` must be a positive int (an MR iid); got {mr!r}.")
        iid_text = env.get("CI_MERGE_REQUEST_IID", "").strip()
        if mr is None and iid_text:
            if not iid_text.isdigit() or int(iid_text) < 1:
                raise InvalidInputError(
                    f"CI_MERGE_REQUEST_IID must be a positive integer; got {iid_text!r}."
                )
            mr = int(iid_text)
        token = (env.get("MLOOP_GITLAB_TOKEN") or env.get("GITLAB_TOKEN") or "").strip()
        return cls(
            api_url=(env.get("CI_API_V4_URL", "").strip().rstrip("/") or None),
            project_id=env.get("CI_PROJECT_ID", "").strip() or None,
            mr_iid=mr,
            token=token or None,
        )


def post_gitlab_note(
    body: str,
    *,
    marker: str,
    context: GitLabContext,
    fallback_path: Path | str = DEFAULT_REPORT_FILE,
    retry: RetryPolicy | None = None,
    client: httpx.Client | None = None,
    timeout: float = 30.0,
) -> PostResult:
    """Create or update the merge request's note that holds ``marker``.

    Parameters
    ----------
    body : str
        The note's Markdown; ``marker`` is put first when it does not hold it already.
    marker : str
        The hidden line that identifies the note (:func:`~mloop.gates.comment_marker`).
    context : GitLabContext
        API address, project, merge request and token (``GitLabContext.from_env``).
    fallback_path : path, default "mloop-check-report.md"
        Where the Markdown goes when no note can be written.
    retry : RetryPolicy, optional
        Retries on 5xx answers and failed connections; a 4xx is never retried.
    client : httpx.Client, optional
        The HTTP client to use (one is made, and closed, otherwise).

    Returns
    -------
    PostResult
        ``destination="comment"`` with the note's id and URL, or ``"file"`` and why.
    """
    body = with_marker(body, marker)
    ctx = context
    path = Path(fallback_path)
    if not ctx.token:
        return write_file(path, body, why="no GitLab token (set MLOOP_GITLAB_TOKEN)", status=None)
    if ctx.api_url is None or ctx.project_id is None:
        return write_file(path, body, why="CI_API_V4_URL or CI_PROJECT_ID is not set", status=None)
    if ctx.mr_iid is None:
        return write_file(
            path, body, why="this pipeline is not for a merge request (pass --pr N)", status=None
        )

    own = client is None
    http = client or httpx.Client(timeout=timeout)
    headers = {"PRIVATE-TOKEN": ctx.token, "User-Agent": user_agent()}
    notes_url = (
        f"{ctx.api_url}/projects/{quote(ctx.project_id, safe='')}/merge_requests/{ctx.mr_iid}/notes"
    )

    def attempt() -> PostResult:
        notes = pages(
            http,
            notes_url,
            params={"per_page": 100, "sort": "asc", "order_by": "created_at"},
            headers=headers,
            what="listing the merge request's notes",
        )
        found = next(
            (
                n
                for n in notes
                if isinstance(n, dict) and not n.get("system") and marker in (n.get("body") or "")
            ),
            None,
        )
        if found is not None:
            response = checked(
                http.put(f"{notes_url}/{found['id']}", json={"body": body}, headers=headers),
                "updating the report note",
            )
            action: Literal["created", "updated"] = "updated"
        else:
            response = checked(
                http.post(notes_url, json={"body": body}, headers=headers),
                "creating the report note",
            )
            action = "created"
        data = response.json()
        return PostResult(
            "comment",
            f"{action} note {data.get('id')} on merge request !{ctx.mr_iid}",
            action=action,
            comment_id=data.get("id"),
        )

    try:
        return with_retries(retry or RetryPolicy(), attempt)
    except (ApiError, httpx.HTTPError, ValueError) as exc:  # ValueError: a body that is not JSON
        why, status = failure_reason(exc, host="GitLab")
        return write_file(path, body, why=why, status=status)
    finally:
        if own:
            http.close()
