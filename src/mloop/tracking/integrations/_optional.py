"""Import optional frameworks only when an integration is used, with an actionable error."""

from __future__ import annotations

import importlib
from types import ModuleType

from mloop.errors import MloopError

__all__ = ["MissingDependencyError", "require"]


class MissingDependencyError(MloopError, ImportError):
    """An integration needs a package that is not installed (``pip install`` fixes it)."""

    error_code = "MISSING_DEPENDENCY"
    http_status = 500


def require(*modules: str, pip: str, feature: str) -> ModuleType:
    """Import the first of ``modules`` that is installed, or raise :class:`MissingDependencyError`.

    Parameters
    ----------
    *modules : str
        Candidate module names, tried in order (e.g. ``"lightning.pytorch"``,
        ``"pytorch_lightning"``).
    pip : str
        What to ``pip install`` to get one of them, named in the error message.
    feature : str
        The mloop function that needs it, named in the error message.

    Returns
    -------
    module
        The first module that imported.

    Raises
    ------
    MissingDependencyError
        When none of ``modules`` can be imported.
    """
    failures: list[str] = []
    for name in modules:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            failures.append(f"{name}: {exc}")
    raise MissingDependencyError(
        f"`{feature}` needs {' or '.join(f'`{m}`' for m in modules)}, which could not be "
        f"imported; install it with `pip install {pip}`.",
        details={"modules": list(modules), "pip": pip, "errors": failures},
    )
