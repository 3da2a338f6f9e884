"""Reading scoring requests and writing answers (no server): formats, types, errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mloop.serving._batcher import Batcher, join_outputs, slice_output
from mloop.serving._oip import infer_request, infer_response
from mloop.serving._payload import (
    Block,
    ServingError,
    encode_predictions,
    parse_invocation,
    split_content_type,
)

JSON = "application/json"


def parse(doc: Any, ctype: str = JSON) -> Any:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_invocation(body, ctype)


def test_numeric_split_rows_become_a_block_that_keeps_the_json_types() -> None:
    req = parse({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4.0]]}})
    assert isinstance(req.data, Block) and req.n_rows == 2
    np.testing.assert_array_equal(req.data.values, [[1.0, 2.5], [3.0, 4.0]])
    table = req.data.to_table()  # the general path types each column from its JSON values
    assert table.schema.types == [pa.int64(), pa.float64()]
    assert table.to_pydict() == {"a": [1, 3], "b": [2.5, 4.0]}
    assert req.data.select(["b", "a"]).values.tolist() == [[2.5, 1.0], [4.0, 3.0]]
    assert req.data.select(["a", "zzz"]) is None
    bools = parse({"dataframe_split": {"columns": ["f", "x"], "data": [[True, 1.5]]}})
    assert bools.data.to_table().schema.types == [pa.bool_(), pa.float64()]


def test_mixed_rows_records_and_columns_become_arrow_tables() -> None:
    req = parse({"dataframe_split": {"columns": ["s", "x"], "data": [["u", 1], [None, 2]]}})
    assert isinstance(req.data, pa.Table)
    assert req.data.to_pydict() == {"s": ["u", None], "x": [1, 2]}
    rec = parse({"dataframe_records": [{"a": 1.5}, {"a": None, "b": "z"}]})
    assert rec.data.to_pydict() == {"a": [1.5, None], "b": [None, "z"]}
    cols = parse({"inputs": {"a": [1, 2], "b": ["x", "y"]}, "params": {"k": 3}})
    assert cols.data.to_pydict() == {"a": [1, 2], "b": ["x", "y"]}
    assert cols.params == {"k": 3} and cols.format == "inputs"


def test_tensors_and_named_tensors() -> None:
    t = parse({"instances": [[1, 2], [3, 4]]})
    assert isinstance(t.data, np.ndarray) and t.data.shape == (2, 2) and t.n_rows == 2
    named = parse({"inputs": {"img": [[1, 2], [3, 4]], "mask": [[1], [0]]}})
    assert set(named.data) == {"img", "mask"} and named.data["img"].shape == (2, 2)
    with pytest.raises(ServingError, match=r"not a rectangular array|mixes value types"):
        parse({"inputs": [[1, 2], [3]]})


def test_csv_and_parquet_bodies() -> None:
    req = parse(b"a,b\n1,x\n2.5,y\n", "text/csv")
    assert req.data.to_pydict() == {"a": [1.0, 2.5], "b": ["x", "y"]}
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2]}), buf)
    assert parse(buf.getvalue(), "application/vnd.apache.parquet").data.num_rows == 2
    with pytest.raises(ServingError) as err:
        parse(b"not parquet", "application/vnd.apache.parquet")
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("ctype", "status"),
    [
        (None, 415),
        ("application/xml", 415),
        ("application/json; charset=utf-16", 415),
        ("application/json; boundary=x", 415),
    ],
)
def test_content_types_mlflow_refuses(ctype: str | None, status: int) -> None:
    with pytest.raises(ServingError) as err:
        split_content_type(ctype)
    assert err.value.status == status and err.value.plain


def test_content_type_parameters_are_read() -> None:
    assert split_content_type("Application/JSON; charset=UTF-8") == ("application/json", {})
    assert split_content_type('text/csv; charset="utf-8"')[0] == "text/csv"


def test_predictions_are_encoded_as_mlflow_does() -> None:
    assert json.loads(encode_predictions(np.array([1, 0]))) == {"predictions": [1, 0]}
    frame = pd.DataFrame({"p0": [0.25, 0.5], "p1": [0.75, 0.5]})
    assert json.loads(encode_predictions(frame)) == {
        "predictions": [{"p0": 0.25, "p1": 0.75}, {"p0": 0.5, "p1": 0.5}]
    }
    assert json.loads(encode_predictions(pd.Series([1.5, 2.0]))) == {"predictions": [1.5, 2.0]}
    assert json.loads(encode_predictions(np.array([[1, 2]], dtype=np.int32))) == {
        "predictions": [[1, 2]]
    }
    assert json.loads(encode_predictions([np.float32(0.5), "a"])) == {"predictions": [0.5, "a"]}


def test_outputs_are_sliced_and_joined_in_order() -> None:
    arr = np.arange(10)
    parts = [slice_output(arr, 0, 4), slice_output(arr, 4, 10)]
    np.testing.assert_array_equal(join_outputs(parts), arr)
    df = pd.DataFrame({"a": range(6)})
    joined = join_outputs([slice_output(df, 0, 2), slice_output(df, 2, 6)])
    assert joined["a"].tolist() == list(range(6))
    assert join_outputs([[1, 2], [3]]) == [1, 2, 3]
    t = pa.table({"x": [1, 2, 3]})
    assert join_outputs([slice_output(t, 0, 1), slice_output(t, 1, 3)]).to_pydict() == {
        "x": [1, 2, 3]
    }


def test_oip_requests_for_a_column_model_and_responses() -> None:
    class Sig:
        class inputs:  # a stand-in for Schema
            is_tensor = False
            specs: list[Any] = []

    body = json.dumps(
        {
            "id": "7",
            "inputs": [
                {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
                {"name": "b", "shape": [2, 1], "datatype": "BYTES", "data": ["x", "y"]},
            ],
        }
    ).encode()
    data, rid, params = infer_request(body, Sig)
    assert rid == "7" and params is None
    assert data.to_pydict() == {"a": [1.0, 2.0], "b": ["x", "y"]}
    out = infer_response("m", "3", "7", np.array([0.5, 1.5]))
    assert out["outputs"] == [
        {"name": "predict", "shape": [2], "datatype": "FP64", "data": out["outputs"][0]["data"]}
    ]
    assert list(out["outputs"][0]["data"]) == [0.5, 1.5] and out["id"] == "7"


class _Echo:
    """A served-model stand-in: predicts each row's first value, records every call's size."""

    label = "echo/1"

    def __init__(self, cost_s: float = 1.0) -> None:
        self.calls: list[int] = []
        self.cost_s = [cost_s]  # a slow model: predicted in the batcher's thread

    def predict(self, data: Any, *, params: Any = None) -> np.ndarray:
        values = data.values[:, 0] if isinstance(data, Block) else data.column(0).to_numpy()
        self.calls.append(len(values))
        return values * (params or {}).get("scale", 1)


@pytest.mark.parametrize("cost_s", [1.0, 0.0])  # in the thread, and inline in the loop
def test_the_batcher_merges_up_to_the_size_splits_big_requests_and_keeps_params_apart(
    cost_s: float,
) -> None:
    model = _Echo(cost_s)

    async def main() -> list[Any]:
        b = Batcher(max_batch_size=4, max_wait_ms=20, inline_below_s=0.002)
        b.start()
        tokens = [b.arrive() for _ in range(6)]  # six requests are being read: wait for them
        reqs = [
            b.predict(model, Block(np.array([[float(i)], [i + 0.5]]), ["v"]), None, tokens[i])
            for i in range(4)
        ]
        big = Block(np.arange(10.0).reshape(-1, 1), ["v"])
        reqs.append(b.predict(model, big, None, tokens[4]))
        reqs.append(b.predict(model, pa.table({"v": [7.0]}), {"scale": 2}, tokens[5]))
        out = await asyncio.gather(*reqs)
        await b.stop()
        return out

    out = asyncio.run(main())
    for i in range(4):
        assert out[i].tolist() == [i, i + 0.5]
    assert out[4].tolist() == list(np.arange(10.0))
    assert out[5].tolist() == [14.0]
    assert max(model.calls) <= 4
    assert sum(model.calls) == 2 * 4 + 10 + 1
    assert len(model.calls) < 4 + 3 + 1  # the 2-row requests were merged
    assert model.calls[:2] == [4, 4]  # gathered while the others arrived, not sent one by one


def test_a_lone_request_is_not_held_back_for_traffic_that_may_not_come() -> None:
    model = _Echo(0.0)

    async def main() -> float:
        b = Batcher(max_batch_size=64, max_wait_ms=30_000, inline_below_s=0.002)
        b.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await b.predict(model, Block(np.ones((1, 1)), ["v"]), None, b.arrive())
        took = loop.time() - t0
        await b.stop()
        return took

    assert asyncio.run(main()) < 10  # not the 30 s wait: nobody else was arriving


def test_the_batcher_refuses_past_its_queue_budget() -> None:
    model = _Echo()

    async def main() -> None:
        b = Batcher(max_batch_size=2, max_wait_ms=50, max_queue_rows=3)
        b.start()
        first = asyncio.ensure_future(b.predict(model, Block(np.ones((3, 1)), ["v"]), None))
        await asyncio.sleep(0)
        with pytest.raises(ServingError) as err:
            await b.predict(model, Block(np.ones((1, 1)), ["v"]), None)
        assert err.value.status == 503 and err.value.headers == {"Retry-After": "1"}
        assert (await first).tolist() == [1.0, 1.0, 1.0]
        await b.stop()

    asyncio.run(main())
