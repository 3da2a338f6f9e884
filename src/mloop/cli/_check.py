"""``mloop check`` and ``mloop promote``: the gate a candidate passes before it becomes champion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mloop.cli._common import console, print_json, settings

if TYPE_CHECKING:
    from mloop.registry import Registry
    from mloop.store import CheckReport

FAILED_EXIT = 1

_ICONS = {"pass": "[green]✔ pass[/]", "fail": "[red]✘ fail[/]", "error": "[red]! error[/]",
          "warn": "[yellow]⚠ warn[/]", "skip": "[dim]- skip[/]"}  # fmt: skip

_POLICY_HELP = (
    "Policy file (default: ./mloop.yaml when it exists, else the default policy: non-regression "
    "on the primary metric, signature compatibility, data checks)."
)


def _registry() -> Registry:
    from mloop.registry import Registry

    return Registry(settings=settings())


def _print_text(report: CheckReport) -> None:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result")
    for c in report.checks:
        table.add_row(_ICONS.get(c.status, c.status), c.name, c.summary)
    base = report.baseline_uri or "no baseline"
    if report.baseline_version is not None:
        base += f" (version {report.baseline_version})"
    console.print(
        f"check {report.candidate_uri} (version {report.version}) vs {base} on "
        f"{report.data.get('rows', 0):,} rows of {report.data.get('uri')}"
    )
    console.print(table)
    verdict = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
    console.print(f"{verdict}: report {report.id} ({report.duration_ms / 1000:.2f} s)")


def _render(report: CheckReport, fmt: str) -> str:
    from mloop.gates import render_json, render_junit, render_markdown

    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "junit":
        return render_junit(report)
    return render_json(report)


def check_command(
    candidate: Annotated[
        str,
        typer.Option(
            "--candidate", "-c", help="The version to check: models:/NAME/VERSION or @ALIAS."
        ),
    ],
    data: Annotated[
        Path,
        typer.Option("--data", "-d", help="The holdout (Parquet, CSV, JSON), with its labels."),
    ],
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            "-b",
            help="The version to beat (default: models:/NAME@champion when it exists; 'none' "
            "for no baseline).",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="The label column (default: label).")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", "-p", help=_POLICY_HELP)] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="text, markdown (a PR comment), json or junit (XML)."),
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the report in --format to this file (text: still shown)."
        ),
    ] = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not store the report (a dry run; cannot gate).")
    ] = False,
) -> None:
    """Check a candidate model version against the baseline on a holdout.

    Exit 0 when every check passes, 1 when one fails, 2 on a usage error. The report is stored,
    linked to the version, and `mloop promote` requires a passing one.
    """
    from mloop.errors import InvalidInputError
    from mloop.gates import check_model

    if fmt not in ("text", "markdown", "json", "junit"):
        raise InvalidInputError(f"--format must be text, markdown, json or junit; got {fmt!r}.")
    kwargs: dict[str, Any] = {}
    if baseline is not None:
        kwargs["baseline"] = None if baseline.lower() == "none" else baseline
    with console.status("checking...", spinner="dots") if fmt == "text" else _nothing():
        report = check_model(
            candidate,
            data=str(data),
            target=target,
            policy=policy,
            registry=_registry(),
            store=not no_store,
            **kwargs,
        )
    if fmt == "text":
        _print_text(report)
        if output is not None:
            from mloop.gates import render_markdown

            output.write_text(render_markdown(report), encoding="utf-8")
    else:
        text = _render(report, fmt)
        if output is not None:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"report {report.id} ({report.status}) written to {output}", err=True)
        else:
            typer.echo(text)
    if not report.passed:
        raise typer.Exit(FAILED_EXIT)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def promote_command(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="The version to promote.")],
    to: Annotated[str, typer.Option("--to", help="The alias to move.")] = "champion",
    policy: Annotated[Path | None, typer.Option("--policy", "-p", help=_POLICY_HELP)] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Promote without a passing report (needs --reason; recorded)."
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why (recorded in the audit trail).")
    ] = None,
    expected_version: Annotated[
        int | None,
        typer.Option(
            "--expected-version",
            help="Move only if the alias points at this version now (default: what it points at "
            "when the report is read).",
        ),
    ] = None,
    watch: Annotated[
        bool | None,
        typer.Option(
            "--watch/--no-watch",
            help="Watch live traffic after the move and roll back on failure (default: when the "
            "policy has a post_deploy section).",
        ),
    ] = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option(
            "--endpoint", help="A server that follows the alias (repeatable), for --watch."
        ),
    ] = None,
    window_s: Annotated[
        float | None, typer.Option("--window-s", help="How long to watch live traffic.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Move an alias (default champion) to a version that passed `mloop check`.

    Refused (exit 1) without a passing report under the current policy; `--force --reason`
    overrides and records it. With a post-deploy check, a failure on live traffic rolls the
    alias back (exit 1).
    """
    from mloop.gates import PromotionRefusedError, promote
    from mloop.store import UNSET

    options: dict[str, Any] = {}
    if endpoint:
        options["endpoints"] = list(endpoint)
    if window_s is not None:
        options["window_s"] = window_s
    try:
        result = promote(
            name,
            version,
            to=to,
            policy=policy,
            registry=_registry(),
            force=force,
            reason=reason,
            expected_version=UNSET if expected_version is None else expected_version,
            watch=watch,
            watch_options=options,
        )
    except PromotionRefusedError as exc:
        if as_json:
            print_json({"promoted": False, "refused": exc.message, "report_id": exc.report_id})
        else:
            console.print(f"[red]refused[/]: {exc.message}", soft_wrap=True)
        raise typer.Exit(FAILED_EXIT) from None
    post = result.post_deploy
    if as_json:
        print_json(
            {
                "promoted": not result.rolled_back,
                "model": result.model,
                "alias": result.alias,
                "version": result.version,
                "previous_version": result.previous_version,
                "report_id": None if result.report is None else result.report.id,
                "forced": result.forced,
                "post_deploy": None if post is None else post.to_dict(),
                "rolled_back": result.rolled_back,
            }
        )
    else:
        was = "nothing" if result.previous_version is None else f"version {result.previous_version}"
        how = " [yellow](forced)[/]" if result.forced else ""
        if result.report is None:
            basis = " without a check report"
        elif result.forced:
            basis = f" over report {result.report.id} ({result.report.status})"
        else:
            basis = f" on passing report {result.report.id}"
        console.print(f"{name}@{to} -> version {result.version} (was {was}){how}{basis}")
        if post is not None:
            for c in post.checks:
                console.print(f"  {_ICONS.get(c.status, c.status)} {c.name}: {c.summary}")
            if result.rolled_back:
                console.print(
                    f"[red]rolled back[/] to version {result.previous_version} "
                    f"(post-deploy report {post.id})"
                )
    if result.rolled_back:
        raise typer.Exit(FAILED_EXIT)


def register(app: typer.Typer) -> None:
    app.command("check")(check_command)
    app.command("promote")(promote_command)
