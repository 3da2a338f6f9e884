"""``mloop agent run | status | trigger``: the agent that closes the loop, from a YAML file."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mloop.cli._common import console, fmt_ms, print_json, settings
from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    from mloop.loop import Agent
    from mloop.store import Store

agent_app = typer.Typer(
    help="The agent: runs monitors, follows the event log, fires triggers, runs pipelines.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="The agent's YAML file (monitors, triggers).")
]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _seconds(text: str, *, what: str) -> float:
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise InvalidInputError(f"`{what}` must be a duration such as '30s', '5min'; got {text!r}.")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def _store(*, create: bool) -> Store:
    from mloop.store import open_store

    return open_store(settings(), create=create)


def _agent(config: Path) -> tuple[Agent, float]:
    from mloop.artifacts import BlobStore
    from mloop.loop import Agent, load_agent_config

    cfg = load_agent_config(config)
    here = os.getcwd()  # pipelines named module:function import from here, like python -m
    if here not in sys.path:
        sys.path.insert(0, here)
    s = settings()
    store = _store(create=True)
    blobs = BlobStore(s.artifact_uri, token=s.token)
    monitors = cfg.build_monitors(store=store, blobstore=blobs, base=config.parent)
    agent = Agent(
        monitors=monitors, triggers=cfg.build_triggers(), store=store, blobstore=blobs,
        name=cfg.agent.name, lease_s=_seconds(cfg.agent.lease, what="agent.lease"), settings=s,
    )  # fmt: skip
    return agent, _seconds(cfg.agent.interval, what="agent.interval")


def _firings_table(rows: list[dict]) -> Table:
    table = Table(show_edge=False)
    for col in ("trigger", "kind", "status", "run", "fired", "reason"):
        table.add_column(col)
    for f in rows:
        table.add_row(
            f["trigger"], f["kind"], f["status"], f["run_id"], fmt_ms(f["created_ms"]),
            f["reason"] if len(f["reason"]) <= 80 else f["reason"][:77] + "...",
        )  # fmt: skip
    return table


@agent_app.command("run")
def run_agent(
    config: ConfigOpt,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[
        str | None, typer.Option("--interval", help="Time between passes (default: the file's).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the agent: a pass every interval until SIGTERM or Ctrl-C (or one with --once)."""
    agent, every = _agent(config)
    if once:
        fired = [f.to_dict() for f in agent.run_once()]
        if as_json:
            print_json({"firings": fired})
        elif fired:
            console.print(_firings_table(fired))
        else:
            console.print("nothing fired.")
        return
    seconds = every if interval is None else _seconds(interval, what="--interval")
    console.print(f"agent {agent.name}: a pass every {seconds:g}s (Ctrl-C or SIGTERM stops it)")
    passes = agent.run_forever(seconds)
    console.print(f"agent {agent.name}: stopped after {passes} pass(es).")


@agent_app.command("status")
def status(
    name: Annotated[str, typer.Option("--name", help="The agent's name.")] = "agent",
    limit: Annotated[int, typer.Option("--limit", help="Latest firings shown.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The agent's cursor against the event log's head, and the latest firings."""
    from mloop.loop import agent_status

    st = agent_status(_store(create=False), name, limit=limit)
    if as_json:
        print_json(st)
        return
    cursor = "not started" if st["cursor"] is None else f"event {st['cursor']}"
    console.print(
        f"agent {name}: cursor at {cursor} of {st['head']}; {st['open_firings']} open firing(s)"
    )
    console.print(_firings_table(st["firings"]))


@agent_app.command("trigger")
def trigger(
    name: Annotated[str, typer.Argument(help="The trigger's name (as in the agent's file).")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded).")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Fire and run it now with this agent file."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask the agent to fire a trigger at its next pass (or, with --config, fire and run it now)."""
    if config is not None:
        agent, _ = _agent(config)
        f = agent.fire(name, reason=reason)
        if as_json:
            print_json(f.to_dict())
        else:
            console.print(f"fired {f.trigger}: run {f.run_id} {f.status}")
        if f.status == "failed":
            raise typer.Exit(2)
        return
    from mloop.loop import request_trigger

    event = request_trigger(_store(create=True), name, reason=reason, actor="cli")
    if as_json:
        print_json(event.to_dict())
    else:
        console.print(f"requested {name} (event {event.id}); the agent fires it at its next pass.")


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
