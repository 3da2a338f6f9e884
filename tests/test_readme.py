"""Every command in the README runs: the Python blocks, the CLI lines, and the demo behind `make demo`."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    e["MLOOP_HOME"] = str(tmp_path / ".mloop")
    return e


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_readme_opens_with_make_demo_and_make_test() -> None:
    first = _blocks("bash")[0]
    assert first.splitlines()[0].startswith("make demo") and first.splitlines()[1].startswith(
        "make test"
    )


def test_readme_python_and_cli_blocks_run(env: dict[str, str], tmp_path: Path) -> None:
    python_blocks = _blocks("python")
    assert python_blocks, "README lost its Python examples"
    for code in python_blocks:
        proc = _run([sys.executable, "-c", code], env, tmp_path)
        assert proc.returncode == 0, proc.stderr
    ids = _run([sys.executable, "-m", "mloop", "runs", "list", "churn", "--json"], env, tmp_path)
    run_ids = re.findall(r'"run_id": "([0-9a-f]{32})"', ids.stdout)
    assert len(run_ids) >= 2
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(size=2000)}).to_parquet(tmp_path / "reference.parquet")
    pd.DataFrame({"x": rng.normal(1, 1, size=2000)}).to_parquet(tmp_path / "current.parquet")
    lines = [ln.split("#")[0].strip() for block in _blocks("bash") for ln in block.splitlines()]
    cli_lines = [ln for ln in lines if ln.startswith("mloop ")]
    assert len(cli_lines) >= 19
    for line in cli_lines:
        line = line.replace("<run-id-or-prefix>", run_ids[0][:10])
        line = line.replace("<run-id> <run-id>", f"{run_ids[0]} {run_ids[1]}")
        args = shlex.split(line)
        if args[1] == "serve":  # a server: started, asked once, stopped
            _check_serve(args, env, tmp_path)
            continue
        if args[1] == "server":  # the team server: started, used by a client, stopped
            _check_server(args, env, tmp_path)
            continue
        proc = _run([sys.executable, "-m", "mloop", *args[1:]], env, tmp_path)
        expected = (
            1 if args[1] == "drift" else 0
        )  # `mloop drift` exits 1 on dataset drift (it drifted)
        assert proc.returncode == expected, f"{line}: {proc.stderr}"


def _check_serve(args: list[str], env: dict[str, str], cwd: Path) -> None:
    """Run a README `mloop serve` line on a free port; the README's curl body gets predictions."""
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [*args]
    args[args.index("--port") + 1] = str(port)
    body = re.search(r"-d '(\{.*?\})'", README)
    assert body is not None, "README lost its curl example"
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mloop", *args[1:]],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/invocations",
                    content=body.group(1),
                    headers={"Content-Type": "application/json"},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "mloop serve did not come up"
                time.sleep(0.2)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == [0]
    finally:
        proc.terminate()
        proc.wait(30)


_TEAM_CLIENT = """
import mloop
with open("team.txt", "w") as fh:
    fh.write("shared")
with mloop.start_run(project="readme-team", system_metrics=False) as run:
    run.log({"loss": 0.5})
    run.log_artifact("team.txt")
print(run.id)
"""


def _check_server(args: list[str], env: dict[str, str], cwd: Path) -> None:
    """Run a README `mloop server` line on a free port (over the README's store); a client with
    MLOOP_SERVER_URL (and a token when the line has --auth) logs a run and an artifact through it,
    and `mloop runs list` through the server finds it."""
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [a for a in args if not a.startswith("#")]
    if "--port" in args:
        args[args.index("--port") + 1] = str(port)
    else:
        args += ["--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    client_env = {**env, "MLOOP_SERVER_URL": url}
    client_env.pop("MLOOP_HOME")  # a client has the URL, not the server's folder
    if "--auth" in args:
        made = _run(
            [
                sys.executable,
                "-m",
                "mloop",
                "token",
                "create",
                "--name",
                "readme",
                "--role",
                "write",
            ],
            env,
            cwd,
        )
        assert made.returncode == 0, made.stderr
        client_env["MLOOP_TOKEN"] = made.stdout.strip()
    log = cwd / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mloop", *args[1:]],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mloop server did not come up"
            time.sleep(0.2)
        if "--auth" in args:
            assert httpx.get(f"{url}/api/v1/projects", timeout=10).status_code == 401
        client = cwd / f"client-{port}"
        client.mkdir()
        ran = _run([sys.executable, "-c", _TEAM_CLIENT], client_env, client)
        assert ran.returncode == 0, ran.stderr
        run_id = ran.stdout.strip().splitlines()[-1]
        listed = _run(
            [sys.executable, "-m", "mloop", "runs", "list", "readme-team", "--json"],
            client_env,
            client,
        )
        assert listed.returncode == 0 and run_id in listed.stdout, listed.stderr
        assert not (client / ".mloop").exists()  # the run and its artifact went to the server
    finally:
        proc.terminate()
        proc.wait(60)


@pytest.mark.slow
def test_make_demo_script_runs_and_compares(env: dict[str, str], tmp_path: Path) -> None:
    assert "examples/quickstart.py" in (ROOT / "Makefile").read_text()
    proc = _run([sys.executable, str(ROOT / "examples" / "quickstart.py")], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tracked 5 runs" in proc.stdout and "Run comparison" in proc.stdout
    assert "val_auc" in proc.stdout
    assert "@champion is v" in proc.stdout and "validation accuracy" in proc.stdout
    # the gate: a passing check promotes the best run, a failing one is refused
    assert "PASSED: report" in proc.stdout and "FAILED: report" in proc.stdout
    assert "refused: The latest check report" in proc.stdout


def test_readme_policy_examples_are_valid_policies() -> None:
    from mloop.gates import parse_policy

    blocks = _blocks("yaml")
    assert blocks, "README lost its policy example"
    for text in blocks:
        policy = parse_policy(text, source="README.md")
        assert policy.thresholds and policy.post_deploy is not None
