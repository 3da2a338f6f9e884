"""The media index: one contract, every backend. Items are keyed by (run, key, step), point at
the run's artifacts, keep their JSON meta, and are refused identically when malformed."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mloop.errors import InvalidInputError, NotFoundError
from mloop.store import MEDIA_KINDS, ArtifactEntry, MediaItem, Store


@pytest.fixture
def run(store: Store) -> Any:
    project = store.create_project("vision")
    r = store.create_run(project.id, name="r1")
    store.add_artifacts(
        r.id,
        [ArtifactEntry(f"media/samples/{s}.png", 100 + s, f"{s:02x}" * 32) for s in range(3)]
        + [
            ArtifactEntry("media/preds/0.parquet", 900, "ee" * 32),
            ArtifactEntry("media/weights/5.json", 80, "ff" * 32),
        ],
    )
    return r


def image(step: int, **changes: Any) -> MediaItem:
    base = MediaItem(
        key="samples",
        step=step,
        kind="image",
        path=f"media/samples/{step}.png",
        meta={"width": 28, "height": 28, "channels": 1},
        timestamp_ms=1_700_000_000_000 + step,
    )
    return dataclasses.replace(base, **changes)


def test_kinds() -> None:
    assert MEDIA_KINDS == ("image", "figure", "table", "histogram")


def test_items_come_back_by_key_then_step(store: Store, run: Any) -> None:
    hist = MediaItem(
        "weights",
        5,
        "histogram",
        "media/weights/5.json",
        {"edges": [-1.5, 0.0, 1.5], "counts": [3, 7], "total": 10},
        1_700_000_000_123,
    )
    table = MediaItem("preds", 0, "table", "media/preds/0.parquet", {"rows": 7, "columns": ["a"]})
    store.add_media(run.id, [image(2), image(0), hist])
    store.add_media(run.id, [table, image(1)])
    got = store.list_media(run.id)
    assert [(m.key, m.step) for m in got] == [
        ("preds", 0),
        ("samples", 0),
        ("samples", 1),
        ("samples", 2),
        ("weights", 5),
    ]
    assert got[0] == table and got[1] == image(0) and got[4] == hist
    assert got[4].meta["edges"] == [-1.5, 0.0, 1.5] and got[4].meta["counts"] == [3, 7]
    assert [m.step for m in store.list_media(run.id, key="samples")] == [0, 1, 2]
    assert store.list_media(run.id, kind="histogram") == [hist]
    assert store.list_media(run.id, key="nope") == []


def test_the_same_key_and_step_again_replaces_it(store: Store, run: Any) -> None:
    store.add_media(run.id, [image(1)])
    again = image(1, meta={"width": 64, "height": 32, "channels": 3}, timestamp_ms=5)
    store.add_media(run.id, [again])  # a replayed or repeated write: one item, the newest
    assert store.list_media(run.id) == [again]


def test_an_item_must_point_at_an_artifact_of_the_run(store: Store, run: Any) -> None:
    with pytest.raises(NotFoundError, match=r"no artifact 'media/samples/9\.png'"):
        store.add_media(run.id, [image(0), image(9)])
    assert store.list_media(run.id) == []  # nothing of the call was written
    other = store.create_run(store.get_or_create_project("vision").id, name="r2")
    with pytest.raises(NotFoundError):
        store.add_media(other.id, [image(0)])  # another run's file is not this run's


def test_unknown_runs(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.add_media("0" * 32, [image(0)])
    with pytest.raises(NotFoundError):
        store.list_media("0" * 32)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"key": ""}, "media key must be a non-empty string"),
        ({"key": "a/../b"}, "may not start with '/' or contain '..'"),
        ({"step": 1.5}, "`step` must be a signed 64-bit int; got 1.5"),
        ({"step": 2**63}, "`step` must be a signed 64-bit int"),
        ({"kind": "video"}, "`kind` must be one of"),
        ({"path": ""}, "path"),
        ({"meta": {"x": float("nan")}}, "`meta` must hold JSON values"),
        ({"meta": {1: 2}}, "`meta` must be a mapping with str keys"),
        ({"meta": {"x": "y" * 70_000}}, "`meta` must be at most 65536 bytes"),
        ({"timestamp_ms": -1}, "`timestamp_ms` must be an int >= 0; got -1"),
    ],
)
def test_malformed_items_are_refused(
    store: Store, run: Any, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        store.add_media(run.id, [dataclasses.replace(image(0), **changes)])
    assert store.list_media(run.id) == []


def test_malformed_calls_are_refused(store: Store, run: Any) -> None:
    with pytest.raises(InvalidInputError, match="`items` must be an iterable of MediaItem"):
        store.add_media(run.id, image(0))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="`item` must be a MediaItem; got dict"):
        store.add_media(run.id, [{"key": "samples"}])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="same \\(key, step\\)"):
        store.add_media(run.id, [image(0), image(0)])
    with pytest.raises(InvalidInputError, match="`kind` must be one of"):
        store.list_media(run.id, kind="audio")
    with pytest.raises(InvalidInputError):
        store.list_media("not-a-run")
    store.add_media(run.id, [])  # nothing to index is not an error
    assert store.list_media(run.id) == []
