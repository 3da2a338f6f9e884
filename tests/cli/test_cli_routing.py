"""The CLI registers only the feature module a command line names (start-up time), and the table
that routes a command to its module says exactly what the modules register."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import typer

from _fresh_python import run_fresh
from mloop.cli import _app


def _names_registered_by(module: str) -> set[str]:
    probe = typer.Typer()
    importlib.import_module(f"mloop.cli.{module}").register(probe)
    commands = {c.name for c in probe.registered_commands}
    groups = {g.name for g in probe.registered_groups}
    return {n for n in commands | groups if n is not None}


def test_the_routing_table_matches_what_each_module_registers() -> None:
    expected = {
        name: module for module in _app._FEATURE_MODULES for name in _names_registered_by(module)
    }
    assert expected == _app._COMMAND_MODULES


def test_a_named_command_imports_its_module_only(tmp_path) -> None:
    code = (
        "import json, sys; sys.argv = ['mloop', 'runs', '--help']\n"
        "from mloop.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mloop.cli._'))),"
        " file=sys.stderr)"
    )
    proc = run_fresh(code, tmp_path)
    assert "mloop runs [OPTIONS] COMMAND" in proc.stdout
    loaded = json.loads(proc.stderr.strip().splitlines()[-1])
    assert loaded == ["mloop.cli._app", "mloop.cli._common", "mloop.cli._runs"]


def test_an_unknown_command_is_a_usage_error_naming_the_close_one(tmp_path) -> None:
    # An unknown name registers every module, so click can suggest the command meant.
    proc = subprocess.run(
        [sys.executable, "-m", "mloop", "runz"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert proc.returncode == 2
    assert "No such command" in proc.stderr
    assert "runs" in proc.stderr  # "Did you mean 'runs'?"
