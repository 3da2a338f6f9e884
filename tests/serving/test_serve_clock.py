"""The inference log's clock: ``ServeOptions(clock=...)`` stamps each logged request."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.errors import InvalidInputError
from mloop.inference import read_inference_log
from mloop.loop._replay_server import LoopbackServer
from mloop.serving import ServeOptions, ServeSpec, create_app, serve


@pytest.fixture
def served_model(mloop_home: Path) -> str:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    model = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    mloop.log_model(model, "clocked", input_example=X.head(3))
    return "models:/clocked/1"


def _post(server: LoopbackServer, rid: str) -> None:
    doc = {"dataframe_split": {"columns": ["a", "b"], "data": [[0.5, -0.1]]}}
    r = httpx.post(f"{server.url}/invocations", json=doc, headers={"X-Request-Id": rid})
    assert r.status_code == 200, r.text


def test_a_virtual_clock_stamps_the_inference_log(served_model: str) -> None:
    now = [1_000_000_000_000]
    options = ServeOptions(log_sample=1.0, log_flush_interval_s=0.05, clock=lambda: now[0])
    with LoopbackServer(create_app(ServeSpec(model=served_model), options=options)) as client:
        _post(client, "r-early")
        now[0] += 3_600_000  # an hour later, in no time
        _post(client, "r-late")
    log = read_inference_log("clocked", columns=["request_id", "ts"], with_labels=False)
    stamps = {r["request_id"]: r["ts"] for r in log.to_pylist()}
    ms = {k: int(pd.Timestamp(v).value // 10**6) for k, v in stamps.items()}
    assert ms == {"r-early": 1_000_000_000_000, "r-late": 1_000_003_600_000}


def test_without_a_clock_the_log_uses_real_time(served_model: str) -> None:
    import time

    before = int(time.time() * 1000)
    options = ServeOptions(log_sample=1.0, log_flush_interval_s=0.05)
    with LoopbackServer(create_app(ServeSpec(model=served_model), options=options)) as client:
        _post(client, "r-now")
    after = int(time.time() * 1000)
    (row,) = read_inference_log("clocked", columns=["ts"], with_labels=False).to_pylist()
    assert before <= pd.Timestamp(row["ts"]).value // 10**6 <= after


def test_a_clock_must_be_callable_and_stays_in_one_process(served_model: str) -> None:
    with pytest.raises(ValueError, match="clock must be a callable"):
        ServeOptions(clock=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="workers=1"):
        serve(ServeSpec(model=served_model), workers=2, options=ServeOptions(clock=lambda: 0))
