"""Behavioural tests: user functions, discovered like pytest tests, run against the candidate.

A behavioural test file is ordinary Python::

    # checks/test_behaviour.py
    from mloop.gates import expect_invariance, skip

    def test_name_does_not_matter(model, data):
        expect_invariance(model, data, lambda df: df.assign(name="Alex"))

    def test_better_than_baseline_on_vip(model, baseline, data):
        if baseline is None:
            skip("no baseline")
        ...

Each ``test*`` function gets its arguments by parameter name, as pytest fixtures: ``model`` (a
:class:`ModelUnderTest`), ``data`` (the holdout's features, a fresh pandas copy per test),
``target`` (the label Series, or None) and ``baseline`` (a :class:`ModelUnderTest`, or None).
It passes when it returns, fails on ``AssertionError`` (including the ``expect_*`` helpers'),
is skipped by :func:`~mloop.gates.skip` (or ``pytest.skip``), and is an error on anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import importlib.util
import inspect
import io
import itertools
import linecache
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInputError
from mloop.gates._expectations import ExpectationFailed, ExpectationResult, Skip, recording
from mloop.gates._model_under_test import ModelUnderTest
from mloop.store import CheckResult

if TYPE_CHECKING:
    import pandas as pd

    from mloop.registry import PackagedModel

__all__ = ["BehaviourTest", "behaviour_checks", "discover_behaviour_tests", "run_behaviour_tests"]

FIXTURES = ("model", "data", "target", "baseline")
# pytest's default norecursedirs, plus caches
_SKIPPED_DIRS = (
    ".*",
    "*.egg",
    "_darcs",
    "build",
    "CVS",
    "dist",
    "node_modules",
    "venv",
    "__pycache__",
)
_MAX_SUMMARY = 300
_MAX_OUTPUT = 2000
_modules = itertools.count()


@dataclass(frozen=True)
class BehaviourTest:
    """One discovered test function, or a file that could not be imported.

    Attributes
    ----------
    name : str
        ``behaviour:<file stem>::<function>`` (``behaviour:<file stem>`` for a file that failed to
        import or skipped itself). When two files share a stem, their path relative to the
        discovered files' common folder replaces the stem.
    path : pathlib.Path
        The file.
    function : callable or None
        The test function (None for a file that failed to import).
    line : int or None
        Where the function (or the import error) is.
    error : str or None
        Why the file could not be imported (its result is ``error``).
    skip_reason : str or None
        The file called :func:`~mloop.gates.skip` at import (its result is ``skip``).
    """

    name: str
    path: Path
    function: Callable[..., Any] | None = None
    line: int | None = None
    error: str | None = None
    skip_reason: str | None = None


# ------------------------------------------------------------------------------------ discovery


def discover_behaviour_tests(paths: Sequence[str | os.PathLike[str]]) -> list[BehaviourTest]:
    """Find behavioural tests in files and folders, as pytest would.

    Folders are searched recursively for ``test_*.py`` and ``*_test.py`` (folders pytest skips
    by default, such as hidden ones, ``build`` and ``venv``, are skipped too); a file given
    explicitly is collected whatever its name. Files come in sorted path order, and within a file
    the module-level functions named ``test*`` that it defines, in source order. Test classes
    (``class TestX``) are not collected: write module-level functions.

    Each file is imported by path under a module name of its own, with its folder on
    ``sys.path`` while importing (so it can import its neighbours). An import that raises gives
    one entry with ``error`` set, never an exception here.

    Parameters
    ----------
    paths : sequence of path-like
        Test files and folders.

    Returns
    -------
    list of BehaviourTest
        Empty when no file holds a test.

    Raises
    ------
    InvalidInputError
        A path does not exist, or a file given explicitly is not a ``.py`` file.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise InvalidInputError(f"Behavioural test path {str(path)!r} does not exist.")
        if path.is_file():
            if path.suffix != ".py":
                raise InvalidInputError(
                    f"Behavioural test file {str(path)!r} is not a .py file; pass Python test "
                    "files or the folders that hold them."
                )
            found = [path]
        else:
            found = sorted(_walk(path))
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(key)
    names = _test_names(files)
    tests: list[BehaviourTest] = []
    for file in files:
        tests.extend(_collect(file, names[file]))
    return tests


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not any(fnmatch.fnmatch(d, p) for p in _SKIPPED_DIRS)]
        for name in filenames:
            if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
                yield Path(dirpath) / name


def _test_names(files: list[Path]) -> dict[Path, str]:
    """The file part of each test's name: the stem, or a relative path where stems collide."""
    stems: dict[str, int] = {}
    for f in files:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    root = Path(os.path.commonpath([str(f.parent) for f in files])) if files else Path()
    return {
        f: f.stem if stems[f.stem] == 1 else f.relative_to(root).with_suffix("").as_posix()
        for f in files
    }


def _collect(file: Path, label: str) -> list[BehaviourTest]:
    try:
        with _quiet(), _on_path(file.parent):
            module = _import(file)
    except Skip as exc:
        return [BehaviourTest(f"behaviour:{label}", file, skip_reason=exc.reason)]
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the user's file is broken: a result, not a crash
        skipped = _pytest_outcome(exc)
        if skipped == "skip":
            return [BehaviourTest(f"behaviour:{label}", file, skip_reason=_message(exc))]
        line = _user_line(exc, file)
        where = f" (line {line})" if line else ""
        if isinstance(exc, SyntaxError) and exc.lineno:
            line, where = exc.lineno, f" (line {exc.lineno})"
        return [
            BehaviourTest(
                f"behaviour:{label}",
                file,
                line=line,
                error=f"{type(exc).__name__}: {_message(exc)}{where}",
            )
        ]
    found = []
    for name, obj in vars(module).items():
        if (
            name.startswith("test")
            and inspect.isfunction(obj)
            and obj.__module__ == module.__name__
        ):
            code = inspect.unwrap(obj).__code__
            found.append((code.co_firstlineno, name, obj))
    found.sort(key=lambda item: item[0])
    return [
        BehaviourTest(f"behaviour:{label}::{name}", file, function=fn, line=line)
        for line, name, fn in found
    ]


def _import(file: Path) -> ModuleType:
    digest = hashlib.sha256(str(file).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", file.stem)
    name = f"mloop_behaviour_{stem}_{digest}_{next(_modules)}"  # unique: a re-import is fresh
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {str(file)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@contextlib.contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Capture what user code prints (``mloop check --format json`` owns stdout)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


# ---------------------------------------------------------------------------------------- running


def run_behaviour_tests(
    tests: Sequence[BehaviourTest],
    *,
    model: ModelUnderTest | PackagedModel,
    data: pd.DataFrame | Any,
    target: pd.Series | None = None,
    baseline: ModelUnderTest | PackagedModel | None = None,
) -> list[CheckResult]:
    """Run each test against ``model``: one :class:`~mloop.store.CheckResult` per test, in order.

    Parameters
    ----------
    tests : sequence of BehaviourTest
        From :func:`discover_behaviour_tests`.
    model : ModelUnderTest or PackagedModel
        The candidate (a bare package is wrapped without a URI).
    data : pandas.DataFrame or pyarrow.Table
        The holdout's features; each test asking for ``data`` gets its own copy.
    target : pandas.Series, optional
        The holdout's labels.
    baseline : ModelUnderTest or PackagedModel, optional
        The champion, when there is one.

    Returns
    -------
    list of CheckResult
        Kind ``"behaviour"``; ``pass``, ``fail`` (an assertion, with its message and file:line),
        ``skip`` (with the reason) or ``error`` (the exception, with the last line of the test
        file it went through; an unknown parameter name; a file that failed to import).
        ``details`` holds every expectation a test checked, the failure's location and what
        the test printed.
    """
    candidate = _wrap(model)
    champion = None if baseline is None else _wrap(baseline)
    frame = _frame(data)
    compared = f"{candidate.label} on {len(frame):,} holdout rows"
    fixtures: dict[str, Callable[[], Any]] = {
        "model": lambda: candidate,
        "data": lambda: frame.copy(),
        "target": lambda: None if target is None else target.copy(),
        "baseline": lambda: champion,
    }
    return [_run_one(test, fixtures, compared) for test in tests]


def behaviour_checks(
    paths: Sequence[str | os.PathLike[str]],
    *,
    model: ModelUnderTest | PackagedModel,
    data: pd.DataFrame | Any,
    target: pd.Series | None = None,
    baseline: ModelUnderTest | PackagedModel | None = None,
) -> list[CheckResult]:
    """:func:`discover_behaviour_tests` then :func:`run_behaviour_tests`."""
    return run_behaviour_tests(
        discover_behaviour_tests(paths), model=model, data=data, target=target, baseline=baseline
    )


def _wrap(model: ModelUnderTest | PackagedModel) -> ModelUnderTest:
    return model if isinstance(model, ModelUnderTest) else ModelUnderTest(model)


def _frame(data: Any) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pa.Table):
        return data.to_pandas()
    raise InvalidInputError(
        f"`data` must be a pandas DataFrame or a pyarrow Table; got {type(data).__name__}."
    )


def _run_one(
    test: BehaviourTest, fixtures: Mapping[str, Callable[[], Any]], compared: str
) -> CheckResult:
    title = test.name.removeprefix("behaviour:")
    start = time.perf_counter()

    def result(status: str, summary: str, **extra: Any) -> CheckResult:
        return CheckResult(
            name=test.name,
            kind="behaviour",
            status=status,
            summary=summary,
            compared=compared,
            duration_ms=(time.perf_counter() - start) * 1000.0,
            **extra,
        )

    if test.error is not None:
        return result(
            "error",
            f"Behavioural test file {test.path.name} could not be imported: {_clip(test.error)}.",
            details=({"file": str(test.path), "line": test.line, "error": test.error},),
        )
    if test.skip_reason is not None:
        return result(
            "skip", f"Behavioural test file {test.path.name} was skipped: {test.skip_reason}."
        )
    assert test.function is not None
    try:
        args, kwargs, unknown = _arguments(test.function, fixtures)
    except (TypeError, ValueError) as exc:  # a signature inspect cannot read
        return result("error", f"Behavioural test {title} cannot be called: {exc}.")
    if unknown:
        asked = ", ".join(repr(n) for n in unknown)
        return result(
            "error",
            f"Behavioural test {title} asks for {asked}, which mloop does not provide; the "
            f"available parameters are {', '.join(FIXTURES)}.",
            details=({"file": str(test.path), "line": test.line, "unknown": unknown},),
        )
    outcome: BaseException | None = None
    with recording() as expectations, _quiet() as printed, _on_path(test.path.parent):
        try:
            value = test.function(*args, **kwargs)
            if inspect.isawaitable(value):
                asyncio.run(_await(value))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # every outcome of the user's code is reported (sys.exit,
            outcome = exc  # pytest.skip's BaseException included)
    details: list[Mapping[str, Any]] = [e.to_dict() for e in expectations]
    numbers = {
        "expectations": len(expectations),
        "violations": sum(e.violations for e in expectations),
    }
    output = printed.getvalue()
    if output:
        details.append({"captured_output": output[-_MAX_OUTPUT:]})
    return _verdict(test, title, outcome, expectations, numbers, details, result)


async def _await(value: Any) -> Any:
    return await value


def _verdict(
    test: BehaviourTest,
    title: str,
    exc: BaseException | None,
    expectations: list[ExpectationResult],
    numbers: dict[str, Any],
    details: list[Mapping[str, Any]],
    result: Callable[..., CheckResult],
) -> CheckResult:
    if exc is None:
        held = f" ({len(expectations)} expectations held)" if expectations else ""
        return result(
            "pass",
            f"Behavioural test {title} passed{held}.",
            numbers=numbers,
            details=tuple(details),
        )
    pytest_kind = _pytest_outcome(exc)
    if isinstance(exc, Skip) or pytest_kind == "skip":
        reason = exc.reason if isinstance(exc, Skip) else _message(exc)
        return result(
            "skip",
            f"Behavioural test {title} was skipped: {reason}.",
            numbers=numbers,
            details=tuple(details),
        )
    line = _user_line(exc, test.path)
    where = f"{test.path.name}:{line}" if line else test.path.name
    location = {"file": str(test.path), "line": line, "exception": type(exc).__name__}
    if isinstance(exc, AssertionError) or pytest_kind == "fail":
        message = _message(exc) or _source(test.path, line)
        if isinstance(exc, ExpectationFailed):
            numbers = {**numbers, **_numbers(exc.result)}
        return result(
            "fail",
            f"Behavioural test {title} failed at {where}: {_clip(message)}",
            numbers=numbers,
            details=(*details, {**location, "message": message}),
        )
    message = f"{type(exc).__name__}: {_message(exc)}"
    return result(
        "error",
        f"Behavioural test {title} raised {_clip(message)} at {where}.",
        numbers=numbers,
        details=(*details, {**location, "message": message, "traceback": _tb(exc)}),
    )


def _arguments(
    fn: Callable[..., Any], fixtures: Mapping[str, Callable[[], Any]]
) -> tuple[list[Any], dict[str, Any], list[str]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    unknown: list[str] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in fixtures:
            value = fixtures[p.name]()
            if p.kind is p.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[p.name] = value
        elif p.default is p.empty:
            unknown.append(p.name)
    return args, kwargs, unknown


def _numbers(r: ExpectationResult) -> dict[str, Any]:
    return {
        "failed_expectation": r.expectation,
        "rows": r.rows,
        "violating_rows": r.violations,
        "allowed_violations": r.allowed,
    }


def _pytest_outcome(exc: BaseException) -> str | None:
    """``pytest.skip``/``pytest.fail`` raise ``_pytest.outcomes`` exceptions: honour them too."""
    kind = type(exc)  # pytest presents them as builtins; their base is _pytest.outcomes'
    if any(base.__module__ == "_pytest.outcomes" for base in kind.__mro__):
        return {"Skipped": "skip", "Failed": "fail"}.get(kind.__name__)
    return None


def _message(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None) if _pytest_outcome(exc) else None
    return str(msg if msg is not None else exc).strip()


def _frames(exc: BaseException) -> list[traceback.FrameSummary]:
    tb: TracebackType | None = exc.__traceback__
    return list(traceback.extract_tb(tb)) if tb is not None else []


def _user_line(exc: BaseException, file: Path) -> int | None:
    """The line of the last frame in ``file`` (where the user's code raised or called into it)."""
    target = os.path.normcase(str(file))
    line = None
    for frame in _frames(exc):
        if os.path.normcase(os.path.abspath(frame.filename)) == target:
            line = frame.lineno
    return line


def _source(file: Path, line: int | None) -> str:
    text = linecache.getline(str(file), line).strip() if line else ""
    return text or "assertion failed"


def _tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-_MAX_OUTPUT:]


def _clip(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    if len(first) > _MAX_SUMMARY:
        first = first[: _MAX_SUMMARY - 1] + "…"
    elif len(text.strip().splitlines()) > 1:
        first += " …"
    return first
