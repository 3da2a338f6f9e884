"""`mloop ci report` and `mloop ci init` through CliRunner: stored reports in every format, the
PR comment over real HTTP (local server), the fallbacks, exit codes, and the workflows' YAML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from _fake_forge import WRITE_TOKEN, running_forge
from _sample_reports import failing_report, report
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.config import Settings
from mloop.store import CheckReport, open_store
from mloop.store._open import clear_store_cache

runner = CliRunner()

_CI_ENV = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GITHUB_REPOSITORY",
    "GITHUB_EVENT_PATH",
    "GITHUB_REF",
    "GITHUB_API_URL",
    "GITHUB_STEP_SUMMARY",
    "CI_API_V4_URL",
    "CI_PROJECT_ID",
    "CI_MERGE_REQUEST_IID",
    "MLOOP_GITLAB_TOKEN",
    "GITLAB_TOKEN",
)


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(get_app(), list(args))


@pytest.fixture
def ci_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment (no CI variables of the machine running the tests), cwd in tmp."""
    for name in (*_CI_ENV, "MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work  # type: ignore[misc]
    clear_store_cache()


@pytest.fixture
def stored(ci_env: Path) -> tuple[CheckReport, CheckReport]:
    """Version 1 of "churn" with a passing report, version 2 with a failing one."""
    settings = Settings.from_env()
    X, y = load_iris(return_X_y=True, as_frame=True)
    for depth in (1, 2):
        with mloop.start_run(project="p", settings=settings, system_metrics=False) as run:
            m = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
            mloop.log_model(m, "churn", run=run, input_example=X[:3])
    store = open_store(settings)
    good = store.put_check_report(
        report(
            id="1" * 32,
            version=1,
            candidate_uri="models:/churn/1",
            baseline_uri=None,
            baseline_version=None,
        )
    )
    bad = store.put_check_report(
        failing_report(id="2" * 32, version=2, candidate_uri="models:/churn/2", baseline_version=1)
    )
    return good, bad


def test_report_formats_and_exit_codes(stored: tuple[CheckReport, CheckReport]) -> None:
    good, bad = stored
    res = invoke("ci", "report", "--model", "churn", "--version", "1")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("### ✅ mloop check passed: `churn` v1\n")
    # The latest report on the model is version 2's, which failed: exit 1, so a job can gate.
    res = invoke("ci", "report", "--model", "churn")
    assert res.exit_code == 1 and "### ❌ mloop check failed: `churn` v8 vs v1" not in res.stdout
    assert res.stdout.startswith("### ❌ mloop check failed: `churn` v2 vs v1")
    res = invoke("ci", "report", "--report", bad.id, "--format", "junit")
    assert res.exit_code == 1
    suite = ET.fromstring(res.stdout.encode()).find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    res = invoke("ci", "report", "--report", good.id, "--format", "json", "--output", "r.json")
    assert res.exit_code == 0 and f"report {good.id} (pass) written to r.json" in res.stderr
    assert CheckReport.from_dict(json.loads(Path("r.json").read_text())) == good


def test_report_usage_errors_exit_2(stored: tuple[CheckReport, CheckReport]) -> None:
    for args in ((), ("--report", "1" * 32, "--model", "churn"), ("--version", "1")):
        res = invoke("ci", "report", *args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stderr.startswith("error: ")
    res = invoke("ci", "report", "--model", "churn", "--format", "html")
    assert res.exit_code == 2 and "--format must be one of github, gitlab" in res.stderr
    res = invoke("ci", "report", "--model", "nobody")
    assert res.exit_code == 2 and "no check report for nobody" in res.stderr
    assert "mloop check --candidate models:/nobody/<version>" in res.stderr


def test_no_report_yet_is_a_clear_error(stored: tuple[CheckReport, CheckReport]) -> None:
    mloop_version_3 = invoke("ci", "report", "--model", "churn", "--version", "3")
    assert mloop_version_3.exit_code == 2
    assert "no check report for churn version 3" in mloop_version_3.stderr
    assert "models:/churn/3" in mloop_version_3.stderr


def test_report_as_a_github_comment(
    stored: tuple[CheckReport, CheckReport], ci_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = ci_env / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 12}}))
    with running_forge() as forge:
        monkeypatch.setenv("GITHUB_API_URL", forge.base_url)
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn")
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
        monkeypatch.setenv("GITHUB_TOKEN", WRITE_TOKEN)
        res = invoke("ci", "report", "--model", "churn", "--version", "1", "--format", "github")
        assert res.exit_code == 0, res.output
        assert "created comment" in res.stderr and "pull request #12 of acme/churn" in res.stderr
        res = invoke("ci", "report", "--model", "churn", "--format", "github")
        assert res.exit_code == 1 and "updated comment" in res.stderr
        (comment,) = forge.comments("acme/churn", 12)
        assert comment["body"].startswith("<!-- mloop-check-report:churn -->\n\n### ❌")
        # --pr overrides the event's number.
        res = invoke("ci", "report", "--model", "churn", "--format", "github", "--pr", "13")
        assert len(forge.comments("acme/churn", 13)) == 1


def test_github_without_a_token_uses_the_summary_or_stdout(
    stored: tuple[CheckReport, CheckReport], ci_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = invoke("ci", "report", "--model", "churn", "--version", "1", "--format", "github")
    assert res.exit_code == 0
    assert "no GitHub token" in res.stderr and "GITHUB_STEP_SUMMARY is not set" in res.stderr
    assert res.stdout.startswith("<!-- mloop-check-report:churn -->\n\n### ✅")
    summary = ci_env / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    res = invoke("ci", "report", "--model", "churn", "--format", "github", "--output", "c.md")
    assert res.exit_code == 1 and res.stdout == ""
    assert "added to the job summary" in res.stderr
    assert summary.read_text() == Path("c.md").read_text()


def test_gitlab_without_a_token_writes_the_artifact(
    stored: tuple[CheckReport, CheckReport], ci_env: Path
) -> None:
    res = invoke("ci", "report", "--model", "churn", "--format", "gitlab")
    assert res.exit_code == 1
    text = (ci_env / "mloop-check-report.md").read_text()
    assert text.startswith("<!-- mloop-check-report:churn -->\n\n### ❌")
    assert "expose it as a job artifact" in res.stderr


def _on(workflow: dict) -> dict:  # type: ignore[type-arg]
    # YAML 1.1 (PyYAML) reads the bare key `on` as True; GitHub reads it as "on".
    return workflow.get("on", workflow.get(True))  # type: ignore[no-any-return]


def test_init_github_writes_a_valid_workflow(ci_env: Path) -> None:
    res = invoke("ci", "init", "github", "--model", "churn", "--data", "data/hold out.parquet")
    assert res.exit_code == 0, res.output
    path = ci_env / ".github" / "workflows" / "mloop.yml"
    wf = yaml.safe_load(path.read_text())
    assert set(_on(wf)) == {"pull_request", "push"} and _on(wf)["push"]["branches"] == ["main"]
    assert wf["permissions"]["pull-requests"] == "write"
    assert wf["env"]["MLOOP_MODEL"] == "churn"
    assert wf["env"]["MLOOP_DATA"] == "data/hold out.parquet"
    steps = wf["jobs"]["gate"]["steps"]
    uses = [s["uses"] for s in steps if "uses" in s]
    assert uses[:2] == ["actions/checkout@v4", "actions/setup-python@v5"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "mloop check" in runs and "--format junit --output report.xml" in runs
    assert "mloop ci report" in runs and "--format github" in runs
    promote = next(s for s in steps if "mloop promote" in s.get("run", ""))
    assert "refs/heads/main" in promote["if"] and "push" in promote["if"]
    # Refuses to overwrite, unless forced.
    res = invoke("ci", "init", "github", "--model", "other")
    assert res.exit_code == 2 and "pass --force" in res.stderr
    assert "churn" in path.read_text()
    res = invoke("ci", "init", "github", "--model", "other", "--force", "--branch", "trunk")
    wf = yaml.safe_load(path.read_text())
    assert wf["env"]["MLOOP_MODEL"] == "other" and _on(wf)["push"]["branches"] == ["trunk"]


def test_init_gitlab_writes_a_valid_pipeline(ci_env: Path) -> None:
    train = 'python train.py --name "x y"\npython after.py'
    res = invoke("ci", "init", "gitlab", "--model", "churn", "--train-command", train)
    assert res.exit_code == 0, res.output
    ci = yaml.safe_load((ci_env / ".gitlab-ci.yml").read_text())
    job = ci["mloop"]
    assert job["variables"]["MLOOP_MODEL"] == "churn"
    assert job["script"][1:3] == ['python train.py --name "x y"', "python after.py"]
    assert job["artifacts"]["reports"]["junit"] == "report.xml"
    assert "mloop-check-report.md" in job["artifacts"]["paths"]
    assert any("--format gitlab" in line for line in job["script"])
    assert any("mloop promote" in line for line in job["script"])


def test_init_rejects_bad_input(ci_env: Path) -> None:
    for args in (
        ("bitbucket",),
        ("github", "--model", "no spaces"),
        ("github", "--branch", "a b"),
        ("github", "--python", "three"),
        ("github", "--data", "two\nlines"),
    ):
        res = invoke("ci", "init", *args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stderr.startswith("error: ")
    assert not (ci_env / ".github").exists()
