"""Report comments on pull requests, over real HTTP against a local server that implements the
GitHub and GitLab comment endpoints (pagination, tokens, error bodies): one comment per model,
updated in place; fallbacks to the job summary or a file; retries on 5xx only."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from _fake_forge import READ_TOKEN, WRITE_TOKEN, Forge, running_forge

from mloop.errors import InvalidInputError
from mloop.gates import (
    GitHubContext,
    GitLabContext,
    RetryPolicy,
    comment_marker,
    post_github_comment,
    post_gitlab_note,
)

REPO = "acme/churn"
MARKER = comment_marker("churn")
FAST = RetryPolicy(attempts=3, backoff=0.01, max_wait=0.05)


@pytest.fixture
def forge() -> Forge:
    with running_forge() as f:
        yield f  # type: ignore[misc]


def _ctx(forge: Forge, tmp_path: Path, *, token: str | None = WRITE_TOKEN, pr: int | None = 12):
    return GitHubContext(
        repository=REPO,
        pr_number=pr,
        token=token,
        api_url=forge.base_url,
        step_summary=tmp_path / "summary.md",
    )


def _post(forge: Forge, tmp_path: Path, body: str, **kw):  # type: ignore[no-untyped-def]
    ctx = _ctx(forge, tmp_path, **kw)
    return post_github_comment(body, marker=MARKER, context=ctx, retry=FAST)


def test_first_post_creates_and_the_next_updates_in_place(forge: Forge, tmp_path: Path) -> None:
    first = _post(forge, tmp_path, "### ❌ failed")
    assert first.commented and first.action == "created"
    assert first.url is not None and first.url.endswith(f"#issuecomment-{first.comment_id}")
    second = _post(forge, tmp_path, "### ✅ passed")
    assert second.action == "updated" and second.comment_id == first.comment_id
    (comment,) = forge.comments(REPO, 12)
    assert comment["body"] == f"{MARKER}\n### ✅ passed"
    assert not (tmp_path / "summary.md").exists()
    # The headers GitHub asks for, on every request.
    for r in forge.requests:
        assert r.headers["Authorization"] == f"Bearer {WRITE_TOKEN}"
        assert r.headers["Accept"] == "application/vnd.github+json"
        assert r.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert forge.count("POST") == 1 and forge.count("PATCH", "/issues/comments/") == 1
    assert forge.requests[0].query["per_page"] == ["100"]


def test_the_marker_is_found_on_a_later_page(tmp_path: Path) -> None:
    with running_forge(max_per_page=2) as forge:
        forge.seed(REPO, 12, ["LGTM", "<!-- mloop-check-report:churn-v2 -->\nother model"])
        forge.seed(REPO, 12, ["nit", f"{MARKER}\nold report"], user="github-actions[bot]")
        forge.seed(REPO, 12, ["later chatter"])
        target = forge.comments(REPO, 12)[3]["id"]
        res = _post(forge, tmp_path, "new report")
        assert res.action == "updated" and res.comment_id == target
        assert forge.count("POST") == 0
        # Page 2 held the marker: the client followed Link rel="next" once and stopped there.
        gets = [r for r in forge.requests if r.method == "GET"]
        assert len(gets) == 2 and gets[1].query["page"] == ["2"]
        bodies = [c["body"] for c in forge.comments(REPO, 12)]
        assert bodies[1].endswith("other model")  # another model's comment is left alone
        assert bodies[3] == f"{MARKER}\nnew report"


def test_a_read_only_token_falls_back_to_the_step_summary(forge: Forge, tmp_path: Path) -> None:
    res = _post(forge, tmp_path, "report body", token=READ_TOKEN)
    assert res.destination == "step_summary" and res.api_status == 403
    assert "403" in res.message and "fork" in res.message
    assert "Resource not accessible by integration" in res.message
    assert (tmp_path / "summary.md").read_text() == f"{MARKER}\nreport body\n"
    assert forge.count("POST") == 1  # a 4xx is not retried
    assert forge.comments(REPO, 12) == []
    # The summary is appended to, never overwritten (other steps write to it too).
    _post(forge, tmp_path, "again", token=READ_TOKEN)
    assert (tmp_path / "summary.md").read_text().count(MARKER) == 2


def test_a_bad_token_falls_back_too(forge: Forge, tmp_path: Path) -> None:
    res = _post(forge, tmp_path, "x", token="revoked")
    assert res.destination == "step_summary" and res.api_status == 401
    assert "revoked" not in res.message


def test_no_token_or_no_pull_request_goes_to_the_summary(forge: Forge, tmp_path: Path) -> None:
    res = _post(forge, tmp_path, "x", token=None)
    assert res.destination == "step_summary" and res.action == "appended"
    assert "no GitHub token" in res.message and res.path == str(tmp_path / "summary.md")
    res = _post(forge, tmp_path, "x", pr=None)
    assert res.destination == "step_summary" and "not for a pull request" in res.message
    assert forge.requests == []
    ctx = GitHubContext(repository=REPO, pr_number=1, token=None, api_url=forge.base_url)
    res = post_github_comment("x", marker=MARKER, context=ctx)
    assert res.destination == "none" and "GITHUB_STEP_SUMMARY is not set" in res.message


def test_a_server_error_is_retried(forge: Forge, tmp_path: Path) -> None:
    forge.fail_next(500, method="POST")
    res = _post(forge, tmp_path, "x")
    assert res.action == "created"
    assert len(forge.comments(REPO, 12)) == 1
    # The whole upsert is retried: it lists again (so a POST the server applied before failing
    # would be found by its marker, not posted twice).
    assert [r.method for r in forge.requests] == ["GET", "POST", "GET", "POST"]


def test_a_server_that_keeps_failing_is_given_up_on(forge: Forge, tmp_path: Path) -> None:
    forge.fail_next(502, times=10)
    res = _post(forge, tmp_path, "x")
    assert res.destination == "step_summary" and res.api_status == 502
    assert "kept failing" in res.message
    assert len(forge.requests) == FAST.attempts


def test_422_is_not_retried_and_is_reported(forge: Forge, tmp_path: Path) -> None:
    res = _post(forge, tmp_path, "x" * 70_000)
    assert res.destination == "step_summary" and res.api_status == 422
    assert "refused the comment" in res.message and "Body is too long" in res.message
    assert forge.count("POST") == 1


def test_an_unreachable_api_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    ctx = GitHubContext(
        repository=REPO,
        pr_number=3,
        token=WRITE_TOKEN,
        api_url=f"http://127.0.0.1:{port}",
        step_summary=tmp_path / "s.md",
    )
    res = post_github_comment("x", marker=MARKER, context=ctx, retry=FAST)
    assert res.destination == "step_summary" and res.api_status is None
    assert "could not reach GitHub" in res.message


def test_a_next_page_on_another_host_is_not_followed(tmp_path: Path) -> None:
    with running_forge(max_per_page=1) as forge, running_forge() as other:
        real = forge.base_url
        forge.seed(REPO, 12, ["a", "b"])
        forge.base_url = other.base_url  # its Link headers now name another server
        ctx = GitHubContext(
            repository=REPO,
            pr_number=12,
            token=WRITE_TOKEN,
            api_url=real,
            step_summary=tmp_path / "s.md",
        )
        res = post_github_comment("x", marker=MARKER, context=ctx, retry=FAST)
        assert res.destination == "step_summary" and "another host" in res.message
        assert other.requests == []  # the token never went there


def test_context_from_the_actions_environment(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "opened", "pull_request": {"number": 42}}))
    env = {
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_EVENT_PATH": str(event),
        "GH_TOKEN": "secret-value",
        "GITHUB_API_URL": "https://ghe.example/api/v3/",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "sum.md"),
    }
    ctx = GitHubContext.from_env(env)
    assert (ctx.repository, ctx.pr_number, ctx.token) == (REPO, 42, "secret-value")
    assert ctx.api_url == "https://ghe.example/api/v3" and ctx.step_summary == tmp_path / "sum.md"
    assert "secret-value" not in repr(ctx)
    assert GitHubContext.from_env(env, pr=7).pr_number == 7
    assert GitHubContext.from_env({**env, "GITHUB_TOKEN": "t2"}).token == "t2"
    # A push: no PR; a pull request's ref still gives it; the default API.
    push = {"GITHUB_REPOSITORY": REPO, "GITHUB_REF": "refs/heads/main"}
    ctx = GitHubContext.from_env(push)
    assert ctx.pr_number is None and ctx.api_url == "https://api.github.com"
    assert GitHubContext.from_env({"GITHUB_REF": "refs/pull/9/merge"}).pr_number == 9
    event.write_text(json.dumps({"issue": {"number": 5, "pull_request": {}}}))
    assert GitHubContext.from_env(env).pr_number == 5
    event.write_text("not json")
    assert GitHubContext.from_env(env).pr_number is None
    with pytest.raises(InvalidInputError, match="owner/name"):
        GitHubContext.from_env({"GITHUB_REPOSITORY": "no-slash"})
    with pytest.raises(InvalidInputError, match="positive int"):
        GitHubContext.from_env({}, pr=0)


def test_retry_policy_is_validated() -> None:
    with pytest.raises(InvalidInputError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(InvalidInputError, match="backoff"):
        RetryPolicy(backoff=-1)


# -- GitLab ---------------------------------------------------------------------------------------


def _gl(forge: Forge, *, token: str | None = WRITE_TOKEN, mr: int | None = 4) -> GitLabContext:
    return GitLabContext(
        api_url=f"{forge.base_url}/api/v4", project_id="77", mr_iid=mr, token=token
    )


def test_gitlab_note_is_created_then_updated_across_pages(tmp_path: Path) -> None:
    with running_forge(max_per_page=2) as forge:
        out = tmp_path / "r.md"
        notes = forge.notes("77", 4)
        notes += [{"id": i, "body": f"chat {i}", "system": i == 2} for i in (1, 2, 3)]
        first = post_gitlab_note(
            "report 1", marker=MARKER, context=_gl(forge), fallback_path=out, retry=FAST
        )
        assert first.commented and first.action == "created"
        second = post_gitlab_note(
            "report 2", marker=MARKER, context=_gl(forge), fallback_path=out, retry=FAST
        )
        assert second.action == "updated" and second.comment_id == first.comment_id
        assert [n["body"] for n in forge.notes("77", 4)][-1] == f"{MARKER}\nreport 2"
        assert len(forge.notes("77", 4)) == 4 and not out.exists()
        assert all(r.headers["PRIVATE-TOKEN"] == WRITE_TOKEN for r in forge.requests)
        assert forge.count("PUT", "/notes/") == 1


def test_gitlab_without_a_usable_token_writes_a_file(forge: Forge, tmp_path: Path) -> None:
    out = tmp_path / "mloop-check-report.md"
    res = post_gitlab_note("r", marker=MARKER, context=_gl(forge, token=None), fallback_path=out)
    assert res.destination == "file" and out.read_text() == f"{MARKER}\nr\n"
    assert "artifact" in res.message and forge.requests == []
    res = post_gitlab_note(
        "r2", marker=MARKER, context=_gl(forge, token=READ_TOKEN), fallback_path=out, retry=FAST
    )
    assert res.destination == "file" and res.api_status == 403 and "api` scope" in res.message
    res = post_gitlab_note("r3", marker=MARKER, context=_gl(forge, mr=None), fallback_path=out)
    assert "not for a merge request" in res.message and out.read_text().endswith("r3\n")


def test_gitlab_context_from_env() -> None:
    env = {
        "CI_API_V4_URL": "https://gitlab.example/api/v4",
        "CI_PROJECT_ID": "123",
        "CI_MERGE_REQUEST_IID": "8",
        "GITLAB_TOKEN": "glpat-xyz",
    }
    ctx = GitLabContext.from_env(env)
    assert (ctx.api_url, ctx.project_id, ctx.mr_iid, ctx.token) == (
        "https://gitlab.example/api/v4",
        "123",
        8,
        "glpat-xyz",
    )
    assert "glpat" not in repr(ctx)
    assert GitLabContext.from_env({**env, "MLOOP_GITLAB_TOKEN": "mine"}).token == "mine"
    assert GitLabContext.from_env({}).mr_iid is None
    with pytest.raises(InvalidInputError, match="CI_MERGE_REQUEST_IID"):
        GitLabContext.from_env({"CI_MERGE_REQUEST_IID": "x"})
