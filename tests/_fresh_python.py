"""Run code in a fresh interpreter (what a new process imports, prints and loads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_fresh(code: str, cwd: Path, *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``python -c`` in ``cwd``; it must exit 0 (its stderr is the message)."""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr
    return proc
