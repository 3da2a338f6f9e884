"""The code part of a step's cache key: its source and the project code it uses, hashed before it runs.

A step's code hash covers:

- the step function's source text, and the source of each function or class of its own module
  that it refers to (recursively);
- the values its closure holds and the plain values (constants) it reads from its module's
  globals, by their stored bytes (:func:`~mloop.pipelines._values.encode_value`);
- every *project* module it refers to (a module, or a function or class defined in one), by the
  bytes of its file, and the project modules that module imports, transitively (found in its
  source, so an import inside a function counts too);
- for code outside the project (the standard library, site-packages, mloop itself), its module
  name and the distribution's version.

A project module is one whose file is neither in the standard library nor in a site-packages
folder (and, when a root is given, is under it). When a part cannot be hashed (no source, a
closure over a value with no deterministic encoding, an empty closure cell) there is no hash, and
the reason says which part: the step then runs uncached (fail closed).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import json
import os
import site
import sys
import sysconfig
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.pipelines._values import UnstorableValueError, encode_value

__all__ = ["CodeHash", "code_hash"]


@dataclass(frozen=True)
class CodeHash:
    """``digest`` (sha256 hex) of a function's code, or None with the ``reason`` it has none."""

    digest: str | None
    reason: str | None = None
    modules: tuple[str, ...] = ()


class _Unhashable(Exception):
    pass


@functools.cache
def _outside_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    found.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
    found.add(site.getusersitepackages())
    for p in sys.path:
        if p.rstrip("/").endswith(("site-packages", "dist-packages")):
            found.add(p)
    return tuple(sorted(os.path.realpath(p) + os.sep for p in found if p))


def _is_framework(module_name: str) -> bool:
    return module_name == "mloop" or module_name.startswith("mloop.")


_file_lock = threading.Lock()
# path -> (mtime_ns, size, sha256, imported module names): a file is read and parsed once while it
# keeps its stat, so a cache hit costs a stat per project module.
_files: dict[str, tuple[int, int, str, tuple[str, ...]]] = {}


def _imports(tree: ast.AST, package: str | None) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                try:
                    base = importlib.util.resolve_name("." * node.level + base, package or "")
                except (ImportError, ValueError):
                    continue
            if base:
                names.append(base)
                # ``from pkg import mod``: mod may be a submodule
                names.extend(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return names


def _file_entry(path: str, package: str | None) -> tuple[str, tuple[str, ...]]:
    st = os.stat(path)
    with _file_lock:
        memo = _files.get(path)
    if memo is not None and memo[0] == st.st_mtime_ns and memo[1] == st.st_size:
        return memo[2], memo[3]
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        imports = tuple(dict.fromkeys(_imports(ast.parse(data), package)))
    except SyntaxError:
        imports = ()
    with _file_lock:
        _files[path] = (st.st_mtime_ns, st.st_size, digest, imports)
    return digest, imports


class _Hasher:
    def __init__(self, root: Path | None) -> None:
        self.root = None if root is None else os.path.realpath(root) + os.sep
        self.parts: list[Any] = []
        self.modules: dict[str, str] = {}  # project module -> file sha256
        self.seen_fns: set[int] = set()

    # ------------------------------------------------------------------ modules
    def _project_file(self, name: str) -> tuple[str, str | None] | None:
        """``(file, package)`` of the project module ``name``, or None for non-project code."""
        if _is_framework(name):
            return None
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None) if module is not None else None
        package = getattr(module, "__package__", None) if module is not None else None
        if module is None:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError, AttributeError):
                return None
            if spec is None or not spec.has_location or spec.origin is None:
                return None
            path = spec.origin
            package = spec.parent if spec.submodule_search_locations is None else name
        if not path or not path.endswith(".py"):
            return None
        real = os.path.realpath(path)
        if real.startswith(_outside_prefixes()):
            return None
        if self.root is not None and not real.startswith(self.root):
            return None
        return real, package

    def module(self, name: str) -> bool:
        """Hash the project module ``name`` and its project imports; False if not project code."""
        if name in self.modules:
            return True
        found = self._project_file(name)
        if found is None:
            return False
        path, package = found
        digest, imports = _file_entry(path, package)
        self.modules[name] = digest
        for imported in imports:
            self.module(imported)
        return True

    def external(self, module_name: str, what: str) -> None:
        top = module_name.split(".", 1)[0]
        version = getattr(sys.modules.get(top), "__version__", None)
        self.parts.append(("ext", module_name, what, str(version)))

    # ------------------------------------------------------------------ values and functions
    def value(self, where: str, value: Any) -> None:
        if isinstance(value, os.PathLike):  # code refers to a path by its text
            self.parts.append(("path", where, os.fspath(value)))
            return
        try:
            fmt, data = encode_value(value)
        except UnstorableValueError:
            raise _Unhashable(
                f"{where} is a {type(value).__qualname__}, which has no deterministic encoding"
            ) from None
        self.parts.append(("value", where, fmt, hashlib.sha256(data).hexdigest()))

    def function(self, fn: Any) -> None:
        fn = getattr(fn, "fn", fn)  # a Step: its function
        fn = inspect.unwrap(fn)
        if id(fn) in self.seen_fns:
            return
        self.seen_fns.add(id(fn))
        qualname = f"{fn.__module__}:{fn.__qualname__}"
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            raise _Unhashable(
                f"the source of {qualname} is not available (defined interactively or compiled)"
            ) from None
        self.parts.append(("fn", qualname, source))
        code = getattr(fn, "__code__", None)
        if code is None:
            return
        for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
            try:
                content = cell.cell_contents
            except ValueError:
                raise _Unhashable(f"{qualname} closes over `{name}`, which is not set") from None
            self.reference(f"{qualname} closes over `{name}`, which", content, fn, closure=True)
        for name in sorted(_global_names(code)):
            if name in fn.__globals__:
                self.reference(f"global `{name}` of {qualname}", fn.__globals__[name], fn)

    def reference(self, where: str, value: Any, fn: Any, *, closure: bool = False) -> None:
        own = fn.__module__
        if isinstance(value, types.ModuleType):
            if not self.module(value.__name__):
                self.external(value.__name__, "")
            return
        target = getattr(value, "fn", value)  # a Step refers to its function
        if isinstance(target, (types.FunctionType, type)):
            mod = getattr(target, "__module__", None) or ""
            if mod == own and self._project_file(mod) is not None:
                if isinstance(target, types.FunctionType):
                    self.function(target)
                else:
                    self.class_source(target)
            elif not self.module(mod):
                self.external(mod, getattr(target, "__qualname__", ""))
            return
        if callable(value) and not closure and getattr(value, "__module__", None):
            mod = value.__module__
            if not self.module(mod):
                self.external(mod, getattr(value, "__qualname__", type(value).__qualname__))
            return
        try:
            self.value(where, value)
        except _Unhashable:
            if closure:
                raise
            # A module-level object built by code (a logger, a client): its module file says
            # how it is built, so the file stands for it.
            if not self.module(own):
                raise
            self.parts.append(("built-by-module", where))

    def class_source(self, cls: type) -> None:
        if id(cls) in self.seen_fns:
            return
        self.seen_fns.add(id(cls))
        try:
            self.parts.append(("class", cls.__qualname__, inspect.getsource(cls)))
        except (OSError, TypeError):
            if not self.module(cls.__module__):
                raise _Unhashable(
                    f"the source of class {cls.__qualname__} is not available"
                ) from None

    def digest(self) -> str:
        doc = {"parts": self.parts, "modules": sorted(self.modules.items())}
        text = json.dumps(doc, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def code_hash(fn: Any, *, root: str | os.PathLike[str] | None = None) -> CodeHash:
    """The hash of ``fn``'s code (see the module docstring), or why it has none.

    Parameters
    ----------
    fn : callable
        A function (or a :class:`~mloop.pipelines.Step`).
    root : path, optional
        Count only modules under this folder as project code (default: every module outside the
        standard library and site-packages).

    Examples
    --------
    >>> code_hash(len).reason
    'the source of builtins:len is not available (defined interactively or compiled)'
    """
    h = _Hasher(None if root is None else Path(root))
    try:
        h.function(fn)
    except _Unhashable as exc:
        return CodeHash(None, str(exc))
    return CodeHash(h.digest(), None, tuple(sorted(h.modules)))
