"""Capture the context a run was started in: code version, machine, interpreter and packages.

:func:`capture_context` is called once when a run starts. Its first call in a process costs a few
milliseconds (two ``git`` subprocesses, run concurrently, and a scan of the installed packages);
later calls reuse a per-process cache and cost microseconds.

Why not ``importlib.metadata`` the obvious way: reading each distribution's ``METADATA`` file
(``dist.metadata["Name"]``) parses an e-mail style header per package, ~90 ms for 120 packages.
The ``*.dist-info`` directory names already carry the normalised name and the version, so they are
read instead, and ``METADATA`` is only parsed for the odd distribution whose directory name does not.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import logging
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["CONTEXT_KEYS", "capture_context", "clear_context_cache", "strip_url_credentials"]

_log = logging.getLogger(__name__)

#: Keys of the dict :func:`capture_context` returns, in order.
CONTEXT_KEYS: tuple[str, ...] = (
    "git_commit",
    "git_dirty",
    "git_branch",
    "git_remote_url",
    "host",
    "user",
    "python_version",
    "python_implementation",
    "platform",
    "argv",
    "executable",
    "cwd",
    "pid",
    "packages",
)

_GIT_TIMEOUT_S = 2.0
_GIT_ENV_OVERRIDES = {
    # `git status` refreshes the index under index.lock unless told not to; a tracker must never
    # take a lock in the user's repository (a concurrent `git commit` would fail).
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}
_DIST_DIR = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py\d[^-]*)?\.(?:dist|egg)-info$")
_CANONICAL = re.compile(r"[-_.]+")

_lock = threading.Lock()
_packages_cache: dict[str, str] | None = None
_static_cache: dict[str, Any] | None = None
_git_cache: dict[str, dict[str, Any]] = {}


def capture_context(
    *, cwd: str | os.PathLike[str] | None = None, refresh: bool = False
) -> dict[str, Any]:
    """Describe where and how the current process runs.

    Nothing here raises: a missing ``git``, a directory that is not a repository, a ``git`` that
    hangs (bounded by a 2 s timeout) or an unknown user all give ``None`` for the affected keys.

    Parameters
    ----------
    cwd : str or path-like, optional
        Directory whose git repository is described; defaults to the current working directory.
    refresh : bool, default False
        Re-read git state and the package list instead of using this process's cache. The cache
        is keyed by directory; git state (notably ``git_dirty``) is therefore the state at the
        first call for that directory unless ``refresh=True``.

    Returns
    -------
    dict
        A new JSON-safe dict (callers may mutate it) with exactly the keys of
        :data:`CONTEXT_KEYS`:

        ``git_commit`` : str or None
            Full sha of ``HEAD``; None outside a repository or before the first commit.
        ``git_dirty`` : bool or None
            True when tracked files differ from ``HEAD`` (staged or not); untracked files are
            ignored. None outside a repository.
        ``git_branch`` : str or None
            Current branch; None when detached or outside a repository.
        ``git_remote_url`` : str or None
            URL of ``origin`` (else of the first remote), with any user name and password removed.
        ``host``, ``user`` : str or None
            Host name and login name.
        ``python_version``, ``python_implementation`` : str
            E.g. ``"3.11.9"`` and ``"CPython"``.
        ``platform`` : str
            ``platform.platform()``, e.g. ``"Linux-6.1.0-x86_64-with-glibc2.36"``.
        ``argv`` : list of str
            ``sys.argv``.
        ``executable`` : str
            ``sys.executable``.
        ``cwd`` : str
            The absolute directory described.
        ``pid`` : int
            The process id (read at each call, so correct after ``fork``).
        ``packages`` : dict of str to str
            Installed distributions, canonical name (PEP 503: lower case, ``-``) to version.

    Examples
    --------
    >>> ctx = capture_context()
    >>> sorted(ctx) == sorted(CONTEXT_KEYS)
    True
    >>> isinstance(ctx["packages"], dict) and isinstance(ctx["pid"], int)
    True
    """
    directory = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
    with _lock:
        static = _static_info() if _static_cache is None or refresh else _static_cache
        packages = _installed_packages() if _packages_cache is None or refresh else _packages_cache
        git = _git_cache.get(directory)
        if git is None or refresh:
            git = _git_cache[directory] = _git_info(directory)
    ctx = {
        **git,
        **static,
        "argv": list(sys.argv),
        "cwd": directory,
        "pid": os.getpid(),
        "packages": dict(packages),
    }
    return {key: ctx[key] for key in CONTEXT_KEYS}


def clear_context_cache() -> None:
    """Forget everything :func:`capture_context` cached in this process."""
    global _packages_cache, _static_cache
    with _lock:
        _packages_cache = None
        _static_cache = None
        _git_cache.clear()


def strip_url_credentials(url: str) -> str:
    """Remove user name and password from a URL so it can be stored and shown.

    An ``https://<token>@host/...`` URL is a common way to embed a token, so for any URL with a
    scheme the whole user-info part is dropped. scp-like git addresses (``git@host:org/repo``) have
    no password and are returned unchanged.

    Parameters
    ----------
    url : str
        A git remote URL.

    Returns
    -------
    str
        The URL without credentials.

    Examples
    --------
    >>> strip_url_credentials("https://user:s3cret@github.com/org/repo.git")
    'https://github.com/org/repo.git'
    >>> strip_url_credentials("git@github.com:org/repo.git")
    'git@github.com:org/repo.git'
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        # Unparseable (e.g. a bad IPv6 literal): cut everything between the scheme and the last '@'.
        scheme, _, rest = url.partition("://")
        host_and_path = rest.rsplit("@", 1)[-1]
        return f"{scheme}://{host_and_path}"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _static_info() -> dict[str, Any]:
    global _static_cache
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError, ImportError):
        # No USER/LOGNAME and no passwd entry (e.g. a container running an arbitrary uid).
        user = None
    try:
        host: str | None = socket.gethostname()
    except OSError:
        host = None
    _static_cache = {
        "host": host,
        "user": user,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }
    return _static_cache


def _canonical(name: str) -> str:
    return _CANONICAL.sub("-", name).lower()


def _installed_packages() -> dict[str, str]:
    global _packages_cache
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = version = None
        path = getattr(dist, "_path", None)
        match = _DIST_DIR.match(path.name) if isinstance(path, Path) else None
        if match is not None:
            name, version = match["name"], match["version"]
        else:
            try:
                name, version = dist.metadata["Name"], dist.version
            except (OSError, KeyError, TypeError, ValueError) as exc:
                _log.debug("skipping unreadable distribution at %s: %s", path, exc)
        if name and version:
            # First on sys.path wins, as it does for `import`.
            packages.setdefault(_canonical(name), str(version))
    _packages_cache = dict(sorted(packages.items()))
    return _packages_cache


def _git_info(directory: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "git_commit": None,
        "git_dirty": None,
        "git_branch": None,
        "git_remote_url": None,
    }
    env = {**os.environ, **_GIT_ENV_OVERRIDES}
    commands = {
        "status": ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
        "remotes": ["git", "config", "--get-regexp", r"^remote\..*\.url$"],
    }
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        # Started together: each costs a few ms of process start-up, which overlaps.
        for key, argv in commands.items():
            procs[key] = subprocess.Popen(
                argv,
                cwd=directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        outputs = {}
        deadline = time.monotonic() + _GIT_TIMEOUT_S
        for key, proc in procs.items():
            out, _ = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
            outputs[key] = (proc.returncode, out)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        # git not installed, cwd missing, or a hung git (timeout): no git information.
        _log.debug("git context unavailable in %s: %s", directory, exc)
        return info
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            if proc.stdout is not None and not proc.stdout.closed:
                proc.stdout.close()
            proc.wait()

    status_rc, status_out = outputs["status"]
    if status_rc != 0:
        _log.debug("%s is not a git working tree (git status exited %s)", directory, status_rc)
        return info
    dirty = False
    for line in status_out.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            info["git_commit"] = oid if oid != "(initial)" else None
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            info["git_branch"] = head if head != "(detached)" else None
        elif line and not line.startswith("#"):
            dirty = True
    info["git_dirty"] = dirty

    remotes_rc, remotes_out = outputs["remotes"]
    if remotes_rc == 0:
        urls: dict[str, str] = {}
        for line in remotes_out.splitlines():
            key, _, value = line.partition(" ")
            if value:
                urls.setdefault(key[len("remote.") : -len(".url")], value.strip())
        remote = urls.get("origin") or next(iter(urls.values()), None)
        info["git_remote_url"] = strip_url_credentials(remote) if remote else None
    return info
