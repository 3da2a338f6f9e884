"""What each filter operator means on each kind of field, on every backend (the store contract).

Four runs with hand-picked values; each case lists, by hand, the runs it must return. A run that
lacks the metric, param or tag compared never matches, not even ``!=`` or ``NOT IN`` (as in MLflow).
"""

from __future__ import annotations

import pytest

from mloop.store import MetricSeries, Store


@pytest.fixture
def runs(store: Store) -> tuple[str, list[str]]:
    project = store.create_project("semantics")
    spec = [
        # name, user, start_ms, status, end_ms, metrics, params, tags
        ("alpha", "ana", 1000, "finished", 5000, {"acc": 0.5, "loss": 0.25}, {"model": "RF", "depth": "1"}, {"team": "growth"}),
        ("Beta", "bob", 2000, "failed", 6000, {"acc": 0.75}, {"model": "rf", "depth": "2"}, {"team": "Growth"}),
        ("gamma_1", "ana", 3000, "finished", 7000, {"acc": 0.9, "loss": 0.5}, {"model": "gbm"}, {"team": "core", "note": "x"}),
        ("gammax1", "cy", 4000, "killed", 8000, {}, {}, {}),
    ]  # fmt: skip
    ids = []
    for name, user, start, status, end, metrics, params, tags in spec:
        run = store.create_run(project.id, name=name, user=user, start_ms=start)
        store.log_batch(
            run.id,
            metrics={k: MetricSeries([0], [start], [v]) for k, v in metrics.items()},
            params=params,
            tags=tags,
        )
        store.update_run(run.id, status=status, end_ms=end)  # type: ignore[arg-type]
        ids.append(run.id)
    return project.id, ids


def _found(store: Store, runs: tuple[str, list[str]], **kwargs: object) -> list[int]:
    project_id, ids = runs
    page = store.search_runs(project_id, **kwargs)  # type: ignore[arg-type]
    return [ids.index(r.id) for r in page.items]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        # metrics: numbers; 0.75 is exact in binary, so both sides of each boundary are checked
        ("metrics.acc = 0.75", {1}),
        ("metrics.acc != 0.75", {0, 2}),  # run 3 has no acc
        ("metrics.acc > 0.75", {2}),
        ("metrics.acc >= 0.75", {1, 2}),
        ("metrics.acc < 0.75", {0}),
        ("metrics.acc <= 0.75", {0, 1}),
        ("metrics.acc > 0.5 and metrics.loss < 1", {2}),
        ("metrics.loss >= 0", {0, 2}),
        ("metrics.acc > -1e3", {0, 1, 2}),
        # params: strings, case-sensitive except ILIKE
        ("params.model = 'rf'", {1}),
        ("params.model != 'rf'", {0, 2}),
        ("params.model LIKE 'r%'", {1}),
        ("params.model LIKE 'R%'", {0}),
        ("params.model LIKE '_f'", {1}),
        ("params.model LIKE '%'", {0, 1, 2}),
        ("params.model ILIKE 'r%'", {0, 1}),
        ("params.model ILIKE 'GB_'", {2}),
        ("params.model IN ('RF', 'gbm')", {0, 2}),
        ("params.depth IN ('1', '2')", {0, 1}),
        ("params.depth NOT IN ('1')", {1}),
        # tags
        ("tags.team = 'growth'", {0}),
        ("tags.team != 'growth'", {1, 2}),
        ("tags.team LIKE 'G%'", {1}),
        ("tags.team ILIKE 'GROWTH'", {0, 1}),
        ("tags.team IN ('core', 'Growth')", {1, 2}),
        ("tags.team NOT IN ('core')", {0, 1}),
        ("tags.note = 'x' and tags.team = 'core'", {2}),
        # string attributes
        ("run_name = 'Beta'", {1}),
        ("run_name != 'Beta'", {0, 2, 3}),
        ("run_name LIKE 'gamma_1'", {2, 3}),  # "_" is LIKE's one-character wildcard
        ("run_name LIKE 'b%'", set()),
        ("run_name ILIKE 'b%'", {1}),
        ("run_name IN ('alpha', 'Beta')", {0, 1}),
        ("run_name NOT IN ('alpha')", {1, 2, 3}),
        ("user = 'ana'", {0, 2}),
        ("user_id != 'ana'", {1, 3}),
        ("status = 'FINISHED'", {0, 2}),
        ("status != 'finished'", {1, 3}),
        ("status IN ('FAILED', 'Killed')", {1, 3}),
        ("status NOT IN ('FINISHED')", {1, 3}),
        ("status LIKE 'F%'", {0, 1, 2}),  # the pattern is lower-cased too
        # number attributes
        ("start_time = 2000", {1}),
        ("start_time != 2000", {0, 2, 3}),
        ("start_time > 2000", {2, 3}),
        ("start_time >= 2000", {1, 2, 3}),
        ("start_time < 2000", {0}),
        ("start_time <= 2000", {0, 1}),
        ("created < 2000", {0}),
        ("end_time >= 6000", {1, 2, 3}),
        ("end_time != 6000", {0, 2, 3}),
        ("end_time < 6000", {0}),
    ],
)
def test_each_operator_on_each_kind_of_field(
    store: Store, runs: tuple[str, list[str]], flt: str, expected: set[int]
) -> None:
    assert set(_found(store, runs, filter=flt)) == expected


def test_run_id_filters(store: Store, runs: tuple[str, list[str]]) -> None:
    ids = runs[1]
    assert _found(store, runs, filter=f"run_id = '{ids[2]}'") == [2]
    assert set(_found(store, runs, filter=f"attributes.id IN ('{ids[0]}', '{ids[3]}')")) == {0, 3}


def test_order_by_directions_defaults_and_missing_values(
    store: Store, runs: tuple[str, list[str]]
) -> None:
    assert _found(store, runs, order_by=["end_time"]) == [0, 1, 2, 3]  # ascending by default
    assert _found(store, runs, order_by=["end_time DESC"]) == [3, 2, 1, 0]
    assert _found(store, runs, order_by=["metrics.acc"]) == [0, 1, 2, 3]  # missing last...
    assert _found(store, runs, order_by=["metrics.acc desc"]) == [2, 1, 0, 3]  # ...both ways
    assert _found(store, runs, order_by=["status", "start_time DESC"]) == [1, 2, 0, 3]
    assert _found(store, runs, order_by=["params.model ASC"]) == [0, 2, 1, 3]  # byte order
