"""`mloop check` and `mloop promote` as a user sees them: exit codes 0 / 1 / 2, every output
format, and one real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from _champions import Gallery, build_gallery
from typer.testing import CliRunner

from mloop.cli import get_app
from mloop.store._open import clear_store_cache

runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Gallery:
    return build_gallery(tmp_path_factory.mktemp("cli-check") / "home")


@pytest.fixture
def gallery(built: Gallery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gallery]:
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(built.home))
    monkeypatch.chdir(tmp_path)
    built.holdout.to_parquet(tmp_path / "holdout.parquet")
    yield built
    clear_store_cache()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(get_app(), list(args))


def test_pass_fail_and_usage_exit_codes(gallery: Gallery) -> None:
    g = gallery
    ok = invoke("check", "-c", g.uri("logreg"), "-b", g.uri("stump"), "-d", "holdout.parquet")
    assert ok.exit_code == 0, ok.output
    assert "PASSED: report" in ok.output and "non_regression:roc_auc" in ok.output
    bad = invoke("check", "-c", g.uri("stump"), "-b", g.uri("logreg"), "-d", "holdout.parquet")
    assert bad.exit_code == 1, bad.output
    assert "FAILED: report" in bad.output and "significantly worse" in bad.output
    usage = invoke("check", "-c", g.uri("logreg"), "-d", "holdout.parquet", "-t", "nope")
    assert usage.exit_code == 2
    assert usage.stderr.startswith("error: the holdout has no target column 'nope'")
    Path("mloop.yaml").write_text("non_regression:\n  level: sometimes\n")
    pol = invoke("check", "-c", g.uri("logreg"), "-d", "holdout.parquet")
    assert pol.exit_code == 2
    assert pol.stderr.startswith("error: mloop.yaml, line 2: `non_regression.level`")
    Path("mloop.yaml").unlink()
    missing = invoke("check", "-c", "models:/cancer/99", "-d", "holdout.parquet")
    assert missing.exit_code == 2 and "99" in missing.stderr


def test_json_junit_and_markdown_outputs(gallery: Gallery) -> None:
    g = gallery
    args = ["check", "-c", g.uri("stump"), "-b", g.uri("logreg"), "-d", "holdout.parquet"]
    res = invoke(*args, "--format", "json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["status"] == "fail" and doc["candidate_uri"] == g.uri("stump")
    stored = g.registry.store.get_check_report(doc["id"])
    assert stored.status == "fail" and stored.to_dict()["checks"] == doc["checks"]
    res = invoke(*args, "--format", "junit", "--output", "report.xml")
    assert res.exit_code == 1
    root = ET.parse("report.xml").getroot()
    cases = root.iter("testcase")
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert "non_regression:roc_auc" in failed
    res = invoke(*args, "--format", "markdown", "--no-store")
    assert res.exit_code == 1 and "non_regression:roc_auc" in res.stdout
    assert res.stdout.startswith("### ❌ mloop check failed")
    res = invoke(*args, "--format", "yaml")
    assert res.exit_code == 2 and "--format must be" in res.stderr


def test_promote_refuses_then_moves(gallery: Gallery) -> None:
    g = gallery
    reg = g.registry
    reg.set_alias("cancer", "champion", g.versions["logreg"])
    v_stump = str(g.versions["stump"])
    assert invoke("check", "-c", g.uri("stump"), "-d", "holdout.parquet").exit_code == 1
    refused = invoke("promote", "cancer", v_stump)
    assert refused.exit_code == 1 and "refused" in refused.output
    assert reg.store.get_alias("cancer", "champion").version == g.versions["logreg"]
    no_reason = invoke("promote", "cancer", v_stump, "--force")
    assert no_reason.exit_code == 2 and "reason" in no_reason.stderr
    forced = invoke("promote", "cancer", v_stump, "--force", "--reason", "drill", "--json")
    assert forced.exit_code == 0, forced.output
    doc = json.loads(forced.stdout)
    assert doc["forced"] and doc["version"] == g.versions["stump"]
    assert doc["previous_version"] == g.versions["logreg"]
    # the better one back, through the gate
    assert invoke("check", "-c", g.uri("logreg"), "-d", "holdout.parquet").exit_code == 0
    moved = invoke("promote", "cancer", str(g.versions["logreg"]), "--to", "champion")
    assert moved.exit_code == 0, moved.output
    assert "on passing report" in moved.output
    assert reg.store.get_alias("cancer", "champion").version == g.versions["logreg"]


def test_check_as_a_subprocess(gallery: Gallery) -> None:
    g = gallery
    env = {**os.environ, "MLOOP_HOME": str(g.home)}
    cmd = [sys.executable, "-m", "mloop", "check", "-c", g.uri("stump"), "-b", g.uri("logreg")]
    proc = subprocess.run(
        [*cmd, "-d", "holdout.parquet", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["status"] == "fail"
    proc = subprocess.run(
        [*cmd, "-d", "nope.parquet"], env=env, capture_output=True, text=True, timeout=120
    )
    assert (
        proc.returncode == 2
        and proc.stderr.startswith("error: ")
        and "Traceback" not in proc.stderr
    )
