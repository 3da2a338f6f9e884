"""mloop: the whole ML lifecycle as one closed loop.

>>> import mloop
>>> with mloop.start_run(project="churn", config={"n_estimators": 200}) as run:  # doctest: +SKIP
...     run.log({"loss": 0.3})

``import mloop`` loads only the error classes; the tracking, registry and inference APIs (and the
libraries behind them: SQLAlchemy, pyarrow, numpy) load on first use of one of their names, so a
script or command that never touches them does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mloop.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    MloopError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailableError,
    UnauthenticatedError,
)

if TYPE_CHECKING:
    from mloop.inference import log_labels
    from mloop.registry import Registry, load_model, log_model, register_model
    from mloop.tracking import (
        Client,
        Histogram,
        Image,
        Run,
        Table,
        active_run,
        finish,
        init,
        log,
        log_figure,
        log_histogram,
        log_image,
        log_table,
        start_run,
    )

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "Client",
    "ConflictError",
    "Histogram",
    "Image",
    "InvalidInputError",
    "MloopError",
    "NotFoundError",
    "PermissionDeniedError",
    "Registry",
    "Run",
    "StoreUnavailableError",
    "Table",
    "UnauthenticatedError",
    "__version__",
    "active_run",
    "finish",
    "init",
    "load_model",
    "log",
    "log_figure",
    "log_histogram",
    "log_image",
    "log_labels",
    "log_model",
    "log_table",
    "register_model",
    "start_run",
]

# Name -> the package that defines it; each is imported on first access (PEP 562).
_LAZY: dict[str, str] = {
    "log_labels": "mloop.inference",
    "Registry": "mloop.registry",
    "load_model": "mloop.registry",
    "log_model": "mloop.registry",
    "register_model": "mloop.registry",
    "Client": "mloop.tracking",
    "Run": "mloop.tracking",
    "active_run": "mloop.tracking",
    "finish": "mloop.tracking",
    "init": "mloop.tracking",
    "log": "mloop.tracking",
    "start_run": "mloop.tracking",
    "Image": "mloop.tracking",
    "Histogram": "mloop.tracking",
    "Table": "mloop.tracking",
    "log_image": "mloop.tracking",
    "log_figure": "mloop.tracking",
    "log_table": "mloop.tracking",
    "log_histogram": "mloop.tracking",
}


def __getattr__(name: str) -> object:
    package = _LAZY.get(name)
    if package is None:
        raise AttributeError(f"module 'mloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(package), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
