"""The REST API under schemathesis: cases generated from the OpenAPI document (valid and invalid)
sent to the real app (its endpoints and its artifact routes) over SQLite and PostgreSQL,
in-process; no answer may be a 5xx, and every answer must have a documented status and content
type and match its schema.

Each operation is fuzzed with free path parameters and, where it has some, with path parameters
pinned to resources that exist (a project, a run, a dataset and a blob, a model with a version and
an alias, a webhook, an upload session), so the generated bodies reach the store instead of
stopping at a "not found". Hypothesis runs derandomized (a fixed seed) with a bounded number of
examples.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from mloop.artifacts import BlobStore
from mloop.server import create_app
from mloop.store import create_store

# Per operation, per mode (valid / invalid data), per kind of path parameters (free / pinned);
# MLOOP_FUZZ_EXAMPLES=200 fuzzes deeper by hand. PostgreSQL gets half: what fails only there is
# the kind of a value (NUL, an int32 column, a length), not the depth of the search.
EXAMPLES = int(os.environ.get("MLOOP_FUZZ_EXAMPLES", "12"))
PER_BACKEND = {"sqlite": EXAMPLES, "postgres": max(EXAMPLES // 2, 1)}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _existing_resources(store: Any) -> dict[str, Any]:
    """Create one of everything the API names in a path; its path parameter -> its key."""
    import hashlib

    from mloop.store import DatasetVersion

    project = store.create_project("fuzzed")
    run = store.create_run(project.id, name="fuzzed")
    sha = hashlib.sha256(b"fuzzed").hexdigest()
    store.put_dataset(DatasetVersion(sha, "fuzzed", {"x": "float64"}, 3, None, "file:///fuzzed", 1))
    pins: dict[str, Any] = {"project_id": project.id, "run_id": run.id, "sha256": sha}
    store.create_model_version("fuzzed", artifact_uri="file:///fuzzed/model", flavor="sklearn")
    store.set_alias("fuzzed", "champion", 1)
    pins.update(name="fuzzed", version=1, alias="champion")
    pins["webhook_id"] = store.create_webhook("http://127.0.0.1:9/hook", secret="s" * 16).id
    return pins


def _existing_blobs(app: Any, sha: str) -> dict[str, Any]:
    """A blob named by the dataset's sha256 (so the same digest names both; blobs stored by mloop
    0.1 are named so) and an upload session."""
    import io

    from _asgi import in_process_client

    app.state.artifacts.put_stream(io.BytesIO(b"fuzzed"), expected_sha256=sha)
    with in_process_client(app) as client:
        made = client.post("/api/v1/uploads", json={"sha256": "0" * 64, "size": 10})
    assert made.status_code == 201, made.text
    assert app.state.artifacts.exists(sha)
    return {"upload_id": made.json()["upload_id"]}


def _fuzz(
    op: Any, mode: GenerationMode, pins: dict[str, Any] | None, examples: int, tally: Any
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,  # a fixed seed: the same cases on every run
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode, path_parameters=pins))
    def run(case: Any) -> None:
        tally["examples"] += 1
        response = case.call()
        if response.status_code >= 500:
            tally["5xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:  # one failure, or several at once
            text = str(exc).strip()
            tally["failures"].append(f"{op.label} [{mode.value}]: {text[:1500]}")
            lines = [x.strip() for x in text.splitlines()]
            what = " | ".join(x for x in lines if x.startswith(("-", "`", "curl")))
            tally["short"].append(f"{op.label} [{mode.value}] {response.status_code}: {what}"[:500])

    try:
        run()
    except Unsatisfiable:
        pass  # e.g. no invalid value exists for an operation whose only argument is a string


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_no_server_error_and_conforming_answers_over_every_operation(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    caplog.set_level(logging.CRITICAL, logger="mloop.server")  # 4xx and 5xx are counted here
    uri = (
        f"sqlite:///{tmp_path / 'fuzz.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    store = create_store(uri)
    try:
        pins = _existing_resources(store)
        app = create_app(store, artifacts=BlobStore(str(tmp_path / "blobs")), presign_s=0)
        pins.update(_existing_blobs(app, pins["sha256"]))
        # a dataset file's body is sent as bytes, like a blob's
        schemathesis.serializer.alias("application/vnd.apache.parquet", "application/octet-stream")
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        tally: dict[str, Any] = {"examples": 0, "5xx": 0, "failures": [], "short": []}
        operations = [result.ok() for result in schema.get_all_operations()]
        for op in operations:
            names = {p.name for p in op.path_parameters}
            pinned = {k: v for k, v in pins.items() if k in names}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(op, mode, None, PER_BACKEND[backend], tally)
                if pinned:
                    _fuzz(op, mode, pinned, PER_BACKEND[backend], tally)
    finally:
        store.close()
    documented = {(m.upper(), path) for path, item in app.openapi()["paths"].items() for m in item}
    assert {(op.method.upper(), op.path) for op in operations} == documented  # all fuzzed
    summary = (
        f"{len(operations)} operations, {tally['examples']} examples, {tally['5xx']} answers 5xx"
    )
    print(summary)  # shown with -s: the numbers of the run
    assert tally["5xx"] == 0 and not tally["failures"], (
        f"{summary}; failures:\n"
        + "\n".join(tally["short"])
        + "\n\nthe first in full:\n\n"
        + "\n\n".join(tally["failures"][:5])
    )
    assert tally["examples"] >= len(operations) * PER_BACKEND[backend]
