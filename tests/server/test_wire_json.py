"""Answers are written with orjson and read with orjson, falling back to the codec's JSON where
orjson stops (an int past 64 bits, a bare NaN): either way the value that arrives is the one sent."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from _asgi import http_store_over, in_process_client
from mloop.codec import dumps, to_wire
from mloop.errors import MloopError
from mloop.server import create_app
from mloop.server._wire import wire_json
from mloop.store import (
    ENDPOINTS,
    ArtifactEntry,
    Endpoint,
    HttpStore,
    MetricSeries,
    create_store,
)
from mloop.store._http._transport import HttpTransport

WIRE = [
    {"a": [1, -0.0, 1e300, 5e-324, "NaN", "Infinity"], "é": "ü ☃ \u2028", "n": None, "t": True},
    [2**63 - 1, -(2**63), 0.1, {"": {}}],
    "plain",
    {"nested": [[[[]]]], "k": {"x": 1.5}},
]


@pytest.mark.parametrize("body", WIRE)
def test_wire_json_reads_back_as_the_codecs_json(body: object) -> None:
    text, by_orjson = wire_json(body)
    assert by_orjson
    assert json.loads(text) == json.loads(dumps(body))


@pytest.mark.parametrize("body", [{"big": 2**70}, [-(2**64) - 1]])
def test_an_int_past_64_bits_goes_through_the_codecs_writer(body: object) -> None:
    assert wire_json(body) == (dumps(body).encode(), False)


def test_what_is_not_wire_form_is_written_by_the_codec_not_orjsons_own_way() -> None:
    # orjson would write a dataclass its own way; the codec's writer converts it instead
    entry = ArtifactEntry(path="a.txt", size=1, sha256="0" * 64)
    text, by_orjson = wire_json(entry)
    assert not by_orjson and json.loads(text) == to_wire(entry)


def test_an_answer_the_codec_wrote_is_read_by_the_codec() -> None:
    # orjson would read this int as a float; the server marks such an answer (exact=True)
    content = b'{"x": 18446744073709551617}'
    assert HttpTransport._decode(_endpoint(), content, exact=True) == {"x": 2**64 + 1}
    assert HttpTransport._decode(_endpoint(), b'{"x": 1}') == {"x": 1}


def test_the_client_reads_a_bare_nan_and_names_bad_json() -> None:
    assert math.isnan(HttpTransport._decode(_endpoint(), b"[NaN]")[0])
    with pytest.raises(MloopError, match="not JSON"):
        HttpTransport._decode(_endpoint(), b"{oops")


def test_an_int_past_64_bits_arrives_exact_over_http(tmp_path: Path) -> None:
    backing = create_store(f"sqlite:///{tmp_path / 'w.db'}")
    app = create_app(backing)
    with in_process_client(app) as client:
        remote = HttpStore("http://mloop.test", client=client)
        run = remote.create_run(remote.create_project("p").id)
        remote.log_batch(run.id, tags={"k": "v"})
        # an answer whose wire form holds an int past 64 bits, through the real route
        app.state.store.get_run = lambda run_id: {"big": 2**70, "run": run_id}  # type: ignore[method-assign]
        response = client.get(f"/api/v1/runs/{run.id}")
        assert response.headers["x-mloop-json"] == "codec"
        assert HttpTransport._decode(_endpoint(), response.content, exact=True)["big"] == 2**70
    backing.close()


def test_a_long_history_with_non_finite_values_round_trips(tmp_path: Path) -> None:
    backing = create_store(f"sqlite:///{tmp_path / 'w.db'}")
    remote = http_store_over(backing)
    try:
        run = remote.create_run(remote.create_project("p").id)
        n = 20_000
        values = np.random.default_rng(0).normal(size=n)
        values[[3, 7, 11]] = [np.nan, np.inf, -np.inf]
        step = np.arange(n, dtype=np.int64)
        remote.log_batch(run.id, metrics={"m": MetricSeries(step, step + 2**40, values)})
        h = remote.get_metric_history(run.id, "m")
        np.testing.assert_array_equal(h.step, step)
        np.testing.assert_array_equal(h.timestamp, step + 2**40)
        np.testing.assert_array_equal(h.value, values)  # NaN == NaN here
    finally:
        remote.close()
        backing.close()


def _endpoint() -> Endpoint:
    return ENDPOINTS["get_run"]
