"""One filter compiler for runs, registered models and model versions: the same operators, the same
LIKE/ILIKE escaping, the same IN lists and the same errors on every entity and every backend; and a
lapsed run filtered and sorted by the end time it is shown with."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mloop.errors import InvalidInputError
from mloop.ids import now_ms
from mloop.store import Store
from mloop.store._filter import (
    MODEL_ATTRIBUTES,
    RUN_ATTRIBUTES,
    VERSION_ATTRIBUTES,
    Comparison,
    OrderKey,
)
from mloop.store._sql import _search
from mloop.store._sql._compile import OPERATORS, FieldMap, compile_comparison, compile_order

# Values chosen so that wildcards, escapes and case each decide a match; entity 6 lacks tag "v".
VALUES = ["50%", "50x", "a_b", "axb", "back\\slash", "Mixed_Case"]
ABSENT = len(VALUES)

Search = Callable[[str], set[int]]


def _runs(store: Store) -> Search:
    project = store.create_project("compile")
    ids = []
    for i, value in enumerate([*VALUES, None]):
        run = store.create_run(project.id, name=f"r{i}")
        store.log_batch(run.id, tags={"v": value} if value is not None else {"w": "1"})
        ids.append(run.id)
    return lambda flt: {ids.index(r.id) for r in store.search_runs(project.id, filter=flt).items}


def _models(store: Store) -> Search:
    names = [f"m{i}" for i in range(len(VALUES) + 1)]
    for name, value in zip(names, [*VALUES, None], strict=True):
        store.create_registered_model(name)
        store.set_registered_model_tags(name, {"v": value} if value is not None else {"w": "1"})
    return lambda flt: {names.index(m.name) for m in store.search_registered_models(flt).items}


def _versions(store: Store) -> Search:
    for value in [*VALUES, None]:
        tags = {"v": value} if value is not None else {"w": "1"}
        store.create_model_version("mv", artifact_uri="runs:/x/m", flavor="sklearn", tags=tags)
    return lambda flt: {v.version - 1 for v in store.search_model_versions(flt, name="mv").items}


ENTITIES = {"runs": _runs, "models": _models, "versions": _versions}


@pytest.fixture(params=sorted(ENTITIES))
def search(request: pytest.FixtureRequest, store: Store) -> Search:
    return ENTITIES[request.param](store)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (r"tags.v LIKE '50%'", {0, 1}),
        (r"tags.v LIKE '50\%'", {0}),  # an escaped wildcard is itself
        (r"tags.v LIKE 'a_b'", {2, 3}),
        (r"tags.v LIKE 'a\_b'", {2}),
        (r"tags.v LIKE 'back\\\\slash'", {4}),  # the filter's \\ is one backslash: an escaped one
        (r"tags.v LIKE 'back\\slash'", set()),  # \s is a plain s: matches "backslash" only
        (r"tags.v LIKE 'back%'", {4}),
        (r"tags.v LIKE 'mixed%'", set()),  # LIKE is case-sensitive everywhere
        (r"tags.v ILIKE 'mixed%'", {5}),
        (r"tags.v ILIKE 'MIXED\_case'", {5}),
        (r"tags.v ILIKE 'MIXED_CASE'", {5}),
        (r"tags.v ILIKE '50\%'", {0}),
        (r"tags.v LIKE '%'", {0, 1, 2, 3, 4, 5}),  # the row without the tag never matches
        (r"tags.v = 'a_b'", {2}),  # = takes no wildcards
        (r"tags.v = '50\%'", set()),  # nor escapes
        (r"tags.v != 'a_b'", {0, 1, 3, 4, 5}),
        (r"tags.v IN ('50%', 'a_b')", {0, 2}),  # IN takes no wildcards
        (r"tags.v IN ('a_b')", {2}),
        (r"tags.v IN ('a_b', 'a_b', 'nope')", {2}),
        (r"tags.v IN ('back\\slash')", {4}),
        (r"tags.v NOT IN ('50%', 'a_b')", {1, 3, 4, 5}),
        (r"tags.v NOT IN ('nope')", {0, 1, 2, 3, 4, 5}),
        (r"tags.w IN ('1')", {ABSENT}),
        (r"tags.v LIKE '%\_%' and tags.v ILIKE 'm%'", {5}),
    ],
)
def test_string_operators_mean_the_same_on_every_entity(
    search: Search, flt: str, expected: set[int]
) -> None:
    assert search(flt) == expected


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        (r"tags.v LIKE 'abc\\'", "must not end with an unescaped backslash; got 'abc\\\\\\\\'"),
        (r"tags.v ILIKE '\\'", "must not end with an unescaped backslash"),
        ("tags.v > 'a'", r"an operator valid for tags.v \(=, !=, LIKE, ILIKE, IN, NOT IN\)"),
        ("tags.v LIKE 5", "position 12: expected a quoted string"),
        ("tags.v IN 'a'", "position 10: expected '\\(' starting a list of strings"),
        ("tags.v IN ()", "position 11: expected a quoted string"),
        ("tags.v IN ('a' 'b')", "position 15: expected ',' or '\\)'"),
        ("tags.v = 'a' or tags.v = 'b'", "position 13: expected AND"),
    ],
)
def test_the_same_errors_on_every_entity(search: Search, flt: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        search(flt)


@pytest.mark.parametrize(
    ("entity", "flt"),
    [
        ("runs", "start_time LIKE '1%'"),
        ("runs", "end_time IN ('1')"),
        ("models", "created LIKE '1%'"),
        ("models", "updated IN ('1')"),
        ("versions", "created LIKE '1%'"),
        ("versions", "version IN ('1')"),
        ("runs", "metrics.m LIKE '1%'"),
        ("versions", "metrics.m LIKE '1%'"),
    ],
)
def test_numbers_take_only_number_operators_on_every_entity(
    store: Store, entity: str, flt: str
) -> None:
    search = ENTITIES[entity](store)
    with pytest.raises(
        InvalidInputError, match=r"an operator valid for .* \(=, !=, >, >=, <, <=\)"
    ):
        search(flt)


# ------------------------------------------------------------------------------ the compiler itself
@pytest.mark.parametrize(
    ("fields", "kinds"),
    [
        (_search.RUNS, RUN_ATTRIBUTES),
        (_search.MODELS, MODEL_ATTRIBUTES),
        (_search.VERSIONS, VERSION_ATTRIBUTES),
    ],
)
def test_each_field_map_has_exactly_the_parsers_attributes(
    fields: FieldMap, kinds: dict[str, str]
) -> None:
    assert {k: a.kind for k, a in fields.attributes.items()} == kinds


def test_entities_have_the_key_value_tables_their_searches_allow() -> None:
    assert set(_search.RUNS.keyed) == {"metric", "param", "tag"}
    assert set(_search.MODELS.keyed) == {"tag"}
    assert set(_search.VERSIONS.keyed) == {"metric", "tag"}
    for fields in (_search.RUNS, _search.VERSIONS):
        assert fields.keyed["metric"].kind == "number" and fields.keyed["tag"].kind == "string"


@pytest.mark.parametrize(
    ("fields", "item", "message"),
    [
        (
            _search.MODELS,
            Comparison("metric", "acc", ">", 0.5),
            r"registered models cannot be filtered or ordered on metrics; got metrics.acc. "
            r"Use attributes, tags.",
        ),
        (
            _search.VERSIONS,
            Comparison("param", "lr", "=", "1"),
            r"model versions cannot be filtered or ordered on params; got params.lr.",
        ),
        (
            _search.RUNS,
            Comparison("attribute", "flavor", "=", "x"),
            r"runs have no attribute 'flavor'; expected one of run_id, run_name, status",
        ),
        (
            _search.RUNS,
            Comparison("tag", "t", ">", "x"),
            r"operator > does not apply to tags.t \(strings take =, !=, LIKE, ILIKE, IN, NOT "
            r"IN\); got >.",
        ),
        (
            _search.VERSIONS,
            Comparison("attribute", "version", "LIKE", "1"),
            r"operator LIKE does not apply to version \(numbers take =, !=, >, >=, <, <=\)",
        ),
        (_search.RUNS, Comparison("metric", "m", "=", "1"), r"= on a number takes a number"),
        (_search.RUNS, Comparison("tag", "t", "=", 1.0), r"= takes a string; got 1.0."),
        (_search.RUNS, Comparison("tag", "t", "IN", "a"), r"IN takes a list of strings"),
    ],
)
def test_the_compiler_refuses_what_an_entity_lacks(
    fields: FieldMap, item: Comparison, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        compile_comparison(item, fields)


def test_the_compiler_refuses_to_order_on_what_an_entity_lacks() -> None:
    with pytest.raises(InvalidInputError, match="cannot be filtered or ordered on metrics"):
        compile_order(sa.select(sa.literal(1)), [OrderKey("metric", "acc", True)], _search.MODELS)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect()])  # type: ignore[attr-defined]
@pytest.mark.parametrize("op", ["LIKE", "ILIKE"])
def test_like_escapes_with_a_backslash_on_both_dialects(dialect: sa.Dialect, op: str) -> None:
    sql = str(
        compile_comparison(Comparison("tag", "t", op, "a\\_%"), _search.RUNS).compile(
            dialect=dialect
        )
    )
    assert "ESCAPE '\\'" in sql


def test_the_operator_sets_are_the_parsers() -> None:
    assert OPERATORS == {
        "string": ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"),
        "number": ("=", "!=", ">", ">=", "<", "<="),
    }


# ------------------------------------------------------------------------------ lapsed runs' end time
def test_a_lapsed_runs_end_time_is_filtered_and_sorted_as_it_is_shown(store: Store) -> None:
    project = store.create_project("lapsed")
    old = now_ms() - 3_600_000  # an hour ago: far past the heartbeat timeout
    lapsed = store.create_run(project.id, name="lapsed", start_ms=old)
    store.heartbeat(lapsed.id, ts_ms=old + 1000)
    done = store.create_run(project.id, name="done", start_ms=old)
    store.update_run(done.id, status="finished", end_ms=old + 5000)
    store.create_run(project.id, name="live")  # running, with a fresh heartbeat: no end yet

    shown = store.get_run(lapsed.id)
    assert (shown.status, shown.end_ms) == ("killed", old + 1000)

    def names(**kw: object) -> list[str]:
        page = store.search_runs(project.id, **kw)  # type: ignore[arg-type]
        return [r.name for r in page.items]

    assert names(filter=f"end_time = {old + 1000}") == ["lapsed"]
    assert sorted(names(filter="end_time > 0")) == ["done", "lapsed"]
    assert names(filter=f"end_time < {old + 2000}") == ["lapsed"]
    assert names(filter=f"status = 'KILLED' and end_time >= {old}") == ["lapsed"]
    assert names(filter=f"end_time != {old + 5000}") == ["lapsed"]
    assert names(order_by=["end_time"]) == ["lapsed", "done", "live"]
    assert names(order_by=["end_time DESC"]) == ["done", "lapsed", "live"]
    # every shown end time agrees with the filter on it
    for run in store.search_runs(project.id).items:
        if run.end_ms is not None:
            assert names(filter=f"end_time = {run.end_ms}") == [run.name]
