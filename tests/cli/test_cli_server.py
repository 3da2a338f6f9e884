"""``mloop server``: what it refuses before it listens, where it keeps things, and that it serves."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from _live_server import free_port
from _server_process import clean_env
from mloop.cli import get_app
from mloop.cli._server import is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("192.168.0.5", False),
        ("no-such-host.invalid", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--host", "0.0.0.0"], "--insecure"),
        (["--host", "10.1.2.3", "--port", "5000"], "without access control"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--port", "70000"], "--port must be in"),
        (["--presign-s", "-1"], "presign_s"),
        (["--store-uri", "http://127.0.0.1:5000"], "not another server"),
        (["--artifact-uri", "https://mloop.example.com"], "not another server"),
    ],
)
def test_refusals_before_listening(
    args: list[str], match: str, mloop_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(get_app(), ["server", *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], res.stderr
    if args[0] == "--host" or "--workers" in args or "--port" in args:
        assert not mloop_home.exists()  # refused before anything was created


def test_an_artifact_folder_that_cannot_be_written_is_refused(
    mloop_home: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    res = CliRunner().invoke(get_app(), ["server", "--artifact-uri", str(blocker / "artifacts")])
    assert res.exit_code == 2
    assert "cannot be written" in res.stderr and "--artifact-uri" in res.stderr


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/api/v1/health", timeout=2)
        except httpx.TransportError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)


@pytest.mark.no_mutation
def test_insecure_listens_everywhere_and_a_client_url_does_not_become_its_store(
    tmp_path: Path,
) -> None:
    """--insecure on 0.0.0.0 serves; a MLOOP_SERVER_URL in the server's environment (a shell that
    is also a client) is not taken as the server's own store: it keeps SQLite in MLOOP_HOME."""
    port = free_port()
    log = tmp_path / "server.log"
    home = tmp_path / "home"
    env = clean_env(MLOOP_HOME=str(home), MLOOP_SERVER_URL="http://127.0.0.1:1", MLOOP_TOKEN="x")
    args = ["server", "--insecure", "--host", "0.0.0.0", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mloop", *args],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        r = _wait_up(f"http://127.0.0.1:{port}", proc, log)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        projects = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/projects", json={"name": "p", "tags": {}}
        )
        assert projects.status_code == 200, projects.text
    finally:
        proc.terminate()
        proc.wait(30)
    # SIGTERM: a graceful shutdown (uvicorn then ends by the signal, as a process should)
    assert proc.returncode in (0, -15) and "Application shutdown complete" in log.read_text()
    assert (home / "mloop.db").is_file() and (home / "artifacts").is_dir()
    text = log.read_text()
    assert f"store sqlite:///{home}/mloop.db" in text and "listening on http://0.0.0.0" in text
