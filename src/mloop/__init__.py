"""mloop: the whole ML lifecycle as one closed loop.

>>> import mloop
>>> with mloop.start_run(project="churn", config={"n_estimators": 200}) as run:  # doctest: +SKIP
...     run.log({"loss": 0.3})
"""

from __future__ import annotations

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
from mloop.inference import log_labels
from mloop.registry import Registry, load_model, log_model, register_model
from mloop.tracking import Client, Run, active_run, finish, init, log, start_run

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "Client",
    "ConflictError",
    "InvalidInputError",
    "MloopError",
    "NotFoundError",
    "PermissionDeniedError",
    "Registry",
    "Run",
    "StoreUnavailableError",
    "UnauthenticatedError",
    "__version__",
    "active_run",
    "finish",
    "init",
    "load_model",
    "log",
    "log_labels",
    "log_model",
    "register_model",
    "start_run",
]
