"""The post-deploy check on real `mloop serve` processes: a promoted version is watched on live
traffic over real HTTP, and a bad one is rolled back (the server then swaps back)."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import mloop
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.gates._postdeploy import watch_promotion
from mloop.registry import Registry

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from _harness import serve

pytestmark = pytest.mark.no_mutation

MODELS_DIR = Path(__file__).parent / "models_code"
PATTERN = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # every request scores these rows
# What the candidates predicted on their evaluation data (2a on the same rows): live traffic of a
# faithful version matches it exactly, whatever the window's length.
REFERENCE = [2 * a for a in PATTERN] * 20
FAST = {"window_s": 1.5, "min_requests": 20, "swap_timeout_s": 60.0, "poll_s": 0.1}


class Client:
    """A thread posting the pattern (and, every ``bad_every``-th request, a row with a = 13)."""

    def __init__(self, url: str, bad_every: int = 0) -> None:
        self.url, self.bad_every = url, bad_every
        self.codes: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.url, timeout=30.0) as c:
            while not self._stop.is_set():
                n += 1
                rows = [13.0] if self.bad_every and n % self.bad_every == 0 else PATTERN
                try:
                    code = c.post(
                        "/invocations", json={"dataframe_records": [{"a": a} for a in rows]}
                    ).status_code
                except httpx.HTTPError:
                    code = -1
                self.codes[code] = self.codes.get(code, 0) + 1

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Model ``m``: v1 (@champion) and v2 predict 2a; v3 fails on a = 13; v4 predicts 2a + 5;
    v5's model file is corrupted in the artifact store. One server follows m@champion and logs
    every request."""
    home = tmp_path_factory.mktemp("post-deploy") / "home"
    sys.path.insert(0, str(MODELS_DIR))
    from watchmodels import Doubler  # type: ignore[import-not-found]

    reg = Registry(settings=Settings.from_env({"MLOOP_HOME": str(home)}), actor="ci")
    example = pd.DataFrame({"a": [1.0, 2.0]})
    for model in (
        Doubler(),
        Doubler(),
        Doubler(fail_on=13.0),
        Doubler(shift=5.0),
        Doubler(shift=0.5),
    ):
        mloop.log_model(
            model,
            "m",
            input_example=example,
            code_paths=[str(MODELS_DIR / "watchmodels.py")],
            registry=reg,
        )
    reg.set_alias("m", "champion", 1)
    _corrupt(reg, home, 5)
    with serve(home, "models:/m@champion", "--log-sample", "1") as server:
        yield {"reg": reg, "home": home, "server": server}


def _corrupt(reg: Registry, home: Path, version: int) -> None:
    mv = reg.get_version("m", version)
    package = reg.download(mv)
    model_file = next(p for p in package.iterdir() if p.name.startswith("model."))
    folder = mv.artifact_uri.split(f"{mv.source_run_id}/", 1)[1]
    blob = reg.store.get_artifact(mv.source_run_id, f"{folder}/{model_file.name}").sha256
    blob_path = next((home / "artifacts").rglob(blob))
    blob_path.chmod(0o644)
    blob_path.write_bytes(b"not a model")
    shutil.rmtree(package)  # the server would otherwise find the verified copy in the cache


def _serving(server: Any) -> str:
    return str(server.client.get("/serving").json()["models"]["main"]["version"])


def _wait_serving(server: Any, label: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _serving(server) != label:
        assert time.monotonic() < deadline, (label, _serving(server), server.output()[-3000:])
        time.sleep(0.05)


@pytest.fixture
def champion(world: dict[str, Any]) -> dict[str, Any]:
    """m@champion on version 1, served as such, before each test."""
    reg = world["reg"]
    if reg.store.get_alias("m", "champion").version != 1:
        reg.set_alias("m", "champion", 1, reason="test reset")
    _wait_serving(world["server"], "m/1")
    return world


def _promote(reg: Registry, version: int) -> None:
    reg.set_alias("m", "champion", version, expected_version=1)


def _events(reg: Registry, after: int, *types: str) -> list[Any]:
    return [e for e in reg.store.read_events(after_id=after, types=list(types))]


def test_a_good_candidate_passes_on_live_traffic_and_stays(champion: dict[str, Any]) -> None:
    reg, server = champion["reg"], champion["server"]
    mark = reg.store.last_event_id()
    with Client(server.url):
        _promote(reg, 2)
        report = watch_promotion(
            reg, name="m", alias="champion", version=2, previous_version=1,
            endpoints=[server.url], reference_predictions=REFERENCE, gate_report_id="a" * 32,
            max_p95_latency_ms=10_000, **FAST,
        )  # fmt: skip
    by = {c.name: c for c in report.checks}
    assert report.status == "pass" and report.extra["verdict"] == "pass", report.checks
    assert [c.status for c in report.checks] == ["pass"] * 4
    assert all(c.kind == "post_deploy" for c in report.checks)
    assert report.kind == "post_deploy" and (report.model, report.version) == ("m", 2)
    assert report.baseline_version == 1 and report.extra["gate_report_id"] == "a" * 32
    assert report.extra["rollback"] == {"status": "not_needed"}
    assert not report.extra["rolled_back"]
    rate = by["post_deploy:error_rate"]
    assert rate.numbers["server_errors"] == 0 and rate.numbers["judged"] >= 20
    assert "0.00%" in rate.summary and "within" in rate.summary
    assert by["post_deploy:p95_latency_ms"].numbers["p95_ms"] > 0
    drift = by["post_deploy:prediction_drift"]
    assert drift.numbers["live_rows"] >= 20 and "no drift" in drift.summary
    assert reg.store.get_alias("m", "champion").version == 2
    assert _serving(server) == "m/2"
    assert not _events(reg, mark, "alias_rollback")
    # stored, announced, and read back whole
    assert reg.store.get_check_report(report.id) == report
    (attached,) = _events(reg, mark, "report_attached")
    assert attached.payload["report_id"] == report.id


def test_a_candidate_failing_on_live_traffic_is_rolled_back(champion: dict[str, Any]) -> None:
    reg, server = champion["reg"], champion["server"]
    mark = reg.store.last_event_id()
    with Client(server.url, bad_every=4) as client:
        _promote(reg, 3)
        report = watch_promotion(
            reg, name="m", alias="champion", version=3, previous_version=1,
            endpoints=[server.url], reference_predictions=REFERENCE, **FAST,
        )  # fmt: skip
        _wait_serving(server, "m/1")  # the server follows the rollback
    assert 500 in client.codes
    rate = report.check("post_deploy:error_rate")
    assert rate.status == "fail", rate
    assert rate.numbers["server_errors"] > 0 and "above the 1.00% limit" in rate.summary
    assert report.status == "fail" and report.extra["verdict"] == "fail"
    assert report.extra["rolled_back"] and report.extra["rollback"]["status"] == "rolled_back"
    assert reg.store.get_alias("m", "champion").version == 1
    (rollback,) = _events(reg, mark, "alias_rollback")
    assert rollback.payload["report_id"] == report.id
    assert rollback.payload["before"] == 3 and rollback.payload["after"] == 1
    assert rollback.payload["reason"].startswith("post-deploy check of m/3 failed:")
    assert rate.summary in rollback.payload["reason"]
    assert rollback.actor == "ci"
    assert reg.store.get_check_report(report.id).extra["rolled_back"] is True


def test_live_predictions_that_drift_from_the_evaluation_fail(champion: dict[str, Any]) -> None:
    reg, server = champion["reg"], champion["server"]
    with Client(server.url):
        _promote(reg, 4)  # predicts 2a + 5 where its evaluation saw 2a: a serving skew
        report = watch_promotion(
            reg, name="m", alias="champion", version=4, previous_version=1,
            endpoints=[server.url], reference_predictions=REFERENCE, **FAST,
        )  # fmt: skip
        _wait_serving(server, "m/1")
    drift = report.check("post_deploy:prediction_drift")
    assert drift.status == "fail", drift
    assert "drifted" in drift.summary and drift.details[0]["status"] == "drift"
    assert report.check("post_deploy:error_rate").status == "pass"
    assert report.extra["rollback"]["status"] == "rolled_back"
    assert reg.store.get_alias("m", "champion").version == 1


def test_too_little_traffic_is_no_verdict_and_no_rollback(champion: dict[str, Any]) -> None:
    reg, server = champion["reg"], champion["server"]
    mark = reg.store.last_event_id()
    _promote(reg, 3)  # would fail on a = 13, but nobody sends any
    for _ in range(3):
        server.post_json("/invocations", {"dataframe_records": [{"a": 1.0}]})
    report = watch_promotion(
        reg, name="m", alias="champion", version=3, previous_version=1,
        endpoints=[server.url], reference_predictions=REFERENCE,
        window_s=0.5, max_window_s=1.0, min_requests=50, poll_s=0.1,
    )  # fmt: skip
    assert report.check("post_deploy:swap").status == "pass"
    for name in ("error_rate", "p95_latency_ms", "prediction_drift"):
        c = report.check(f"post_deploy:{name}")
        assert c.status == "skip", c
        assert "at least 50 are needed" in c.summary or "no max_p95" in c.summary
    assert report.status == "pass" and report.extra["verdict"] == "skip"
    assert report.extra["rollback"] == {"status": "not_needed"}
    assert reg.store.get_alias("m", "champion").version == 3
    assert not _events(reg, mark, "alias_rollback")


def test_a_concurrent_promotion_during_the_window_is_not_undone(champion: dict[str, Any]) -> None:
    reg, server = champion["reg"], champion["server"]
    other = Registry(settings=reg.settings, actor="someone-else")
    mark = reg.store.last_event_id()

    def errors() -> float:
        text = server.client.get("/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("mloop_requests_total{") and 'code="500"' in line
        )

    # The other promotion happens inside the watch's own sleep, once it has certainly seen the
    # swap (a poll came between the sleep that first saw m/3 served and this one) and the
    # failing version has answered 30 more server errors: the watch has a failure to roll back.
    state: dict[str, Any] = {"seen": 0, "base": None, "moved": False}

    def sleep(seconds: float) -> None:
        if not state["moved"] and _serving(server) == "m/3":
            state["seen"] += 1
            if state["seen"] == 2:
                state["base"] = errors()
            if state["base"] is not None:
                deadline = time.monotonic() + 60
                while errors() < state["base"] + 30:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
                other.set_alias("m", "champion", 2, expected_version=3, reason="hotfix")
                state["moved"] = True
        time.sleep(seconds)

    with Client(server.url, bad_every=4):
        _promote(reg, 3)
        report = watch_promotion(
            reg, name="m", alias="champion", version=3, previous_version=1,
            endpoints=[server.url], reference_predictions=REFERENCE,
            window_s=60.0, min_requests=20, poll_s=0.1, sleep=sleep,
        )  # fmt: skip
        _wait_serving(server, "m/2")
    assert state["moved"]
    assert report.check("post_deploy:error_rate").status == "fail"
    assert report.status == "fail"
    outcome = report.extra["rollback"]
    assert outcome["status"] == "conflict" and not report.extra["rolled_back"]
    assert "a concurrent move won" in outcome["message"]
    assert report.extra["alias_moved_to"] == 2
    assert any("moved to version 2" in n for n in report.extra["notes"])
    assert reg.store.get_alias("m", "champion").version == 2  # the other promotion stands
    assert not _events(reg, mark, "alias_rollback")


def test_a_version_the_server_cannot_load_fails_at_once_and_is_rolled_back(
    champion: dict[str, Any],
) -> None:
    reg, server = champion["reg"], champion["server"]
    _promote(reg, 5)
    report = watch_promotion(
        reg, name="m", alias="champion", version=5, previous_version=1,
        endpoints=[server.url], **FAST,
    )  # fmt: skip
    swap = report.check("post_deploy:swap")
    assert swap.status == "fail", swap
    assert swap.summary.startswith("the server could not load version 5:")
    assert "kept serving m/1" in swap.summary
    assert report.check("post_deploy:error_rate").status == "skip"
    assert report.extra["rollback"]["status"] == "rolled_back"
    assert reg.store.get_alias("m", "champion").version == 1
    assert _serving(server) == "m/1"


def test_a_server_that_never_swaps_fails_the_swap_check(champion: dict[str, Any]) -> None:
    reg, home = champion["reg"], champion["home"]
    with serve(home, "models:/m@champion", "--no-follow") as frozen:
        _promote(reg, 2)
        report = watch_promotion(
            reg, name="m", alias="champion", version=2, previous_version=1,
            endpoints=[frozen.url], window_s=1.0, swap_timeout_s=1.0, poll_s=0.1,
        )  # fmt: skip
        assert _serving(frozen) == "m/1"
    swap = report.check("post_deploy:swap")
    assert swap.status == "fail", swap
    assert f"m/2 was not serving 1 s after the alias moved to it, on {frozen.url}" in swap.summary
    assert "no swap failure was recorded" in swap.summary
    assert swap.details[0]["serving"] == ["1"]
    assert report.extra["rollback"]["status"] == "rolled_back"
    assert reg.store.get_alias("m", "champion").version == 1


def test_a_deployment_is_watched_through_its_events_and_its_log(
    champion: dict[str, Any],
) -> None:
    from mloop.serving import Deployments

    reg, home = champion["reg"], champion["home"]
    Deployments(reg).create(
        "m-api", model="models:/m@champion", config={"log_flush_interval_s": 0.2}
    )
    try:
        with serve(home, "m-api") as server, Client(server.url):
            _promote(reg, 2)
            report = watch_promotion(  # no endpoints: the deployment is found by its URI
                reg, name="m", alias="champion", version=2, previous_version=1,
                reference_predictions=REFERENCE, window_s=3.0, min_requests=20, poll_s=0.1,
            )  # fmt: skip
    finally:
        Deployments(reg).delete("m-api")
    assert report.data["deployments"] == ["m-api"] and report.data["endpoints"] == []
    swap = report.check("post_deploy:swap")
    assert swap.status == "pass" and "m-api" in swap.summary
    rate = report.check("post_deploy:error_rate")
    assert rate.status == "skip" and "no endpoint to read /metrics from" in rate.summary
    drift = report.check("post_deploy:prediction_drift")
    assert drift.status == "pass", drift
    assert drift.numbers["logs"] == ["m-api"] and drift.numbers["live_rows"] >= 20
    assert report.extra["verdict"] == "pass"
    assert reg.store.get_alias("m", "champion").version == 2


def test_a_first_promotion_that_fails_has_nothing_to_roll_back_to(
    champion: dict[str, Any],
) -> None:
    reg, server = champion["reg"], champion["server"]
    with Client(server.url, bad_every=4):
        _promote(reg, 3)
        report = watch_promotion(
            reg, name="m", alias="champion", version=3, previous_version=None,
            endpoints=[server.url], **FAST,
        )  # fmt: skip
    assert report.check("post_deploy:error_rate").status == "fail"
    assert report.baseline_uri is None and report.baseline_version is None
    outcome = report.extra["rollback"]
    assert outcome["status"] == "no_previous_version" and "the alias stays" in outcome["message"]
    assert reg.store.get_alias("m", "champion").version == 3


def test_an_alias_nothing_serves_is_not_judged(champion: dict[str, Any]) -> None:
    reg, server = champion["reg"], champion["server"]
    reg.set_alias("m", "staging", 2)
    report = watch_promotion(
        reg, name="m", alias="staging", version=2, previous_version=None,
        endpoints=[server.url, "http://127.0.0.1:9"], **FAST,
    )  # fmt: skip
    swap = report.check("post_deploy:swap")
    assert swap.status == "error" and "http://127.0.0.1:9 did not answer" in swap.summary
    assert any("does not follow models:/m@staging" in n for n in report.extra["notes"])
    assert report.status == "fail" and report.extra["rollback"] == {"status": "not_needed"}
    report = watch_promotion(
        reg, name="m", alias="staging", version=2, previous_version=None,
        endpoints=[server.url], **FAST,
    )  # fmt: skip
    assert report.check("post_deploy:swap").status == "skip"
    assert "nothing serves models:/m@staging" in report.check("post_deploy:swap").summary
    assert report.status == "pass" and report.extra["verdict"] == "skip"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"version": 0}, "`version` must be an int >= 1"),
        ({"previous_version": 2}, "must differ from `version`"),
        ({"window_s": 0}, "`window_s` must be a number > 0"),
        ({"max_window_s": 0.5, "window_s": 1.0}, "`max_window_s` must be >= `window_s`"),
        ({"min_requests": 0}, "`min_requests` must be an int >= 1"),
        ({"max_error_rate": 1.5}, r"`max_error_rate` must be a number in \[0, 1\]"),
        ({"endpoints": "http://x"}, "must be a list of base URLs"),
    ],
)
def test_bad_arguments_are_refused_by_name(tmp_path: Path, kw: dict[str, Any], match: str) -> None:
    reg = Registry(settings=Settings.from_env({"MLOOP_HOME": str(tmp_path / "h")}))
    args: dict[str, Any] = {"name": "m", "alias": "champion", "version": 2, "previous_version": 1}
    args.update(kw)
    with pytest.raises(InvalidInputError, match=match):
        watch_promotion(reg, **args)


def test_mloop_check_then_promote_watches_and_rolls_back_end_to_end(
    champion: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole gate from the command line: `mloop check` passes version 3 on a holdout without
    the input it fails on; `mloop promote` under a policy with a post_deploy section moves the
    alias, watches the server's live traffic (where a = 13 arrives), fails on its 5xx share and
    rolls back; exit 1, the server swaps back, and the audit trail says why."""
    from typer.testing import CliRunner

    from mloop.cli import get_app
    from mloop.store._open import clear_store_cache

    reg, server, home = champion["reg"], champion["server"], champion["home"]
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(home))
    policy = tmp_path / "mloop.yaml"
    policy.write_text(
        "target: y\n"
        "non_regression: {require_better: false}\n"
        "data: {enabled: false}\n"
        f"post_deploy: {{endpoints: ['{server.url}'], window_s: 1.5, min_requests: 20,"
        " swap_timeout_s: 60}\n"
    )
    holdout = tmp_path / "holdout.parquet"
    pd.DataFrame({"a": PATTERN * 10, "y": [2 * a for a in PATTERN] * 10}).to_parquet(holdout)
    runner = CliRunner()
    try:
        res = runner.invoke(
            get_app(), ["check", "-c", "models:/m/3", "-d", str(holdout), "-p", str(policy)]
        )
        assert res.exit_code == 0, res.output
        mark = reg.store.last_event_id()
        with Client(server.url, bad_every=4):
            res = runner.invoke(get_app(), ["promote", "m", "3", "-p", str(policy)])
            _wait_serving(server, "m/1")
    finally:
        clear_store_cache()
    assert res.exit_code == 1, res.output
    assert "m@champion -> version 3 (was version 1) on passing report" in res.output
    assert "post_deploy:error_rate" in res.output and "rolled back to version 1" in res.output
    assert reg.store.get_alias("m", "champion").version == 1
    (moved,) = _events(reg, mark, "alias_set")
    (rollback,) = _events(reg, mark, "alias_rollback")
    assert moved.payload["after"] == 3 and moved.payload["report_id"] is not None
    post = reg.store.get_check_report(rollback.payload["report_id"])
    assert post.kind == "post_deploy" and post.extra["gate_report_id"] == moved.payload["report_id"]
