"""The import contracts `make check` enforces (pyproject's [tool.importlinter]): they hold today, and
they fail on a violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.no_mutation  # runs a separate program on the source tree


def _lint(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=cwd, env=env, text=True, capture_output=True, timeout=300
    )


def test_the_import_contracts_hold() -> None:
    done = _lint(ROOT, ROOT / "src")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("store/_common.py", "import mloop.registry", "Layers point down"),
        ("monitoring/_columns.py", "import mloop.registry", "Layers point down"),
        ("cli/_common.py", "from mloop.store._sql import _engine", "public faces"),
        ("store/_filter.py", "from mloop.store import _runs_base", "No import cycles"),
    ],
)
def test_a_violation_breaks_its_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    shutil.copytree(ROOT / "src" / "mloop", tmp_path / "src" / "mloop")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "mloop" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    done = _lint(tmp_path, tmp_path / "src")
    assert done.returncode != 0
    broken_section = done.stdout.split("Broken contracts", 1)[1]
    assert broken in broken_section, done.stdout[-3000:]
