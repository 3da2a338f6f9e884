"""The OpenAPI document of the REST API v1: generated from the endpoint table, every mounted
operation has typed parameters, a body schema, an answer schema and its error answers, the whole
document validates, and the schemas hold what the server actually sends."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict

import jsonschema
import numpy as np
import pytest
from openapi_spec_validator import validate

from _asgi import in_process_client
from mloop.artifacts import BlobStore
from mloop.server import create_app
from mloop.server._blobs import BLOB_ROUTES
from mloop.server._openapi import operation_schemas
from mloop.server._schema import SchemaBuilder
from mloop.server._ui import UI_OPERATIONS
from mloop.server._v1 import HANDLERS
from mloop.store import ENDPOINTS, Endpoint, MetricSeries, Store, create_store

ERROR_STATUSES = {"400", "404", "409", "500", "503"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = create_store(f"sqlite:///{tmp_path / 'api.db'}")
    yield s
    s.close()


@pytest.fixture
def doc(store: Store, tmp_path: Path) -> dict[str, Any]:
    app = create_app(store, artifacts=BlobStore(str(tmp_path / "blobs")))
    with in_process_client(app) as client:
        response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_the_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    validate(doc)  # OpenAPI 3.1 (FastAPI's), every $ref resolving
    assert doc["openapi"].startswith("3.1")


def test_every_mounted_operation_has_request_and_response_schemas(doc: dict[str, Any]) -> None:
    operations = {
        op["operationId"]: (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }
    mounted = [e for e in ENDPOINTS.values() if e.name in HANDLERS]
    blob_routes = {r.name for r in BLOB_ROUTES}
    extra = blob_routes | UI_OPERATIONS | {"health"}
    assert mounted and {e.name for e in mounted} | extra == set(operations)
    for name, (method, _, op) in operations.items():  # every operation, hand-written ones too
        successes = {k: v for k, v in op["responses"].items() if k.startswith("2")}
        assert successes, name
        for status, answer in successes.items():
            if status != "204" and method != "head":
                assert next(iter(answer["content"].values()))["schema"], (name, status)
        for status, answer in op["responses"].items():
            if status[0] in "45":
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }, (name, status)
        if name in blob_routes and method in ("post", "put", "patch"):
            assert "requestBody" in op or name == "complete_upload", name
    for endpoint in mounted:
        method, path, op = operations[endpoint.name]
        assert (method.upper(), path) == (endpoint.method, endpoint.full_path)
        params = {(p["in"], p["name"]): p for p in op.get("parameters", [])}
        for name in endpoint.args:
            if name in endpoint.path_params:
                p = params[("path", name)]
                assert p["required"] is True and p["schema"], (endpoint.name, name)
            elif endpoint.has_body:
                body = op["requestBody"]["content"]["application/json"]["schema"]
                assert body["type"] == "object" and body["additionalProperties"] is False
                assert body["properties"][name] is not None, (endpoint.name, name)
            else:
                assert params[("query", name)]["schema"], (endpoint.name, name)
        if endpoint.has_body:
            assert "requestBody" in op, endpoint.name
        else:
            assert "requestBody" not in op
        responses = op["responses"]
        if endpoint.result is None:
            assert "204" in responses and "200" not in responses
        else:
            schema = responses["200"]["content"]["application/json"]["schema"]
            assert schema, endpoint.name
        expected = ERROR_STATUSES | ({"413"} if endpoint.has_body else set())
        assert expected <= set(responses), endpoint.name
        for status in expected:
            error = responses[status]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error_code", "message", "details"]


def test_types_have_their_wire_schemas(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    floats = schemas["Float"]["anyOf"]
    assert {"type": "number"} in floats
    assert {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]} in floats
    assert schemas["Int64"]["format"] == "int64" and schemas["Int64"]["maximum"] == 2**63 - 1
    series = schemas["MetricSeries"]
    assert series["required"] == ["steps", "timestamps", "values"]
    assert series["properties"]["values"]["items"] == {"$ref": "#/components/schemas/Float"}
    run = schemas["Run"]
    assert run["properties"]["status"] == {"enum": ["running", "finished", "failed", "killed"]}
    assert run["properties"]["end_ms"]["anyOf"][1] == {"type": "null"}
    assert "id" in run["required"] and "params" not in run["required"]  # has a default
    fields = schemas["RunFields"]  # a TypedDict: every key required, no other
    assert set(fields["required"]) == set(fields["properties"])
    search = doc["paths"]["/api/v1/runs/search"]["post"]["responses"]["200"]
    page = _resolve(doc, search["content"]["application/json"]["schema"])
    assert page["properties"]["items"]["items"] == {"$ref": "#/components/schemas/Run"}
    history = doc["paths"]["/api/v1/runs/{run_id}/metric-history"]["get"]
    query = {p["name"]: p for p in history["parameters"] if p["in"] == "query"}
    assert query["key"]["required"] is True and query["max_points"]["required"] is False
    assert query["max_points"]["schema"] == {"$ref": "#/components/schemas/Int64"}


def test_answers_match_their_schemas_non_finite_floats_included(
    store: Store, doc: dict[str, Any]
) -> None:
    project = store.create_project("p")
    run = store.create_run(project.id, params={"lr": "0.1"})
    values = [1.5, math.nan, math.inf, -math.inf]
    store.log_batch(run.id, metrics={"loss": MetricSeries([0, 1, 2, 3], [1, 2, 3, 4], values)})
    with in_process_client(create_app(store)) as client:
        answers = {
            ("/api/v1/runs/{run_id}", "get"): client.get(f"/api/v1/runs/{run.id}"),
            ("/api/v1/runs/{run_id}/metric-history", "get"): client.get(
                f"/api/v1/runs/{run.id}/metric-history", params={"key": "loss"}
            ),
            ("/api/v1/runs/search", "post"): client.post(
                "/api/v1/runs/search", json={"project_ids": [project.id], "max_results": 10}
            ),
            ("/api/v1/projects", "get"): client.get("/api/v1/projects"),
        }
    for (path, method), response in answers.items():
        assert response.status_code == 200, response.text
        schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]
        full = {**schema["schema"], "components": doc["components"]}
        jsonschema.Draft202012Validator(full).validate(response.json())
    assert answers[("/api/v1/runs/{run_id}/metric-history", "get")].json()["value"] == [
        1.5,
        "NaN",
        "Infinity",
        "-Infinity",
    ]


# -------------------------------------------------------------- a new endpoint's schema for free
@dataclasses.dataclass(frozen=True)
class _Thing:
    """A thing a future endpoint returns."""

    name: str
    score: float
    kind: Literal["a", "b"]
    parts: tuple[int, ...] = ()
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class _Options(TypedDict, total=False):
    depth: int
    ratio: float | None


def test_a_new_endpoint_gets_its_schemas_from_its_types() -> None:
    endpoint = Endpoint(
        "make_thing",
        "POST",
        "/things/{group}",
        {"group": int, "options": _Options, "weights": dict[int, float], "note": str | None},
        list[_Thing],
    )
    builder = SchemaBuilder()
    op = operation_schemas(endpoint, builder).openapi
    assert op["parameters"] == [
        {"name": "group", "in": "path", "required": True, "schema": builder.of(int)}
    ]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["options", "weights"]  # `note` is optional
    assert body["properties"]["weights"]["propertyNames"] == {"pattern": "^-?[0-9]+$"}
    thing = builder.components["_Thing"]
    assert thing["required"] == ["name", "score", "kind"]
    assert thing["properties"]["kind"] == {"enum": ["a", "b"]}
    assert thing["properties"]["parts"]["items"] == {"$ref": "#/components/schemas/Int64"}
    assert thing["description"] == "A thing a future endpoint returns."
    assert builder.components["_Options"]["required"] == []
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/_Thing"},
    }


def test_a_type_without_a_wire_schema_fails_when_the_app_is_built() -> None:
    class Opaque:
        def to_dict(self) -> dict[str, Any]:
            return {}

    for tp in (Opaque, np.ndarray, int | str):
        endpoint = Endpoint("opaque", "POST", "/opaque", {"x": tp}, None)
        with pytest.raises(TypeError, match=r"schema|apart"):
            operation_schemas(endpoint, SchemaBuilder())
