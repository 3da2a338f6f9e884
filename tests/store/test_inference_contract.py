"""The inference log's index and delayed labels: one contract, every backend."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from _blake3 import b3
from mloop.errors import InvalidInputError
from mloop.store import InferenceChunk, InferenceLabel, Store


def sha(i: int | str) -> str:
    """A chunk's blob digest: BLAKE3 (71 characters), as the logger writes them."""
    return b3(str(i).encode())


def add(store: Store, deployment: str = "churn-api", i: int = 0, **kw: Any) -> InferenceChunk:
    fields: dict[str, Any] = {
        "sha256": sha(i),
        "size": 1000 + i,
        "n_rows": 10,
        "first_ts_ms": 1000 * i,
        "last_ts_ms": 1000 * i + 999,
        "model_versions": {"churn/3": 9, "churn/4": 1},
    }
    return store.add_inference_chunk(deployment, **{**fields, **kw})


# ---------------------------------------------------------------------------------------- chunks


def test_a_chunk_is_indexed_and_read_back(store_factory: Callable[..., Store]) -> None:
    store = store_factory()
    c = add(store, i=1)
    assert isinstance(c, InferenceChunk) and c.id >= 1
    assert (c.deployment, c.sha256, c.size, c.n_rows) == ("churn-api", sha(1), 1001, 10)
    assert (c.first_ts_ms, c.last_ts_ms) == (1000, 1999)
    assert c.model_versions == {"churn/3": 9, "churn/4": 1} and c.created_ms > 0
    # another client of the same store reads the same row
    assert store_factory().list_inference_chunks("churn-api") == [c]


def test_indexed_chunks_are_referenced_blobs_that_gc_keeps(store: Store) -> None:
    chunk = add(store, i=41)
    assert chunk.sha256 in store.referenced_blobs()
    store.delete_inference_chunks("churn-api", [chunk.id])
    assert chunk.sha256 not in store.referenced_blobs()


def test_ids_grow_and_are_a_cursor(store: Store) -> None:
    chunks = [add(store, i=i) for i in range(5)]
    ids = [c.id for c in chunks]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert store.list_inference_chunks("churn-api") == chunks
    assert store.list_inference_chunks("churn-api", after_id=ids[1]) == chunks[2:]
    assert store.list_inference_chunks("churn-api", after_id=ids[1], limit=2) == chunks[2:4]
    assert store.list_inference_chunks("churn-api", after_id=ids[-1]) == []


def test_a_retried_flush_returns_the_row_already_stored(store: Store) -> None:
    first = add(store, i=7)
    again = add(store, i=7, size=1)  # same (deployment, sha256): the stored row, unchanged
    assert again == first
    assert len(store.list_inference_chunks("churn-api")) == 1
    # the same blob in another deployment is a chunk of its own
    other = add(store, "fraud-api", i=7)
    assert other.id != first.id and other.deployment == "fraud-api"


def test_deployments_are_separate_logs(store: Store) -> None:
    a = add(store, "a", i=1)
    b = add(store, "b", i=2)
    assert store.list_inference_chunks("a") == [a]
    assert store.list_inference_chunks("b") == [b]
    assert store.list_inference_chunks("c") == []


def test_time_filters_keep_the_chunks_that_overlap(store: Store) -> None:
    # chunk i covers [1000 i, 1000 i + 999]
    chunks = [add(store, i=i) for i in range(5)]
    assert store.list_inference_chunks("churn-api", since_ms=2500) == chunks[2:]
    assert store.list_inference_chunks("churn-api", since_ms=2999) == chunks[2:]
    assert store.list_inference_chunks("churn-api", since_ms=3000) == chunks[3:]
    assert store.list_inference_chunks("churn-api", until_ms=2000) == chunks[:2]  # exclusive
    assert store.list_inference_chunks("churn-api", until_ms=2001) == chunks[:3]
    assert store.list_inference_chunks("churn-api", since_ms=1500, until_ms=3500) == chunks[1:4]
    assert (
        store.list_inference_chunks("churn-api", since_ms=1500, after_id=chunks[2].id) == chunks[3:]
    )


def test_deleting_chunks_never_frees_their_ids(store: Store) -> None:
    chunks = [add(store, i=i) for i in range(4)]
    assert store.delete_inference_chunks("other", [chunks[0].id]) == 0  # not its chunk
    assert store.delete_inference_chunks("churn-api", [chunks[0].id, chunks[3].id, 10**9]) == 2
    assert store.list_inference_chunks("churn-api") == chunks[1:3]
    assert store.delete_inference_chunks("churn-api", []) == 0
    newer = add(store, i=99)
    assert newer.id > chunks[3].id  # a cursor past the deleted newest chunk still sees it


def test_many_chunks_are_deleted_at_once(store: Store) -> None:
    ids = [add(store, i=i).id for i in range(30)]
    assert store.delete_inference_chunks("churn-api", ids + ids) == 30
    assert store.list_inference_chunks("churn-api") == []


def test_an_empty_chunk_and_an_instant_chunk_are_valid(store: Store) -> None:
    c = add(store, n_rows=0, first_ts_ms=5, last_ts_ms=5, model_versions={})
    assert (c.n_rows, c.first_ts_ms, c.last_ts_ms, c.model_versions) == (0, 5, 5, {})


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"sha256": "abc"}, "`sha256` must be a content digest"),
        ({"sha256": sha(1).upper()}, "`sha256` must be a content digest"),
        ({"sha256": sha(1) + "0"}, "`sha256` must be a content digest"),
        ({"size": -1}, r"`size` must be an int >= 0; got -1"),
        ({"n_rows": 1.5}, r"`n_rows` must be an int >= 0; got 1.5"),
        ({"n_rows": True}, r"`n_rows` must be an int >= 0; got True"),
        ({"first_ts_ms": 10, "last_ts_ms": 9}, r"`last_ts_ms` must be >= `first_ts_ms`"),
        ({"model_versions": [("churn/3", 1)]}, "`model_versions` must be a mapping"),
        ({"model_versions": {"": 1}}, "`model_versions` keys must be non-empty"),
        ({"model_versions": {"churn/3": -1}}, r"`model_versions\['churn/3'\]` must be an int"),
        ({"size": 2**63}, "must be below 2\\*\\*63"),
    ],
)
def test_malformed_chunks_are_refused(store: Store, override: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        add(store, **override)
    assert store.list_inference_chunks("churn-api") == []


@pytest.mark.parametrize("name", ["", "   ", 3, None, "x" * 501, "a\x00b"])
def test_deployment_names_are_validated(store: Store, name: Any) -> None:
    with pytest.raises(InvalidInputError, match="deployment name"):
        add(store, name)
    with pytest.raises(InvalidInputError, match="deployment name"):
        store.list_inference_chunks(name)
    with pytest.raises(InvalidInputError, match="deployment name"):
        store.log_labels(name, {"r1": 1})


def test_listing_arguments_are_validated(store: Store) -> None:
    with pytest.raises(InvalidInputError, match=r"`limit` must be an int in \[1, 50000\]"):
        store.list_inference_chunks("d", limit=0)
    with pytest.raises(InvalidInputError, match="`after_id` must be an int >= 0"):
        store.list_inference_chunks("d", after_id=-1)
    with pytest.raises(InvalidInputError, match="`since_ms` must be an int >= 0"):
        store.list_inference_chunks("d", since_ms="yesterday")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="`ids` must be a sequence of ints"):
        store.delete_inference_chunks("d", "12")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="`chunk id` must be an int >= 1"):
        store.delete_inference_chunks("d", [0])


def test_concurrent_writers_never_collide(store_factory: Callable[..., Store]) -> None:
    stores = [store_factory() for _ in range(4)]
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for i in range(10):
                add(stores[k], i=i)  # every writer flushes the same ten blobs (retries)
                stores[k].log_labels("churn-api", {f"r{j}": k for j in range(20)})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(stores[0].list_inference_chunks("churn-api")) == 10
    labels = stores[0].list_labels("churn-api")
    assert len(labels) == 20 and len({lb.label for lb in labels}) == 1  # one writer was last


# ---------------------------------------------------------------------------------------- labels


def test_labels_are_stored_and_joined_by_request_id(store: Store) -> None:
    assert store.log_labels("churn-api", {"r1": 1, "r2": 0}) == 2
    assert store.log_labels("churn-api", [("r3", "yes"), ("r4", 2.5)]) == 2
    assert store.get_labels("churn-api", ["r4", "r1", "r9", "r3", "r2"]) == {
        "r4": 2.5,
        "r1": 1,
        "r3": "yes",
        "r2": 0,
    }
    assert store.get_labels("other", ["r1"]) == {}
    assert store.get_labels("churn-api", []) == {}


def test_labels_keep_their_json_type(store: Store) -> None:
    values = {"i": 3, "f": 0.25, "s": "3", "t": True, "n": -(2**62), "np": np.int64(7)}
    store.log_labels("d", values)
    back = store.get_labels("d", list(values))
    assert back == {"i": 3, "f": 0.25, "s": "3", "t": True, "n": -(2**62), "np": 7}
    assert type(back["t"]) is bool and type(back["i"]) is int and type(back["s"]) is str
    assert type(back["np"]) is int and type(back["f"]) is float


def test_the_last_label_wins_and_moves_to_the_end(store: Store) -> None:
    store.log_labels("d", {"a": 1, "b": 1, "c": 1}, ts_ms=100)
    first = store.list_labels("d")
    assert [(lb.request_id, lb.label, lb.ts_ms) for lb in first] == [
        ("a", 1, 100),
        ("b", 1, 100),
        ("c", 1, 100),
    ]
    assert all(isinstance(lb, InferenceLabel) and lb.deployment == "d" for lb in first)
    cursor = first[-1].id
    store.log_labels("d", [("a", 0)], ts_ms=200)
    assert store.get_labels("d", ["a", "b"]) == {"a": 0, "b": 1}
    moved = store.list_labels("d", after_id=cursor)
    assert [(lb.request_id, lb.label, lb.ts_ms) for lb in moved] == [("a", 0, 200)]
    assert moved[0].id > cursor
    assert [lb.request_id for lb in store.list_labels("d")] == ["b", "c", "a"]
    assert [lb.request_id for lb in store.list_labels("d", limit=1)] == ["b"]


def test_within_one_call_the_last_pair_wins(store: Store) -> None:
    assert store.log_labels("d", [("a", 1), ("b", 2), ("a", 3)]) == 2
    assert store.get_labels("d", ["a", "b"]) == {"a": 3, "b": 2}
    assert [lb.request_id for lb in store.list_labels("d")] == ["b", "a"]


def test_labels_as_mappings_of_request_id_and_label(store: Store) -> None:
    n = store.log_labels("d", [{"request_id": "x", "label": 1}, {"request_id": "y", "label": 0}])
    assert n == 2 and store.get_labels("d", ["x", "y"]) == {"x": 1, "y": 0}


def test_a_large_batch_of_labels_is_one_call(store: Store) -> None:
    labels = {f"req-{i}": i % 2 for i in range(3000)}
    assert store.log_labels("d", labels) == 3000
    assert store.log_labels("d", labels) == 3000  # again: replaced, not duplicated
    assert store.get_labels("d", list(labels)) == labels
    assert len(store.list_labels("d", limit=50_000)) == 3000


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ({"r1": None}, "must be a number, a string or a boolean; got NoneType"),
        ({"r1": [1]}, "must be a number, a string or a boolean; got list"),
        ({"r1": {"a": 1}}, "must be a number, a string or a boolean; got dict"),
        ({"r1": float("nan")}, "must be a finite number; got nan"),
        ({"r1": np.float64("inf")}, "must be a finite number; got inf"),
        ({"r1": "x" * 10_001}, "at most 10000 characters"),
        ({"r1": "a\x00"}, "NUL"),
        ({"bad id": 1}, "request id must be 1 to 64 characters"),
        ({"x" * 65: 1}, "request id must be 1 to 64 characters"),
        ({"": 1}, "request id must be 1 to 64 characters"),
        ([("r1", 1, 2)], r"must be a \(request_id, label\) pair"),
        ([{"request_id": "r1"}], "needs the keys 'request_id' and 'label'"),
        ("r1", "must be a mapping"),
        (5, "must be a mapping"),
    ],
)
def test_malformed_labels_store_nothing(store: Store, labels: Any, match: str) -> None:
    good = [("ok1", 1), ("ok2", 0)]
    batch = [*good, *labels.items()] if isinstance(labels, dict) else labels
    with pytest.raises(InvalidInputError, match=match):
        store.log_labels("d", batch)
    assert store.list_labels("d") == []


def test_label_reads_are_validated(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="request id"):
        store.get_labels("d", ["ok", "not ok"])
    with pytest.raises(InvalidInputError, match="`request_ids` must be a sequence"):
        store.get_labels("d", "r1")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"`limit` must be an int in \[1, 50000\]"):
        store.list_labels("d", limit=50_001)
    with pytest.raises(InvalidInputError, match="`ts_ms` must be an int >= 0"):
        store.log_labels("d", {"r": 1}, ts_ms=-5)
    assert store.log_labels("d", {}) == 0


def test_a_chunk_named_by_sha256_before_blake3_is_still_indexed(store: Store) -> None:
    legacy = hashlib.sha256(b"chunk from mloop 0.1").hexdigest()
    chunk = add(store, i=5, sha256=legacy)
    assert store.list_inference_chunks("churn-api") == [chunk] and chunk.sha256 == legacy


def test_migration_0013_widens_digests_and_keeps_chunk_ids_unique(sql_store_uri: str) -> None:
    """Back to 0012 and up again (on SQLite, a copy of each table): every row survives, a deleted
    newest chunk's id is still never reused, and BLAKE3 digests fit afterwards."""
    import sqlalchemy as sa
    from alembic import command

    from mloop.store import ArtifactEntry, SqlStore
    from mloop.store._sql._engine import _alembic_config

    s = SqlStore(sql_store_uri)
    legacy = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4)]
    try:
        run = s.create_run(s.create_project("p").id)
        s.add_artifacts(run.id, [ArtifactEntry("old.bin", 3, legacy[0])])
        chunks = [add(s, i=i, sha256=legacy[i]) for i in range(3)]
        assert s.delete_inference_chunks("churn-api", [chunks[2].id]) == 1
    finally:
        s.close()
    engine = sa.create_engine(sql_store_uri)
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0012")
        columns = {c["name"]: c["type"] for c in sa.inspect(conn).get_columns("artifacts")}
        assert columns["sha256"].length == 64
    engine.dispose()
    s = SqlStore(sql_store_uri)  # upgrades on open
    try:
        assert [(a.path, a.sha256) for a in s.list_artifacts(run.id)] == [("old.bin", legacy[0])]
        assert s.list_inference_chunks("churn-api") == chunks[:2]
        newer = add(s, i=7)  # a BLAKE3 digest: 71 characters
        assert newer.id > chunks[2].id and len(newer.sha256) == 71
        s.add_artifacts(run.id, [ArtifactEntry("new.bin", 3, sha(8))])
        assert {a.path: a.sha256 for a in s.list_artifacts(run.id)}["new.bin"] == sha(8)
    finally:
        s.close()
