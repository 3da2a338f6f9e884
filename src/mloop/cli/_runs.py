"""``mloop projects ...`` and ``mloop runs list|show|compare``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mloop.cli._common import console, fmt_duration, fmt_ms, fmt_value, print_json, settings

if TYPE_CHECKING:
    from mloop.store import Run

projects_app = typer.Typer(help="Projects (MLflow experiments).", no_args_is_help=True)
runs_app = typer.Typer(help="Inspect and compare runs.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
_STATUS_STYLE = {"running": "cyan", "finished": "green", "failed": "red", "killed": "yellow"}


def _client():
    """A client for these read-only commands: a store that does not exist yet reads as empty."""
    from mloop.store import open_store
    from mloop.tracking import Client

    s = settings()
    return Client(settings=s, store=open_store(s, create=False))


@projects_app.command("list")
def projects_list(as_json: JsonOpt = False) -> None:
    """List projects."""
    client = _client()
    projects = client.list_projects()
    if as_json:
        print_json(projects)
        return
    table = Table(title="Projects")
    for col in ("id", "name", "created", "tags"):
        table.add_column(col)
    for p in projects:
        table.add_row(
            p.id, p.name, fmt_ms(p.created_ms), ", ".join(f"{k}={v}" for k, v in p.tags.items())
        )
    console.print(table)


def _run_dict(r: Run) -> dict:
    return {
        "run_id": r.id,
        "project_id": r.project_id,
        "name": r.name,
        "status": r.status,
        "start_ms": r.start_ms,
        "end_ms": r.end_ms,
        "parent_run_id": r.parent_run_id,
        "user": r.user,
        "host": r.host,
        "git_commit": r.git_commit,
        "git_dirty": r.git_dirty,
        "params": dict(r.params),
        "tags": dict(r.tags),
        "metrics": {k: m.last for k, m in r.metrics.items()},
        "inputs": [
            {"dataset": i.dataset_sha256, "name": i.name, "context": i.context} for i in r.inputs
        ],
    }


@runs_app.command("list")
def runs_list(
    project: Annotated[str, typer.Argument(help="Project name or id.")] = "default",
    filter: Annotated[
        str | None,
        typer.Option("--filter", "-f", help="e.g. \"metrics.acc > 0.9 and params.depth = '8'\""),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.acc DESC' (repeatable)"),
    ] = None,
    max_results: Annotated[int, typer.Option("--max-results", "-n")] = 100,
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="Comma-separated metric keys to show.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a project's runs, filtered and ordered with MLflow's search grammar."""
    client = _client()
    page = client.search_runs(project, filter, order_by=order_by, max_results=max_results)
    if as_json:
        print_json(
            {"runs": [_run_dict(r) for r in page.items], "next_page_token": page.next_page_token}
        )
        return
    keys = (
        [k.strip() for k in metrics.split(",") if k.strip()]
        if metrics
        else sorted({k for r in page.items for k in r.metrics if not k.startswith("system/")})[:8]
    )
    table = Table(title=f"Runs of {project!r}" + (f" where {filter}" if filter else ""))
    for col in ("run id", "name", "status", "started", "duration", *keys):
        table.add_column(
            col, justify="right" if col in keys else "left", no_wrap=col in ("run id", "started")
        )
    for r in page.items:
        style = _STATUS_STYLE.get(r.status, "")
        table.add_row(
            r.id[:12],
            r.name,
            f"[{style}]{r.status}[/{style}]",
            fmt_ms(r.start_ms),
            fmt_duration(r.start_ms, r.end_ms),
            *(fmt_value(r.metrics[k].last) if k in r.metrics else "-" for k in keys),
        )
    console.print(table)
    if page.next_page_token:
        console.print(f"[dim]more runs: raise --max-results (showing {len(page.items)})[/dim]")


def _resolve_run_id(client, prefix: str) -> str:
    """A full run id from a unique prefix of at least 6 characters (as listed by `runs list`)."""
    from mloop.errors import InvalidInputError, NotFoundError

    if len(prefix) == 32:
        return prefix
    if len(prefix) < 6 or any(c not in "0123456789abcdef" for c in prefix):
        raise InvalidInputError(
            f"run id must be 32 hex characters or a unique prefix of at least 6; got {prefix!r}."
        )
    projects = [p.id for p in client.list_projects()]
    matches = (
        client.store.search_runs(projects, filter=f"run_id LIKE '{prefix}%'", max_results=2).items
        if projects
        else []
    )
    if not matches:
        raise NotFoundError(f"no run id starts with {prefix!r}.")
    if len(matches) > 1:
        raise InvalidInputError(f"run id prefix {prefix!r} is ambiguous; give more characters.")
    return str(matches[0].id)


@runs_app.command("show")
def runs_show(run_id: str, as_json: JsonOpt = False) -> None:
    """Show one run: status, context, params, tags, metrics (last/min/max), inputs, artifacts."""
    client = _client()
    r = client.get_run(_resolve_run_id(client, run_id))
    artifacts = client.list_artifacts(r.id)
    if as_json:
        d = _run_dict(r)
        d["metrics"] = {
            k: {"last": m.last, "step": m.step, "min": m.min, "max": m.max, "count": m.count}
            for k, m in r.metrics.items()
        }
        d["context"] = dict(r.context)
        d["artifacts"] = [{"path": a.path, "size": a.size, "sha256": a.sha256} for a in artifacts]
        print_json(d)
        return
    style = _STATUS_STYLE.get(r.status, "")
    console.print(f"[bold]{r.name}[/bold]  {r.id}  [{style}]{r.status}[/{style}]")
    console.print(
        f"started {fmt_ms(r.start_ms)}  duration {fmt_duration(r.start_ms, r.end_ms)}  "
        f"user {r.user or '-'}  host {r.host or '-'}  git {(r.git_commit or '-')[:10]}{'*' if r.git_dirty else ''}"
    )
    if r.parent_run_id:
        console.print(f"parent {r.parent_run_id}")
    if r.params:
        t = Table(title="params")
        t.add_column("key")
        t.add_column("value")
        for k, v in sorted(r.params.items()):
            t.add_row(k, v)
        console.print(t)
    if r.metrics:
        t = Table(title="metrics")
        for col in ("key", "last", "step", "min", "max", "points"):
            t.add_column(col, justify="left" if col == "key" else "right")
        for k, m in r.metrics.items():
            t.add_row(
                k, fmt_value(m.last), str(m.step), fmt_value(m.min), fmt_value(m.max), str(m.count)
            )
        console.print(t)
    if r.tags:
        console.print("tags: " + ", ".join(f"{k}={v}" for k, v in sorted(r.tags.items())))
    for i in r.inputs:
        console.print(f"input {i.name} ({i.context}): datasets:/{i.dataset_sha256}")
    for a in artifacts:
        console.print(f"artifact {a.path}  {a.size} B  {a.sha256}")


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    all_keys: Annotated[
        bool, typer.Option("--all", help="Also show params that are equal in every run.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare runs side by side: params that differ, and every metric's last value (best in bold)."""
    client = _client()
    runs = [client.get_run(_resolve_run_id(client, rid)) for rid in run_ids]
    params = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics if not k.startswith("system/")})
    if as_json:
        print_json(
            {
                "runs": [r.id for r in runs],
                "params": {k: [r.params.get(k) for r in runs] for k in params},
                "metrics": {
                    k: [r.metrics[k].last if k in r.metrics else None for r in runs]
                    for k in metric_keys
                },
            }
        )
        return
    table = Table(title="Run comparison")
    table.add_column("")
    for r in runs:
        table.add_column(r.name if r.name == r.id[:8] else f"{r.name}\n{r.id[:8]}", justify="right")
    for k in params:
        values = [r.params.get(k, "-") for r in runs]
        if all_keys or len(set(values)) > 1:
            table.add_row(f"params.{k}", *values)
    for k in metric_keys:
        vals = [r.metrics[k].last if k in r.metrics else None for r in runs]
        finite = [v for v in vals if v is not None and v == v]
        best = None
        if finite:
            lower = any(w in k.lower() for w in ("loss", "error", "mae", "rmse", "mse"))
            best = min(finite) if lower else max(finite)
        table.add_row(
            f"metrics.{k}",
            *(
                f"[bold green]{fmt_value(v)}[/bold green]"
                if v is not None and v == best
                else fmt_value(v)
                for v in vals
            ),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(projects_app, name="projects")
    app.add_typer(runs_app, name="runs")
