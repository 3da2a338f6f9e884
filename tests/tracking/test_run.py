"""The tracking SDK as a training script uses it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, MloopError, NotFoundError


def test_start_run_logs_everything_and_finishes(settings: Settings, tmp_path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(b"weights" * 100)
    df = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10) % 2})
    with mloop.start_run(
        project="churn",
        name="rf-200",
        config={"n_estimators": 200, "opt": {"lr": 0.1}},
        settings=settings,
        system_metrics=False,
    ) as run:
        for step in range(100):
            run.log({"loss": 1 / (step + 1), "acc": step / 100}, step=step)
        run.log_params({"max_depth": 8})
        run.set_tags({"team": "growth"})
        run.log_artifact(model)
        ds = run.log_dataset(df, name="train")
        run.summary["best_acc"] = 0.99
    client = mloop.Client(settings=settings)
    got = client.get_run(run.id)
    assert got.status == "finished" and got.end_ms is not None
    assert got.name == "rf-200"
    assert got.params == {"n_estimators": "200", "opt.lr": "0.1", "max_depth": "8"}
    assert got.tags == {"team": "growth"}
    assert got.metrics["loss"].last == 0.01 and got.metrics["loss"].count == 100
    assert got.metrics["best_acc"].last == 0.99
    assert got.inputs[0].dataset_sha256 == ds.sha256 and got.inputs[0].name == "train"
    assert [e.path for e in client.list_artifacts(run.id)] == ["model.pkl"]
    out = client.download_artifacts(run.id, "model.pkl", dest=tmp_path / "dl")
    assert out.read_bytes() == model.read_bytes()
    h = client.get_metric_history(run.id, "acc")
    assert h.step.tolist() == list(range(100)) and h.value[-1] == 0.99
    assert client.load_dataset(ds.sha256).num_rows == 10
    assert got.context["python_version"].startswith("3.")
    assert "numpy" in got.context["packages"]


def test_steps_auto_increment_and_explicit_steps_move_the_counter(settings: Settings) -> None:
    with mloop.start_run(project="p", settings=settings, system_metrics=False) as run:
        run.log({"a": 1.0})
        run.log({"a": 2.0})
        run.log({"a": 3.0}, step=10)
        run.log({"a": 4.0})
    h = mloop.Client(settings=settings).get_metric_history(run.id, "a")
    assert h.step.tolist() == [0, 1, 10, 11]


def test_exception_marks_run_failed_and_reraises(settings: Settings) -> None:
    with (
        pytest.raises(ZeroDivisionError),
        mloop.start_run(project="p", settings=settings, system_metrics=False) as run,
    ):
        run.log({"loss": 0.5})
        1 / 0  # noqa: B018
    got = mloop.Client(settings=settings).get_run(run.id)
    assert got.status == "failed" and got.metrics["loss"].last == 0.5


@pytest.mark.parametrize(
    ("metrics", "match"),
    [
        ({"acc": True}, "real number"),
        ({"acc": "0.9"}, "real number"),
        ({"acc": None}, "real number"),
        ({"acc": [1.0, 2.0]}, "real number"),
        ({"k" * 251: 1.0}, "1 to 250"),
        ({"bad$key": 1.0}, "invalid characters"),
    ],
)
def test_bad_metric_input_is_refused_and_the_run_goes_on(
    settings: Settings, metrics, match
) -> None:
    with mloop.start_run(project="p", settings=settings, system_metrics=False) as run:
        run.log({"ok": 1.0})
        with pytest.raises(InvalidInputError, match=match):
            run.log(metrics)
        run.log({"ok": 2.0})
    got = mloop.Client(settings=settings).get_run(run.id)
    assert got.status == "finished" and got.metrics["ok"].count == 2 and set(got.metrics) == {"ok"}


def test_numpy_scalars_nan_and_inf_are_accepted(settings: Settings) -> None:
    with mloop.start_run(project="p", settings=settings, system_metrics=False) as run:
        run.log({"a": np.float32(0.5), "b": np.int64(3), "c": math.nan, "d": -math.inf})
    m = mloop.Client(settings=settings).get_run(run.id).metrics
    assert (
        m["a"].last == 0.5
        and m["b"].last == 3
        and math.isnan(m["c"].last)
        and m["d"].last == -math.inf
    )


def test_param_conflict_is_immediate_and_keeps_the_first_value(settings: Settings) -> None:
    with mloop.start_run(
        project="p", config={"lr": 0.1}, settings=settings, system_metrics=False
    ) as run:
        run.log_params({"lr": 0.1})
        with pytest.raises(ConflictError, match="write-once"):
            run.log_params({"lr": 0.2, "other": 1})
        run.log({"x": 1.0})
    got = mloop.Client(settings=settings).get_run(run.id)
    assert got.params == {"lr": "0.1"} and got.metrics["x"].last == 1.0


def test_artifact_path_with_dotdot_is_refused(settings: Settings, tmp_path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    with mloop.start_run(project="p", settings=settings, system_metrics=False) as run:
        with pytest.raises(InvalidInputError, match=r"\.\."):
            run.log_artifact(f, artifact_path="../escape")
        run.log_artifact(f, artifact_path="docs")
    assert [e.path for e in mloop.Client(settings=settings).list_artifacts(run.id)] == [
        "docs/f.txt"
    ]


def test_fluent_api_and_nested_runs(settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("MLOOP_HOME", str(settings.home))
    parent = mloop.init(
        project="sweep", config={"grid": "small"}, system_metrics=False, settings=settings
    )
    assert mloop.active_run() is parent
    mloop.log({"loss": 0.3})
    with mloop.start_run(
        project="sweep", nested=True, settings=settings, system_metrics=False
    ) as child:
        child.log({"loss": 0.2})
        assert mloop.active_run() is child
    assert mloop.active_run() is parent
    mloop.finish()
    assert mloop.active_run() is None
    with pytest.raises(NotFoundError, match="no active run"):
        mloop.log({"loss": 1.0})
    client = mloop.Client(settings=settings)
    assert client.get_run(child.id).parent_run_id == parent.id
    assert client.get_run(parent.id).metrics["loss"].last == 0.3
    with pytest.raises(MloopError, match="finished"):
        parent.log({"loss": 0.1})


def test_resume_continues_steps_and_keeps_params(settings: Settings) -> None:
    with mloop.start_run(
        project="p", config={"lr": 0.1}, settings=settings, system_metrics=False
    ) as run:
        run.log({"loss": 1.0})
        run.log({"loss": 0.9})
    with mloop.start_run(run_id=run.id, settings=settings, system_metrics=False) as again:
        assert again.step == 2
        with pytest.raises(ConflictError):
            again.log_params({"lr": 0.5})
        again.log({"loss": 0.8})
    got = mloop.Client(settings=settings).get_run(run.id)
    assert (
        got.status == "finished"
        and got.metrics["loss"].count == 3
        and got.metrics["loss"].step == 2
    )


def test_client_search_and_runs_frame(settings: Settings) -> None:
    for depth, acc in [(4, 0.8), (8, 0.95), (8, 0.91), (16, 0.7)]:
        with mloop.start_run(
            project="churn", config={"max_depth": depth}, settings=settings, system_metrics=False
        ) as run:
            run.log({"acc": acc})
    client = mloop.Client(settings=settings)
    page = client.search_runs(
        "churn",
        filter="metrics.acc > 0.9 and params.max_depth = '8'",
        order_by=["metrics.acc DESC"],
    )
    assert [r.metrics["acc"].last for r in page.items] == [0.95, 0.91]
    frame = client.runs_frame("churn")
    assert len(frame) == 4 and sorted(frame["metrics.acc"]) == [0.7, 0.8, 0.91, 0.95]
    assert set(frame["params.max_depth"]) == {"4", "8", "16"}
    with pytest.raises(NotFoundError, match="nope"):
        client.search_runs("nope")


def test_system_metrics_are_sampled_into_system_keys_on_their_own_steps(settings: Settings) -> None:
    import time

    with mloop.start_run(project="p", settings=settings, system_metrics=0.05) as run:
        run.log({"loss": 1.0}, step=100)
        deadline = time.monotonic() + 10
        while run._sampler.samples_logged < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    client = mloop.Client(settings=settings)
    got = client.get_run(run.id)
    assert {"system/cpu_percent", "system/memory_percent"} <= set(got.metrics)
    assert 0 <= got.metrics["system/memory_percent"].last <= 100
    assert client.get_metric_history(run.id, "system/cpu_percent").step.tolist()[:3] == [0, 1, 2]
    assert got.metrics["loss"].step == 100  # the sampler did not move the user's step counter
