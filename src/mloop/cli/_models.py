"""``mloop models ...``: the registry from the command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from mloop.cli._common import console, fmt_ms, fmt_value, print_json, settings

models_app = typer.Typer(
    help="Registered models: versions, aliases, audit trail, lineage.", no_args_is_help=True
)
alias_app = typer.Typer(
    help="Move, delete or protect aliases (champion, challenger, ...).", no_args_is_help=True
)
webhooks_app = typer.Typer(
    help="Webhooks on registry events (HMAC-signed POSTs).", no_args_is_help=True
)
models_app.add_typer(alias_app, name="alias")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why (recorded in the audit trail).")
]


def _registry(*, read_only: bool = False):
    """The registry; for ``read_only`` commands a store that does not exist yet reads as empty."""
    from mloop.registry import Registry
    from mloop.store import open_store

    s = settings()
    return Registry(settings=s, store=open_store(s, create=False) if read_only else None)


def _version_dict(v: Any) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.version,
        "aliases": list(v.aliases),
        "flavor": v.flavor,
        "source_run_id": v.source_run_id,
        "artifact_uri": v.artifact_uri,
        "created_ms": v.created_ms,
        "created_by": v.created_by,
        "description": v.description,
        "metrics": dict(v.metrics),
        "tags": dict(v.tags),
        "deleted": v.deleted,
    }


@models_app.command("list")
def models_list(
    filter: Annotated[
        str | None, typer.Option("--filter", "-f", help="e.g. \"name LIKE 'churn%'\"")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List registered models with their aliases and latest version."""
    models = _registry(read_only=True).list_models(filter).items
    if as_json:
        print_json(
            [
                {
                    "name": m.name,
                    "latest_version": m.latest_version,
                    "aliases": dict(m.aliases),
                    "description": m.description,
                    "tags": dict(m.tags),
                }
                for m in models
            ]
        )
        return
    table = Table(title="Registered models")
    for col in ("name", "latest", "aliases", "updated", "description"):
        table.add_column(col)
    for m in models:
        aliases = ", ".join(f"{a}→v{v}" for a, v in m.aliases.items())
        table.add_row(
            m.name,
            f"v{m.latest_version}" if m.latest_version else "-",
            aliases,
            fmt_ms(m.updated_ms),
            m.description,
        )
    console.print(table)


@models_app.command("show")
def models_show(name: str, as_json: JsonOpt = False) -> None:
    """Show a model: description, tags, aliases (and whether protected), versions."""
    reg = _registry(read_only=True)
    m = reg.get_model(name)
    aliases = reg.store.list_aliases(name)
    versions = reg.search_versions(name=name, max_results=50).items
    if as_json:
        print_json(
            {
                "name": m.name,
                "description": m.description,
                "tags": dict(m.tags),
                "latest_version": m.latest_version,
                "aliases": [
                    {
                        "alias": a.alias,
                        "version": a.version,
                        "protected": a.protected,
                        "updated_by": a.updated_by,
                    }
                    for a in aliases
                ],
                "versions": [_version_dict(v) for v in versions],
            }
        )
        return
    console.print(f"[bold]{m.name}[/bold]  latest v{m.latest_version}  {m.description}")
    for a in aliases:
        lock = " [yellow](protected)[/yellow]" if a.protected else ""
        console.print(
            f"  @{a.alias} → v{a.version}{lock}  moved {fmt_ms(a.updated_ms)} by {a.updated_by or '-'}"
        )
    if m.tags:
        console.print("  tags: " + ", ".join(f"{k}={v}" for k, v in m.tags.items()))
    _versions_table(versions)


def _versions_table(versions: list[Any]) -> None:
    keys = sorted({k for v in versions for k in v.metrics})[:6]
    table = Table(title="Versions")
    for col in ("version", "aliases", "flavor", "run", "created", "by", *keys):
        table.add_column(col, justify="right" if col in keys else "left")
    for v in versions:
        table.add_row(
            f"v{v.version}" + (" [red](deleted)[/red]" if v.deleted else ""),
            ", ".join(v.aliases),
            v.flavor,
            (v.source_run_id or "-")[:12],
            fmt_ms(v.created_ms),
            v.created_by or "-",
            *(fmt_value(v.metrics.get(k)) for k in keys),
        )
    console.print(table)


@models_app.command("versions")
def models_versions(
    name: Annotated[
        str | None, typer.Argument(help="Model name (all models when omitted).")
    ] = None,
    filter: Annotated[
        str | None, typer.Option("--filter", "-f", help='e.g. "metrics.acc > 0.9"')
    ] = None,
    order_by: Annotated[list[str] | None, typer.Option("--order-by", "-o")] = None,
    include_deleted: Annotated[
        bool, typer.Option("--deleted", help="Include soft-deleted versions.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List versions, filtered with the runs' search grammar (plus name, version, run_id, flavor)."""
    # The name is passed apart from the user's filter (not pasted into it), so an error in the
    # filter is reported at its position in what the user typed.
    versions = (
        _registry(read_only=True)
        .search_versions(
            filter or None, name=name, order_by=order_by, include_deleted=include_deleted
        )
        .items
    )
    if as_json:
        print_json([_version_dict(v) for v in versions])
        return
    _versions_table(versions)


@alias_app.command("set")
def alias_set(
    name: str,
    alias: str,
    version: int,
    reason: ReasonOpt = None,
    expected: Annotated[
        int | None, typer.Option("--expected-version", help="Only move if it points here now.")
    ] = None,
) -> None:
    """Point NAME@ALIAS at VERSION (atomic; audited)."""
    from mloop.store import UNSET

    a = _registry().set_alias(
        name,
        alias,
        version,
        reason=reason,
        expected_version=UNSET if expected is None else expected,
    )
    console.print(f"{a.name}@{a.alias} → v{a.version}")


@alias_app.command("delete")
def alias_delete(name: str, alias: str, reason: ReasonOpt = None) -> None:
    """Remove an alias."""
    _registry().delete_alias(name, alias, reason=reason)
    console.print(f"deleted {name}@{alias}")


@alias_app.command("protect")
def alias_protect(
    name: str,
    alias: str,
    off: Annotated[bool, typer.Option("--off", help="Remove the protection.")] = False,
    reason: ReasonOpt = None,
) -> None:
    """Protect an alias: moving it then requires --reason."""
    a = _registry().protect_alias(name, alias, not off, reason=reason)
    console.print(f"{a.name}@{a.alias} is {'protected' if a.protected else 'unprotected'}")


@models_app.command("rollback")
def models_rollback(name: str, alias: str, reason: ReasonOpt = None) -> None:
    """Move ALIAS back to its previous target."""
    a = _registry().rollback(name, alias, reason=reason)
    console.print(f"{a.name}@{a.alias} rolled back to v{a.version}")


@models_app.command("history")
def models_history(
    name: str,
    alias: Annotated[
        str | None, typer.Option("--alias", "-a", help="Only this alias's moves.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail: every registration, alias move, rollback, tag change and deletion."""
    events = _registry(read_only=True).history(name, alias=alias)
    if as_json:
        print_json(events)
        return
    table = Table(title=f"History of {name}" + (f"@{alias}" if alias else ""))
    for col in ("#", "when", "event", "version", "alias", "change", "actor", "reason"):
        table.add_column(col)
    for e in events:
        change = (
            ""
            if e.before is None and e.after is None
            else f"{fmt_value(e.before)} → {fmt_value(e.after)}"
        )
        if e.type.startswith("alias"):
            change = (
                f"v{e.before if e.before is not None else '-'} → v{e.after if e.after is not None else '-'}"
                if e.type != "alias_protected"
                else change
            )
        table.add_row(
            str(e.id),
            fmt_ms(e.ts_ms),
            e.type,
            str(e.version or ""),
            e.alias or "",
            change,
            e.actor or "-",
            (e.reason or "") + (f" [dim](report {e.report_id})[/dim]" if e.report_id else ""),
        )
    console.print(table)


@models_app.command("lineage")
def models_lineage(name: str, version: str, as_json: JsonOpt = False) -> None:
    """Print the tree: version → source run → datasets → git commit and config."""
    lin = _registry(read_only=True).lineage(name, version)
    if as_json:
        print_json(lin.to_dict())
        return
    tree = Tree(f"[bold]{lin.model} v{lin.version}[/bold] ({lin.flavor})  {lin.artifact_uri}")
    if lin.run:
        run = tree.add(
            f"run {lin.run['run_id']}  [dim]{lin.run['project']}/{lin.run['name']} {lin.run['status']}[/dim]"
        )
    else:
        run = tree.add("[red]source run unavailable[/red]")
    if lin.pipeline:
        p = lin.pipeline
        run.add(f"pipeline {p.get('pipeline', '-')} run {p['run_id']} step {p.get('step', '-')}")
    data = run.add("datasets")
    for d in lin.datasets:
        rows = f"  {d['num_rows']} rows" if "num_rows" in d else ""
        data.add(f"{d.get('name')} ({d.get('context')}): datasets:/{d.get('sha256')}{rows}")
    if not lin.datasets:
        data.add("[dim]none logged[/dim]")
    git = lin.git
    dirty = " [yellow](dirty)[/yellow]" if git.get("dirty") else ""
    run.add(
        f"git {git.get('commit') or '-'}{dirty}"
        + (f"  {git['branch']}" if git.get("branch") else "")
    )
    cfg = run.add("config")
    for k, v in sorted(lin.config.items()):
        cfg.add(f"{k} = {v}")
    console.print(tree)


@models_app.command("diff")
def models_diff(name: str, a: str, b: str, as_json: JsonOpt = False) -> None:
    """Two versions side by side: params, metrics (with deltas), datasets, signature."""
    d = _registry(read_only=True).diff(name, a, b)
    if as_json:
        print_json(d.to_dict())
        return
    table = Table(title=f"{name}: v{d.a} vs v{d.b}")
    for col in ("", f"v{d.a}", f"v{d.b}", "Δ"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row("flavor", *d.flavor, "")
    for k, (x, y) in d.params.items():
        table.add_row(f"params.{k}", x or "-", y or "-", "")
    for k, (x, y, delta) in d.metrics.items():
        table.add_row(
            f"metrics.{k}", fmt_value(x), fmt_value(y), "" if delta is None else f"{delta:+.4g}"
        )
    for k, (x, y) in d.datasets.items():
        table.add_row(f"dataset {k}", (x or "-")[:12], (y or "-")[:12], "")
    table.add_row("signature", "", "same" if d.signature_equal else "[yellow]differs[/yellow]", "")
    console.print(table)


@models_app.command("delete")
def models_delete(name: str, version: int, reason: ReasonOpt = None) -> None:
    """Soft-delete a version (refused while an alias points at it)."""
    _registry().delete_version(name, version, reason=reason)
    console.print(f"deleted {name} v{version}")


@webhooks_app.command("add")
def webhooks_add(
    url: str,
    secret: Annotated[str, typer.Option("--secret", help="HMAC-SHA256 key (>= 8 characters).")],
    events: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="Event type (repeatable; default all)."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's events.")] = None,
) -> None:
    """Register a webhook."""
    hook = _registry().store.create_webhook(url, secret=secret, events=events or ["*"], model=model)
    console.print(f"webhook {hook.id} → {hook.url}")


@webhooks_app.command("list")
def webhooks_list(as_json: JsonOpt = False) -> None:
    """List webhooks."""
    hooks = _registry(read_only=True).store.list_webhooks()
    if as_json:
        print_json(hooks)
        return
    table = Table(title="Webhooks")
    for col in ("id", "url", "events", "model", "cursor"):
        table.add_column(col)
    for h in hooks:
        table.add_row(str(h.id), h.url, ", ".join(h.events), h.model or "*", str(h.cursor))
    console.print(table)


@webhooks_app.command("delete")
def webhooks_delete(webhook_id: int) -> None:
    """Deactivate a webhook."""
    _registry().store.delete_webhook(webhook_id)
    console.print(f"deleted webhook {webhook_id}")


@webhooks_app.command("deliver")
def webhooks_deliver() -> None:
    """Deliver pending events once (a server runs this continuously)."""
    from mloop.registry import WebhookDispatcher

    with WebhookDispatcher(_registry().store, max_attempts=3) as d:
        n = d.deliver_pending()
    console.print(f"delivered {n} event(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.add_typer(webhooks_app, name="webhooks")
