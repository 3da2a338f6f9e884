"""``mloop drift`` and ``mloop profile``: data drift checks that can gate a CI job.

``mloop drift`` exits with its verdict: 0 no drift, 1 drift, 2 usage error (the root app's exit for
every :class:`~mloop.errors.MloopError`), 3 no verdict. A gate must never pass on data it could not
judge, so "no verdict" has its own code; ``--allow-empty`` opts in to exit 0 when the current data
is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mloop.cli._common import console, fmt_value, print_json
from mloop.errors import InvalidInputError

EXIT_NO_DRIFT = 0
EXIT_DRIFT = 1
EXIT_NO_VERDICT = 3  # 2 is the usage-error exit of every command (cli/_app.py)


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise InvalidInputError(f"expected comma-separated column names; got {value!r}.")
    return names


def _pairs(values: list[str], what: str) -> dict[str, str] | str | None:
    """``["a=psi", "b=ks"]`` -> mapping; a lone ``["psi"]`` applies to every column."""
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    out: dict[str, str] = {}
    for item in values:
        col, sep, val = item.partition("=")
        if not sep or not col or not val:
            raise InvalidInputError(f"{what} must be COLUMN=VALUE (or one VALUE); got {item!r}.")
        out[col.strip()] = val.strip()
    return out


def _load_reference(path: Path) -> Any:
    from mloop.monitoring import load_if_profile

    if not path.exists():
        raise InvalidInputError(f"reference {str(path)!r} does not exist.")
    return load_if_profile(path)  # a damaged profile is reported as corrupt, naming the file


_VERDICT = {
    "ok": "[green]ok[/green]",
    "drift": "[bold red]DRIFT[/bold red]",
    "insufficient_data": "[yellow]insufficient data[/yellow]",
    "missing_column": "[yellow]missing column[/yellow]",
    "error": "[red]error[/red]",
}


def drift(
    reference: Annotated[
        Path, typer.Argument(help="Reference data (.parquet, .csv, .feather) or a saved profile.")
    ],
    current: Annotated[
        Path, typer.Argument(help="Current data (.parquet, .csv, .feather); never a profile.")
    ],
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML report here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    columns: Annotated[
        str | None, typer.Option("--columns", help="Comma-separated columns to compare.")
    ] = None,
    categorical: Annotated[
        str | None,
        typer.Option(
            "--categorical", help="Comma-separated numeric columns to treat as categories."
        ),
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option("--method", help="METHOD for all columns, or COLUMN=METHOD (repeatable)."),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="VALUE for all columns, or COLUMN=VALUE (repeatable)."),
    ] = None,
    drift_share: Annotated[
        float, typer.Option("--drift-share", help="Share of drifted columns that is dataset drift.")
    ] = 0.5,
    min_samples: Annotated[
        int, typer.Option("--min-samples", help="Minimum values per side for a verdict.")
    ] = 30,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Exit 0 instead of 3 when the current data is empty (no rows, or fewer than "
            "--min-samples non-missing values in every compared column).",
        ),
    ] = False,
) -> None:
    """Compare CURRENT with REFERENCE column by column; the exit code is the verdict.

    \b
    Exit codes:
      0 no drift
      1 drift: at least --drift-share of the judged columns drifted
      2 usage error: bad arguments; a missing, unreadable or corrupt file
      3 no verdict: no column could be judged (empty, header-only or
        all-missing current data, or no compared column in it);
        with --allow-empty, empty current data exits 0 instead
    """
    from mloop.monitoring import drift_report

    thresholds_raw = _pairs(threshold or [], "--threshold")
    thresholds: dict[str, float] | float | None
    try:
        if isinstance(thresholds_raw, str):
            thresholds = float(thresholds_raw)
        elif thresholds_raw is not None:
            thresholds = {k: float(v) for k, v in thresholds_raw.items()}
        else:
            thresholds = None
    except ValueError as exc:
        raise InvalidInputError(f"--threshold values must be numbers ({exc}).") from exc
    report = drift_report(
        _load_reference(reference),
        current,
        columns=_names(columns),
        categorical=_names(categorical),
        methods=_pairs(method or [], "--method"),
        thresholds=thresholds,
        drift_share=drift_share,
        min_samples=min_samples,
    )
    if html is not None:
        report.to_html(html)
    if as_json:
        typer.echo(report.to_json(indent=2))
    else:
        table = Table(title=f"Data drift: {current.name} vs {reference.name}")
        for name, justify in [("column", "left"), ("kind", "left"), ("method", "left")]:
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        table.add_column("statistic", justify="right")
        table.add_column("p-value", justify="right")
        table.add_column("threshold", justify="right")
        table.add_column("verdict")
        for col in report.columns.values():
            verdict = _VERDICT[col.status]
            if col.message and col.status not in ("ok", "drift"):
                verdict += f" [dim]({col.message})[/dim]"
            if col.borderline:
                verdict += " [yellow](borderline)[/yellow]"
            stat = fmt_value(col.statistic)
            if col.error_bound:
                stat += f" ± {fmt_value(col.error_bound)}"
            table.add_row(
                col.name,
                col.kind,
                col.method,
                stat,
                fmt_value(col.p_value),
                fmt_value(col.threshold),
                verdict,
            )
        console.print(table)
        word = "[bold red]DRIFT[/bold red]" if report.drifted else "[green]no drift[/green]"
        if report.status == "insufficient_data":
            word = "[yellow]no verdict (insufficient data)[/yellow]"
        console.print(
            f"dataset: {word}: {report.n_drifted} of {report.n_evaluated} columns drifted "
            f"({report.share_drifted:.0%}; dataset drift at >= {report.drift_share:.0%})"
        )
        if report.n_borderline:
            console.print(
                f"[yellow]{report.n_borderline} borderline verdict(s): the reference profile is "
                "a sketch and the statistic is within its error bound of the threshold[/yellow]"
            )
        for col in report.columns.values():
            if col.message and col.status in ("ok", "drift"):
                console.print(f"[dim]{col.name}: {col.message}[/dim]")
        if report.extra_columns:
            console.print(f"[dim]not in the reference: {', '.join(report.extra_columns)}[/dim]")
        if html is not None:
            console.print(f"wrote {html}")
    if report.status == "insufficient_data":
        reason, empty = _no_verdict_reason(report, min_samples)
        if allow_empty and empty:
            typer.echo(f"no verdict: {reason}; exit 0 (--allow-empty).", err=True)
            return
        hint = " (pass --allow-empty to exit 0 on empty data)" if empty else ""
        typer.echo(f"no verdict: {reason}; exit {EXIT_NO_VERDICT}{hint}.", err=True)
        raise typer.Exit(EXIT_NO_VERDICT)
    raise typer.Exit(EXIT_DRIFT if report.drifted else EXIT_NO_DRIFT)


def _no_verdict_reason(report: Any, min_samples: int) -> tuple[str, bool]:
    """Why no column has a verdict, and whether that is because the current data is empty."""
    cols = list(report.columns.values())
    if report.n_current_rows == 0:
        return "the current data has no rows", True
    short = [c for c in cols if c.status == "insufficient_data" and c.n_current < min_samples]
    if len(short) == len(cols):
        return (
            f"no compared column has --min-samples={min_samples} non-missing current values",
            True,
        )
    parts = []
    by_status = {
        "missing_column": "missing from the current data",
        "insufficient_data": "too few values",
        "error": "could not be compared",
    }
    for status, what in by_status.items():
        names = [c.name for c in cols if c.status == status]
        if names:
            parts.append(f"{what}: {', '.join(names)}")
    return "no column could be judged (" + "; ".join(parts) + ")", False


def profile(
    data: Annotated[
        str,
        typer.Argument(
            help="Data to profile: a .parquet, .csv or .feather file, or a folder or URL "
            "prefix (s3://...) of Parquet files."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the profile.")],
    columns: Annotated[
        str | None, typer.Option("--columns", help="Comma-separated columns to profile.")
    ] = None,
    categorical: Annotated[
        str | None,
        typer.Option(
            "--categorical", help="Comma-separated numeric columns to treat as categories."
        ),
    ] = None,
    max_exact: Annotated[
        int | None,
        typer.Option(
            "--max-exact",
            help="Keep exact values up to this many per column (default: while they are "
            "smaller than a sketch; the profile stays under ~50 kB a column).",
        ),
    ] = None,
    exact: Annotated[
        bool,
        typer.Option("--exact", help="Keep every value (the profile grows with the rows)."),
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="auto | local | process | ray. Profile the Parquet files of a folder one per "
            "worker and merge (ray: pip install 'mloop[ray]'). auto: processes for several "
            "files with enough rows on several CPUs, else this process.",
        ),
    ] = "auto",
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Processes for --executor process (default: the CPUs)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Profile DATA once (bins, counts, exact values or sketches) for later `mloop drift` runs.

    DATA may be a Parquet or CSV file, or a folder (or s3:// prefix) of Parquet files; it is
    read in batches, so memory stays near one batch whatever its size.
    """
    from mloop.monitoring import Profile, profile_partitions
    from mloop.tables import count_rows, partitions

    where = data
    if "://" not in where and not Path(where).exists():
        raise InvalidInputError(f"data file {where!r} does not exist.")
    options: dict[str, Any] = {
        "columns": _names(columns),
        "categorical": _names(categorical),
        "exact": exact,
        "max_exact": max_exact,
    }
    if executor not in ("auto", "local", "process", "ray"):
        raise InvalidInputError(
            f"`--executor` must be one of auto, local, process, ray; got {executor!r}."
        )
    show = console.is_terminal and not as_json
    try:
        n_parts, total = len(partitions(where)), count_rows(where) if show else None
    except InvalidInputError:  # reported below as profiling reports it (a saved profile, ...)
        n_parts, total = 0, None
    split = executor in ("process", "ray") or (executor == "auto" and n_parts > 1)
    with _progress(total, enabled=show) as advance:
        if split:
            prof = profile_partitions(
                where,
                executor=executor,  # type: ignore[arg-type]  # checked above
                workers=workers,
                progress=advance,
                **options,
            )
        else:
            prof = Profile.from_data(where, progress=advance, **options)
    prof.save(output)
    if as_json:
        print_json(prof.summary())
        return
    size = output.stat().st_size
    console.print(
        f"wrote {output} ({prof.n_rows:,} rows, {len(prof.columns)} columns, {size / 1024:,.1f} kB)"
    )


@contextmanager
def _progress(total: int | None, *, enabled: bool) -> Iterator[Callable[[int], object] | None]:
    """A rich progress bar of rows profiled (of ``total`` when known), only on a terminal."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("profiling"), BarColumn(), MofNCompleteColumn(), TextColumn("rows")]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()] if total else [TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("profile", total=total)
        yield lambda rows: bar.advance(task, rows)


def register(app: typer.Typer) -> None:
    """Add ``drift`` and ``profile`` to the root app."""
    app.command("drift")(drift)
    app.command("profile")(profile)
