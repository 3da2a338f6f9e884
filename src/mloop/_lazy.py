"""A module bound to a global name but imported on first use, so start-up does not pay for it.

    if TYPE_CHECKING:
        import numpy as np
    else:
        np = LazyModule("numpy", globals(), "np")

The first attribute access (``np.int64``) imports the module and rebinds the global to the real
module, so every later lookup is the ordinary global lookup: no wrapper on hot paths. Annotations
that name the module (``step: np.ndarray``) still resolve with ``typing.get_type_hints``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LazyModule"]


class LazyModule:
    """Stand-in for ``import <name> as <alias>`` in the namespace ``namespace``."""

    __slots__ = ("_alias", "_name", "_namespace")

    def __init__(self, name: str, namespace: dict[str, Any], alias: str) -> None:
        self._name = name
        self._namespace = namespace
        self._alias = alias

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._name)
        if self._namespace.get(self._alias) is self:
            self._namespace[self._alias] = module
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"
