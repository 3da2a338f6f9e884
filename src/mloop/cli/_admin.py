"""``mloop db upgrade``, ``mloop sync`` and ``mloop gc``."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from mloop.cli._common import console, print_json, settings

db_app = typer.Typer(help="The metadata store's schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the store's schema to the newest migration (opening a store does it too)."""
    from mloop.store import describe_uri, upgrade_store

    s = settings()
    rev = upgrade_store(s.store_uri)
    console.print(f"store {describe_uri(s.store_uri)} is at schema revision {rev}")


def sync(
    retry_quarantined: Annotated[
        bool,
        typer.Option(
            "--retry-quarantined",
            help="Also apply again the records kept in the quarantine (after fixing their cause).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Replay spooled writes (offline mode, outages) into the store; safe to run repeatedly.

    Every record is applied, or kept in the quarantine ($MLOOP_HOME/spool/quarantine) with its file,
    line and error; the records after a bad one are still applied. Exit codes: 0 every record
    applied, 1 some were quarantined or the store was unreachable (the spool is kept), 2 usage error.
    """
    from mloop.store import open_store
    from mloop.tracking import ReplayResult, count_quarantined, quarantine_dir, replay_spool
    from mloop.tracking import retry_quarantined as retry

    s = settings()
    if any(s.spool_dir.glob("*.jsonl")) or retry_quarantined:
        store = open_store(s)
        result = replay_spool(store, s.spool_dir)
        retried = retry(store, s.spool_dir) if retry_quarantined else None
    else:  # nothing to replay: do not create a store for it
        result, retried = ReplayResult(), None
    waiting = count_quarantined(s.spool_dir)
    if as_json:
        print_json(
            {
                **dataclasses.asdict(result),
                "retried": retried,
                "quarantined_total": waiting,
                "quarantine_dir": str(quarantine_dir(s.spool_dir)),
            }
        )
    else:
        torn = f" ({result.torn} torn by a crash mid-write)" if result.torn else ""
        console.print(
            f"replayed {result.files} spool file(s): {result.applied} records applied, "
            f"{result.duplicates} already present, {result.failed} failed{torn}"
        )
        for err in result.errors:
            console.print(f"[red]{err}[/red]", highlight=False)
        if retried is not None:
            console.print(
                f"retried the quarantine: {retried.applied} records applied, "
                f"{retried.duplicates} already present, {retried.failed} still failing"
            )
            for err in retried.errors:
                console.print(f"[red]{err}[/red]", highlight=False)
        if waiting:
            console.print(
                f"{waiting} record(s) are kept in the quarantine {quarantine_dir(s.spool_dir)}; "
                "fix their cause, then run `mloop sync --retry-quarantined`.",
                highlight=False,
            )
    if result.failed or result.pending_files or (retried is not None and retried.failed):
        raise typer.Exit(1)


def gc(
    delete: Annotated[
        bool, typer.Option("--delete", help="Really delete (default: dry run).")
    ] = False,
    min_age_s: Annotated[
        float,
        typer.Option(
            "--min-age-s",
            help="Spare blobs younger than this (an upload whose index is not written yet).",
        ),
    ] = 3600.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Find artifact blobs no run or dataset references; delete them with --delete."""
    from mloop.artifacts import BlobStore, delete_blobs, find_unreferenced
    from mloop.store import open_store, store_exists

    s = settings()
    if not store_exists(s):
        # Without the store nothing is known to reference the blobs: never call them garbage.
        console.print(f"no store at {s.store_uri}: nothing to collect")
        return
    blobs = BlobStore(s.artifact_uri, token=s.token)
    garbage = find_unreferenced(blobs, open_store(s).referenced_blobs(), min_age_s=min_age_s)
    total = sum(size for _, size in garbage)
    deleted = delete_blobs(blobs, [sha for sha, _ in garbage]) if delete else []
    if as_json:
        print_json(
            {
                "unreferenced": [{"sha256": sha, "size": size} for sha, size in garbage],
                "bytes": total,
                "deleted": deleted,
            }
        )
        return
    verb = "deleted" if delete else "would delete (dry run; pass --delete)"
    console.print(f"{len(garbage)} unreferenced blob(s), {total / 1e6:.1f} MB: {verb}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("sync")(sync)
    app.command("gc")(gc)
