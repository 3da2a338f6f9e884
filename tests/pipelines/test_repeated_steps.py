"""A step called many times in one pipeline: its code is hashed once per run, every call still has
its own key (inputs differ), record and event, and a second run hits every step."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import mloop.pipelines._engine as engine
from mloop.artifacts import BlobStore
from mloop.config import Settings
from mloop.pipelines import CodeHash, run
from mloop.store import SqlStore

FLOW = """
from mloop.pipelines import pipeline, step


@step
def inc(x: int) -> int:
    return x + 1


@step
def double(x: int) -> int:
    return 2 * x


@pipeline
def chain(n: int = 5, seed: int = 0):
    x = seed
    for _ in range(n):
        x = inc(x)
    return double(x)
"""


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"chain_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(FLOW)
    try:
        yield importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The qualified names of the functions the engine hashes, one entry per hashing."""
    hashed: list[str] = []
    real = engine.code_hash

    def counting(fn: Any, **kwargs: Any) -> CodeHash:
        hashed.append(fn.__qualname__)
        return real(fn, **kwargs)

    monkeypatch.setattr(engine, "code_hash", counting)
    return hashed


def _run(flow: ModuleType, tmp_path: Path, **params: Any) -> Any:
    store = SqlStore(f"sqlite:///{tmp_path / 'mloop.db'}")
    try:
        settings = Settings(home=tmp_path / ".mloop", store_uri=store.uri,
                            artifact_uri=str(tmp_path / "artifacts"))  # fmt: skip
        return run(flow.chain, params=params, store=store, blobs=BlobStore(tmp_path / "artifacts"),
                   settings=settings, track=False, project_root=str(tmp_path))  # fmt: skip
    finally:
        store.close()


def test_a_step_called_many_times_is_hashed_once_per_run(
    flow: ModuleType, tmp_path: Path, counted: list[str]
) -> None:
    first = _run(flow, tmp_path, n=5)
    assert first.output == 10 and len(first.executed) == 6
    assert sorted(counted) == ["double", "inc"]
    incs = [s for name, s in first.steps.items() if name.startswith("inc")]
    assert len(incs) == 5 and len({s.code_hash for s in incs}) == 1
    assert incs[0].code_hash != first.steps["double"].code_hash
    assert len({s.cache_key for s in incs}) == 5  # one code hash, five different inputs

    counted.clear()
    second = _run(flow, tmp_path, n=5)
    assert sorted(counted) == ["double", "inc"]  # a new run hashes the code again
    assert second.cached == list(second.steps) and second.output == 10
    assert {s.code_hash for s in second.steps.values()} == {
        incs[0].code_hash,
        first.steps["double"].code_hash,
    }


def test_every_repeated_call_is_recorded_with_its_event(flow: ModuleType, tmp_path: Path) -> None:
    result = _run(flow, tmp_path, n=4, seed=3)
    store = SqlStore(f"sqlite:///{tmp_path / 'mloop.db'}")
    try:
        names = [s.name for s in store.list_step_runs(result.run.id)]
        events = store.read_events(types=["step_finished"])
    finally:
        store.close()
    assert names == ["inc", "inc_2", "inc_3", "inc_4", "double"]
    assert [e.payload["step"] for e in events] == names
    assert result.output == 14
