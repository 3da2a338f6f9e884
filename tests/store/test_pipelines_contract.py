"""Pipeline records: one contract, every backend; each change written with its event."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mloop.store import EVENT_TYPES, PipelineRun, SqlStore, StepRun, Store


def rid(i: int) -> str:
    return f"{i:032x}"


def sha(c: str) -> str:
    return c * 64


def new_run(i: int = 1, **changes: Any) -> PipelineRun:
    base = PipelineRun(
        id=rid(i),
        pipeline="churn-retrain",
        status="running",
        trigger="manual",
        code_ref="flows.churn:retrain",
        params={"lr": 0.1, "layers": [2, 3], "nan": float("nan"), "big": 2**60},
        start_ms=1000 + i,
        reason="by hand",
        actor="alice",
    )
    return dataclasses.replace(base, **changes)


def step(run: int = 1, name: str = "train", **changes: Any) -> StepRun:
    base = StepRun(
        run_id=rid(run),
        name=name,
        step="flows.churn:train",
        status="finished",
        inputs={"x": sha("a"), "lr": sha("b")},
        outputs={"model": sha("c"), "score": sha("d")},
        output_formats={"model": "json", "score": "npy"},
        code_hash=sha("e"),
        cache_key=sha("f"),
        cache_hit=False,
        attempts=2,
        start_ms=5,
        end_ms=9,
        tracking_run_id=rid(99),
        resources={"cpus": 2, "memory": 2_000_000_000, "gpus": 0.5},
        models=("models:/churn/3",),
    )
    return dataclasses.replace(base, **changes)


def test_pipeline_events_are_known_types() -> None:
    for t in ("pipeline_run_started", "step_finished", "pipeline_run_finished"):
        assert t in EVENT_TYPES


def test_a_run_is_started_with_its_pipeline_and_event(store: Store) -> None:
    before = store.last_event_id()
    r = store.start_pipeline_run(new_run())
    assert r.status == "running" and r.end_ms is None and r.actor == "alice"
    assert r.params["big"] == 2**60 and r.params["layers"] == [2, 3]
    assert store.get_pipeline_run(r.id) == r
    p = store.get_pipeline("churn-retrain")
    assert p.code_ref == "flows.churn:retrain" and p.created_ms == p.updated_ms
    assert store.list_pipelines() == [p]
    (e,) = store.read_events(after_id=before)
    assert (e.type, e.subject) == ("pipeline_run_started", "pipelines/churn-retrain")
    assert e.payload["run_id"] == r.id and e.payload["trigger"] == "manual"
    with pytest.raises(AlreadyExistsError):
        store.start_pipeline_run(new_run())
    # a new code ref moves the pipeline's, and keeps each run's own
    store.start_pipeline_run(new_run(2, code_ref="flows.churn2:retrain"))
    assert store.get_pipeline("churn-retrain").code_ref == "flows.churn2:retrain"
    assert store.get_pipeline_run(rid(1)).code_ref == "flows.churn:retrain"


def test_steps_are_written_once_in_order_with_events(store: Store) -> None:
    store.start_pipeline_run(new_run())
    before = store.last_event_id()
    a = store.put_step_run(step(name="load", outputs={"x": sha("1")}, output_formats={"x": "json"}))
    b = store.put_step_run(step())
    c = store.put_step_run(
        step(name="evaluate", status="failed", outputs={}, output_formats={}, error="boom")
    )
    assert store.list_step_runs(rid(1)) == [a, b, c]
    assert b == step()  # what was put is what is read
    events = store.read_events(after_id=before)
    assert [e.type for e in events] == ["step_finished"] * 3
    assert [e.payload["step"] for e in events] == ["load", "train", "evaluate"]
    assert events[1].payload["outputs"] == {"model": sha("c"), "score": sha("d")}
    with pytest.raises(AlreadyExistsError, match="already has a step 'train'"):
        store.put_step_run(step())
    with pytest.raises(NotFoundError):
        store.put_step_run(step(run=7))
    with pytest.raises(NotFoundError):
        store.list_step_runs(rid(7))


def test_finishing_a_run_is_once_and_closes_it_to_steps(store: Store) -> None:
    store.start_pipeline_run(new_run())
    before = store.last_event_id()
    done = store.finish_pipeline_run(rid(1), status="failed", error="step train: boom", end_ms=77)
    assert (done.status, done.error, done.end_ms) == ("failed", "step train: boom", 77)
    assert store.get_pipeline_run(rid(1)) == done
    (e,) = store.read_events(after_id=before)
    assert e.type == "pipeline_run_finished" and e.payload["status"] == "failed"
    with pytest.raises(ConflictError, match="already failed"):
        store.finish_pipeline_run(rid(1), status="finished")
    with pytest.raises(ConflictError, match="running runs only"):
        store.put_step_run(step())
    with pytest.raises(NotFoundError):
        store.finish_pipeline_run(rid(5), status="finished")


def test_runs_are_listed_newest_first_and_filtered(store: Store) -> None:
    store.start_pipeline_run(new_run(1))
    store.start_pipeline_run(new_run(2, pipeline="other"))
    store.start_pipeline_run(new_run(3))
    store.start_pipeline_run(new_run(4, start_ms=1003))  # the same ms as run 3: written later
    store.finish_pipeline_run(rid(1), status="finished")
    assert [r.id for r in store.list_pipeline_runs()] == [rid(4), rid(3), rid(2), rid(1)]
    assert [r.id for r in store.list_pipeline_runs("churn-retrain", limit=2)] == [rid(4), rid(3)]
    assert [r.id for r in store.list_pipeline_runs(status="finished")] == [rid(1)]
    assert [p.name for p in store.list_pipelines()] == ["churn-retrain", "other"]
    with pytest.raises(NotFoundError):
        store.list_pipeline_runs("never-ran")
    with pytest.raises(NotFoundError):
        store.get_pipeline("never-ran")


def test_the_cache_finds_the_newest_step_with_outputs_under_a_key(store: Store) -> None:
    store.start_pipeline_run(new_run(1))
    store.start_pipeline_run(new_run(2))
    assert store.find_cached_step(sha("f")) is None
    store.put_step_run(step(1, name="failed_one", status="failed", error="x", outputs={},
                            output_formats={}))  # fmt: skip
    assert store.find_cached_step(sha("f")) is None  # a failure is never a hit
    first = store.put_step_run(step(1))
    assert store.find_cached_step(sha("f")) == first
    hit = store.put_step_run(step(2, status="cached", cache_hit=True, attempts=0))
    assert store.find_cached_step(sha("f")) == hit
    assert store.find_cached_step(sha("0")) is None


def test_a_resume_names_a_run_of_the_same_pipeline(store: Store) -> None:
    store.start_pipeline_run(new_run(1))
    store.start_pipeline_run(new_run(2, pipeline="other"))
    r = store.start_pipeline_run(new_run(3, trigger="resume", resumed_from=rid(1)))
    assert r.resumed_from == rid(1) and r.trigger == "resume"
    with pytest.raises(NotFoundError, match="not a run of pipeline"):
        store.start_pipeline_run(new_run(4, resumed_from=rid(2)))
    with pytest.raises(NotFoundError):
        store.start_pipeline_run(new_run(5, resumed_from=rid(42)))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"id": "x"}, r"`run.id` must be 32"),
        ({"pipeline": "bad name"}, r"`run.pipeline` must be"),
        ({"status": "finished"}, r"must be 'running'"),
        ({"trigger": "cron"}, r"`run.trigger` must be one of"),
        ({"code_ref": ""}, r"`run.code_ref` must be a non-empty"),
        ({"params": ["a"]}, r"`run.params` must be a mapping"),
        ({"start_ms": -1}, r"`run.start_ms` must be an int"),
        ({"resumed_from": "nope"}, r"`run.resumed_from` must be 32"),
    ],
)
def test_bad_runs_are_refused_alike(store: Store, changes: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        store.start_pipeline_run(new_run(**changes))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"name": "has space"}, r"`step.name` must be an identifier"),
        ({"status": "running"}, r"`step.status` must be one of"),
        ({"inputs": {"x": "abc"}}, r"`step.inputs\['x'\]` must be a blob digest"),
        ({"output_formats": {"model": "json"}}, r"must name a format for each output"),
        ({"cache_hit": True}, r"`step.cache_hit` must be True exactly when"),
        ({"status": "cached", "cache_hit": True}, r"`step.attempts` must be 0"),
        ({"attempts": 0}, r"`step.attempts` must be >= 1 for a finished step"),
        ({"error": "why"}, r"`step.error` must be set exactly when"),
        ({"cache_key": "k"}, r"`step.cache_key` must be a sha256"),
        ({"resources": {"cpu": 2}}, r"`step.resources` must map cpus, memory, gpus"),
        ({"resources": {"cpus": -1}}, r"`step.resources` must map cpus, memory, gpus"),
        ({"models": ("churn/3",)}, r"`step.models` must be a tuple of models:/"),
    ],
)
def test_bad_steps_are_refused_alike(store: Store, changes: dict[str, Any], match: str) -> None:
    store.start_pipeline_run(new_run())
    with pytest.raises(InvalidInputError, match=match):
        store.put_step_run(step(**changes))
    assert store.list_step_runs(rid(1)) == []


def test_a_failed_step_that_never_ran_has_zero_attempts(store: Store) -> None:
    store.start_pipeline_run(new_run())
    never = step(status="failed", attempts=0, outputs={}, output_formats={}, models=(),
                 error="step 'train': cannot be scheduled on Ray: it asks for 64 CPU")  # fmt: skip
    assert store.put_step_run(never).attempts == 0
    (back,) = store.list_step_runs(rid(1))
    assert (back.status, back.attempts, back.error) == ("failed", 0, never.error)


def test_finish_arguments_are_checked(store: Store) -> None:
    store.start_pipeline_run(new_run())
    with pytest.raises(InvalidInputError, match="`status` must be one of"):
        store.finish_pipeline_run(rid(1), status="running")
    with pytest.raises(InvalidInputError, match="`error` must be given exactly"):
        store.finish_pipeline_run(rid(1), status="failed")
    with pytest.raises(InvalidInputError, match="`error` must be given exactly"):
        store.finish_pipeline_run(rid(1), status="finished", error="x")
    with pytest.raises(InvalidInputError, match="`cache_key` must be a sha256"):
        store.find_cached_step("abc")


def test_migration_from_0008_adds_pipelines_and_goes_back(sql_store_uri: str) -> None:
    import sqlalchemy as sa
    from alembic import command

    from mloop.store._sql._engine import HEAD_REVISION, _alembic_config

    engine = sa.create_engine(sql_store_uri)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0008")
        assert not sa.inspect(conn).has_table("pipeline_runs")
    s = SqlStore(sql_store_uri)  # upgrades on open
    try:
        with s.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
                HEAD_REVISION
            )
        s.start_pipeline_run(new_run())
        s.put_step_run(step())
        assert s.find_cached_step(sha("f")) == step()
    finally:
        s.close()
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0008")
        for table in ("pipelines", "pipeline_runs", "step_runs"):
            assert not sa.inspect(conn).has_table(table)
    engine.dispose()
