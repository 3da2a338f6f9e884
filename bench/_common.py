"""Shared benchmark helpers: peer environments, a throwaway PostgreSQL, workers, timing and tables.

Standard library only at import time: this module is imported both by the orchestrating process (the
project's ``.venv``) and by worker processes running in a peer's environment (``bench/.venv-mlflow``),
where mloop is not installed.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


# ---------------------------------------------------------------------------------------------- envs
def mloop_importable() -> bool:
    """Whether this interpreter can import mloop (the project's .venv); says why not."""
    try:
        import mloop  # noqa: F401
    except ImportError:
        print(
            "error: run this with the project's .venv (mloop must be importable).", file=sys.stderr
        )
        return False
    return True


def peer_versions(mlflow_python: Path | str) -> dict[str, str]:
    """What a benchmark against MLflow reports first: mloop's and MLflow's versions, Python's
    and SQLite's."""
    import platform
    import sqlite3

    return {
        "mlflow": package_version(mlflow_python, "mlflow"),
        "mloop": package_version(sys.executable, "mloop"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(name: str, requirements: Sequence[str]) -> Path:
    """Create (or reuse) ``bench/.venv-<name>`` with ``requirements`` installed; return its python.

    Peers (MLflow, Evidently, ...) live in their own environment so they never touch the project's
    ``.venv``. A stamp file records what was installed: the env is rebuilt only when the
    requirement list changes, and a lock keeps two benchmarks from installing at once.
    """
    venv = BENCH_DIR / f".venv-{name}"
    python = venv_python(venv)
    stamp = venv / ".bench-requirements"
    wanted = "\n".join(requirements) + "\n"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(BENCH_DIR / f".venv-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        if not python.exists():
            base = shutil.which("python3.11") or getattr(sys, "_base_executable", sys.executable)
            print(f"[bench] creating {venv} with {base}", file=sys.stderr)
            subprocess.run([base, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True
            )
        print(f"[bench] installing into {venv}: {' '.join(requirements)}", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
        stamp.write_text(wanted)
    return python


def package_version(python: Path | str, dist: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def quiet_env(**extra: str) -> dict[str, str]:
    """The environment for worker processes: no telemetry, no stray tracking configuration."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLOOP_", "MLFLOW_")) and k != "PYTHONPATH"
    }
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        PYTHONWARNINGS="ignore",
        GIT_PYTHON_REFRESH="quiet",
    )
    env.update(extra)
    return env


def run_worker(python: Path | str, args: Sequence[str], *, env: dict[str, str]) -> dict[str, Any]:
    """Run ``python bench/<script> args --out FILE`` and return the JSON it wrote."""
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run([str(python), *args, "--out", str(out)], env=env, cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"worker {' '.join(map(str, args))} failed (exit {proc.returncode})")
        return json.loads(out.read_text())


# ---------------------------------------------------------------------------------------------- postgres
def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _pg_bindir() -> Path:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "initdb").exists() and Path(cand, "pg_ctl").exists():
            return Path(cand)
    found = shutil.which("initdb")
    if found is None:
        raise FileNotFoundError("initdb/pg_ctl not found: apt-get install postgresql-15")
    return Path(found).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server (stock durability settings) on a free port.

    Yields ``postgresql+psycopg://postgres@127.0.0.1:PORT``; stops and deletes it on exit.
    """
    bindir = _pg_bindir()
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, log, port = root / "data", root / "server.log", free_port()
    pg_ctl = str(bindir / "pg_ctl")
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=100"
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"]),
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def recreate_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server; return its SQLAlchemy URL."""
    import psycopg

    dsn = server_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


# ---------------------------------------------------------------------------------------------- stats
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1e3:,.1f} ms" if value < 1 else f"{value:,.2f} s"
    if unit == "us":
        return f"{value:,.2f} us" if value < 1000 else f"{value / 1e3:,.2f} ms"
    if unit == "pts/s":
        return f"{value:,.0f} pts/s"
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    return f"{value:,.3g} {unit}"


def fmt_ratio(ratio: float | None) -> str:
    """mloop/MLflow speed ratio (> 1: mloop faster)."""
    if ratio is None:
        return "-"
    if ratio >= 1:
        return f"{ratio:,.1f}x faster" if ratio < 100 else f"{ratio:,.0f}x faster"
    return f"{1 / ratio:,.1f}x slower"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


# ---------------------------------------------------------------------------------------------- results
def write_results(filename: str, benchmark: str, fields: dict[str, Any]) -> Path:
    """Write ``bench/results/<filename>``: what ran, when, where, then ``fields``; print the path."""
    import datetime as dt
    import json
    import platform
    import sys

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / filename
    header = {
        "benchmark": benchmark,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    machine = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    out.write_text(json.dumps({**header, **machine, **fields}, indent=2))
    print(f"\nwrote {out}")
    return out
