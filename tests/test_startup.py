"""Start-up cost is guarded by what a fresh process loads, never by a clock: ``import mloop`` and
``mloop --help`` must leave the heavy libraries unloaded (they load on the paths that use them)."""

from __future__ import annotations

import json

import pytest

from _fresh_python import run_fresh

HEAVY = (
    "sqlalchemy",
    "pyarrow",
    "pandas",
    "scipy",
    "sklearn",
    "fastapi",
    "torch",
    "numpy",
    "httpx",
)

_REPORT = (
    "import json, sys; "
    "print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)"
)


def _loaded_after(code: str, tmp_path) -> list[str]:
    """The heavy top-level modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\n{_REPORT.format(heavy=HEAVY)}"
    proc = run_fresh(script, tmp_path)
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_import_mloop_loads_no_heavy_library(tmp_path) -> None:
    assert _loaded_after("import mloop", tmp_path) == []


def test_cli_help_loads_no_heavy_library(tmp_path) -> None:
    # Through the console script's entry point, as `mloop --help` runs it; typer exits with 0.
    code = (
        "import sys; sys.argv = ['mloop', '--help']\n"
        "from mloop.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code"
    )
    assert _loaded_after(code, tmp_path) == []


@pytest.mark.parametrize("name", ["start_run", "Client", "Run", "Registry", "log_labels"])
def test_a_lazy_name_loads_its_package_on_first_use(name: str, tmp_path) -> None:
    code = f"import mloop; obj = mloop.{name}; assert obj is getattr(mloop, {name!r})"
    assert "sqlalchemy" in _loaded_after(code, tmp_path)


def test_an_unknown_name_is_an_attribute_error() -> None:
    import mloop

    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        mloop.no_such_name  # noqa: B018
    assert set(mloop.__all__) <= set(dir(mloop))


def test_runs_list_on_sqlite_loads_only_sqlalchemy(tmp_path) -> None:
    # `mloop runs list` needs the SQL store and nothing numeric: numpy loads on first use only.
    env = f"import os; os.environ['MLOOP_HOME'] = {str(tmp_path / 'home')!r}\n"
    make_run = "import mloop\nwith mloop.start_run(project='p'):\n    pass"
    run_fresh(env + make_run, tmp_path)
    listing = (
        "import sys; sys.argv = ['mloop', 'runs', 'list', 'p']\n"
        "from mloop.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code"
    )
    assert _loaded_after(env + listing, tmp_path) == ["sqlalchemy"]


def test_a_lazy_module_is_imported_and_rebound_on_first_use() -> None:
    from mloop._lazy import LazyModule

    namespace: dict[str, object] = {}
    namespace["m"] = LazyModule("json", namespace, "m")
    assert "not yet" not in repr(namespace["m"]) and "json" in repr(namespace["m"])
    dumps = namespace["m"].dumps  # type: ignore[attr-defined]
    import json

    assert dumps is json.dumps
    assert namespace["m"] is json  # later lookups are plain global lookups
    with pytest.raises(AttributeError):
        LazyModule("json", {}, "m").no_such_attribute  # noqa: B018
