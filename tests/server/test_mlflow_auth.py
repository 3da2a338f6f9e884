"""The MLflow dialect under ``--auth``: the unmodified client sends its token
(``MLFLOW_TRACKING_TOKEN``) and gets MLflow's error codes for what its role may not do; the
token's name is the actor mloop records."""

from __future__ import annotations

import os
from typing import Any

import pytest

pytest.importorskip("mlflow", reason="mlflow-skinny is in the dev extra")

from _mlflow_server import (
    CLIENT_WARNINGS,
    MlflowServer,
    server_fixture,
)

pytestmark = CLIENT_WARNINGS


server = server_fixture("mlflow-auth", auth=True)


def test_roles_and_actor(mlflow: Any, server: MlflowServer) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    writer = server.store.create_token("ci-bot", role="write").secret
    reader = server.store.create_token("dashboard", role="read").secret

    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    with pytest.raises(MlflowException) as anonymous:
        MlflowClient().search_experiments()
    assert anonymous.value.error_code == "UNAUTHENTICATED"

    os.environ["MLFLOW_TRACKING_TOKEN"] = writer
    client = MlflowClient()
    exp = client.create_experiment("guarded")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "acc", 0.9)
    client.create_registered_model("guarded-model")
    client.create_model_version("guarded-model", f"runs:/{run.info.run_id}/model")
    client.set_registered_model_alias("guarded-model", "prod", 1)

    os.environ["MLFLOW_TRACKING_TOKEN"] = reader
    reading = MlflowClient()
    # MLflow sends its searches as POST: they are reads all the same
    assert [r.info.run_id for r in reading.search_runs([exp])] == [run.info.run_id]
    assert reading.get_metric_history(run.info.run_id, "acc")[0].value == 0.9
    with pytest.raises(MlflowException) as denied:
        reading.log_metric(run.info.run_id, "acc", 0.1)
    assert denied.value.error_code == "PERMISSION_DENIED"

    # the registry's audit trail names the token, not anything the client claimed
    actors = {e.actor for e in server.store.list_events(model="guarded-model")}
    assert actors == {"ci-bot"}
