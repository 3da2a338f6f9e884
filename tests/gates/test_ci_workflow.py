"""The workflow `mloop ci init github` writes, run step by step on the examples/ci project.

A small runner plays GitHub Actions: it copies examples/ci to a temporary checkout, reads the
generated workflow, and runs each step's `run:` script with bash (as Actions does: `-eo pipefail`)
in order, with the job's environment (workflow `env:`, secrets, `$GITHUB_ENV` carried from step to
step, the `if:` conditions evaluated), the venv's bin on PATH, one MLOOP_HOME shared by every run
(the shared store the workflow asks for) and the GitHub API at a local server that implements the
comment endpoints. `uses:` steps (checkout, setup-python, upload-artifact) are the runner's own
and are skipped: the checkout is the copy, Python is the venv.

Four runs tell the story: main trains a weak model, which becomes champion; a pull request trains
a model that learned nothing (the check fails, the job fails, the PR gets a ❌ comment); a fix
is pushed to the PR (the same comment turns ✅); main merges it and promotes it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from _fake_forge import WRITE_TOKEN, Forge, running_forge

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ci"
BIN = Path(sys.executable).parent
REPO = "acme/cancer"
PR = 7

pytestmark = [pytest.mark.slow, pytest.mark.no_mutation]  # runs mloop in child processes


@dataclass
class Step:
    name: str
    ran: bool
    returncode: int | None = None
    output: str = ""


def _condition(
    expression: str | None, *, github: dict[str, str], env: dict[str, str], ok: bool
) -> bool:
    """Evaluate a step's `if:` as Actions does, for the expressions a workflow of ours uses."""
    if expression is None:
        return ok
    expr = expression.strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2].strip()
    status_call = re.search(r"\b(always|success|failure|cancelled)\(\)", expr)
    py = expr.replace("&&", " and ").replace("||", " or ")
    py = re.sub(r"!(?!=)", " not ", py)
    py = re.sub(r"\balways\(\)", "True", py)
    py = re.sub(r"\bsuccess\(\)", "_ok", py)
    py = re.sub(r"\bfailure\(\)", "(not _ok)", py)
    py = re.sub(r"\bcancelled\(\)", "False", py)
    py = re.sub(r"\bgithub\.(\w+)", r'_github["\1"]', py)
    py = re.sub(r"\benv\.(\w+)", r'_env.get("\1", "")', py)
    names = {"_ok": ok, "_github": github, "_env": env, "True": True, "False": False}
    value = bool(eval(py, {"__builtins__": {}}, names))  # our own workflow's text, not input
    # With no status function, Actions adds an implicit success().
    return value if status_call else ok and value


def _secrets(value: Any, secrets: dict[str, str]) -> str:
    text = str(value)
    text = re.sub(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", lambda m: secrets.get(m.group(1), ""), text)
    assert "${{" not in text, f"an expression the runner does not know: {text}"
    return text


def _github_env(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


class Runner:
    def __init__(self, workflow: dict[str, Any], checkout: Path, home: Path, forge: Forge) -> None:
        self.workflow = workflow
        self.checkout = checkout
        self.home = home
        self.forge = forge
        self.runs = 0

    def run(self, *, event: str, config: dict[str, Any]) -> tuple[bool, list[Step], Path]:
        """One job: the checkout holds ``config`` (the commit), ``event`` is push or pull_request."""
        self.runs += 1
        (self.checkout / "train_config.json").write_text(json.dumps(config))
        for stale in ("report.xml", "holdout.parquet"):
            (self.checkout / stale).unlink(missing_ok=True)
        job_dir = self.checkout.parent / f"runner-{self.runs}"
        job_dir.mkdir()
        if event == "pull_request":
            ref, payload = (
                f"refs/pull/{PR}/merge",
                {"action": "synchronize", "pull_request": {"number": PR}},
            )
        else:
            ref, payload = "refs/heads/main", {"ref": "refs/heads/main"}
        (job_dir / "event.json").write_text(json.dumps(payload))
        github = {"event_name": event, "ref": ref, "repository": REPO}
        secrets = {"GITHUB_TOKEN": WRITE_TOKEN}  # MLOOP_STORE_URI unset: MLOOP_HOME below

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "GH_", "MLOOP_", "RUNNER_", "CI_", "GITLAB"))
            and k not in ("CI", "PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            MLOOP_HOME=str(self.home),
            CI="true",
            GITHUB_ACTIONS="true",
            GITHUB_REPOSITORY=REPO,
            GITHUB_API_URL=self.forge.base_url,
            GITHUB_EVENT_NAME=event,
            GITHUB_EVENT_PATH=str(job_dir / "event.json"),
            GITHUB_REF=ref,
            GITHUB_ENV=str(job_dir / "env"),
            GITHUB_OUTPUT=str(job_dir / "output"),
            GITHUB_STEP_SUMMARY=str(job_dir / "summary.md"),
            RUNNER_TEMP=str(job_dir),
        )
        env.update({k: _secrets(v, secrets) for k, v in self.workflow.get("env", {}).items()})

        ok, steps = True, []
        for raw in self.workflow["jobs"]["gate"]["steps"]:
            name = raw.get("name") or raw.get("uses") or raw["run"].splitlines()[0]
            step_env = {**env, **_github_env(job_dir / "env")}
            step_env.update({k: _secrets(v, secrets) for k, v in raw.get("env", {}).items()})
            if "run" not in raw or not _condition(
                raw.get("if"), github=github, env=step_env, ok=ok
            ):
                steps.append(Step(name, ran=False))
                continue
            assert "${{" not in raw["run"], "values reach commands through the environment"
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", raw["run"]],
                cwd=self.checkout,
                env=step_env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            steps.append(Step(name, True, done.returncode, done.stdout + done.stderr))
            ok = ok and done.returncode == 0
        return ok, steps, job_dir


def _step(steps: list[Step], words: str) -> Step:
    return next(s for s in steps if words in s.name.lower())


def _mloop(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    return subprocess.run(
        [str(BIN / "mloop"), *args],
        env={**env, "MLOOP_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_condition_evaluator() -> None:
    gh = {"event_name": "push", "ref": "refs/heads/main"}
    assert _condition(None, github=gh, env={}, ok=True)
    assert not _condition(None, github=gh, env={}, ok=False)
    assert _condition("always() && env.V != ''", github=gh, env={"V": "3"}, ok=False)
    assert not _condition("always() && env.V != ''", github=gh, env={}, ok=False)
    main = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert _condition(main, github=gh, env={}, ok=True)
    assert not _condition(main, github=gh, env={}, ok=False)  # implicit success()
    assert not _condition(main, github={**gh, "event_name": "pull_request"}, env={}, ok=True)


def test_the_generated_workflow_trains_checks_reports_and_promotes(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(
        EXAMPLE, checkout, ignore=shutil.ignore_patterns(".mloop", "*.parquet", "__pycache__")
    )
    home = tmp_path / "shared-store"
    init = subprocess.run(
        [
            str(BIN / "mloop"),
            "ci",
            "init",
            "github",
            "--model",
            "cancer",
            # The runner has the venv already: the install step only proves it works.
            "--install-command",
            'python -c "import mloop, sklearn, pandas"',
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    workflow = yaml.safe_load((checkout / ".github" / "workflows" / "mloop.yml").read_text())
    uses = [s["uses"] for s in workflow["jobs"]["gate"]["steps"] if "uses" in s]
    assert uses[:2] == ["actions/checkout@v4", "actions/setup-python@v5"]

    weak = {"model": "decision_tree", "max_depth": 1}
    useless = {"model": "dummy"}
    strong = {"model": "logistic_regression", "C": 1.0}

    with running_forge() as forge:
        runner = Runner(workflow, checkout, home, forge)

        # 1. main, first run: no champion yet, the weak model passes the floors and is promoted.
        ok, steps, job = runner.run(event="push", config=weak)
        assert ok, "\n\n".join(f"{s.name}: {s.output[-3000:]}" for s in steps if s.ran)
        assert _step(steps, "promote").ran
        assert "cancer@champion -> version 1" in _step(steps, "promote").output
        # Not a pull request: the report went to the job summary, not to a comment.
        assert "### ✅ mloop check passed: `cancer` v1" in (job / "summary.md").read_text()
        assert forge.count("POST") == 0

        # 2. A pull request with a model that learned nothing: the check fails, the report is
        # still posted (if: always()), the job fails, nothing is promoted.
        ok, steps, job = runner.run(event="pull_request", config=useless)
        assert not ok
        check = _step(steps, "check the candidate")
        assert check.ran and check.returncode == 1, check.output[-3000:]
        report = _step(steps, "report on the pull request")
        assert report.ran and report.returncode == 1
        assert "created comment" in report.output
        assert not _step(steps, "promote").ran
        (comment,) = forge.comments(REPO, PR)
        assert comment["body"].startswith("<!-- mloop-check-report:cancer -->")
        assert "### ❌ mloop check failed: `cancer` v2 vs v1" in comment["body"]
        assert "`non_regression:roc_auc`" in comment["body"]
        suite = ET.parse(checkout / "report.xml").getroot().find("testsuite")
        assert suite is not None and int(suite.get("failures", "0")) >= 1
        assert not (job / "summary.md").exists()

        # 3. The fix is pushed to the same pull request: the one comment is updated in place.
        ok, steps, job = runner.run(event="pull_request", config=strong)
        assert ok, "\n\n".join(f"{s.name}: {s.output[-3000:]}" for s in steps if s.ran)
        assert "updated comment" in _step(steps, "report on the pull request").output
        (updated,) = forge.comments(REPO, PR)
        assert updated["id"] == comment["id"]
        assert "### ✅ mloop check passed: `cancer` v3 vs v1" in updated["body"]
        assert "significantly better" in updated["body"]
        assert not _step(steps, "promote").ran
        ET.parse(checkout / "report.xml")  # well-formed

        # 4. Merged: main trains the same model again, checks it and promotes it.
        ok, steps, job = runner.run(event="push", config=strong)
        assert ok, "\n\n".join(f"{s.name}: {s.output[-3000:]}" for s in steps if s.ran)
        assert "cancer@champion -> version 4" in _step(steps, "promote").output
        assert len(forge.comments(REPO, PR)) == 1

    shown = _mloop("models", "show", "cancer", "--json", home=home)
    assert shown.returncode == 0, shown.stderr
    aliases = {a["alias"]: a["version"] for a in json.loads(shown.stdout)["aliases"]}
    assert aliases == {"champion": 4}
    # Every run stored its report, linked to its version; only version 2's failed.
    for version, passed in ((1, True), (2, False), (3, True), (4, True)):
        got = _mloop(
            "ci",
            "report",
            "--model",
            "cancer",
            "--version",
            str(version),
            "--format",
            "json",
            home=home,
        )
        assert got.returncode == (0 if passed else 1), got.stderr
        assert json.loads(got.stdout)["version"] == version
