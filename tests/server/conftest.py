from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def mlflow(server: Any) -> Iterator[Any]:
    """The ``mlflow`` module pointed at the module's MLflow-dialect ``server``
    (``server = server_fixture(...)`` from ``_mlflow_server``)."""
    from _mlflow_server import mlflow_client_on

    with mlflow_client_on(server.url) as m:
        yield m
