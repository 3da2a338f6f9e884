"""The pipeline engine: caching on inputs, parameters and code (fail closed), retries, resume,
lineage, the process executor. Steps live in modules written to tmp_path, as a user's would."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.artifacts import BlobStore
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError
from mloop.pipelines import (
    PipelineFailedError,
    Serializer,
    UnstorableValueError,
    decode_value,
    encode_value,
    register_serializer,
    resume,
    run,
)
from mloop.store import SqlStore

FLOW = """
import json
import os
from pathlib import Path

import numpy as np

import {helper}
from mloop.pipelines import pipeline, step

CALLS = Path(__file__).with_name("calls.txt")
FLAGS = Path(__file__).with_name("flags")


def called(name):
    with CALLS.open("a") as f:
        f.write(name + "\\n")


@step
def load(n: int) -> np.ndarray:
    called("load")
    return np.arange(n, dtype=np.float64)


@step
def transform(x: np.ndarray, scale: float) -> np.ndarray:
    called("transform")
    return {helper}.adjust(x) * scale


@step(outputs=("total", "count"))
def summarize(x: np.ndarray) -> tuple[float, int]:
    called("summarize")
    return float(x.sum()), int(x.size)


@step(retries={retries}, retry_delay=0.5)
def flaky(total: float) -> dict:
    called("flaky")
    failures = FLAGS / "fail_flaky"
    if failures.exists():
        left = int(failures.read_text())
        if left > 0:
            failures.write_text(str(left - 1))
            raise RuntimeError(f"transient failure, {{left}} left")
    return {{"total": total, "pid": os.getpid()}}


@step(cache=False)
def report(result: dict, count: int) -> str:
    called("report")
    return json.dumps({{"total": result["total"], "count": count}}, sort_keys=True)


@pipeline
def flow(n: int = 4, scale: float = 1.0):
    x = transform(load(n), scale)
    total, count = summarize(x)
    return {{"report": report(flaky(total), count), "x": x}}


@step
def left(n: int) -> dict:
    called("left")
    return {{"side": "left", "pid": os.getpid(), "n": n}}


@step
def right(n: int) -> dict:
    called("right")
    return {{"side": "right", "pid": os.getpid(), "n": n}}


@step
def join(a: dict, b: dict) -> list:
    called("join")
    return [a["pid"], b["pid"], a["n"] + b["n"]]


@pipeline
def branches(n: int = 1):
    return join(left(n), right(n))
"""

HELPER = """
def adjust(x):
    return x + {offset}
"""


class Project:
    """A user's project in tmp_path: a helper module, a flow module, a store and artifacts."""

    def __init__(self, root: Path, *, retries: int = 2) -> None:
        self.root = root
        tag = uuid.uuid4().hex[:8]
        self.helper_name = f"helper_{tag}"
        self.flow_name = f"flow_{tag}"
        self.write_helper(0)
        (root / f"{self.flow_name}.py").write_text(
            FLOW.format(helper=self.helper_name, retries=retries)
        )
        (root / "flags").mkdir()
        self.module = importlib.import_module(self.flow_name)
        self.store = SqlStore(f"sqlite:///{root / 'mloop.db'}")
        self.blobs = BlobStore(root / "artifacts")
        self.settings = Settings(home=root / ".mloop", store_uri=self.store.uri,
                                 artifact_uri=str(root / "artifacts"))  # fmt: skip
        self.sleeps: list[float] = []

    def write_helper(self, offset: int) -> None:
        path = self.root / f"{self.helper_name}.py"
        path.write_text(HELPER.format(offset=offset))
        # a new mtime even within the file system's timestamp granularity
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000 * (offset + 1)))

    def calls(self) -> list[str]:
        path = self.root / "calls.txt"
        names = path.read_text().split() if path.exists() else []
        path.unlink(missing_ok=True)
        return names

    def run(self, name: str = "flow", **kwargs: Any) -> Any:
        kwargs.setdefault("track", False)
        return run(getattr(self.module, name), store=self.store, blobs=self.blobs,
                   settings=self.settings, sleep=self.sleeps.append,
                   project_root=str(self.root), **kwargs)  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.syspath_prepend(str(tmp_path))
    p = Project(tmp_path)
    try:
        yield p
    finally:
        p.store.close()
        for name in (p.flow_name, p.helper_name):
            sys.modules.pop(name, None)


def test_a_second_run_with_the_same_inputs_reuses_every_cacheable_step(project: Project) -> None:
    first = project.run(params={"n": 4})
    assert project.calls() == ["load", "transform", "summarize", "flaky", "report"]
    assert first.output["report"] == '{"count": 4, "total": 6.0}'
    np.testing.assert_array_equal(first.output["x"], [0.0, 1.0, 2.0, 3.0])
    assert first.run.status == "finished" and first.executed == list(first.steps)
    second = project.run(params={"n": 4})
    assert project.calls() == ["report"]  # cache=False: it always runs
    assert second.cached == ["load", "transform", "summarize", "flaky"]
    assert second.output["report"] == first.output["report"]
    np.testing.assert_array_equal(second.output["x"], first.output["x"])
    hit = second.steps["transform"]
    assert hit.cache_hit and hit.attempts == 0 and f"run {first.run.id}" in (hit.cache_note or "")
    assert hit.outputs == first.steps["transform"].outputs
    assert second.steps["report"].cache_note == "not cached: the step has cache=False"


def test_a_changed_parameter_reruns_only_the_steps_it_reaches(project: Project) -> None:
    project.run(params={"n": 4, "scale": 1.0})
    project.calls()
    again = project.run(params={"n": 4, "scale": 2.0})
    assert project.calls() == ["transform", "summarize", "flaky", "report"]
    assert again.cached == ["load"] and again.output["report"] == '{"count": 4, "total": 12.0}'
    project.run(params={"n": 5, "scale": 2.0})
    assert project.calls() == ["load", "transform", "summarize", "flaky", "report"]


def test_a_changed_helper_in_an_imported_project_module_invalidates_the_step(
    project: Project,
) -> None:
    project.run(params={"n": 3})
    project.calls()
    project.write_helper(10)  # the helper transform calls changes on disk
    helper = importlib.reload(sys.modules[project.helper_name])
    changed = project.run(params={"n": 3})
    assert project.calls() == ["transform", "summarize", "flaky", "report"]
    assert changed.cached == ["load"]  # load does not use the helper
    assert helper.adjust(0) == 10 and changed.output["report"] == '{"count": 3, "total": 33.0}'
    assert changed.steps["transform"].code_hash != changed.steps["load"].code_hash
    project.run(params={"n": 3})  # and the new code is cached in turn
    assert project.calls() == ["report"]


def test_the_global_switch_and_the_run_argument_turn_the_cache_off(project: Project) -> None:
    project.run()
    project.calls()
    off = Settings.from_env({"MLOOP_PIPELINE_CACHE": "0"}, home=str(project.root / ".mloop"))
    assert off.pipeline_cache is False
    r = run(project.module.flow, store=project.store, blobs=project.blobs, settings=off,
            track=False)  # fmt: skip
    assert project.calls() == ["load", "transform", "summarize", "flaky", "report"]
    assert r.steps["load"].cache_note == "not cached: the cache is off for this run"
    assert r.steps["load"].cache_key is None
    project.run(cache=False)
    assert len(project.calls()) == 5
    project.run()  # the switch off writes no keys, and the earlier ones still hit
    assert project.calls() == ["report"]
    with pytest.raises(InvalidInputError, match="MLOOP_PIPELINE_CACHE"):
        Settings.from_env({"MLOOP_PIPELINE_CACHE": "maybe"})


def _module(root: Path, name: str, source: str) -> Any:
    (root / f"{name}.py").write_text(textwrap.dedent(source))
    return importlib.import_module(name)


def test_a_key_that_cannot_be_computed_disables_the_cache_and_says_why(
    project: Project,
) -> None:
    name = f"closed_{uuid.uuid4().hex[:8]}"
    mod = _module(
        project.root,
        name,
        """
        from mloop.pipelines import pipeline, step

        RUNS = []

        class Opaque:
            pass

        def make(state):
            return step(lambda x: RUNS.append(x) or (x + 1 if state else x), name="bump")

        bump = make(Opaque())
        namespace = {"step": step, "RUNS": RUNS}
        exec("def hidden(x):\\n    RUNS.append(x)\\n    return x * 2", namespace)
        hidden = step(namespace["hidden"])

        @step
        def take(x: int, thing: object) -> int:
            RUNS.append(x)
            return x

        @pipeline
        def closed(x: int = 1):
            return take(hidden(bump(x)), Opaque())
        """,
    )
    try:
        for _ in range(2):
            r = run(mod.closed, store=project.store, blobs=project.blobs,
                    settings=project.settings, track=False)  # fmt: skip
        assert mod.RUNS == [1, 2, 4, 1, 2, 4]  # every step ran both times
        notes = {n: s.cache_note or "" for n, s in r.steps.items()}
        assert "closes over `state`, which is a Opaque" in notes["bump"]
        assert "source of" in notes["hidden"] and "not available" in notes["hidden"]
        assert "input `thing` is a Opaque" in notes["take"]
        assert all(s.cache_key is None and s.status == "finished" for s in r.steps.values())
        assert r.output == 4
    finally:
        sys.modules.pop(name, None)


def test_retries_back_off_exponentially_and_count_attempts(project: Project) -> None:
    (project.root / "flags" / "fail_flaky").write_text("2")
    r = project.run()
    assert project.calls().count("flaky") == 3
    assert r.steps["flaky"].attempts == 3 and r.steps["flaky"].status == "finished"
    assert project.sleeps == [0.5, 1.0]  # retry_delay, then doubled


def test_a_failure_after_the_retries_fails_the_run_and_skips_what_depends_on_it(
    project: Project,
) -> None:
    (project.root / "flags" / "fail_flaky").write_text("9")
    with pytest.raises(PipelineFailedError, match="step 'flaky' failed") as info:
        project.run()
    assert project.calls().count("flaky") == 3 and project.sleeps == [0.5, 1.0]
    failed = project.store.get_pipeline_run(info.value.run_id)
    assert failed.status == "failed" and "transient failure" in (failed.error or "")
    steps = {s.name: s for s in project.store.list_step_runs(failed.id)}
    assert steps["flaky"].status == "failed" and steps["flaky"].attempts == 3
    assert "RuntimeError: transient failure" in (steps["flaky"].error or "")
    assert steps["report"].status == "skipped" and steps["report"].attempts == 0
    assert project.store.find_cached_step(steps["summarize"].cache_key or "") is not None


def test_resume_reuses_finished_steps_and_reruns_from_the_failure(project: Project) -> None:
    (project.root / "flags" / "fail_flaky").write_text("9")
    with pytest.raises(PipelineFailedError) as info:
        project.run(params={"n": 5})
    project.calls()
    (project.root / "flags" / "fail_flaky").unlink()  # the fault is fixed
    done = resume(info.value.run_id, pipeline=project.module.flow, store=project.store,
                  settings=project.settings, blobs=project.blobs, track=False,
                  cache=False)  # fmt: skip
    # even with the cache off, resume reuses what finished in the failed run
    assert project.calls() == ["flaky", "report"]
    assert done.run.resumed_from == info.value.run_id and done.run.trigger == "resume"
    assert done.run.params == {"n": 5, "scale": 1.0}
    assert done.cached == ["load", "transform", "summarize"]
    assert "reused from run" in (done.steps["load"].cache_note or "")
    assert done.output["report"] == '{"count": 5, "total": 10.0}'
    with pytest.raises(ConflictError, match="only a failed run resumes"):
        resume(done.run.id, store=project.store, settings=project.settings)


def test_resume_imports_the_pipeline_from_its_code_ref(project: Project) -> None:
    (project.root / "flags" / "fail_flaky").write_text("9")
    with pytest.raises(PipelineFailedError) as info:
        project.run()
    (project.root / "flags" / "fail_flaky").unlink()
    done = resume(info.value.run_id, store=project.store, settings=project.settings,
                  blobs=project.blobs, track=False)  # fmt: skip
    assert done.run.status == "finished" and done.run.code_ref.endswith(":flow")


def test_lineage_links_steps_through_hashes_to_the_tracking_run(project: Project) -> None:
    r = project.run(track=True)
    assert r.run.tracking_run_id is not None
    tracked = project.store.get_run(r.run.tracking_run_id)
    assert tracked.tags["mloop.pipeline_run"] == r.run.id and tracked.status == "finished"
    s = r.steps
    assert all(x.tracking_run_id == r.run.tracking_run_id for x in s.values())
    assert s["transform"].inputs["x"] == s["load"].outputs["output"]
    assert s["flaky"].inputs["total"] == s["summarize"].outputs["total"]
    assert s["report"].inputs["count"] == s["summarize"].outputs["count"]
    assert s["load"].inputs["n"] in {project.blobs.put_bytes(b"4")[0]}  # the literal, stored
    with project.blobs.open(s["summarize"].outputs["count"]) as f:
        assert decode_value(s["summarize"].output_formats["count"], f.read()) == 4
    assert s["load"].output_formats["output"] == "npy"
    events = project.store.read_events(subject="pipelines/flow")
    assert [e.type for e in events] == (
        ["pipeline_run_started"] + ["step_finished"] * 5 + ["pipeline_run_finished"]
    )


def test_values_round_trip_without_pickle() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    fmt, data = encode_value(frame)
    assert fmt == "parquet:pandas" and encode_value(frame.copy())[1] == data  # deterministic
    pd.testing.assert_frame_equal(decode_value(fmt, data), frame, check_dtype=False)
    arr = np.arange(6, dtype=np.int32).reshape(2, 3)
    back = decode_value(*encode_value(arr))
    assert back.dtype == np.int32 and np.array_equal(back, arr)
    assert encode_value({"b": 1, "a": [1.5, None]}) == ("json", b'{"a":[1.5,null],"b":1}')
    with pytest.raises(UnstorableValueError, match="never pickles"):
        encode_value(object())
    with pytest.raises(UnstorableValueError, match="dtype object"):
        encode_value(np.array([object()]))

    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

    register_serializer(Point, Serializer("point", lambda p: str(p.x).encode(),
                                          lambda b: Point(int(b))))  # fmt: skip
    fmt, data = encode_value(Point(3))
    assert fmt == "custom:point" and decode_value(fmt, data).x == 3


def test_wrong_types_and_unstorable_outputs_fail_the_step_clearly(
    project: Project, tmp_path: Path
) -> None:
    name = f"typed_{uuid.uuid4().hex[:8]}"
    mod = _module(
        tmp_path,
        name,
        """
        from mloop.pipelines import pipeline, step

        @step
        def count(x: int) -> int:
            return x

        @step
        def opaque(x: int) -> object:
            return object()

        @pipeline
        def wrong(x: str = "a"):
            return count(x)

        @pipeline
        def unstorable(x: int = 1):
            return opaque(x)
        """,
    )
    try:
        call: Callable[..., Any] = lambda p: run(  # noqa: E731
            p, store=project.store, blobs=project.blobs, settings=project.settings, track=False
        )
        with pytest.raises(PipelineFailedError, match="input `x` must be int; got str"):
            call(mod.wrong)
        with pytest.raises(PipelineFailedError, match="register a serializer"):
            call(mod.unstorable)
        with pytest.raises(InvalidInputError, match="must be a JSON value"):
            run(mod.unstorable, params={"x": object()}, store=project.store,
                settings=project.settings)  # fmt: skip
    finally:
        sys.modules.pop(name, None)


def test_the_process_executor_runs_independent_branches_in_workers(project: Project) -> None:
    r = project.run("branches", params={"n": 2}, executor="process", max_workers=2)
    left_pid, right_pid, total = r.output
    assert total == 4 and os.getpid() not in (left_pid, right_pid)
    assert sorted(project.calls()) == ["join", "left", "right"]
    again = project.run("branches", params={"n": 2}, executor="process", max_workers=2)
    assert again.output == r.output and sorted(again.cached) == ["join", "left", "right"]
    assert project.calls() == []
