"""Every command, in every broken environment: one ``error:`` line and a documented exit code, never
a traceback; and read-only commands create nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from mloop.cli import get_app
from mloop.store._open import clear_store_cache

# Every leaf command with arguments that reach past parsing. A new command must be added here
# (test_every_command_is_swept fails otherwise).
COMMANDS: dict[str, list[str]] = {
    "sync": ["sync"],
    "gc": ["gc"],
    "drift": ["drift", "{ref}", "{cur}"],
    "profile": ["profile", "{ref}", "--output", "{tmp}/out.profile"],
    "projects list": ["projects", "list"],
    "runs list": ["runs", "list", "churn"],
    "runs show": ["runs", "show", "abcdef"],
    "runs compare": ["runs", "compare", "abcdef", "012345"],
    "db upgrade": ["db", "upgrade"],
    "models list": ["models", "list"],
    "models show": ["models", "show", "iris"],
    "models versions": ["models", "versions", "iris"],
    "models rollback": ["models", "rollback", "iris", "champion"],
    "models history": ["models", "history", "iris"],
    "models lineage": ["models", "lineage", "iris", "1"],
    "models diff": ["models", "diff", "iris", "1", "2"],
    "models delete": ["models", "delete", "iris", "1"],
    "models alias set": ["models", "alias", "set", "iris", "champion", "1"],
    "models alias delete": ["models", "alias", "delete", "iris", "champion"],
    "models alias protect": ["models", "alias", "protect", "iris", "champion"],
    "webhooks add": ["webhooks", "add", "http://127.0.0.1:9/h", "--secret", "s"],
    "webhooks list": ["webhooks", "list"],
    "webhooks delete": ["webhooks", "delete", "1"],
    "webhooks deliver": ["webhooks", "deliver"],
    "predict": ["predict", "models:/iris@champion", "-i", "{ref}", "-o", "{tmp}/pred.parquet"],
    # serve checks what it would serve before it listens: here it never gets to listen
    "serve": ["serve", "models:/iris@champion", "--port", "1"],
    "deploy create": ["deploy", "create", "api", "--model", "models:/iris@champion"],
    "deploy list": ["deploy", "list"],
    "deploy status": ["deploy", "status", "api"],
    "deploy history": ["deploy", "history", "api"],
    "deploy set": ["deploy", "set", "api", "--no-canary"],
    "deploy rollback": ["deploy", "rollback", "api"],
    "deploy delete": ["deploy", "delete", "api"],
    "check": ["check", "-c", "models:/iris/1", "-d", "{ref}"],
    "promote": ["promote", "iris", "1"],
    "ci report": ["ci", "report", "--model", "iris"],
    "ci init": ["ci", "init", "github", "--path", "{tmp}/ci.yml"],
    "token create": ["token", "create", "--name", "ci", "--role", "write"],
    "token list": ["token", "list"],
    "token revoke": ["token", "revoke", "0123456789abcdef"],
    "pipelines list": ["pipelines", "list"],
    "pipelines runs": ["pipelines", "runs", "train"],
    "pipelines show": ["pipelines", "show", "0123456789abcdef0123456789abcdef"],
    "pipelines run": ["pipelines", "run", "no_such_module:train"],
    "pipelines resume": ["pipelines", "resume", "0123456789abcdef0123456789abcdef"],
    "agent run": ["agent", "run", "--config", "{tmp}/no-agent.yaml", "--once"],
    "agent status": ["agent", "status"],
    "agent trigger": ["agent", "trigger", "retrain", "--reason", "by hand"],
    "loop template": ["loop", "template", "{tmp}/retrain.py", "--force"],
    "loop scenario": ["loop", "scenario", "no_change", "{tmp}/scn", "--windows", "2"],
    "loop replay": ["loop", "replay", "{tmp}/no-replay-folder"],
    # server opens the store, then finds its artifact folder is a file: it never gets to listen
    "server": ["server", "--port", "1", "--artifact-uri", "{ref}"],
    "ui": ["ui", "--no-open", "--port", "1", "--artifact-uri", "{ref}"],  # the same, locally
}
# Commands that only read: in a folder with no store they must not create one.
READ_ONLY = {
    "sync",
    "gc",
    "drift",
    "profile",
    "projects list",
    "runs list",
    "runs show",
    "runs compare",
    "models list",
    "models show",
    "models versions",
    "models history",
    "models lineage",
    "models diff",
    "webhooks list",
    "predict",
    "serve",
    "deploy list",
    "deploy status",
    "deploy history",
    "token list",
    "pipelines list",
    "pipelines runs",
    "pipelines show",
    "agent status",
}


def _leaves() -> set[str]:
    out: set[str] = set()

    def walk(c: Any, path: list[str]) -> None:
        if hasattr(c, "commands"):
            for name, sub in c.commands.items():
                walk(sub, [*path, name])
        else:
            out.add(" ".join(path))

    walk(typer.main.get_command(get_app()), [])
    return out


def test_every_command_is_swept() -> None:
    assert _leaves() == set(COMMANDS)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    ref.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(200)))
    cur.write_text("a,b\n" + "".join(f"{i + 50},{i % 3}\n" for i in range(200)))
    return {"ref": str(ref), "cur": str(cur), "tmp": str(tmp_path)}


def _env(kind: str, tmp_path: Path, pg_down: str) -> dict[str, str]:
    if kind == "unusable home":
        return {"MLOOP_HOME": "/proc/nope/.mloop"}
    if kind == "home is a file":
        f = tmp_path / "file-home"
        f.write_text("not a folder")
        return {"MLOOP_HOME": str(f)}
    if kind == "corrupt store":
        home = tmp_path / "corrupt"
        home.mkdir()
        (home / "mloop.db").write_bytes(b"this is not a database" * 100)
        return {"MLOOP_HOME": str(home)}
    if kind == "read-only home":
        home = tmp_path / "ro"
        env = {**os.environ, "MLOOP_HOME": str(home)}
        env.pop("MLOOP_STORE_URI", None)
        code = "import mloop\nwith mloop.start_run(project='churn', system_metrics=False) as r:\n    r.log({'a': 1.0})\n"
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
        for path in (home / "mloop.db", home):
            subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
        return {"MLOOP_HOME": str(home)}
    if kind == "unreachable store":
        return {"MLOOP_HOME": str(tmp_path / "h"), "MLOOP_STORE_URI": pg_down}
    raise AssertionError(kind)


ENVS = ["unusable home", "home is a file", "read-only home", "corrupt store", "unreachable store"]


def _chattr_works(tmp_path: Path) -> bool:
    probe = tmp_path / "chattr-probe"
    probe.write_text("x")
    try:
        ok = subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    return ok


@pytest.fixture
def unlock_home(tmp_path: Path) -> Any:
    yield
    for path in (tmp_path / "ro", tmp_path / "ro" / "mloop.db"):
        if path.exists():
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)


@pytest.mark.parametrize("env_kind", ENVS)
def test_no_command_prints_a_traceback_in_a_broken_environment(
    env_kind: str,
    tmp_path: Path,
    files: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    unlock_home: None,
) -> None:
    if env_kind == "read-only home" and not _chattr_works(tmp_path):
        # Root ignores file modes; the immutable attribute is how a test makes a folder read-only.
        pytest.skip("chattr +i is not supported on this filesystem")
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_HOME"):
        monkeypatch.delenv(name, raising=False)
    pg_down = "postgresql+psycopg://u@127.0.0.1:1/none"
    for k, v in _env(env_kind, tmp_path, pg_down).items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    problems = []
    for name, args in COMMANDS.items():
        clear_store_cache()
        res = runner.invoke(get_app(), [a.format(**files) for a in args])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            problems.append(f"{name}: {type(res.exception).__name__}: {res.exception}")
        elif res.exit_code not in (0, 1, 2, 3):
            problems.append(f"{name}: exit {res.exit_code}")
        elif res.exit_code == 2:
            errs = [ln for ln in res.stderr.splitlines() if ln.strip()]
            if len(errs) != 1 or not errs[0].startswith("error: "):
                problems.append(f"{name}: stderr {res.stderr!r}")
        elif (
            res.exit_code == 0
            and name
            not in ("drift", "profile", "sync", "gc", "ci init", "loop template", "loop scenario")
            and env_kind != "read-only home"
        ):
            # drift/profile read only their files, sync/gc have nothing to do without a spool or
            # a store, ci init writes a workflow file, loop template / scenario write files of
            # their own; everything else needs the store (a read-only one still serves reads, and
            # writes that change nothing, such as `db upgrade` at the newest schema)
            problems.append(f"{name}: exit 0 in a broken environment: {res.stdout[:200]!r}")
    clear_store_cache()
    assert problems == []


def test_the_reported_repro_as_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "MLOOP_HOME": "/proc/nope/.mloop"}
    env.pop("MLOOP_STORE_URI", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mloop", "projects", "list"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "MLOOP_HOME" in proc.stderr
    code = "import mloop\ntry:\n    mloop.start_run(project='x')\nexcept mloop.MloopError as e:\n    print('MloopError', e)\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.startswith("MloopError") and "spool folder" in proc.stdout, proc.stderr


def test_read_only_commands_create_nothing(
    tmp_path: Path, files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_HOME"):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    runner = CliRunner()
    for name in sorted(READ_ONLY):
        clear_store_cache()
        args = [a.format(**files) for a in COMMANDS[name]]
        res = runner.invoke(get_app(), args)
        assert res.exception is None or isinstance(res.exception, SystemExit), (name, res.exception)
        assert list(work.iterdir()) == [], (
            f"`mloop {' '.join(args)}` created {list(work.iterdir())}"
        )
        assert res.exit_code in (0, 1, 2), (name, res.output)
    clear_store_cache()
