"""`mloop serve` as a real process: MLflow's scoring protocol, its error semantics, OIP v2, metrics."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _harness import build_models, serve

pytestmark = pytest.mark.no_mutation


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("serve") / "home"
    return {**build_models(home), "home": home}


@pytest.fixture(scope="module")
def server(world: dict[str, Any]) -> Any:
    with serve(world["home"], "models:/bc@champion", "--max-body-mb", "0.5") as s:
        yield s


def _split(df: Any) -> dict[str, Any]:
    # What MLflow's client sends for a DataFrame (mlflow.utils.proto_json_utils.dump_input_data):
    # pandas' split orient, index included.
    return json.loads(df.to_json(orient="split"))


def test_every_input_format_predicts_what_the_model_predicts(world: dict, server: Any) -> None:
    X, pipe = world["X"].iloc[10:17], world["pipe"]
    expected = pipe.predict(X).tolist()
    split = _split(X)
    no_index = {k: v for k, v in split.items() if k != "index"}
    bodies = [
        {"dataframe_split": split},
        {"dataframe_split": no_index},
        {"dataframe_records": X.to_dict(orient="records")},
        {"instances": X.to_dict(orient="records")},
        {"inputs": X.to_dict(orient="list")},
        {"instances": X.to_dict(orient="list")},
        {"dataframe_split": no_index, "params": {}},
        {"inputs": X.values.tolist()},  # rows of values in the signature's column order
        {"instances": X.values.tolist()},
    ]
    for body in bodies:
        r = server.post_json("/invocations", body)
        assert r.status_code == 200, (body.keys(), r.text)
        assert r.json() == {"predictions": expected}, body.keys()
    for ctype in ("text/csv", "application/csv", "text/csv; charset=utf-8"):
        r = server.client.post(
            "/invocations", content=X.to_csv(index=False), headers={"Content-Type": ctype}
        )
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == expected
    buf = io.BytesIO()
    X.to_parquet(buf)
    r = server.client.post(
        "/invocations",
        content=buf.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == expected


def test_columns_in_another_order_and_extra_columns_are_matched_by_name(
    world: dict, server: Any
) -> None:
    X = world["X"].iloc[:5]
    expected = world["pipe"].predict(X).tolist()
    shuffled = X[list(reversed(X.columns))].assign(request_note=1.5)
    r = server.post_json("/invocations", {"dataframe_split": _split(shuffled)})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == expected
    # the same rows with integer-valued floats sent as JSON ints: a safe cast, same answer
    rounded = X.round(0)
    ints = {"columns": list(X.columns), "data": rounded.astype(int).values.tolist()}
    r = server.post_json("/invocations", {"dataframe_split": ints})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == world["pipe"].predict(rounded).tolist()


def test_response_headers_name_the_version_and_echo_the_request_id(
    server: Any, world: dict
) -> None:
    body = {"dataframe_split": _split(world["X"].iloc[:1])}
    r = server.post_json("/invocations", body, **{"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert r.headers["x-mloop-model-version"] == "bc/1"
    r = server.post_json("/invocations", body)
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    bad = server.post_json("/invocations", body, **{"X-Request-Id": "no spaces allowed"})
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])


@pytest.mark.parametrize(
    ("content", "ctype", "status", "code", "needle"),
    [
        (b"{bad", "application/json", 400, "BAD_REQUEST", "valid JSON"),
        (b"[1, 2]", "application/json", 400, "BAD_REQUEST", "Received a list"),
        (b'{"data": [[1]]}', "application/json", 400, "BAD_REQUEST", "exactly one of the input"),
        (
            b'{"inputs": [[1]], "instances": [[1]]}',
            "application/json",
            400,
            "BAD_REQUEST",
            "exactly one of the input",
        ),
        (
            b'{"dataframe_records": {"a": 1}}',
            "application/json",
            400,
            "BAD_REQUEST",
            "must be a list of records",
        ),
        (b'{"dataframe_split": [1]}', "application/json", 400, "BAD_REQUEST", "must be a dict"),
        (
            b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}',
            "application/json",
            400,
            "BAD_REQUEST",
            "Row 0 has 2 values",
        ),
        (b"", "text/csv", 400, "BAD_REQUEST", "CSV body is empty"),
        (b"a,b\n1", "text/plain", 415, None, "only supports the following content types"),
        (b"{}", "application/json; charset=latin-1", 415, None, "only supports UTF-8"),
        (b"{}", "application/json; format=pandas-split", 415, None, "Unrecognized content type"),
    ],
)
def test_bad_bodies_get_mlflow_error_codes(
    server: Any, content: bytes, ctype: str, status: int, code: str | None, needle: str
) -> None:
    r = server.client.post("/invocations", content=content, headers={"Content-Type": ctype})
    assert r.status_code == status, r.text
    if code is None:  # MLflow answers 415 in plain text
        assert r.headers["content-type"].startswith("text/plain")
        assert needle in r.text
    else:
        body = r.json()
        assert body["error_code"] == code
        assert needle in body["message"], body["message"]


def test_signature_errors_are_400s_naming_the_column(server: Any, world: dict) -> None:
    X = world["X"].iloc[:3]
    records = X.to_dict(orient="records")
    records[1]["mean radius"] = "large"
    r = server.post_json("/invocations", {"dataframe_records": records})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "BAD_REQUEST"
    problems = body["details"]["problems"]
    assert [p["column"] for p in problems] == ["mean radius"]
    assert problems[0]["problem"] == "dtype"
    assert "mean radius" in body["message"]

    missing = X.drop(columns=["worst area"])
    r = server.post_json("/invocations", {"dataframe_split": _split(missing)})
    assert r.status_code == 400
    assert r.json()["details"]["problems"] == [
        {
            "column": "worst area",
            "problem": "missing",
            "expected": "float64",
            "message": "column 'worst area' is missing (expected float64)",
        }
    ]
    nulls = {"columns": list(X.columns), "data": X.values.tolist()}
    nulls["data"][2][4] = None
    r = server.post_json("/invocations", {"dataframe_split": nulls})
    assert r.status_code == 400
    (problem,) = r.json()["details"]["problems"]
    assert problem["column"] == X.columns[4]
    assert problem["problem"] == "nulls"
    # and the server keeps serving
    ok = server.post_json("/invocations", {"dataframe_split": _split(X)})
    assert ok.status_code == 200


def test_a_body_over_the_limit_is_413(server: Any, world: dict) -> None:
    X = world["X"]
    big = {"dataframe_split": _split(X.sample(3000, replace=True, random_state=0))}
    data = json.dumps(big).encode()
    assert len(data) > 512 * 1024
    r = server.client.post(
        "/invocations", content=data, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"

    def chunks() -> Any:  # no Content-Length: the limit is counted as the body streams in
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    r = server.client.post(
        "/invocations", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


def test_health_and_version(server: Any) -> None:
    from importlib.metadata import version

    for path in ("/ping", "/health"):
        assert server.client.get(path).status_code == 200
    assert server.client.get("/version").text == version("mloop")
    assert server.client.get("/v2/health/live").json() == {"live": True}
    assert server.client.get("/v2/health/ready").json() == {"ready": True}


def test_open_inference_protocol(server: Any, world: dict) -> None:
    X = world["X"].iloc[20:24]
    meta = server.client.get("/v2/models/bc").json()
    assert meta["name"] == "bc"
    assert meta["versions"] == ["1"]
    assert meta["platform"] == "mloop_sklearn"
    assert [i["name"] for i in meta["inputs"]] == list(X.columns)
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert server.client.get("/v2/models/bc/versions/1").json()["versions"] == ["1"]
    assert server.client.get("/v2/models/bc/ready").json() == {"name": "bc", "ready": True}
    assert server.client.get("/v2/models/nope").status_code == 404
    assert server.client.get("/v2/models/bc/versions/7").status_code == 404

    inputs = [
        {"name": c, "shape": [len(X)], "datatype": "FP64", "data": X[c].tolist()} for c in X.columns
    ]
    r = server.post_json("/v2/models/bc/infer", {"id": "req-9", "inputs": inputs})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["id"] == "req-9"
    assert doc["model_name"] == "bc" and doc["model_version"] == "1"
    (out,) = doc["outputs"]
    assert out["shape"] == [len(X)]
    assert out["data"] == world["pipe"].predict(X).tolist()
    # a column as shape [n, 1] is the same column
    inputs2 = [{**t, "shape": [len(X), 1]} for t in inputs]
    r = server.post_json("/v2/models/bc/versions/1/infer", {"inputs": inputs2})
    assert r.json()["outputs"][0]["data"] == out["data"]
    assert "id" not in r.json()

    bad_shape = [{**inputs[0], "shape": [len(X) + 1]}, *inputs[1:]]
    r = server.post_json("/v2/models/bc/infer", {"inputs": bad_shape})
    assert r.status_code == 400
    assert "shape" in r.json()["error"]
    r = server.post_json("/v2/models/other/infer", {"inputs": inputs})
    assert r.status_code == 404
    assert "not served here" in r.json()["error"]
    r = server.post_json("/v2/models/bc/infer", {"inputs": [{**inputs[0], "datatype": "FP128"}]})
    assert r.status_code == 400


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in /metrics:\n{text}")


def test_metrics_count_requests_errors_and_the_serving_version(server: Any, world: dict) -> None:
    before = server.client.get("/metrics").text
    ok_before = _metric(before, "mloop_requests_total", endpoint="invocations", code="200")
    body = {"dataframe_split": _split(world["X"].iloc[:2])}
    for _ in range(5):
        assert server.post_json("/invocations", body).status_code == 200
    server.client.post("/invocations", content=b"{", headers={"Content-Type": "application/json"})
    text = server.client.get("/metrics").text
    assert (
        _metric(text, "mloop_requests_total", endpoint="invocations", code="200") == ok_before + 5
    )
    assert _metric(text, "mloop_errors_total", error_code="BAD_REQUEST") >= 1
    assert _metric(text, "mloop_model_version", slot="main", model="bc", version="1") == 1.0
    assert _metric(text, "mloop_request_duration_seconds_count", endpoint="invocations") >= 6
    assert _metric(text, "mloop_predict_batch_rows_bucket", le="2.0") >= 5


def test_predictions_match_in_process_load(world: dict, server: Any, tmp_path: Path) -> None:
    X = world["X"].sample(50, random_state=1)
    r = server.post_json("/invocations", {"dataframe_split": _split(X)})
    np.testing.assert_array_equal(np.asarray(r.json()["predictions"]), world["pipe"].predict(X))
