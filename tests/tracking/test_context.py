from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mloop.tracking import _context
from mloop.tracking._context import (
    CONTEXT_KEYS,
    capture_context,
    clear_context_cache,
    strip_url_credentials,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_context_cache()
    yield
    clear_context_cache()


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate git from the user's config and stop repository discovery at tmp_path."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{name}_NAME", "Test")
        monkeypatch.setenv(f"{name}_EMAIL", "test@example.com")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(git_env: Path) -> Path:
    path = git_env / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "trunk")
    (path / "train.py").write_text("print('hi')\n")
    _git(path, "add", "train.py")
    _git(path, "commit", "-q", "-m", "first")
    return path


def test_keys_and_json_safe() -> None:
    ctx = capture_context()
    assert list(ctx) == sorted(ctx, key=CONTEXT_KEYS.index)
    assert set(ctx) == set(CONTEXT_KEYS)
    assert json.loads(json.dumps(ctx, allow_nan=False)) == ctx


def test_process_and_interpreter_fields() -> None:
    ctx = capture_context()
    assert ctx["pid"] == os.getpid()
    assert ctx["argv"] == sys.argv
    assert ctx["executable"] == sys.executable
    assert ctx["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert ctx["python_implementation"] == sys.implementation.name.replace("cpython", "CPython")
    assert isinstance(ctx["platform"], str) and ctx["platform"]
    assert isinstance(ctx["host"], str) and ctx["host"]
    assert ctx["cwd"] == os.getcwd()


def test_packages_match_importlib_metadata() -> None:
    expected: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        expected.setdefault(name, dist.version)
    packages = capture_context()["packages"]
    assert packages == expected
    assert packages["numpy"] == np.__version__
    assert packages["pytest"] == pytest.__version__
    assert "scikit-learn" in packages  # canonical name, not the dist-info spelling scikit_learn


def test_cached_calls_are_cheap_and_return_copies() -> None:
    first_start = time.perf_counter()
    first = capture_context()
    first_s = time.perf_counter() - first_start
    first["packages"]["numpy"] = "mutated"
    first["argv"].append("mutated")

    timings = []
    for _ in range(21):
        start = time.perf_counter()
        again = capture_context()
        timings.append(time.perf_counter() - start)
    assert again["packages"]["numpy"] == np.__version__
    assert again["argv"] == sys.argv
    assert sorted(timings)[10] < 1e-3, f"cached capture_context took {sorted(timings)[10]:.6f}s"
    assert first_s < 2.0  # loose: the first call runs git twice on a shared, loaded machine


@needs_git
def test_git_repository(repo: Path) -> None:
    ctx = capture_context(cwd=repo)
    assert ctx["git_commit"] == _git(repo, "rev-parse", "HEAD")
    assert re.fullmatch(r"[0-9a-f]{40}", ctx["git_commit"])
    assert ctx["git_dirty"] is False
    assert ctx["git_branch"] == "trunk"
    assert ctx["git_remote_url"] is None
    assert ctx["cwd"] == str(repo)


@needs_git
def test_git_dirty_tracks_modifications_not_untracked_files(repo: Path) -> None:
    (repo / "notes.txt").write_text("untracked\n")
    assert capture_context(cwd=repo, refresh=True)["git_dirty"] is False

    (repo / "train.py").write_text("print('changed')\n")
    assert capture_context(cwd=repo, refresh=True)["git_dirty"] is True

    _git(repo, "add", "train.py")  # staged but not committed is still dirty
    assert capture_context(cwd=repo, refresh=True)["git_dirty"] is True

    _git(repo, "commit", "-q", "-m", "second")
    ctx = capture_context(cwd=repo, refresh=True)
    assert ctx["git_dirty"] is False
    assert ctx["git_commit"] == _git(repo, "rev-parse", "HEAD")


@needs_git
def test_git_state_is_cached_until_refresh(repo: Path) -> None:
    assert capture_context(cwd=repo)["git_dirty"] is False
    (repo / "train.py").write_text("print('changed')\n")
    assert capture_context(cwd=repo)["git_dirty"] is False
    assert capture_context(cwd=repo, refresh=True)["git_dirty"] is True


@needs_git
def test_git_from_subdirectory(repo: Path) -> None:
    sub = repo / "src"
    sub.mkdir()
    (repo / "train.py").write_text("print('changed')\n")
    ctx = capture_context(cwd=sub)
    assert ctx["git_commit"] == _git(repo, "rev-parse", "HEAD")
    assert ctx["git_dirty"] is True


@needs_git
def test_git_never_writes_the_index(repo: Path) -> None:
    # A plain `git status` refreshes stale stat data by rewriting .git/index under index.lock,
    # which makes a concurrent `git commit` in the user's repository fail.
    index = repo / ".git" / "index"
    later = index.stat().st_mtime + 5
    os.utime(repo / "train.py", (later, later))  # same content, newer mtime: index is stale
    before = index.read_bytes(), index.stat().st_mtime_ns
    assert capture_context(cwd=repo)["git_dirty"] is False
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before


@needs_git
def test_git_remote_url_has_credentials_stripped(repo: Path) -> None:
    _git(repo, "remote", "add", "backup", "https://other.example.com/org/backup.git")
    _git(repo, "remote", "add", "origin", "https://alice:ghp_s3cret@github.com/org/repo.git")
    ctx = capture_context(cwd=repo)
    assert ctx["git_remote_url"] == "https://github.com/org/repo.git"
    assert "s3cret" not in json.dumps(ctx)


@needs_git
def test_git_first_remote_when_no_origin(repo: Path) -> None:
    _git(repo, "remote", "add", "upstream", "https://token@gitlab.example.com/org/repo.git")
    assert capture_context(cwd=repo)["git_remote_url"] == "https://gitlab.example.com/org/repo.git"


@needs_git
def test_detached_head_and_empty_repository(repo: Path, git_env: Path) -> None:
    _git(repo, "checkout", "-q", "--detach")
    ctx = capture_context(cwd=repo)
    assert ctx["git_branch"] is None
    assert ctx["git_commit"] == _git(repo, "rev-parse", "HEAD")

    empty = git_env / "empty"
    empty.mkdir()
    _git(empty, "init", "-q", "-b", "main")
    ctx = capture_context(cwd=empty)
    assert ctx["git_commit"] is None
    assert ctx["git_branch"] == "main"
    assert ctx["git_dirty"] is False


@needs_git
def test_not_a_repository_gives_none(git_env: Path) -> None:
    plain = git_env / "plain"
    plain.mkdir()
    ctx = capture_context(cwd=plain)
    assert [ctx[k] for k in ("git_commit", "git_dirty", "git_branch", "git_remote_url")] == [
        None
    ] * 4
    assert ctx["host"]  # the rest is still captured


def test_missing_git_or_missing_directory_gives_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH
    ctx = capture_context(cwd=tmp_path)
    assert ctx["git_commit"] is None and ctx["git_dirty"] is None
    ctx = capture_context(cwd=tmp_path / "does-not-exist")
    assert ctx["git_commit"] is None and ctx["git_dirty"] is None


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell-script stand-in for git")
def test_hanging_git_is_bounded_by_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(_context, "_GIT_TIMEOUT_S", 0.2)
    start = time.perf_counter()
    ctx = capture_context(cwd=tmp_path)
    assert time.perf_counter() - start < 5.0
    assert ctx["git_commit"] is None and ctx["git_dirty"] is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://ghp_token@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://oauth2:a@b@gitlab.com:8443/g/r.git", "https://gitlab.com:8443/g/r.git"),
        ("ssh://git:pw@host.example/org/repo.git", "ssh://host.example/org/repo.git"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
        ("https://u:p@[::1/repo.git", "https://[::1/repo.git"),  # unparseable by urlsplit
    ],
)
def test_strip_url_credentials(url: str, expected: str) -> None:
    assert strip_url_credentials(url) == expected


def test_docstring_examples() -> None:
    import doctest

    result = doctest.testmod(_context)
    assert result.attempted > 0 and result.failed == 0
