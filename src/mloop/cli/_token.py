"""``mloop token create | list | revoke``: API tokens of a team server (``mloop server --auth``).

They act on the store the settings point at, which must be the server's own database: run them on
the server host with ``MLOOP_STORE_URI`` set as the server's is. Tokens are never managed over HTTP.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli._common import console, print_json, settings
from mloop.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from mloop.store import ApiToken, Project, Store

token_app = typer.Typer(
    help="API tokens of a team server (run on the server host, against its store).",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^\s*([0-9]+)\s*(m|min|h|d|w|y)\s*$")
_UNIT_MS = {
    "m": 60_000,
    "min": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
    "y": 365 * 86_400_000,
}


def parse_expiry(text: str, *, now_ms: int) -> int | None:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"``, ``"1y"`` or ``"never"`` as an epoch-ms expiry.

    >>> parse_expiry("1d", now_ms=0)
    86400000
    >>> parse_expiry("never", now_ms=0) is None
    True
    """
    if text.strip().lower() in ("never", "none", "0"):
        return None
    m = _DURATION.match(text)
    if m is None or int(m.group(1)) == 0:
        raise InvalidInputError(
            f"`--expires` takes a duration such as '30d', '12h', '90m', '2w', '1y', or 'never'; "
            f"got {text!r}."
        )
    return now_ms + int(m.group(1)) * _UNIT_MS[m.group(2)]


def _who() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return None


def _resolve_project(store: Store, given: str, *, create: bool) -> Project:
    """A project from its name or its id (created by name with ``create``)."""
    by_name = store.get_project_by_name(given)
    if by_name is not None:
        return by_name
    try:
        return store.get_project(given)
    except (NotFoundError, InvalidInputError):
        pass
    if create:
        made = store.create_project(given)
        typer.echo(f"created project {made.name!r} (id {made.id})", err=True)
        return made
    raise NotFoundError(
        f"no project is named or numbered {given!r}; check `mloop projects list`, or pass "
        "--create-project to create it."
    )


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def _token_dict(t: ApiToken, projects: dict[str, str]) -> dict[str, Any]:
    return {
        **t.to_dict(),
        "project": projects.get(t.project_id) if t.project_id else None,
        "status": t.status(),
    }


@token_app.command("create")
def create(
    name: Annotated[
        str, typer.Option("--name", help="Who the token is for; recorded as the actor.")
    ],
    role: Annotated[
        str, typer.Option("--role", help="read (reads), write (also changes), admin (all).")
    ],
    project: Annotated[
        str | None,
        typer.Option("--project", help="Limit the token to this project (name or id)."),
    ] = None,
    create_project: Annotated[
        bool, typer.Option("--create-project", help="Create the --project if it does not exist.")
    ] = False,
    expires: Annotated[
        str,
        typer.Option("--expires", help="Lifetime: 30d, 12h, 90m, 2w, 1y, or never."),
    ] = "never",
    rate_limit: Annotated[
        float | None,
        typer.Option(
            "--rate-limit", help="This token's requests per second (default: the server's)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a token and print its secret, once: only its hash is kept.

    The secret alone goes to stdout (so `export MLOOP_TOKEN=$(mloop token create ...)` works);
    what it is goes to stderr.
    """
    from mloop.ids import now_ms
    from mloop.store import TOKEN_ROLES, open_store

    if role not in TOKEN_ROLES:
        raise InvalidInputError(f"`--role` must be one of {list(TOKEN_ROLES)}; got {role!r}.")
    expires_ms = parse_expiry(expires, now_ms=now_ms())
    store = open_store(settings())
    scoped = None if project is None else _resolve_project(store, project, create=create_project)
    new = store.create_token(
        name,
        role=role,
        project_id=None if scoped is None else scoped.id,
        expires_ms=expires_ms,
        rate_limit=rate_limit,
        actor=_who(),
    )
    t = new.token
    if as_json:
        names = {} if scoped is None else {scoped.id: scoped.name}
        print_json({"token": _token_dict(t, names), "secret": new.secret})
        return
    scope = "every project" if scoped is None else f"project {scoped.name!r} (id {scoped.id})"
    until = f"until {_when(t.expires_ms)}" if t.expires_ms else "without expiry"
    typer.echo(f"token {t.id} for {t.name!r}: role {t.role}, {scope}, {until}", err=True)
    typer.echo(new.secret)
    typer.echo("Store it now (e.g. as MLOOP_TOKEN): it is shown only this once.", err=True)


@token_app.command("list")
def list_tokens(
    active: Annotated[bool, typer.Option("--active", help="Only tokens that still work.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every token, newest first, with its status; never a secret."""
    from rich.table import Table

    from mloop.store import open_store

    store = open_store(settings(), create=False)
    tokens = store.list_tokens(include_revoked=not active)
    if active:
        tokens = [t for t in tokens if t.status() == "active"]
    projects = {p.id: p.name for p in store.list_projects(include_deleted=True)} if tokens else {}
    if as_json:
        print_json([_token_dict(t, projects) for t in tokens])
        return
    if not tokens:
        console.print("no tokens; create one with `mloop token create --name NAME --role ROLE`")
        return
    table = Table("id", "name", "role", "project", "status", "created", "expires", "last used",
                  "rate/s")  # fmt: skip
    for t in tokens:
        table.add_row(
            t.id,
            t.name,
            t.role,
            "-" if t.project_id is None else f"{projects.get(t.project_id, '?')} ({t.project_id})",
            t.status(),
            _when(t.created_ms),
            _when(t.expires_ms),
            _when(t.last_used_ms),
            "-" if t.rate_limit is None else f"{t.rate_limit:g}",
        )
    console.print(table)


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `mloop token list`).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Revoke a token for good (servers refuse it within their token cache time, 5 s)."""
    from mloop.store import open_store

    token = open_store(settings()).revoke_token(token_id, actor=_who())
    if as_json:
        print_json(token.to_dict())
        return
    console.print(
        f"revoked token {token.id} ({token.name!r}); servers refuse it within seconds "
        "(their token cache, 5 s by default)."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
