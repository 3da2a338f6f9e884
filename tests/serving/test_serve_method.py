"""``ServeOptions(method=...)`` / ``mloop serve --method``: the model method that answers, e.g. a
classifier's ``predict_proba``, whose per-class scores the inference log keeps for CBPE."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.errors import InvalidInputError
from mloop.inference import read_inference_log
from mloop.loop._replay_server import LoopbackServer
from mloop.registry import Registry
from mloop.serving import ServeOptions, ServeSpec, create_app
from mloop.serving._model import load_served


@pytest.fixture
def data(mloop_home: Path) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    for c in (0.01, 10.0):  # two versions that score differently
        model = LogisticRegression(C=c).fit(X, (X["a"] + 0.3 * X["b"] > 0).astype(int))
        mloop.log_model(model, "scored", input_example=X.head(3))
    return X


def _post(url: str, rows: pd.DataFrame, rid: str) -> httpx.Response:
    doc = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
    r = httpx.post(f"{url}/invocations", json=doc, headers={"X-Request-Id": rid}, timeout=30)
    assert r.status_code == 200, r.text
    return r


def _scores(version: int, rows: pd.DataFrame) -> np.ndarray:
    return np.asarray(Registry().load(f"models:/scored/{version}").raw.predict_proba(rows))


def test_predict_proba_answers_and_is_logged_one_score_per_class(data: pd.DataFrame) -> None:
    rows = data.head(4)
    options = ServeOptions(method="predict_proba", log_sample=1.0, log_flush_interval_s=0.05)
    app_ = create_app(ServeSpec(model="models:/scored/2"), options=options)
    with LoopbackServer(app_) as server:
        got = np.asarray(_post(server.url, rows, "r-1").json()["predictions"])
        one = np.asarray(_post(server.url, rows.head(1), "r-2").json()["predictions"])
        served = app_.state.mloop.controller.traffic.main
        assert served.fast_columns == ("a", "b")  # the float64 fast path serves the method too
    np.testing.assert_allclose(got, _scores(2, rows), rtol=0, atol=1e-12)
    np.testing.assert_allclose(one, _scores(2, rows.head(1)), rtol=0, atol=1e-12)
    log = read_inference_log("scored", with_labels=False).to_pandas()
    assert {"prediction_0", "prediction_1"} <= set(log.columns) and "prediction" not in log
    first = log[log["request_id"] == "r-1"]
    np.testing.assert_allclose(
        first[["prediction_0", "prediction_1"]].to_numpy(), _scores(2, rows), atol=1e-12
    )


def test_a_hot_swap_keeps_serving_the_method(data: pd.DataFrame) -> None:
    reg = Registry()
    reg.set_alias("scored", "champion", 1)
    rows = data.head(2)
    options = ServeOptions(method="predict_proba", follow=True)
    with LoopbackServer(
        create_app(ServeSpec(model="models:/scored@champion"), options=options)
    ) as server:
        before = np.asarray(_post(server.url, rows, "s-1").json()["predictions"])
        reg.set_alias("scored", "champion", 2)
        deadline = time.monotonic() + 30
        while True:
            r = _post(server.url, rows, "s-2")
            if r.headers.get("X-Mloop-Model-Version") == "scored/2":
                break
            assert time.monotonic() < deadline, "the alias move was not followed"
            time.sleep(0.05)
    np.testing.assert_allclose(before, _scores(1, rows), atol=1e-12)
    np.testing.assert_allclose(np.asarray(r.json()["predictions"]), _scores(2, rows), atol=1e-12)


def test_a_method_the_model_lacks_is_refused_at_load(data: pd.DataFrame) -> None:
    with pytest.raises(
        InvalidInputError, match=r"\(LogisticRegression\) has no method 'transform'"
    ):
        load_served(Registry(), "models:/scored/1", method="transform")
    assert load_served(Registry(), "models:/scored/1", method="predict").method is None


def test_bad_method_names_are_refused(data: pd.DataFrame) -> None:
    for bad in ("_private", "predict proba", ""):
        with pytest.raises(ValueError, match="method must name a public model method"):
            ServeOptions(method=bad)
    result = CliRunner().invoke(get_app(), ["serve", "models:/scored/1", "--method", "_x"])
    assert result.exit_code != 0
    assert "method must name a public model method" in result.output
