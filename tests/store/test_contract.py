"""The Store contract: the same tests on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mloop.store import ArtifactEntry, DatasetVersion, MetricSeries, RunInput, Store


def series(steps, values, ts=None):
    steps = list(steps)
    return MetricSeries(steps, ts if ts is not None else [1000 + s for s in steps], values)


@pytest.fixture
def project(store: Store):
    return store.create_project("churn")


@pytest.fixture
def run(store: Store, project):
    return store.create_run(project.id, name="r1")


# ---------------------------------------------------------------------------------------- projects
def test_projects_unique_names_and_lookup(store: Store) -> None:
    p = store.create_project("churn", tags={"owner": "ana"})
    assert p.name == "churn" and isinstance(p.id, str) and p.tags == {"owner": "ana"}
    with pytest.raises(AlreadyExistsError, match="churn"):
        store.create_project("churn")
    assert store.get_or_create_project("churn").id == p.id
    assert store.get_project(p.id).name == "churn"
    assert store.get_project_by_name("nope") is None
    with pytest.raises(NotFoundError):
        store.get_project("987654")
    other = store.get_or_create_project("fraud")
    assert [x.name for x in store.list_projects()] == ["churn", "fraud"]
    store.delete_project(other.id)
    assert [x.name for x in store.list_projects()] == ["churn"]
    assert len(store.list_projects(include_deleted=True)) == 2


def test_get_or_create_project_is_safe_under_concurrency(store: Store) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            ids.append(store.get_or_create_project("shared").id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(ids)) == 1 and len(ids) == 8


# ---------------------------------------------------------------------------------------- runs
def test_create_and_get_run(store: Store, project) -> None:
    r = store.create_run(
        project.id,
        name="rf-200",
        params={"n": 200},
        tags={"team": "growth"},
        user="ana",
        host="box",
        git_commit="a" * 40,
        git_dirty=True,
        context={"python_version": "3.11.7", "packages": {"numpy": "2.0"}},
    )
    assert len(r.id) == 32 and all(c in "0123456789abcdef" for c in r.id)
    got = store.get_run(r.id)
    assert got.status == "running" and got.end_ms is None
    assert got.params == {"n": "200"} and got.tags == {"team": "growth"}
    assert (got.user, got.host, got.git_commit, got.git_dirty) == ("ana", "box", "a" * 40, True)
    assert got.context["packages"] == {"numpy": "2.0"}
    with pytest.raises(NotFoundError, match="0" * 32):
        store.get_run("0" * 32)
    with pytest.raises(InvalidInputError, match="32 lowercase hex"):
        store.get_run("not-a-run-id")
    with pytest.raises(NotFoundError):
        store.create_run("424242")


def test_status_transitions_and_nested_runs(store: Store, project, run) -> None:
    child = store.create_run(project.id, parent_run_id=run.id)
    assert store.get_run(child.id).parent_run_id == run.id
    done = store.update_run(run.id, status="finished")
    assert done.status == "finished" and done.end_ms is not None and done.end_ms >= done.start_ms
    with pytest.raises(InvalidInputError, match="status"):
        store.update_run(run.id, status="done")  # type: ignore[arg-type]


def test_run_with_lapsed_heartbeat_reads_killed(store_factory: Callable[..., Any]) -> None:
    s = store_factory(heartbeat_timeout_s=0.5)
    p = s.create_project("hb")
    r = s.create_run(p.id, start_ms=1_000)  # heartbeat = start, long ago
    live = s.create_run(p.id)
    got = s.get_run(r.id)
    assert got.status == "killed" and got.end_ms == 1_000
    assert s.get_run(live.id).status == "running"
    killed = s.search_runs(p.id, filter="status = 'killed'").items
    assert [x.id for x in killed] == [r.id]
    s.heartbeat(r.id)
    assert s.get_run(r.id).status == "running"


# ---------------------------------------------------------------------------------------- params/tags
def test_params_are_write_once_and_batches_atomic(store: Store, run) -> None:
    store.log_batch(run.id, params={"lr": 0.1, "depth": 8})
    store.log_batch(run.id, params={"lr": "0.1"})  # same value again: fine
    with pytest.raises(ConflictError, match=r"'lr'.*write-once"):
        store.log_batch(run.id, params={"lr": 0.2}, metrics={"loss": series([0], [1.0])})
    got = store.get_run(run.id)
    assert got.params == {"lr": "0.1", "depth": "8"}
    assert "loss" not in got.metrics  # the failed batch wrote nothing


def test_tags_overwrite(store: Store, run) -> None:
    store.log_batch(run.id, tags={"stage": "dev"})
    store.log_batch(run.id, tags={"stage": "prod", "x": 1})
    assert store.get_run(run.id).tags == {"stage": "prod", "x": "1"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"params": {"k" * 251: 1}}, "1 to 250 characters"),
        ({"params": {"bad key!": 1}}, "invalid characters"),
        ({"params": {"p": "x" * 6001}}, "at most 6000"),
        ({"tags": {"t": "x" * 8001}}, "at most 8000"),
        ({"tags": {"../up": "x"}}, r"'\.\.' segments"),
        ({"metrics": {"m@x": MetricSeries([0], [0], [1.0])}}, "invalid characters"),
        ({"metrics": {"m": [1.0]}}, "MetricSeries"),
    ],
)
def test_limits_enforced_identically(store: Store, run, kwargs, match) -> None:
    with pytest.raises(InvalidInputError, match=match):
        store.log_batch(run.id, **kwargs)


def test_limits_at_the_boundary_are_accepted(store: Store, run) -> None:
    store.log_batch(
        run.id,
        params={"k" * 250: "v" * 6000},
        tags={"t./- :_x": "x" * 8000},
        metrics={"m" * 250: series([0], [1.0])},
    )
    got = store.get_run(run.id)
    assert got.params["k" * 250] == "v" * 6000 and got.tags["t./- :_x"] == "x" * 8000


# ---------------------------------------------------------------------------------------- metrics
def test_nan_and_inf_round_trip_faithfully(store: Store, run) -> None:
    vals = [1.5, math.nan, math.inf, -math.inf, -0.0, 1e308]
    store.log_batch(run.id, metrics={"m": series(range(6), vals)})
    h = store.get_metric_history(run.id, "m")
    assert h.step.tolist() == list(range(6))
    assert np.array_equal(h.value, np.array(vals), equal_nan=True)
    assert h.value.dtype == np.float64 and h.step.dtype == np.int64
    s = store.get_run(run.id).metrics["m"]
    assert s.last == 1e308 and s.min == -math.inf and s.max == math.inf and s.count == 6


def test_summary_last_is_by_step_then_timestamp_not_arrival(store: Store, run) -> None:
    store.log_batch(run.id, metrics={"acc": series([5, 1], [0.9, 0.1], ts=[10, 20])})
    store.log_batch(
        run.id, metrics={"acc": series([3], [0.5], ts=[30])}
    )  # older step, later arrival
    s = store.get_run(run.id).metrics["acc"]
    assert (s.last, s.step, s.timestamp) == (0.9, 5, 10)
    assert (s.min, s.max, s.count) == (0.1, 0.9, 3)
    store.log_batch(
        run.id, metrics={"acc": series([5], [0.7], ts=[11])}
    )  # same step, later ts wins
    assert store.get_run(run.id).metrics["acc"].last == 0.7
    h = store.get_metric_history(run.id, "acc")
    assert h.step.tolist() == [1, 3, 5, 5] and h.value.tolist() == [0.1, 0.5, 0.9, 0.7]


def test_nan_last_value_and_nan_only_min_max(store: Store, run) -> None:
    store.log_batch(run.id, metrics={"l": series([0], [math.nan])})
    s = store.get_run(run.id).metrics["l"]
    assert math.isnan(s.last) and s.min is None and s.max is None
    store.log_batch(run.id, metrics={"l": series([1], [2.0])})
    s = store.get_run(run.id).metrics["l"]
    assert s.last == 2.0 and s.min == 2.0 and s.max == 2.0 and s.count == 2


def test_batch_id_makes_writes_idempotent(store: Store, run) -> None:
    assert (
        store.log_batch(run.id, metrics={"m": series([0, 1], [1.0, 2.0])}, batch_id="b-1") is True
    )
    assert (
        store.log_batch(run.id, metrics={"m": series([0, 1], [1.0, 2.0])}, batch_id="b-1") is False
    )
    assert len(store.get_metric_history(run.id, "m")) == 2
    assert store.get_run(run.id).metrics["m"].count == 2


def test_log_batch_can_create_its_run_in_the_same_transaction(store: Store, project) -> None:
    new = store.new_run(project.id, name="short", params={"lr": "0.1"}, tags={"t": "x"})
    with pytest.raises(NotFoundError):
        store.get_run(new.run_id)  # new_run validates; it writes nothing
    m = {"acc": series([0], [0.9])}
    assert store.log_batch(new.run_id, metrics=m, status="finished", new_run=new, batch_id="c-1")
    got = store.get_run(new.run_id)
    assert (got.name, got.status, got.params, got.tags) == ("short", "finished", {"lr": "0.1"}, {"t": "x"})  # fmt: skip
    assert got.end_ms is not None and got.metrics["acc"].last == 0.9

    with pytest.raises(InvalidInputError, match="not the batch's run"):
        store.log_batch(project.id.rjust(32, "0"), metrics=m, new_run=new)
    with pytest.raises(AlreadyExistsError):  # the same run again: nothing of the batch is written
        store.log_batch(new.run_id, metrics={"other": series([0], [1.0])}, new_run=new)
    assert "other" not in store.get_run(new.run_id).metrics
    orphan = store.new_run("987654")
    with pytest.raises(NotFoundError, match="project"):
        store.log_batch(orphan.run_id, metrics=m, new_run=orphan)
    with pytest.raises(NotFoundError):
        store.get_run(orphan.run_id)


def test_large_history_in_chunks_and_downsampling(store: Store, run) -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    values = rng.normal(size=n)
    values[123_456] = 50.0  # a spike must survive downsampling
    values[7] = -50.0
    store.log_batch(run.id, metrics={"loss": MetricSeries(np.arange(n), np.full(n, 5), values)})
    h = store.get_metric_history(run.id, "loss")
    assert len(h) == n and np.array_equal(h.value, values)
    d = store.get_metric_history(run.id, "loss", max_points=1000)
    assert d.downsampled and d.total == n and len(d) <= 1000
    assert 50.0 in d.value and -50.0 in d.value
    assert np.all(np.diff(d.step) > 0)
    with pytest.raises(InvalidInputError, match="max_points"):
        store.get_metric_history(run.id, "loss", max_points=1)


def test_a_batch_of_a_million_points_is_one_call(store: Store, run) -> None:
    """Large writes are not pipelined on PostgreSQL: psycopg's pipeline deadlocked sending them."""
    n = 1_000_000
    values = np.random.default_rng(3).random(n)
    done: list[bool] = []
    writer = threading.Thread(
        target=lambda: done.append(
            store.log_batch(
                run.id, metrics={"big": MetricSeries(np.arange(n), np.arange(n), values)}
            )
        ),
        daemon=True,
    )
    writer.start()
    writer.join(timeout=180)
    assert done == [True], "the 1M-point write did not finish"
    h = store.get_metric_history(run.id, "big")
    assert len(h) == n and h.value[-1] == values[-1]


def test_history_of_unknown_key_is_empty_and_unknown_run_fails(store: Store, run) -> None:
    assert len(store.get_metric_history(run.id, "nope")) == 0
    with pytest.raises(NotFoundError):
        store.get_metric_history("f" * 32, "loss")


# ---------------------------------------------------------------------------------------- search
@pytest.fixture
def populated(store: Store, project):
    ids = {}
    for i in range(12):
        r = store.create_run(project.id, name=f"run-{i:02d}", start_ms=1000 + i)
        metrics = {"acc": series([0], [i / 10])}
        if i % 3 != 0:
            metrics["loss"] = series([0], [1 - i / 10])
        store.log_batch(
            r.id,
            metrics=metrics,
            params={"depth": str(i % 4), "model": "rf" if i % 2 else "GBM"},
            tags={"team": "a" if i < 6 else "b"},
        )
        if i == 11:
            store.update_run(r.id, status="finished")
        ids[i] = r.id
    return ids


def _names(page) -> list[str]:
    return [r.name for r in page.items]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("metrics.acc > 0.85", {9, 10, 11}),
        ("metrics.acc >= 0.9 and params.depth = '3'", {11}),
        ("metrics.loss <= 0.25", {8, 10, 11}),
        ("params.model = 'rf' and tags.team = 'b'", {7, 9, 11}),
        ("params.model LIKE 'g%'", set()),
        ("params.model ILIKE 'g%'", {0, 2, 4, 6, 8, 10}),
        ("tags.team != 'a' and metrics.acc < 0.75", {6, 7}),
        ("params.depth IN ('0', '1') and tags.team = 'a'", {0, 1, 4, 5}),
        ("params.depth NOT IN ('0', '1', '2')", {3, 7, 11}),
        ("attributes.status = 'FINISHED'", {11}),
        ("run_name LIKE 'run-1%'", {10, 11}),
        ("attributes.start_time >= 1010", {10, 11}),
        ("metrics.missing > 0", set()),
    ],
)
def test_search_filters(store: Store, project, populated, flt, expected) -> None:
    page = store.search_runs(project.id, filter=flt)
    assert {int(n.split("-")[1]) for n in _names(page)} == expected


def test_search_order_by_metric_with_missing_last(store: Store, project, populated) -> None:
    page = store.search_runs(project.id, order_by=["metrics.loss DESC"])
    names = _names(page)
    with_loss = [
        f"run-{i:02d}" for i in sorted((i for i in range(12) if i % 3), key=lambda i: -(1 - i / 10))
    ]
    assert names[: len(with_loss)] == with_loss
    assert set(names[len(with_loss) :]) == {"run-00", "run-03", "run-06", "run-09"}
    asc = _names(store.search_runs(project.id, order_by=["metrics.loss ASC"]))
    assert asc[: len(with_loss)] == list(reversed(with_loss))
    by_param = _names(
        store.search_runs(project.id, order_by=["params.depth", "attributes.start_time DESC"])
    )
    assert by_param[:3] == ["run-08", "run-04", "run-00"]


def test_search_default_order_is_newest_first(store: Store, project, populated) -> None:
    assert _names(store.search_runs(project.id))[:2] == ["run-11", "run-10"]


def test_search_pagination_covers_every_run_once(store: Store, project, populated) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = store.search_runs(
            project.id, max_results=5, page_token=token, order_by=["metrics.acc"]
        )
        seen += [r.id for r in page.items]
        pages += 1
        token = page.next_page_token
        if token is None:
            break
    assert pages == 3 and len(seen) == 12 and set(seen) == set(populated.values())
    with pytest.raises(InvalidInputError, match="page_token"):
        store.search_runs(project.id, page_token="garbage!")
    for bad in (0, 50_001, True, "10"):
        with pytest.raises(InvalidInputError, match=r"max_results.*\[1, 50000\]"):
            store.search_runs(project.id, max_results=bad)  # type: ignore[arg-type]


def test_search_syntax_error_names_position(store: Store, project) -> None:
    with pytest.raises(InvalidInputError, match="position 14: expected a number"):
        store.search_runs(project.id, filter="metrics.acc > 'high'")
    with pytest.raises(InvalidInputError, match="position 0"):
        store.search_runs(project.id, filter="foo.bar = 1")


def test_search_excludes_deleted_runs(store: Store, project, populated) -> None:
    store.delete_run(populated[0])
    assert len(store.search_runs(project.id).items) == 11
    assert len(store.search_runs(project.id, include_deleted=True).items) == 12
    store.restore_run(populated[0])
    assert len(store.search_runs(project.id).items) == 12


# ---------------------------------------------------------------------------------------- artifacts, datasets
def test_artifact_index(store: Store, run) -> None:
    sha = "ab" * 32
    store.add_artifacts(
        run.id,
        [
            ArtifactEntry("model/model.pkl", 10, sha),
            ArtifactEntry("model/conda.yaml", 3, "cd" * 32),
            ArtifactEntry("a.txt", 1, sha),
        ],
    )
    assert [e.path for e in store.list_artifacts(run.id)] == [
        "a.txt",
        "model/conda.yaml",
        "model/model.pkl",
    ]
    assert [e.path for e in store.list_artifacts(run.id, prefix="model")] == [
        "model/conda.yaml",
        "model/model.pkl",
    ]
    assert store.get_artifact(run.id, "a.txt").size == 1
    store.add_artifacts(
        run.id, [ArtifactEntry("a.txt", 2, "ef" * 32)]
    )  # re-logging a path replaces it
    assert store.get_artifact(run.id, "a.txt").sha256 == "ef" * 32
    assert {sha, "cd" * 32, "ef" * 32} <= store.referenced_blobs()
    with pytest.raises(NotFoundError, match="nope"):
        store.get_artifact(run.id, "nope")
    for bad in ("../x", "/etc/passwd", "a/../../b", "a\x00b", ""):
        with pytest.raises(InvalidInputError):
            store.add_artifacts(run.id, [ArtifactEntry(bad, 1, sha)])
    with pytest.raises(InvalidInputError, match="sha256"):
        store.add_artifacts(run.id, [ArtifactEntry("x", 1, "xyz")])


def test_datasets_are_keyed_by_content_and_recorded_as_inputs(store: Store, run) -> None:
    ds = DatasetVersion("12" * 32, "train", {"x": "double"}, 100, None, "file:///d.parquet", 5)
    assert store.put_dataset(ds) == ds
    again = DatasetVersion(
        "12" * 32, "other-name", {"x": "double"}, 100, None, "file:///d.parquet", 9
    )
    assert store.put_dataset(again).name == "train"  # one version per content hash
    store.log_input(run.id, RunInput(ds.sha256, "train"))
    store.log_input(run.id, RunInput(ds.sha256, "train"))  # idempotent
    assert store.get_run(run.id).inputs == (RunInput(ds.sha256, "train", "training"),)
    assert store.get_dataset(ds.sha256).schema == {"x": "double"}
    with pytest.raises(NotFoundError):
        store.log_input(run.id, RunInput("34" * 32, "valid"))


def test_search_results_carry_the_context_lazily(store: Store, project) -> None:
    ids = [
        store.create_run(
            project.id, context={"python_version": "3.11", "packages": {"numpy": f"2.{i}"}}
        ).id
        for i in range(3)
    ]
    found = {r.id: r for r in store.search_runs(project.id).items}
    for i, rid in enumerate(ids):
        assert found[rid].context["packages"] == {"numpy": f"2.{i}"}
        assert dict(found[rid].context) == dict(store.get_run(rid).context)


def test_run_barriers_are_called_before_a_run_is_read_or_changed(store: Store, project) -> None:
    run = store.create_run(project.id)
    seen: list[str | None] = []
    store.add_run_barrier(seen.append)
    store.add_run_barrier(seen.append)  # once per callable
    store.get_run(run.id)
    store.list_artifacts(run.id)
    store.log_batch(run.id, tags={"k": "v"})
    store.search_runs(project.id)
    store.heartbeat(run.id)
    assert seen == [run.id, run.id, run.id, None, run.id]
    store.remove_run_barrier(seen.append)
    store.get_run(run.id)
    assert len(seen) == 5
