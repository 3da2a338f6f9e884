"""``mloop ci ...``: check reports where CI shows them (a PR comment, the job summary, JUnit XML),
and the CI configuration that trains, checks and promotes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from mloop.cli._common import settings
from mloop.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from mloop.gates import PostResult
    from mloop.store import CheckReport

FAILED_EXIT = 1

ci_app = typer.Typer(
    help="CI integration: report a stored check on the pull request, write a CI workflow.",
    no_args_is_help=True,
)

ReportFormat = Literal["github", "gitlab", "markdown", "junit", "json"]
_FORMATS: tuple[str, ...] = ReportFormat.__args__  # type: ignore[attr-defined]


def _find_report(report_id: str | None, model: str | None, version: int | None) -> CheckReport:
    from mloop.store import open_store

    if (report_id is None) == (model is None):
        raise InvalidInputError(
            "give either --report ID or --model NAME (with --version V for one version); "
            f"got {'both' if report_id else 'neither'}."
        )
    if version is not None and model is None:
        raise InvalidInputError("--version needs --model NAME.")
    store = open_store(settings(), create=False)
    if report_id is not None:
        return store.get_check_report(report_id)
    assert model is not None
    where = f"{model} version {version}" if version is not None else model
    try:
        found = store.list_check_reports(model, version=version, kind="check", limit=1)
    except NotFoundError as exc:
        raise NotFoundError(
            f"no check report for {where}: {exc.message} Run `mloop check --candidate "
            f"models:/{model}/<version> --data <holdout>` first."
        ) from None
    if not found:
        raise NotFoundError(
            f"no check report for {where}. Run `mloop check --candidate "
            f"models:/{model}/{version if version is not None else '<version>'} --data <holdout>` "
            "first."
        )
    return found[0]


def _say_where(report: CheckReport, result: PostResult) -> None:
    where = f" {result.url}" if result.url else ""
    typer.echo(f"report {report.id} ({report.status}): {result.message}{where}", err=True)


@ci_app.command("report")
def ci_report(
    report_id: Annotated[
        str | None, typer.Option("--report", "-r", help="The stored report's id.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="The latest check report on this model (no --report)."),
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="Only this version's reports.")
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="github (a PR comment, else the job summary), gitlab (an MR note, else "
            "mloop-check-report.md), markdown, junit or json.",
        ),
    ] = "markdown",
    pr: Annotated[
        int | None,
        typer.Option(
            "--pr", help="The pull request (merge request) number; default: the CI's own."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the text to this file.")
    ] = None,
) -> None:
    """Show a stored check report where CI shows it; exit 1 when the report failed.

    With --format github the report becomes one comment on the pull request, updated in place on
    every run (GITHUB_TOKEN or GH_TOKEN); with no token, on a fork's pull request or outside a
    pull request it goes to the job summary instead. --format gitlab does the same with a merge
    request note (MLOOP_GITLAB_TOKEN or GITLAB_TOKEN), else writes mloop-check-report.md.
    """
    from mloop.gates import (
        GitHubContext,
        GitLabContext,
        comment_marker,
        post_github_comment,
        post_gitlab_note,
        render_json,
        render_junit,
        render_markdown,
    )

    if fmt not in _FORMATS:
        raise InvalidInputError(f"--format must be one of {', '.join(_FORMATS)}; got {fmt!r}.")
    if pr is not None and pr < 1:
        raise InvalidInputError(f"--pr must be a positive number; got {pr}.")
    report = _find_report(report_id, model, version)
    if fmt in ("github", "gitlab"):
        marker = comment_marker(report.model)
        body = render_markdown(report, marker=marker)
        if output is not None:
            output.write_text(body, encoding="utf-8")
        if fmt == "github":
            result = post_github_comment(
                body, marker=marker, context=GitHubContext.from_env(os.environ, pr=pr)
            )
        else:
            result = post_gitlab_note(
                body,
                marker=marker,
                context=GitLabContext.from_env(os.environ, mr=pr),
                fallback_path=output if output is not None else "mloop-check-report.md",
            )
        _say_where(report, result)
        if result.destination == "none":
            typer.echo(body, nl=False)  # nowhere else to go: the job's log keeps it
    else:
        text = {"markdown": render_markdown, "junit": render_junit, "json": render_json}[fmt](
            report
        )
        if output is not None:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"report {report.id} ({report.status}) written to {output}", err=True)
        else:
            typer.echo(text, nl=False)
    if not report.passed:
        raise typer.Exit(FAILED_EXIT)


def _default_model_name() -> str:
    """The current directory's name as a model name (``My Repo`` -> ``My-Repo``)."""
    name = re.sub(r"[^\w.\-]+", "-", Path.cwd().name).strip("-.") or "model"
    return name if re.match(r"^[A-Za-z0-9_]", name) else f"m{name}"


@ci_app.command("init")
def ci_init(
    platform: Annotated[str, typer.Argument(help="github or gitlab.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="The model the training registers (default: this directory)."
        ),
    ] = None,
    data: Annotated[
        str, typer.Option("--data", "-d", help="The holdout the check runs on.")
    ] = "holdout.parquet",
    target: Annotated[
        str, typer.Option("--target", "-t", help="The holdout's label column.")
    ] = "label",
    train_command: Annotated[
        str,
        typer.Option("--train-command", help="Trains and registers a new version of the model."),
    ] = "python train.py",
    install_command: Annotated[
        str, typer.Option("--install-command", help="Installs the project (and mloop).")
    ] = "pip install -r requirements.txt",
    branch: Annotated[
        str, typer.Option("--branch", help="Where passing versions are promoted.")
    ] = "main",
    python_version: Annotated[str, typer.Option("--python", help="Python version.")] = "3.11",
    path: Annotated[
        Path | None,
        typer.Option(
            "--path",
            help="Where to write it (default .github/workflows/mloop.yml or .gitlab-ci.yml).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a CI workflow: on pull requests train, check and report; on BRANCH also promote."""
    from mloop.gates import WORKFLOW_PATHS, ci_workflow

    if platform not in WORKFLOW_PATHS:
        raise InvalidInputError(f"PLATFORM must be 'github' or 'gitlab'; got {platform!r}.")
    text = ci_workflow(
        platform,  # type: ignore[arg-type]
        model=model or _default_model_name(),
        data=data,
        target=target,
        train_command=train_command,
        install_command=install_command,
        branch=branch,
        python_version=python_version,
    )
    dest = path or Path(WORKFLOW_PATHS[platform])
    if dest.exists() and not force:
        raise InvalidInputError(f"{dest} exists; pass --force to overwrite it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {dest}")


def register(app: typer.Typer) -> None:
    app.add_typer(ci_app, name="ci")
