"""``mloop deploy ...``: deployments (named endpoints, canary and shadow) from the command line."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mloop.cli._common import console, fmt_ms, fmt_value, print_json, settings
from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    from mloop.serving import Deployments
    from mloop.store import Deployment

deploy_app = typer.Typer(
    help="Deployments: which registered models a named endpoint serves, with canary and shadow. "
    "Serve one with `mloop serve NAME`.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why (recorded with the revision and event).")
]
ConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        "-c",
        help="Serve option KEY=VALUE (repeatable): log_sample, max_batch_size, max_wait_ms, "
        "timeout_s, ... VALUE is read as JSON when it parses (10, 0.5, true, null), else as text.",
    ),
]


def _service(*, read_only: bool = False) -> Deployments:
    """The deployment service; for ``read_only`` commands a store not created yet reads empty."""
    from mloop.registry import Registry
    from mloop.serving import Deployments
    from mloop.store import open_store

    s = settings()
    store = open_store(s, create=False) if read_only else None
    return Deployments(Registry(settings=s, store=store))


def parse_config(items: list[str] | None) -> dict[str, Any]:
    """``["log_sample=0.5", "tag=blue"]`` -> ``{"log_sample": 0.5, "tag": "blue"}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(
                f"--config takes KEY=VALUE (e.g. log_sample=0.5); got {item!r}."
            )
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        out[key.strip()] = value
    return out


def _canary_text(d: Deployment) -> str:
    return f"{d.canary} ({fmt_value(d.canary_percent)}%)" if d.canary else "-"


def _show(d: Deployment, *, verb: str) -> None:
    console.print(f"deployment {d.name} {verb} (revision {d.revision})")
    console.print(f"  model   {d.model}")
    if d.canary:
        sticky = f", sticky on {d.sticky_key}" if d.sticky_key else ""
        console.print(f"  canary  {_canary_text(d)}{sticky}")
    if d.shadow:
        console.print(f"  shadow  {d.shadow}")
    if d.config:
        console.print("  config  " + ", ".join(f"{k}={v}" for k, v in sorted(d.config.items())))


@deploy_app.command("create")
def deploy_create(
    name: Annotated[str, typer.Argument(help="Deployment name, e.g. churn-api.")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="models:/NAME@ALIAS (followed) or models:/NAME/3.")
    ],
    canary: Annotated[
        str | None,
        typer.Option(help="A second model and its share of the traffic: URI:PERCENT%."),
    ] = None,
    shadow: Annotated[
        str | None,
        typer.Option(help="A model that sees every request; its predictions are only logged."),
    ] = None,
    sticky_key: Annotated[
        str | None,
        typer.Option(
            "--sticky-key", help="Request header or field whose hash picks canary or main."
        ),
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a deployment; every model URI must resolve in the registry now."""
    d = _service().create(
        name,
        model=model,
        canary=canary,
        shadow=shadow,
        sticky_key=sticky_key,
        config=parse_config(config),
    )
    if as_json:
        print_json(d)
        return
    _show(d, verb="created")


@deploy_app.command("list")
def deploy_list(as_json: JsonOpt = False) -> None:
    """List deployments."""
    deployments = _service(read_only=True).list()
    if as_json:
        print_json(deployments)
        return
    table = Table(title="Deployments")
    for col in ("name", "model", "canary", "shadow", "revision", "updated", "by"):
        table.add_column(col)
    for d in deployments:
        table.add_row(
            d.name,
            d.model,
            _canary_text(d),
            d.shadow or "-",
            str(d.revision),
            fmt_ms(d.updated_ms),
            d.updated_by or "-",
        )
    console.print(table)


@deploy_app.command("status")
def deploy_status(
    name: str,
    events: Annotated[
        int, typer.Option("--events", "-n", help="How many of the last swap events to show.")
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """A deployment's spec, the versions its URIs resolve to now, and its servers' last swaps."""
    st = _service(read_only=True).status(name, last_events=events)
    if as_json:
        print_json(st)
        return
    d = st.deployment
    _show(d, verb=f"updated {fmt_ms(d.updated_ms)} by {d.updated_by or '-'}")
    table = Table(title="Resolves to")
    for col in ("slot", "uri", "version"):
        table.add_column(col)
    for r in st.resolved:
        version = f"v{r.version}" if r.version is not None else f"[red]{r.error}[/red]"
        table.add_row(r.slot, r.uri, version)
    console.print(table)
    if not st.events:
        console.print("[dim]no server has recorded a swap for it yet[/dim]")
        return
    swaps = Table(title="Last swaps")
    for col in ("#", "when", "event", "detail", "pid"):
        swaps.add_column(col)
    for e in st.events:
        p = e.payload
        if e.type == "serving_swapped":
            detail = f"{p.get('slot', '')}: {p.get('from') or '-'} → {p.get('to')}"
        else:
            detail = f"kept {p.get('kept')}: {p.get('error')}"
        swaps.add_row(str(e.id), fmt_ms(e.ts_ms), e.type, detail, str(p.get("pid", "-")))
    console.print(swaps)


@deploy_app.command("history")
def deploy_history(name: str, as_json: JsonOpt = False) -> None:
    """Every revision of a deployment: what it served, who changed it and why."""
    revisions = _service(read_only=True).revisions(name)
    if as_json:
        print_json(revisions)
        return
    table = Table(title=f"Revisions of {name}")
    for col in ("rev", "when", "model", "canary", "shadow", "actor", "reason"):
        table.add_column(col)
    for r in revisions:
        s = r.spec
        canary = f"{s.get('canary')} ({fmt_value(s.get('canary_percent'))}%)"
        table.add_row(
            str(r.revision),
            fmt_ms(r.created_ms),
            str(s.get("model")),
            canary if s.get("canary") else "-",
            s.get("shadow") or "-",
            r.actor or "-",
            r.reason or "",
        )
    console.print(table)


@deploy_app.command("set")
def deploy_set(
    name: str,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="A new main model URI.")
    ] = None,
    canary: Annotated[
        str | None,
        typer.Option(help="A canary and its share, URI:PERCENT% (URI alone keeps the share)."),
    ] = None,
    canary_percent: Annotated[
        float | None, typer.Option("--canary-percent", help="A new share for the canary.")
    ] = None,
    no_canary: Annotated[bool, typer.Option("--no-canary", help="Remove the canary.")] = False,
    shadow: Annotated[str | None, typer.Option(help="A new shadow model URI.")] = None,
    no_shadow: Annotated[bool, typer.Option("--no-shadow", help="Remove the shadow.")] = False,
    sticky_key: Annotated[
        str | None, typer.Option("--sticky-key", help="A new sticky key.")
    ] = None,
    no_sticky_key: Annotated[
        bool, typer.Option("--no-sticky-key", help="Split at random again.")
    ] = False,
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config",
            "-c",
            help="Serve option KEY=VALUE to set (repeatable); KEY=null removes it.",
        ),
    ] = None,
    reason: ReasonOpt = None,
    expected: Annotated[
        int | None,
        typer.Option("--expected-revision", help="Only change it if it is at this revision."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a deployment (one new revision); servers following it swap without downtime."""
    from mloop.store import UNSET

    for flag, value, off in (
        ("canary", canary, no_canary),
        ("shadow", shadow, no_shadow),
        ("sticky-key", sticky_key, no_sticky_key),
    ):
        if value is not None and off:
            raise InvalidInputError(f"give --{flag} or --no-{flag}, not both.")
    if no_canary and canary_percent is not None:
        raise InvalidInputError("give --canary-percent or --no-canary, not both.")

    def pick(value: Any, off: bool) -> Any:
        return None if off else (UNSET if value is None else value)

    d = _service().set(
        name,
        model=UNSET if model is None else model,
        canary=pick(canary, no_canary),
        canary_percent=UNSET if canary_percent is None else canary_percent,
        shadow=pick(shadow, no_shadow),
        sticky_key=pick(sticky_key, no_sticky_key),
        config=UNSET if not config else parse_config(config),
        reason=reason,
        expected_revision=expected,
    )
    if as_json:
        print_json(d)
        return
    _show(d, verb="updated")


@deploy_app.command("rollback")
def deploy_rollback(
    name: str,
    to: Annotated[
        int | None,
        typer.Option("--to", help="The revision to restore (default: the one before)."),
    ] = None,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore an earlier revision's spec, as a new revision."""
    d = _service().rollback(name, to_revision=to, reason=reason)
    if as_json:
        print_json(d)
        return
    _show(d, verb="rolled back")


@deploy_app.command("delete")
def deploy_delete(name: str, reason: ReasonOpt = None) -> None:
    """Delete a deployment (its events stay in the log; running servers keep serving)."""
    _service().delete(name, reason=reason)
    console.print(f"deleted deployment {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")
