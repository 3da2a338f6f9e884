"""The registry as users drive it: log_model -> alias -> load by URI, rollback, lineage, diff, errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import mloop
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.registry import Registry, WebhookDispatcher, verify_signature
from mloop.store._open import clear_store_cache


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    yield Settings.from_env(flush_interval_s=0.05)
    clear_store_cache()


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def train(settings: Settings, data, model, name: str = "churn", **config):  # type: ignore[no-untyped-def]
    X, y = data
    with mloop.start_run(
        project="churn", config=config, settings=settings, system_metrics=False
    ) as run:
        model.fit(X, y)
        run.log({"acc": float(model.score(X, y))})
        run.log_dataset(X, name="train")
        mv = mloop.log_model(model, name, run=run, input_example=X[:5])
    return run, mv


def test_log_model_alias_and_load_by_every_uri(settings: Settings, data) -> None:
    X, _ = data
    run, v1 = train(settings, data, LogisticRegression(max_iter=5000), C=1.0)
    _, v2 = train(settings, data, DecisionTreeClassifier(max_depth=3, random_state=0), depth=3)
    assert (v1.version, v2.version) == (1, 2) and v1.source_run_id == run.id
    assert v1.flavor == "sklearn" and v1.metrics["acc"] > 0.9 and v1.params == {"C": "1.0"}
    assert v1.datasets[0]["name"] == "train" and len(v1.datasets[0]["sha256"]) == 64
    assert v1.signature is not None
    reg = Registry(settings=settings)
    reg.set_alias("churn", "champion", 1, reason="first", expected_version=None)
    expected = LogisticRegression(max_iter=5000).fit(*data).predict(X[:20])
    for uri in ("models:/churn@champion", "models:/churn/1", f"runs:/{run.id}/model"):
        assert np.array_equal(mloop.load_model(uri).predict(X[:20]), expected), uri
    assert reg.get_version("churn", "latest").version == 2
    assert reg.get_version("churn", "@champion").version == 1
    tree = mloop.load_model("models:/churn/latest")
    assert np.array_equal(
        tree.predict(X[:20]),
        DecisionTreeClassifier(max_depth=3, random_state=0).fit(*data).predict(X[:20]),
    )


def test_predict_validates_against_the_signature(settings: Settings, data) -> None:
    X, _ = data
    train(settings, data, LogisticRegression(max_iter=5000))
    model = mloop.load_model("models:/churn/1")
    with pytest.raises(InvalidInputError, match="'mean radius' is missing"):
        model.predict(X.drop(columns=["mean radius"]).head())
    bad = X.head().copy()
    bad["mean area"] = ["a", "b", "c", "d", "e"]
    with pytest.raises(InvalidInputError, match="mean area"):
        model.predict(bad)


def test_register_from_a_run_artifact_and_bad_sources(
    settings: Settings, data, tmp_path: Path
) -> None:
    run, _ = train(settings, data, LogisticRegression(max_iter=5000))
    v2 = mloop.register_model(f"runs:/{run.id}/model", "churn-copy")
    assert v2.version == 1 and v2.source_run_id == run.id and v2.flavor == "sklearn"
    with pytest.raises(NotFoundError, match="does not exist"):
        mloop.register_model("runs:/" + "0" * 32 + "/model", "x")
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with mloop.start_run(project="p", settings=settings, system_metrics=False) as other:
        other.log_artifact(f, artifact_path="stuff")
    with pytest.raises(NotFoundError, match="no mloop model package"):
        mloop.register_model(f"runs:/{other.id}/stuff", "x")
    with pytest.raises(InvalidInputError, match="models:/"):
        mloop.load_model("churn@champion")
    with pytest.raises(NotFoundError, match="no alias"):
        mloop.load_model("models:/churn@nope")
    reg = Registry(settings=settings)
    assert [m.name for m in reg.list_models().items] == [
        "churn",
        "churn-copy",
    ]  # failures left nothing


def test_rollback_undoes_moves_like_a_stack_and_history_records_all(
    settings: Settings, data
) -> None:
    for depth in (1, 2, 3):
        train(settings, data, DecisionTreeClassifier(max_depth=depth, random_state=0), depth=depth)
    reg = Registry(settings=settings, actor="ana")
    with pytest.raises(NotFoundError):
        reg.rollback("churn", "champion")
    reg.set_alias("churn", "champion", 1)
    with pytest.raises(InvalidInputError, match="no previous target"):
        reg.rollback("churn", "champion")
    reg.set_alias("churn", "champion", 2, reason="v2 better")
    reg.set_alias("churn", "champion", 3, reason="v3 better")
    assert reg.rollback("churn", "champion", reason="v3 broke prod").version == 2
    assert reg.rollback("churn", "champion").version == 1
    with pytest.raises(InvalidInputError, match="no previous target"):
        reg.rollback("churn", "champion")
    moves = [(e.type, e.before, e.after, e.actor) for e in reg.history("churn", alias="champion")]
    assert moves == [
        ("alias_set", None, 1, "ana"),
        ("alias_set", 1, 2, "ana"),
        ("alias_set", 2, 3, "ana"),
        ("alias_rollback", 3, 2, "ana"),
        ("alias_rollback", 2, 1, "ana"),
    ]
    types = [e.type for e in reg.history("churn")]
    assert types.count("version_registered") == 3 and types[0] == "model_created"


def test_lineage_and_diff(settings: Settings, data) -> None:
    run1, _ = train(settings, data, DecisionTreeClassifier(max_depth=2, random_state=0), depth=2)
    train(settings, data, DecisionTreeClassifier(max_depth=6, random_state=0), depth=6)
    reg = Registry(settings=settings)
    lin = reg.lineage("churn", 1)
    assert lin.run is not None and lin.run["run_id"] == run1.id and lin.run["project"] == "churn"
    assert lin.config == {"depth": "2"} and lin.datasets[0]["num_rows"] == 569
    assert lin.git["commit"] == mloop.Client(settings=settings).get_run(run1.id).git_commit
    d = reg.diff("churn", 1, 2)
    assert d.params == {"depth": ("2", "6")}
    assert d.metrics["acc"][2] == pytest.approx(d.metrics["acc"][1] - d.metrics["acc"][0])
    assert d.datasets == {} and d.signature_equal and not d.identical
    json.dumps(d.to_dict()) and json.dumps(lin.to_dict())


def test_concurrent_promotions_through_the_service(settings: Settings, data) -> None:
    for depth in (1, 2, 3):
        train(settings, data, DecisionTreeClassifier(max_depth=depth, random_state=0))
    reg = Registry(settings=settings)
    reg.set_alias("churn", "champion", 1)
    reg.set_alias("churn", "champion", 2, expected_version=1)
    with pytest.raises(ConflictError, match="another change won"):
        reg.set_alias("churn", "champion", 3, expected_version=1)
    assert reg.get_version("churn", "@champion").version == 2


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Hook.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhooks_are_signed_retried_and_logged(settings: Settings, data) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Hook.received, _Hook.fail_first = [], 1
        train(settings, data, DecisionTreeClassifier(max_depth=1, random_state=0))
        reg = Registry(settings=settings)
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        hook = reg.store.create_webhook(
            url, secret="topsecret", events=["alias_set", "alias_rollback"], model="churn"
        )
        reg.set_alias("churn", "champion", 1, reason="go")
        reg.set_tags("churn", {"ignored": "yes"})
        with WebhookDispatcher(reg.store, backoff_s=0.01) as dispatcher:
            assert dispatcher.deliver_pending() == 1
            assert dispatcher.deliver_pending() == 0  # the cursor moved on
        ((headers, body),) = _Hook.received
        assert headers["X-Mloop-Event"] == "alias_set"
        assert verify_signature("topsecret", body, headers["X-Mloop-Signature"])
        assert not verify_signature("wrong-secret", body, headers["X-Mloop-Signature"])
        payload = json.loads(body)
        assert payload["event"]["alias"] == "champion" and payload["event"]["after"] == 1
        log = reg.store.list_deliveries(hook.id)
        assert [(d.attempt, d.ok, d.status_code) for d in log] == [(1, False, 503), (2, True, 200)]
    finally:
        server.shutdown()
        server.server_close()


def test_load_refuses_tampered_files(settings: Settings, data) -> None:
    from mloop.registry._package import ModelIntegrityError

    train(settings, data, LogisticRegression(max_iter=5000))
    reg = Registry(settings=settings)
    path = reg.download("models:/churn/1")
    victim = next(p for p in path.rglob("*") if p.is_file() and p.name != "MLOOP_MODEL.json")
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(ModelIntegrityError, match=victim.name):
        mloop.load_model("models:/churn/1")


def test_load_refuses_an_edited_manifest(settings: Settings, data) -> None:
    from mloop.registry._package import ModelIntegrityError

    _, mv = train(settings, data, LogisticRegression(max_iter=5000))
    assert mv.manifest["manifest_sha256"].startswith("blake3-")
    path = Registry(settings=settings).download("models:/churn/1")
    manifest = path / "MLOOP_MODEL.json"
    body = json.loads(manifest.read_text())
    body["framework_version"] = "0.0.1"
    manifest.write_text(json.dumps(body))
    with pytest.raises(ModelIntegrityError):
        mloop.load_model("models:/churn/1")
