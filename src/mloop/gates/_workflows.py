"""CI configuration that trains, checks and reports on every pull request, and promotes on the
main branch: a GitHub Actions workflow or a GitLab CI pipeline (``mloop ci init``).

The steps pass values through the environment (``$GITHUB_ENV``, shell variables) rather than
``${{ }}`` expressions inside commands, so no value is pasted into a shell script (GitHub's own
advice against script injection) and the commands run unchanged in any shell.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Literal

from mloop.errors import InvalidInputError
from mloop.store import validate_model_name

__all__ = ["WORKFLOW_PATHS", "ci_workflow"]

Platform = Literal["github", "gitlab"]

# Where each platform reads its configuration, relative to the repository's root.
WORKFLOW_PATHS: dict[str, str] = {
    "github": ".github/workflows/mloop.yml",
    "gitlab": ".gitlab-ci.yml",
}

_BRANCH_RE = re.compile(r"^[\w./-]{1,200}$")
_PYTHON_RE = re.compile(r"^3\.\d{1,2}$")

# The version the training step registered: the model's latest version, read from the registry.
_LATEST_VERSION = (
    'mloop models show "$MLOOP_MODEL" --json | python -c '
    "\"import json, sys; print(json.load(sys.stdin)['latest_version'])\""
)


def _q(value: str) -> str:
    """A double-quoted YAML scalar (JSON's string syntax is a subset of YAML's)."""
    return json.dumps(value)


def _block(command: str, indent: int) -> str:
    """``command`` as a YAML literal block (``|``) body at ``indent`` spaces."""
    pad = " " * indent
    lines = textwrap.dedent(command).strip("\n").splitlines()
    return "\n".join(pad + line.rstrip() if line.strip() else "" for line in lines)


def _one_line(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value:
        raise InvalidInputError(f"`{what}` must be a non-empty single line; got {value!r}.")
    return value.strip()


def ci_workflow(
    platform: Platform,
    *,
    model: str,
    data: str = "holdout.parquet",
    target: str = "label",
    train_command: str = "python train.py",
    install_command: str = "pip install -r requirements.txt",
    branch: str = "main",
    python_version: str = "3.11",
) -> str:
    """The CI configuration text for ``platform``.

    On a pull request (merge request): install, train (the command registers a new version of
    ``model``), ``mloop check`` the new version against the champion on ``data`` (JUnit XML for
    the CI's test view), then ``mloop ci report`` (a PR comment updated in place; the job fails
    when the check did). On ``branch``: the same, then ``mloop promote`` the version to champion.

    Parameters
    ----------
    platform : {"github", "gitlab"}
    model : str
        The registered model the training command registers.
    data : str, default "holdout.parquet"
        The holdout, with its labels in ``target``.
    train_command, install_command : str
        Shell commands (several lines allowed).
    branch : str, default "main"
        Where passing versions are promoted.
    python_version : str, default "3.11"

    Returns
    -------
    str
        YAML text for :data:`WORKFLOW_PATHS` ``[platform]``.

    Raises
    ------
    InvalidInputError
        An unknown platform, an invalid model name, an empty command, a branch or Python
        version that is not one.
    """
    validate_model_name(model)
    data = _one_line(data, "data")
    target = _one_line(target, "target")
    for what, cmd in (("train_command", train_command), ("install_command", install_command)):
        if not isinstance(cmd, str) or not cmd.strip():
            raise InvalidInputError(f"`{what}` must be a non-empty shell command; got {cmd!r}.")
    if not isinstance(branch, str) or not _BRANCH_RE.match(branch):
        raise InvalidInputError(f"`branch` must be a branch name such as 'main'; got {branch!r}.")
    if not isinstance(python_version, str) or not _PYTHON_RE.match(python_version):
        raise InvalidInputError(f"`python_version` must look like '3.11'; got {python_version!r}.")
    if platform == "github":
        return _github(model, data, target, train_command, install_command, branch, python_version)
    if platform == "gitlab":
        return _gitlab(model, data, target, train_command, install_command, branch, python_version)
    raise InvalidInputError(f"`platform` must be 'github' or 'gitlab'; got {platform!r}.")


def _github(
    model: str, data: str, target: str, train: str, install: str, branch: str, python: str
) -> str:
    return f"""\
# Written by `mloop ci init github`. On every pull request: train a candidate, check it against
# the champion, and post the report as one PR comment (updated in place). On {branch}: the same,
# then promote the candidate to champion when its check passed.
#
# The champion and the reports must outlive a job: point MLOOP_STORE_URI and MLOOP_ARTIFACT_URI
# at a shared store (repository secrets, e.g. postgresql+psycopg://... and s3://bucket/mloop).
# Left empty, each job uses a fresh embedded store in ./.mloop and starts with no champion.
name: mloop

on:
  pull_request:
  push:
    branches: [{_q(branch)}]

permissions:
  contents: read
  pull-requests: write  # the report comment; a fork's PR gets a read-only token (job summary)

concurrency:
  group: mloop-${{{{ github.ref }}}}
  cancel-in-progress: true

env:
  MLOOP_MODEL: {_q(model)}
  MLOOP_DATA: {_q(data)}
  MLOOP_TARGET: {_q(target)}
  MLOOP_STORE_URI: ${{{{ secrets.MLOOP_STORE_URI }}}}
  MLOOP_ARTIFACT_URI: ${{{{ secrets.MLOOP_ARTIFACT_URI }}}}

jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: {_q(python)}
          cache: pip
      - name: Install
        run: |
{_block(install, 10)}
      - name: Train and register a candidate
        run: |
{_block(train, 10)}
      - name: Find the candidate version
        run: |
          version=$({_LATEST_VERSION})
          echo "MLOOP_VERSION=$version" >> "$GITHUB_ENV"
          echo "candidate: models:/$MLOOP_MODEL/$version"
      - name: Check the candidate against the champion
        run: |
          mloop check --candidate "models:/$MLOOP_MODEL/$MLOOP_VERSION" --data "$MLOOP_DATA" \\
            --target "$MLOOP_TARGET" --format junit --output report.xml
      - name: Report on the pull request
        if: always() && env.MLOOP_VERSION != ''
        env:
          GITHUB_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}
        run: |
          mloop ci report --model "$MLOOP_MODEL" --version "$MLOOP_VERSION" --format github
      - name: Keep the JUnit report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: mloop-check-report
          path: report.xml
          if-no-files-found: ignore
      - name: Promote to champion
        if: github.event_name == 'push' && github.ref == 'refs/heads/{branch}'
        run: |
          mloop promote "$MLOOP_MODEL" "$MLOOP_VERSION" --to champion
"""


def _gitlab(
    model: str, data: str, target: str, train: str, install: str, branch: str, python: str
) -> str:
    def item(command: str) -> str:
        return "\n".join(f"    - {_q(line)}" for line in command.splitlines() if line.strip())

    check = (
        'status=0; mloop check --candidate "models:/$MLOOP_MODEL/$MLOOP_VERSION" '
        '--data "$MLOOP_DATA" --target "$MLOOP_TARGET" --format junit --output report.xml '
        "|| status=$?"
    )
    return f"""\
# Written by `mloop ci init gitlab`. On every merge request: train a candidate, check it against
# the champion, and post the report as one MR note (updated in place; set a masked
# MLOOP_GITLAB_TOKEN variable with the api scope, else the report is the job's artifact
# mloop-check-report.md). On {branch}: the same, then promote the candidate to champion when its
# check passed.
#
# The champion and the reports must outlive a job: set MLOOP_STORE_URI and MLOOP_ARTIFACT_URI
# (CI/CD variables) to a shared store. Unset, each job uses a fresh embedded store in ./.mloop.
stages:
  - gate

mloop:
  stage: gate
  image: python:{python}
  variables:
    MLOOP_MODEL: {_q(model)}
    MLOOP_DATA: {_q(data)}
    MLOOP_TARGET: {_q(target)}
    PROMOTE_BRANCH: {_q(branch)}
  rules:
    - if: '$CI_PIPELINE_SOURCE == "merge_request_event"'
    - if: '$CI_COMMIT_BRANCH == "{branch}"'
  script:
{item(install)}
{item(train)}
    - {_q("export MLOOP_VERSION=$(" + _LATEST_VERSION + ")")}
    - {_q(check)}
    - {_q('mloop ci report --model "$MLOOP_MODEL" --version "$MLOOP_VERSION" --format gitlab || true')}
    - {_q('if [ "$status" -ne 0 ]; then exit "$status"; fi')}
    - {_q('if [ "$CI_COMMIT_BRANCH" = "$PROMOTE_BRANCH" ]; then mloop promote "$MLOOP_MODEL" "$MLOOP_VERSION" --to champion; fi')}
  artifacts:
    when: always
    paths:
      - report.xml
      - mloop-check-report.md
    reports:
      junit: report.xml
"""
