"""The unmodified ``mlflow`` client against ``mloop server``: experiments, runs, metrics, params,
tags, batches, search, artifacts and dataset inputs over real HTTP, and what mloop's own store sees
of what the client wrote."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mlflow", reason="mlflow-skinny is in the dev extra")

from _mlflow_server import (
    CLIENT_WARNINGS,
    MlflowServer,
    error_code,
    server_fixture,
)

pytestmark = CLIENT_WARNINGS


server = server_fixture("mlflow-dialect")


def test_experiments_create_get_search_delete(mlflow: Any, server: MlflowServer) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    ids = [
        client.create_experiment(f"exp-search-{i}", tags={"team": "a" if i % 2 else "b"})
        for i in range(5)
    ]
    got = client.get_experiment(ids[0])
    assert (got.name, got.tags, got.lifecycle_stage) == ("exp-search-0", {"team": "b"}, "active")
    assert got.artifact_location == f"mlflow-artifacts:/{ids[0]}"
    assert client.get_experiment_by_name("exp-search-3").experiment_id == ids[3]
    assert client.get_experiment_by_name("no-such-experiment") is None

    found = client.search_experiments(
        filter_string="name LIKE 'exp-search-%' AND tags.team = 'a'", order_by=["name DESC"]
    )
    assert [e.name for e in found] == ["exp-search-3", "exp-search-1"]
    page1 = client.search_experiments(filter_string="name LIKE 'exp-search-%'", max_results=2)
    assert len(page1) == 2 and page1.token
    page2 = client.search_experiments(
        filter_string="name LIKE 'exp-search-%'", max_results=10, page_token=page1.token
    )
    assert {e.name for e in page1} | {e.name for e in page2} == {
        f"exp-search-{i}" for i in range(5)
    }

    with pytest.raises(MlflowException) as dup:
        client.create_experiment("exp-search-0")
    assert error_code(dup.value) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as missing:
        client.get_experiment("987654")
    assert error_code(missing.value) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_experiment(ids[4])
    assert client.get_experiment(ids[4]).lifecycle_stage == "deleted"
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert [e.experiment_id for e in deleted] == [ids[4]]
    client.restore_experiment(ids[4])
    assert server.store.get_project(ids[4]).lifecycle_stage == "active"
    # tags change after creation, and names too
    client.set_experiment_tag(ids[1], "note", "baseline")
    client.delete_experiment_tag(ids[1], "team")
    client.rename_experiment(ids[1], "exp-renamed")
    assert client.get_experiment(ids[1]).tags == {"note": "baseline"}
    with pytest.raises(MlflowException) as taken:
        client.rename_experiment(ids[1], "exp-search-0")
    assert error_code(taken.value) == "RESOURCE_ALREADY_EXISTS"
    # mloop sees the experiments as projects, tags and all
    assert server.store.get_project_by_name("exp-renamed").tags == {"note": "baseline"}
    assert server.store.get_project_by_name("exp-search-3").tags == {"team": "a"}


def test_fluent_logging_lands_in_mloop(mlflow: Any, server: MlflowServer) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    exp = mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "kind": "tree"})
        for step in range(10):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.93, "odd": float("nan"), "big": float("inf")}, step=9)
        mlflow.set_tag("team", "growth")
        mlflow.set_tags({"stage": "dev", "temporary": "yes"})
        mlflow.delete_tag("temporary")
        with pytest.raises(MlflowException) as no_tag:
            mlflow.delete_tag("temporary")
        assert error_code(no_tag.value) == "RESOURCE_DOES_NOT_EXIST"
        run_id = run.info.run_id
        client = MlflowClient()
        client.log_batch(
            run_id,
            metrics=[Metric("batch", float(i), 1_700_000_000_000 + i, i) for i in range(50)],
            params=[Param("batch_size", "32")],
            tags=[RunTag("source", "batch")],
        )
        with pytest.raises(MlflowException) as changed:
            mlflow.log_param("lr", 0.2)  # params are write-once, as in MLflow
        assert error_code(changed.value) == "INVALID_PARAMETER_VALUE"

    r = client.get_run(run_id)
    assert r.info.status == "FINISHED" and r.info.end_time >= r.info.start_time
    assert r.info.run_name == "first" and r.info.experiment_id == exp.experiment_id
    assert r.info.artifact_uri == f"mlflow-artifacts:/{exp.experiment_id}/{run_id}/artifacts"
    assert r.data.params == {"lr": "0.1", "depth": "3", "kind": "tree", "batch_size": "32"}
    assert r.data.metrics["loss"] == pytest.approx(0.1) and r.data.metrics["batch"] == 49.0
    assert math.isnan(r.data.metrics["odd"]) and r.data.metrics["big"] == math.inf
    assert {"team": "growth", "stage": "dev", "source": "batch"}.items() <= r.data.tags.items()
    assert "temporary" not in r.data.tags
    assert r.data.tags["mlflow.runName"] == "first"

    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(10))
    assert [m.value for m in history] == pytest.approx([1.0 / (s + 1) for s in range(10)])
    batch = client.get_metric_history(run_id, "batch")
    assert [m.timestamp for m in batch] == [1_700_000_000_000 + i for i in range(50)]
    assert client.get_metric_history(run_id, "never-logged") == []

    # mloop's own store holds the same run, in its terms
    mine = server.store.get_run(run_id)
    assert (mine.project_id, mine.name, mine.status) == (exp.experiment_id, "first", "finished")
    assert mine.params == r.data.params and mine.tags["team"] == "growth"
    assert mine.metrics["loss"].count == 10 and mine.metrics["loss"].min == pytest.approx(0.1)
    h = server.store.get_metric_history(run_id, "loss")
    np.testing.assert_allclose(h.value, [1.0 / (s + 1) for s in range(10)])
    assert math.isnan(mine.metrics["odd"].last) and mine.metrics["big"].last == math.inf


def test_search_runs_filter_order_and_pages(mlflow: Any, server: MlflowServer) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    exp = mlflow.set_experiment("search")
    accs = [0.5, 0.9, 0.7, 0.6, 0.8, 0.95, 0.55]
    for i, acc in enumerate(accs):
        with mlflow.start_run(run_name=f"run-{i}"):
            mlflow.log_params({"kind": "a" if i % 2 else "b", "i": i})
            mlflow.log_metric("acc", acc)
            if i == 6:
                mlflow.set_tag("broken", "yes")
                raise_in_run = True
            else:
                raise_in_run = False
        if raise_in_run:
            MlflowClient().set_terminated(mlflow.last_active_run().info.run_id, "FAILED")
    client = MlflowClient()
    ids = [exp.experiment_id]
    best = client.search_runs(ids, "metrics.acc > 0.6", order_by=["metrics.acc DESC"])
    assert [r.data.metrics["acc"] for r in best] == [0.95, 0.9, 0.8, 0.7]
    a_only = client.search_runs(ids, "params.kind = 'a' AND metrics.acc >= 0.6")
    assert sorted(r.info.run_name for r in a_only) == ["run-1", "run-3", "run-5"]
    assert [r.info.run_name for r in client.search_runs(ids, "attributes.status = 'FAILED'")] == [
        "run-6"
    ]
    by_tag = client.search_runs(ids, "tags.mlflow.runName = 'run-4'")
    assert [r.info.run_name for r in by_tag] == ["run-4"]
    by_name = client.search_runs(ids, "attributes.run_name LIKE 'run-%'", order_by=["params.i ASC"])
    assert [r.info.run_name for r in by_name] == [f"run-{i}" for i in range(7)]

    seen, token = [], None
    while True:
        page = client.search_runs(
            ids, order_by=["metrics.acc ASC"], max_results=3, page_token=token
        )
        seen += [r.data.metrics["acc"] for r in page]
        token = page.token
        if not token:
            break
    assert seen == sorted(accs)
    frame = mlflow.search_runs([exp.experiment_id], filter_string="metrics.acc < 0.6")
    assert sorted(frame["metrics.acc"]) == [0.5, 0.55]

    with pytest.raises(MlflowException) as bad:
        client.search_runs(ids, "metrics.acc >>> 1")
    assert error_code(bad.value) == "INVALID_PARAMETER_VALUE"
    assert "position" in str(bad.value)


def test_artifacts_both_ways(mlflow: Any, server: MlflowServer, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    mlflow.set_experiment("artifacts")
    (tmp_path / "out" / "plots").mkdir(parents=True)
    (tmp_path / "out" / "report.txt").write_text("accuracy 0.9\n")
    (tmp_path / "out" / "plots" / "roc.bin").write_bytes(bytes(range(256)) * 4096)
    (tmp_path / "notes.md").write_text("# notes")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.md"))
        mlflow.log_artifacts(str(tmp_path / "out"), artifact_path="results")
        mlflow.log_dict({"a": 1}, "config/params.json")
    run_id = run.info.run_id
    client = MlflowClient()
    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir) for f in top] == [
        ("config", True),
        ("notes.md", False),
        ("results", True),
    ]
    nested = client.list_artifacts(run_id, "results/plots")
    assert [(f.path, f.file_size) for f in nested] == [("results/plots/roc.bin", 256 * 4096)]
    dest = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl")))
    assert (dest / "results" / "plots" / "roc.bin").read_bytes() == bytes(range(256)) * 4096
    assert (dest / "results" / "report.txt").read_text() == "accuracy 0.9\n"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config/params.json") == {"a": 1}

    # mloop indexes every file the client uploaded, with its content's sha256
    entries = {e.path: e for e in server.store.list_artifacts(run_id)}
    assert set(entries) == {
        "notes.md",
        "results/report.txt",
        "results/plots/roc.bin",
        "config/params.json",
    }
    with server.blobs.open(entries["notes.md"].sha256) as f:
        assert f.read() == b"# notes"

    # and the client downloads what mloop logged itself
    from mloop.store import ArtifactEntry

    sha, size = server.blobs.put_bytes(b"written by mloop")
    server.store.add_artifacts(run_id, [ArtifactEntry("mloop/native.txt", size, sha)])
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/mloop/native.txt")
    assert text == "written by mloop"


def test_log_input_dataset(mlflow: Any, server: MlflowServer) -> None:
    import pandas as pd
    from mlflow import MlflowClient

    mlflow.set_experiment("datasets")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    ds = mlflow.data.from_pandas(
        frame, source="s3://bucket/train.parquet", name="train", targets="y"
    )
    with mlflow.start_run() as run:
        mlflow.log_input(ds, context="training")
    got = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert len(got) == 1
    assert (got[0].dataset.name, got[0].dataset.digest) == ("train", ds.digest)
    assert got[0].dataset.schema == ds.to_dict()["schema"]
    assert [(t.key, t.value) for t in got[0].tags] == [("mlflow.data.context", "training")]

    mine = server.store.get_run(run.info.run_id)
    assert [(i.name, i.context) for i in mine.inputs] == [("train", "training")]
    version = server.store.get_dataset(mine.inputs[0].dataset_sha256)
    assert version.num_rows == 3 and dict(version.schema) == {"x": "float64", "y": "int64"}
    assert version.source_uri == "s3://bucket/train.parquet"


def test_mloop_runs_read_by_the_mlflow_client(mlflow: Any, server: MlflowServer) -> None:
    """What mloop's own SDK wrote (a run, its metrics, a stored dataset) reads back through MLflow."""
    import pandas as pd
    from mlflow import MlflowClient

    from mloop.artifacts import store_dataset
    from mloop.store import RunInput

    store = server.store
    project = store.create_project("native")
    run = store.create_run(project.id, name="native-run", user="ana", git_commit="abc123")
    store.log_metric(run.id, "loss", float("-inf"), step=4)
    store.log_batch(run.id, params={"lr": "0.01"}, tags={"team": "core"})
    ds = store.put_dataset(
        store_dataset(server.blobs, pd.DataFrame({"f": [1.5, 2.5]}), name="holdout")
    )
    store.log_input(run.id, RunInput(ds.sha256, "holdout", "evaluation"))
    store.update_run(run.id, status="finished", end_ms=run.start_ms + 10)

    got = MlflowClient().get_run(run.id)
    assert (got.info.run_name, got.info.user_id, got.info.status) == (
        "native-run",
        "ana",
        "FINISHED",
    )
    assert got.info.end_time == run.start_ms + 10
    assert got.data.metrics == {"loss": float("-inf")} and got.data.params == {"lr": "0.01"}
    assert got.data.tags["mlflow.source.git.commit"] == "abc123"
    (inp,) = got.inputs.dataset_inputs
    assert (inp.dataset.name, inp.dataset.digest) == ("holdout", ds.sha256[:8])
    assert json.loads(inp.dataset.profile) == {"num_rows": 2}
    assert [(t.key, t.value) for t in inp.tags] == [("mlflow.data.context", "evaluation")]
    found = MlflowClient().search_runs([project.id], "params.lr = '0.01' AND tags.team = 'core'")
    assert [r.info.run_id for r in found] == [run.id]
