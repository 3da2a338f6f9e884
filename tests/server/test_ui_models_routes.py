"""The Models and Deployments pages' routes, in-process under ``--auth``: what they read comes from
the store; promotion goes through the gate (a passing report under the server's policy) and only
with an admin token; rollback moves the alias back; refusals leave the store unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _ui_models_data import NOW_MS, model_registry, traffic_deployment

from _asgi import in_process_client
from mloop.server import create_app
from mloop.server._ui_models import traffic
from mloop.store import SqlStore

UI = "/api/v1/ui"


class World:
    def __init__(self, root: Path) -> None:
        self.store = SqlStore(f"sqlite:///{root / 'm.db'}")
        self.built = model_registry(self.store)
        self.tokens = {
            role: self.store.create_token(f"{role}-token", role=role)
            for role in ("read", "write", "admin")
        }
        self.client = in_process_client(create_app(self.store, auth=True, rate_limit=None))

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role].secret}"}

    def champion(self) -> int:
        return self.store.get_alias("churn", "champion").version


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.client.close()
    w.store.close()


def test_the_models_list_and_a_model_page_come_from_the_store(world: World) -> None:
    c, read = world.client, world.as_("read")
    models = c.get(f"{UI}/models", headers=read).json()["models"]
    by_name = {m["name"]: m for m in models}
    assert set(by_name) == {"churn", "empty-model"}
    assert by_name["churn"]["latest_version"] == 3
    assert by_name["churn"]["aliases"] == {"champion": 1, "challenger": 3}
    assert by_name["empty-model"]["latest_version"] is None
    page = c.get(f"{UI}/models/churn", headers=read).json()
    assert [v["version"] for v in page["versions"]] == [3, 2, 1]
    v3, v2, v1 = page["versions"]
    assert v2["source_run_id"] == world.built["runs"][2] and v2["flavor"] == "sklearn"
    assert v2["metrics"]["accuracy"] == 0.912
    assert v2["check"]["status"] == "pass" and v2["check"]["current_policy"] is True
    assert v3["check"]["status"] == "fail"
    assert v3["check"]["failing"] == ["non_regression:accuracy"]
    assert v1["check"] is None and v1["aliases"] == ["champion"]
    moves = [
        (e["alias"], e["before"], e["after"], e["reason"])
        for e in page["events"]
        if e["type"] == "alias_set"
    ]
    assert moves[:2] == [
        ("champion", 2, 1, "v2 was a mistake"),
        ("champion", None, 2, "first release"),
    ]  # newest first
    assert c.get(f"{UI}/models/nope", headers=read).status_code == 404


def test_lineage_and_diff_are_the_registrys(world: World) -> None:
    c, read = world.client, world.as_("read")
    lin = c.get(f"{UI}/models/churn/versions/2/lineage", headers=read).json()
    assert lin["run"]["run_id"] == world.built["runs"][2]
    assert lin["run"]["project"] == "churn-training"
    assert lin["datasets"][0]["sha256"] == "1a" * 32
    assert lin["pipeline"] == {"pipeline": "retrain", "run_id": "7", "step": "fit"}
    diff = c.get(f"{UI}/models/churn/diff", params={"a": 1, "b": 3}, headers=read).json()
    assert diff["params"] == {"lr": ["0.1", "0.3"], "max_depth": ["6", "12"]}
    assert diff["metrics"]["accuracy"][:2] == [0.905, 0.861]
    assert diff["signature_equal"] is True
    bad = c.get(f"{UI}/models/churn/diff", params={"a": "x", "b": 3}, headers=read)
    assert bad.status_code == 400 and "`a` must be an int" in bad.json()["message"]


def test_promote_needs_an_admin_token_and_a_passing_report(world: World) -> None:
    c = world.client
    body = {"version": 2, "alias": "champion", "reason": "v2 passed its check"}
    assert c.post(f"{UI}/models/churn/promote", json=body).status_code == 401
    for role in ("read", "write"):
        r = c.post(f"{UI}/models/churn/promote", json=body, headers=world.as_(role))
        assert r.status_code == 403, r.text
        assert "needs 'admin'" in r.json()["message"]
    assert world.champion() == 1  # unchanged
    admin = world.as_("admin")
    r = c.post(f"{UI}/models/churn/promote", json={**body, "version": 3}, headers=admin)
    assert r.status_code == 409 and r.json()["error_code"] == "PROMOTION_REFUSED"
    assert "significantly worse" in r.json()["message"]
    assert world.champion() == 1
    for big in (2**63, 2**64):  # orjson reads 2**64 as a float
        huge = c.post(f"{UI}/models/churn/promote", json={**body, "version": big}, headers=admin)
        assert huge.status_code == 400 and "[1, 2**63 - 1]" in huge.json()["message"]
    r = c.post(f"{UI}/models/churn/promote", json={"version": 2}, headers=admin)
    assert r.status_code == 400 and "`reason`" in r.json()["message"]
    r = c.post(f"{UI}/models/churn/promote", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "model": "churn",
        "alias": "champion",
        "version": 2,
        "previous_version": 1,
        "report_id": "2a" * 16,
    }
    assert world.champion() == 2
    last = world.store.list_events(model="churn", alias="champion", newest_first=True, limit=1)[0]
    assert (last.actor, last.reason, last.report_id) == (
        "admin-token",
        "v2 passed its check",
        "2a" * 16,
    )


def test_rollback_moves_the_alias_back_for_an_admin_only(world: World) -> None:
    c = world.client
    url = f"{UI}/models/churn/aliases/champion/rollback"
    body = {"reason": "alerts on v1"}
    assert c.post(url, json=body, headers=world.as_("read")).status_code == 403
    assert world.champion() == 1
    r = c.post(url, json=body, headers=world.as_("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["previous_version"] == 1
    assert world.champion() == 2
    last = world.store.list_events(model="churn", alias="champion", newest_first=True, limit=1)[0]
    assert (last.type, last.actor, last.reason) == ("alias_rollback", "admin-token", "alerts on v1")


def test_the_deployment_page_resolves_versions_and_counts_traffic(world: World) -> None:
    c, read = world.client, world.as_("read")
    page = c.get(f"{UI}/deployments/churn-api", headers=read).json()
    assert page["deployment"]["canary_percent"] == 10.0
    assert {r["slot"]: r["version"] for r in page["resolved"]} == {
        "main": 1,
        "canary": 3,
        "shadow": 2,
    }
    assert [r["revision"] for r in page["revisions"]] == [1, 2]
    assert page["revisions"][1]["reason"] == "watch v2 on live traffic"
    assert [e["type"] for e in page["events"]] == ["deployment_updated", "deployment_created"]
    t = page["traffic"]
    assert sum(t["requests"]) == pytest.approx(50_000)
    assert sum(t["by_version"]["churn/3"]) == pytest.approx(5_000)
    sv = page["serving"]
    assert sum(sv["requests"]) == 50_000 and sum(sv["errors"]) == 50
    assert sv["replicas"] == ["a:1", "b:2"]
    busy = [i for i, r in enumerate(sv["requests"]) if r]
    assert all(sv["latency_p50_ms"][i] == pytest.approx(10.0) for i in busy)
    assert all(25 < sv["latency_p95_ms"][i] <= 50 for i in busy)
    rates = [r for r in sv["error_rate"] if r]  # 5 of 1,000 a minute, diluted in wider buckets
    assert rates and max(rates) <= 5 / 1000 + 1e-12
    assert all(sv["error_rate"][i] == 0 for i in busy[:2])  # the first minutes had none
    assert c.get(f"{UI}/deployments/nope", headers=read).status_code == 404
    bad = c.get(f"{UI}/deployments/churn-api", params={"hours": 0}, headers=read)
    assert bad.status_code == 400


def test_traffic_spreads_a_chunk_over_the_buckets_it_spans(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 't.db'}")
    traffic_deployment(store)
    t = traffic(store, "t", hours=2, now_ms=NOW_MS)
    assert t["bucket_ms"] == 60_000
    counts = {ms: n for ms, n in zip(t["t"], t["requests"], strict=True) if n}
    # 600 rows over exactly three minutes: 200 in each; 90 rows inside one minute
    assert counts == {
        NOW_MS - 10 * 60_000: 200,
        NOW_MS - 9 * 60_000: 200,
        NOW_MS - 8 * 60_000: 200,
        NOW_MS - 2 * 60_000: 90,
    }
    store.close()
